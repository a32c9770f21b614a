"""The offline-fallback worker (`tocsin worker`): web push and email jobs (docs/fallback.md)."""
