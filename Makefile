# The interface to the project. `make dev` runs it locally, `make test` tests it.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# sam build runs the layer Makefile with this PATH, so it pip-installs with the venv's pip.
export PATH := $(abspath $(BIN)):$(PATH)
export SAM_CLI_TELEMETRY := 0
export AWS_DEFAULT_REGION ?= us-east-1

.PHONY: help venv node-tools lint typecheck validate build test test-fast bench dev invoke deploy clean

help:
	@echo "make dev      run the whole product on loopback (API :3000, sandbox :4010, AWS/moto :5000)"
	@echo "make test     lint, typecheck, sam validate --lint, sam build, pytest"
	@echo "make invoke   FN=<LogicalId> EVENT=<file>: run one function with one event locally"
	@echo "make bench    benchmarks (prints ratios against named baselines)"
	@echo "make build    sam build (python3.13/arm64, no Docker)"
	@echo "make deploy   sam deploy (samconfig.toml; CONFIG_ENV=prod for production)"

# The virtualenv is rebuilt whenever a pinned requirements file changes.
$(VENV)/.installed: requirements-dev.txt layers/chimpbridge/requirements.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@

venv: $(VENV)/.installed

# Prism (npm) validates the requests our code sends against Mailchimp's specs in the tests.
node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

node-tools: node_modules/.installed

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: venv
	$(BIN)/mypy

validate: venv
	$(BIN)/sam validate --lint

build: venv
	$(BIN)/sam build --parallel

test: lint typecheck validate build node-tools
	$(BIN)/pytest -n 2 --dist loadgroup

# Only pytest, for quick iterations.
test-fast: venv
	$(BIN)/pytest -x -q

bench: venv
	PYTHONPATH=layers/chimpbridge $(BIN)/python -m bench $(BENCH)

CONFIG_ENV ?= default
deploy: build
	$(BIN)/sam deploy --config-env $(CONFIG_ENV)

clean:
	rm -rf .aws-sam .pytest_cache .mypy_cache .ruff_cache test-artifacts

# The local stack (docs/local-stack.md): API :3000, Mailchimp sandbox :4010, AWS/moto :5000.
# Ports: CHIMPBRIDGE_API_PORT, SANDBOX_PORT, MOTO_PORT. Ctrl-C stops everything.
dev: venv
	$(VENV)/bin/python -m sandbox.stack dev

# make invoke FN=<LogicalId> EVENT=<file>: uses a running `make dev` stack, else a temporary one.
invoke: venv
	@test -n "$(FN)" && test -n "$(EVENT)" || { echo "usage: make invoke FN=<LogicalId> EVENT=<file>" >&2; exit 2; }
	$(VENV)/bin/python -m sandbox.stack invoke $(FN) $(EVENT)
