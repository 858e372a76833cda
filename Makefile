# Dropfit: `make demo` runs the whole pipeline on this machine; `make test` runs every check.
SHELL := /bin/bash
.DEFAULT_GOAL := help

# The Lambda runtime is python3.13: develop and test on the same interpreter. uv cannot
# download interpreters here, so point it at the machine's (pyenv's) 3.13 when there is one.
PYTHON313 ?= $(shell for p in "$$(command -v python3.13 2>/dev/null)" $$(ls -d $$HOME/.pyenv/versions/3.13*/bin/python3.13 /usr/local/bin/python3.13 2>/dev/null | sort -V); do \
  [ -n "$$p" ] && [ -x "$$p" ] && "$$p" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 13))' 2>/dev/null && { echo "$$p"; break; }; done)
UV ?= $(shell command -v uv 2>/dev/null || echo "python3 -m uv")
RUN := $(UV) run --frozen --no-sync
# sam build runs pip with the python3.13 first on PATH: the venv's has no pip, so pick one that does.
PIP313 ?= $(shell for p in "$$(command -v python3.13 2>/dev/null)" $$(ls -d $$HOME/.pyenv/versions/3.13*/bin/python3.13 /usr/local/bin/python3.13 2>/dev/null | sort -V); do \
  [ -n "$$p" ] && [ -x "$$p" ] && "$$p" -c 'import sys, pip; sys.exit(sys.version_info[:2] != (3, 13))' 2>/dev/null && { echo "$$p"; break; }; done)
PY313_DIR := $(dir $(PIP313))
REGION ?= us-east-1

.PHONY: help install demo up test test-fast load load-quick lint format validate build build-local deploy clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

.venv/.installed: pyproject.toml uv.lock
	@command -v uv >/dev/null 2>&1 || python3 -m uv --version >/dev/null 2>&1 || python3 -m pip install --quiet --disable-pip-version-check uv
	$(UV) sync --frozen $(if $(PYTHON313),--python $(PYTHON313))
	@touch $@

install: .venv/.installed ## create .venv (Python 3.13): the dropfit command, every runtime and dev dependency (uv.lock)

demo: install ## run the tutorial end to end on this machine: upload iris, train, deploy, predict, print the table
	$(RUN) dropfit demo

up: install ## start the local stack in the foreground (Ctrl-C stops it); see .local/outputs.json
	$(RUN) dropfit up

test: install lint ## every check: lint, types, unit, handler, template, local and end-to-end tests
	$(RUN) pytest -q

test-fast: install ## unit and handler tests only
	$(RUN) pytest -q tests/unit tests/handlers

load: install ## 60 s of predictions against a fresh local stack: requests, p50/p99, errors, memory
	$(RUN) python -m tests.load --seconds 60

load-quick: install ## the load test for 10 s (make test also runs it briefly, on the e2e stack)
	$(RUN) python -m tests.load --seconds 10 --warmup 2 --window 3

bench: install ## every benchmark at full size (~5 min): table + bench/results.json
	$(RUN) python -m bench.run

bench-quick: install ## the benchmarks at small sizes, as CI runs them so that they cannot rot
	$(RUN) python -m bench.run --quick

lint: install ## ruff (lint + format check) and mypy
	$(RUN) ruff check .
	$(RUN) ruff format --check .
	$(RUN) mypy layers/shared dropfit_local dropfit_cli scripts bench
	@for f in functions/*/; do $(RUN) mypy "$$f/app.py" || exit 1; done

format: install ## apply ruff's fixes and formatting
	$(RUN) ruff check --fix .
	$(RUN) ruff format .

validate: install ## sam validate --lint (offline)
	AWS_DEFAULT_REGION=$(REGION) $(RUN) sam validate --lint

build: install ## sam build for AWS (arm64, no container; needs python3.13 on PATH)
	$(if $(PY313_DIR),PATH="$(PY313_DIR):$$PATH") $(RUN) sam build

build-local: install ## sam build for this machine's architecture, what sam local invoke/start-api run
	$(RUN) python -m dropfit_local.sam_local
	$(if $(PY313_DIR),PATH="$(PY313_DIR):$$PATH") $(RUN) sam build --template-file .aws-sam/local/template.yaml \
	  --build-dir .aws-sam/build-local --cache-dir .aws-sam/cache-local

deploy: build ## sam deploy --guided (needs AWS credentials)
	$(RUN) sam deploy --guided

clean: ## remove build output and local state
	rm -rf .aws-sam .local .pytest_cache .mypy_cache .ruff_cache
