# The two commands of the README: `make spike` runs the main job on the
# embedded stack and `make test` runs every check. Both set up what they need.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install spike test lint typecheck unit clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

spike: install
	$(BIN)/boxoffice spike

lint: install
	$(BIN)/ruff check system loadtests synthetic monitors benchmarks tests
	$(BIN)/ruff format --check system loadtests synthetic monitors benchmarks tests
	$(BIN)/cfn-lint system/template.yaml system/deploy/shared.yaml

typecheck: install
	$(BIN)/mypy

unit: install
	$(BIN)/pytest

test: lint typecheck unit

clean:
	rm -rf $(VENV) build *.egg-info
