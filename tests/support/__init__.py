"""Helpers shared by the test suite: service URLs, server processes, spare ports."""
