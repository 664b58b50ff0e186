# The two commands of README.md: `make run` and `make test` (plus `make bench`).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
DATA ?= ceg-data
PYTEST_ARGS ?=
INIT_ARGS ?=

.PHONY: run test bench system-deps venv lint clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test]'
	touch $@

venv: $(STAMP)

## make run: install into .venv, create the demo on first run, serve.
run: venv
	@test -f $(DATA)/ceg.toml || $(BIN)/ceg init --demo --data-dir $(DATA) $(INIT_ARGS)
	@$(BIN)/python scripts/show-demo.py $(DATA)
	$(BIN)/ceg serve --data-dir $(DATA)

## make test: system packages (as root), Python packages, lint, the whole suite.
test: venv system-deps
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -q -n 2 --dist loadgroup $(PYTEST_ARGS)

system-deps:
	./scripts/install-system-deps.sh

## make bench: figures and ratios against the reference servers on this machine;
## make bench BENCH="scep acme" runs only those (issuance api est acme scep cmp status).
bench: venv system-deps
	$(BIN)/python -m bench $(BENCH)

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy ca_core protocols gateway tests/support

clean:
	rm -rf $(VENV) .pytest_cache
