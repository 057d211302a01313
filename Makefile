# The two commands of the README: `make spike` runs the main job on the
# embedded stack and `make test` runs every check. Both set up what they need.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# The fans' pages: npm installs the AWS SDK and esbuild from the lock file,
# and the build bundles them into system/web/dist (not committed).
WEB := system/web
WEB_BUILT := $(WEB)/dist/.built

.PHONY: install web spike test lint typecheck unit clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $(STAMP)

$(WEB)/node_modules/.package-lock.json: $(WEB)/package.json $(WEB)/package-lock.json
	npm --prefix $(WEB) ci --no-audit --no-fund

$(WEB_BUILT): $(WEB)/node_modules/.package-lock.json $(WEB)/build.mjs $(wildcard $(WEB)/src/*.js $(WEB)/static/*)
	npm --prefix $(WEB) run build
	touch $@

web: $(WEB_BUILT)

install: $(STAMP) web

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
	rm -rf $(VENV) build *.egg-info $(WEB)/node_modules $(WEB)/dist
