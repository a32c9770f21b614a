"""The `tocsin` command line: run, gateway, dispatcher, migrate, send, token."""
