# ovdet developer commands. `make test` and `make demo` set up .venv themselves.
VENV ?= .venv
PY := $(VENV)/bin/python
PYTEST_ARGS ?=

.PHONY: setup test demo lint format env clean-venv

setup:
	python3 tools/setup_env.py --venv $(VENV)

test: setup
	$(PY) -m pytest -q $(PYTEST_ARGS)

demo: setup
	$(VENV)/bin/ovdet demo

lint: setup
	$(VENV)/bin/ruff check ovdet tools tests configs datasets
	$(VENV)/bin/ruff format --check ovdet tools tests configs datasets

format: setup
	$(VENV)/bin/ruff format ovdet tools tests configs datasets

env: setup
	$(VENV)/bin/ovdet env

clean-venv:
	rm -rf $(VENV)
