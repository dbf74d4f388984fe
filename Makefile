# gridmgr: `make demo` and `make test` are the two commands; `make setup` is the one install step.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.gridmgr-installed

.PHONY: setup system venv demo test serve clean-db bench

setup: system venv

system:
	@bash tools/setup-system.sh

# reinstall only when the package metadata changed
venv: $(STAMP)
$(STAMP): setup.cfg pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -m pip install -q --upgrade pip
	@$(BIN)/python -m pip install -q -e '.[test]'
	@touch $(STAMP)

demo: setup
	$(BIN)/gridmgr demo

test: setup
	$(BIN)/python -m pytest -q

serve: setup
	$(BIN)/gridmgr serve

bench: setup
	$(BIN)/python bench/run.py

clean-db:
	-$(BIN)/gridmgr db down
	rm -rf var/pg
