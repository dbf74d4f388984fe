# gridmgr: `make demo` and `make test` are the two commands; `make setup` is the one install step.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.gridmgr-installed

NODE_STAMP := node_modules/.package-lock.json

.PHONY: setup system venv node demo lint test test-fast serve clean-db bench

setup: system venv node

system:
	@bash tools/setup-system.sh

# reinstall only when the package metadata changed
venv: $(STAMP)
$(STAMP): setup.cfg setup.py pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -m pip install -q --upgrade pip
	@# the message is setuptools' note on editable installs with package_dir mappings, not a problem
	@PYTHONWARNINGS="ignore:Editable installation" $(BIN)/python -m pip install -q -e '.[test]'
	@touch $(STAMP)

# the map assets (Leaflet and plugins) from the npm registry, served by the app: no CDN at runtime
node: $(NODE_STAMP)
$(NODE_STAMP): $(wildcard package.json package-lock.json)
	@if [ -f package-lock.json ]; then npm ci --no-audit --no-fund --loglevel=error; fi
	@mkdir -p node_modules && touch $(NODE_STAMP)

demo: setup
	$(BIN)/gridmgr demo --no-serve
	@# the job worker beside the server: when the server stops (Ctrl-C, TERM, an error) the worker finishes its job and stops
	$(BIN)/gridmgr worker & worker=$$!; trap 'kill -TERM $$worker 2>/dev/null; wait $$worker' EXIT INT TERM; $(BIN)/gridmgr serve

# the machine keeps the style: ruff (lint and format) and mypy on the core, before the tests
SOURCES := gridmgr layers web tests bench migrations tools
lint: setup
	$(BIN)/ruff check $(SOURCES)
	$(BIN)/ruff format --check $(SOURCES)
	$(BIN)/mypy

test: lint
	$(BIN)/python -m pytest -q

# everything but the headless-browser tests (CI runs them all)
test-fast: setup
	$(BIN)/python -m pytest -q -m "not browser and not slow"

serve: setup
	$(BIN)/gridmgr serve

bench: setup
	$(BIN)/python bench/run.py

clean-db:
	-$(BIN)/gridmgr db down
	rm -rf var/pg
