# SPDX-License-Identifier: Apache-2.0
# Everything runs from the project's own .venv; a stamp file per install flavour
# means pip runs again only when pyproject.toml changes.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-run
DEV_STAMP := $(VENV)/.installed-dev
PYTEST_ARGS ?=

.PHONY: demo test check bench

demo: $(STAMP)
	$(BIN)/twinhub demo

test: $(DEV_STAMP)
	$(BIN)/pytest -q $(PYTEST_ARGS)

check: $(DEV_STAMP)
	VENV=$(VENV) scripts/check

bench: $(DEV_STAMP)
	@set -e; for script in bench/bench_*.py; do \
		[ -e "$$script" ] || { echo "no benchmarks in bench/"; break; }; \
		echo "== $$script"; $(BIN)/python "$$script"; \
	done

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -e .
	touch $@

# The dev extra includes the runtime dependencies, so it satisfies both stamps.
$(DEV_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -e '.[dev]'
	touch $@ $(STAMP)
