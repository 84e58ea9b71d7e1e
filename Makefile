# Two commands matter to users: `make run` and `make test` (see README.md).
# Everything else here is a step they depend on.

PYTHON ?= python3
VENV   := .venv
# `make run` uses config.toml when there is one, else the documented example (with its demo peer).
CONFIG ?= $(if $(wildcard config.toml),config.toml,config.example.toml)
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test lint check system venv bench clean

run: venv
	$(BIN)/vssid-gateway --config $(CONFIG) db upgrade
	$(BIN)/vssid-gateway --config $(CONFIG) accounts import demo/accounts.csv
	$(BIN)/vssid-gateway --config $(CONFIG) run

test: system venv lint
	$(BIN)/python -m pytest

lint: venv
	$(BIN)/ruff check .
	$(BIN)/lint-imports
	$(BIN)/mypy

# Everything the suite uses for real: python3-venv, PostgreSQL, espeak-ng, chromium.
# `make run` needs none of it but python3-venv, which the venv step checks by itself.
system:
	PYTHON=$(PYTHON) scripts/ensure-system all

venv: $(STAMP)

# A .venv without pip is what `python3 -m venv` leaves when ensurepip is missing: redo it.
$(STAMP): setup.cfg pyproject.toml
	PYTHON=$(PYTHON) scripts/ensure-system python
	test -x $(BIN)/pip || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

bench: venv
	$(BIN)/python bench/import_accounts.py
	$(BIN)/python bench/reset_rate.py

clean:
	rm -rf $(VENV) var *.egg-info .hypothesis .mypy_cache .ruff_cache
