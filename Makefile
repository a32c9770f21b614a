# `make run` and `make test` are all a fresh machine needs (Python >= 3.11; Node.js for the
# browser client when web/ is present). Installs are stamped, so repeating them is instant.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.tocsin-installed

WEB := $(wildcard web/package.json)
ifneq ($(WEB),)
WEB_DEPS := web/node_modules/.tocsin-installed
WEB_BUILD := gateway/static/.tocsin-built
WEB_SOURCES := $(shell find web/src -type f) web/build.mjs web/package.json
endif

.PHONY: all install run test lint format mypy chaos bench

all: lint mypy test

install: $(STAMP) $(WEB_BUILD)

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# Both distributions, editable: the client (client/) and the server with the embedded default.
$(STAMP): pyproject.toml client/pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ./client -e '.[dev,embedded,bench]'
	touch $@

$(WEB_DEPS): web/package-lock.json
	cd web && npm ci --no-audit --no-fund
	touch $@

$(WEB_BUILD): $(WEB_DEPS) $(WEB_SOURCES)
	cd web && npm run build
	touch $@

run: install
	$(BIN)/tocsin run

# The browser client's unit tests first, so pytest's summary is the closing line.
test: install
ifneq ($(WEB),)
	cd web && npm test
endif
	$(BIN)/pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

mypy: $(STAMP)
	$(BIN)/mypy

# Every fault scenario of docs/chaos.md at a moderate load (3 gateways, 2 dispatchers, 200 tabs):
# a Markdown table on stdout, JSON in test-artifacts/chaos/. About 5 minutes.
chaos: install
	$(BIN)/python -m tests.chaos

# Tocsin's gateway beside the bare `websockets` server (the limit) and a minimal Starlette relay
# (the floor), each server pinned to core 0 and the load to core 1 (taskset): results in
# bench/results/ (latest.json, latest.md, PNG plots). Under 5 minutes; FULL=1 for the long one.
bench: install
	$(BIN)/python -m bench $(if $(FULL),--full,)
