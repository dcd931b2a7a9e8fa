# remdiag: `make up` runs the collector and a local agent; `make test` runs lint, types and tests.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
LINTED := agent collector tests benchmarks protos/generate.py protos/remdiag/*.py

.PHONY: up test lint typecheck pytest proto clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

# Reinstall whenever pyproject.toml changes.
$(STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install --quiet -e ".[test]"
	touch $(STAMP)

up: $(STAMP)
	$(VENV)/bin/remdiag up

lint: $(STAMP)
	$(VENV)/bin/ruff check $(LINTED)
	$(VENV)/bin/ruff format --check $(LINTED)

typecheck: $(STAMP)
	$(VENV)/bin/mypy

pytest: $(STAMP)
	$(PY) -m pytest

test: lint typecheck pytest

proto: $(STAMP)
	$(PY) protos/generate.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
