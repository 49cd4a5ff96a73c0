# Contesto: `make run` and `make test` need only Python 3.11 and make.

PYTHON ?= $(shell command -v python3.11 >/dev/null 2>&1 && echo python3.11 || echo python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.stamp-install

.DEFAULT_GOAL := help
.PHONY: help venv ngsildclient-venv run test lint bench clean

help:
	@echo "make run    the whole stack on http://127.0.0.1:1026/ngsi-ld/v1 (embedded store in ./var)"
	@echo "make test   lint, then the test suite"
	@echo "make lint   ruff, mypy --strict, import contracts"
	@echo "make bench  the benchmarks in bench/"
	@echo "make venv   create or refresh $(VENV)"

venv: $(STAMP)

# Re-installed only when pyproject.toml changes; the stamp lives (and dies) with the venv.
# Each step says what it installs; pip prints every package it fetches, as it fetches it.
$(STAMP): pyproject.toml
	@echo "== installing Python dependencies (1/2): creating $(VENV) with $(PYTHON)"
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@echo "== installing Python dependencies (2/2): contesto and its dependencies ('.[dev,embedded]', a few minutes the first time)"
	$(BIN)/python -m pip install --disable-pip-version-check --progress-bar on -e '.[dev,embedded]'
	@touch $@
	@echo "== $(VENV) is ready; 'source $(BIN)/activate' puts the contesto command on your PATH"

# ngsildclient pins httpx<0.24 and rich<13: never a project dependency, only the interpreter
# of tests/integration/ngsildclient_scenario.py, in its own venv.
NGSILDCLIENT_VENV := .venv-ngsildclient
NGSILDCLIENT_STAMP := $(NGSILDCLIENT_VENV)/.stamp-ngsildclient

ngsildclient-venv: $(NGSILDCLIENT_STAMP)

$(NGSILDCLIENT_STAMP):
	@echo "== installing the ngsildclient test venv (1/2): creating $(NGSILDCLIENT_VENV) with $(PYTHON)"
	@test -x $(NGSILDCLIENT_VENV)/bin/python || $(PYTHON) -m venv $(NGSILDCLIENT_VENV)
	@echo "== installing the ngsildclient test venv (2/2): ngsildclient==0.5.2"
	$(NGSILDCLIENT_VENV)/bin/pip install --disable-pip-version-check --progress-bar on ngsildclient==0.5.2
	@touch $@

run: $(STAMP)
	@echo "== the contesto command is $(BIN)/contesto; in another terminal, 'source $(BIN)/activate' makes it a bare contesto"
	$(BIN)/contesto up

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

test: lint ngsildclient-venv
	$(BIN)/pytest

bench: $(STAMP)
	@if [ -f bench/__main__.py ]; then $(BIN)/python -m bench; else echo "no benchmarks yet"; fi

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis
