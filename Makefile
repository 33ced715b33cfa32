# SPDX-License-Identifier: Apache-2.0
# Everything runs from the project's own .venv; a stamp file per install flavour
# means pip runs again only when pyproject.toml changes.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-run
DEV_STAMP := $(VENV)/.installed-dev
PYTEST_ARGS ?=

.PHONY: demo test check bench viewer viewer-if-npm

demo: $(STAMP) viewer-if-npm
	$(BIN)/twinhub demo

test: $(DEV_STAMP)
	$(BIN)/pytest -q $(PYTEST_ARGS)

check: $(DEV_STAMP)
	VENV=$(VENV) scripts/check

# Every figure against `twinhub serve` as deployed, beside same-run ceilings (bench/README.md).
# `make bench BENCH_ARGS=--quick` for a short run; BENCH_ARGS="--output FILE" to keep the table.
bench: $(DEV_STAMP)
	$(BIN)/python -m bench.deployed $(BENCH_ARGS)

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -e .
	touch $@

# The dev extra includes the runtime dependencies, so it satisfies both stamps.
$(DEV_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -e '.[dev]'
	touch $@ $(STAMP)

# The map viewer at / (viewer/, npm): built into hub/http/static/viewer/, which the hub serves.
VIEWER_INDEX := hub/http/static/viewer/index.html

viewer:
	@command -v npm >/dev/null 2>&1 || { echo "make viewer: npm is not installed; install Node.js 18+ with npm (e.g. apt-get install nodejs npm)" >&2; exit 1; }
	@$(MAKE) --no-print-directory $(VIEWER_INDEX)

viewer-if-npm:
	@if command -v npm >/dev/null 2>&1; then $(MAKE) --no-print-directory $(VIEWER_INDEX) \
		|| echo "the map viewer did not build (see above); / says how to build it, the API works without it"; \
	else echo "npm not found: the map viewer at / is not built (install Node.js 18+ with npm, then make viewer); the API works without it"; fi

$(VIEWER_INDEX): viewer/package.json viewer/package-lock.json viewer/build.mjs $(wildcard viewer/src/*)
	cd viewer && npm ci --no-audit --no-fund && npm run build
