# The interface to the project. `make dev` runs it locally, `make test` tests it.
SHELL := /bin/bash
# Lambda runs Python 3.13, so the venv (tests, mypy, benchmarks, sam build) is built with it:
# PYTHON=/path/to/python3.13 if given, else the first of python3.13 on PATH, pyenv's 3.13
# (its python3.13 shim fails while another version is pyenv's global one) and
# ~/.pyenv/versions/3.13* that really runs as 3.13. Else python3, with a warning.
is_313 = $(shell $(1) -c 'import sys; sys.exit(sys.version_info[:2] != (3, 13))' >/dev/null 2>&1 && echo $(1))
PYTHON313_CANDIDATES := $(shell command -v python3.13) $(addsuffix /bin/python3.13,$(shell pyenv prefix 3.13 2>/dev/null)) \
	$(wildcard $(or $(PYENV_ROOT),$(HOME)/.pyenv)/versions/3.13*/bin/python3.13)
ifndef PYTHON
PYTHON := $(firstword $(foreach p,$(PYTHON313_CANDIDATES),$(call is_313,$(p))))
ifeq ($(PYTHON),)
PYTHON := python3
$(warning No Python 3.13 found (PATH, pyenv): using python3. Tests, type checks and benchmarks then \
	run on another version than Lambda's python3.13, and sam build fails because it ships 3.13 \
	bytecode. Install Python 3.13 or set PYTHON=/path/to/python3.13)
endif
endif
PYTHON_VERSION := $(shell $(PYTHON) -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null)
VENV := .venv
BIN := $(VENV)/bin
# sam build runs the layer Makefile with this PATH, so it pip-installs with the venv's pip.
export PATH := $(abspath $(BIN)):$(PATH)
export SAM_CLI_TELEMETRY := 0
export AWS_DEFAULT_REGION ?= us-east-1

.PHONY: help venv node-tools lint typecheck validate build test test-fast bench fuzz dev invoke deploy clean \
	connect-link connect-status disconnect

help:
	@echo "make dev      run the whole product on loopback (API :3000, sandbox :4010, AWS/moto :5000)"
	@echo "make test     lint, typecheck, sam validate --lint, sam build, pytest"
	@echo "make invoke   FN=<LogicalId> EVENT=<file>: run one function with one event locally"
	@echo "make bench    benchmarks (prints ratios against named baselines)"
	@echo "make fuzz     generated requests from openapi.yaml against a fresh local stack (FUZZ_EXAMPLES=600)"
	@echo "make build    sam build (python3.13/arm64, no Docker)"
	@echo "make deploy   sam deploy (samconfig.toml; CONFIG_ENV=prod for production)"
	@echo "make connect-link [STACK=<name>]  a one-time link that connects the bundle to Mailchimp (OAuth)"

# The virtualenv is rebuilt whenever the interpreter's version or a pinned requirements file changes.
$(VENV)/.python-$(PYTHON_VERSION):
	@test -n "$(PYTHON_VERSION)" || { echo "no usable Python interpreter ($(PYTHON))" >&2; exit 1; }
	rm -rf $(VENV)
	$(PYTHON) -m venv $(VENV)
	touch $@

$(VENV)/.installed: $(VENV)/.python-$(PYTHON_VERSION) requirements-dev.txt layers/chimpbridge/requirements.txt
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@

venv: $(VENV)/.installed
	@$(BIN)/python -c 'import sys; print("Python %s (%s)" % (sys.version.split()[0], sys.executable))'

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

# The long fuzzing campaign (docs/security.md): FUZZ_EXAMPLES cases per operation, caller and
# generation mode, over 20,000 requests at the default; prints the totals.
FUZZ_EXAMPLES ?= 600
fuzz: venv
	PYTHONPATH=layers/chimpbridge:. $(BIN)/python -m tests.support.api_fuzz --examples $(FUZZ_EXAMPLES)

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

# Connect through OAuth 2 (docs/connect.md): a one-time connect link to open in a browser, the
# status, a disconnect. STACK=<deployed stack name> (API_URL=<custom domain base> if any), else
# the local stack of `make dev`.
CONNECT_TARGET = $(if $(STACK),--stack $(STACK),--local) $(if $(API_URL),--api-url $(API_URL))
connect-link connect-status disconnect: venv
	@PYTHONPATH=layers/chimpbridge:. $(BIN)/python -m tools.mailchimp_connect \
		$(patsubst connect-%,%,$@) $(CONNECT_TARGET)
