# ai-usage — two commands on a fresh machine: `make run` and `make test`.
# Everything is installed into .venv from the committed lock (requirements.txt) with uv; state lives in .ai_usage/.

SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
UV := $(BIN)/uv
STAMP := $(VENV)/.installed
STATE := .ai_usage
UV_VERSION := 0.13.9

# Local Airflow: metadata DB, logs and config under .ai_usage/airflow; DAGs and plugins from this repository.
export AI_USAGE_HOME := $(CURDIR)
export AIRFLOW_HOME := $(CURDIR)/$(STATE)/airflow
export AIRFLOW__CORE__DAGS_FOLDER := $(CURDIR)/dags
export AIRFLOW__CORE__PLUGINS_FOLDER := $(CURDIR)/plugins
export AIRFLOW__CORE__LOAD_EXAMPLES := False
export AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION := False
export GX_ANALYTICS_ENABLED := False
export PYTHONPATH := $(CURDIR)

PYTEST_ARGS ?=

.PHONY: help setup chromium run test bench airflow lint lock clean compose-check

help:
	@echo "make run      set up, start the vendor simulators and run the pipeline end to end on DuckDB"
	@echo "make test     set up and run the whole test suite"
	@echo "make bench    performance benchmarks (prints figures)"
	@echo "make airflow  local Airflow UI (airflow standalone) on http://127.0.0.1:8080"
	@echo "make lint     ruff and mypy"
	@echo "make lock     re-resolve requirements.in into requirements.txt"

$(UV):
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -m pip --version >/dev/null 2>&1 || $(BIN)/python -m ensurepip --upgrade >/dev/null
	$(BIN)/python -m pip install --quiet --disable-pip-version-check "uv==$(UV_VERSION)"

# --compile-bytecode: write every package's .pyc at install time, as pip does by default (uv does not). Python
# never writes them itself where PYTHONDONTWRITEBYTECODE is set, and then every process, each Airflow task
# included, compiles Airflow from source: `import airflow` takes twice as long.
$(STAMP): requirements.txt pyproject.toml | $(UV)
	VIRTUAL_ENV=$(CURDIR)/$(VENV) $(UV) pip install --quiet --compile-bytecode -r requirements.txt
	VIRTUAL_ENV=$(CURDIR)/$(VENV) $(UV) pip install --quiet --no-deps -e .
	@touch $@

$(AIRFLOW_HOME)/airflow.db: $(STAMP)
	@mkdir -p $(AIRFLOW_HOME)
	$(BIN)/airflow db migrate > $(STATE)/airflow-db-migrate.log 2>&1 || (tail -40 $(STATE)/airflow-db-migrate.log; exit 1)

# Headless Chromium (Debian's package) renders and checks the local dashboard report in the tests.
CHROMIUM := $(shell command -v chromium 2>/dev/null)

chromium:
ifeq ($(CHROMIUM),)
	@if [ "$$(id -u)" = "0" ]; then \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	else \
	  echo "chromium is missing: run 'sudo apt-get install -y chromium' (needed by the dashboard tests)"; exit 1; \
	fi
endif

setup: $(STAMP) $(AIRFLOW_HOME)/airflow.db
	@$(BIN)/python -m compileall -q plugins dags sandbox tests >/dev/null

run: setup
	$(BIN)/python -m sandbox.local_run

test: setup chromium
	bash .ci/pytest.sh $(PYTEST_ARGS)

bench: setup
	$(BIN)/python -m sandbox.bench

airflow: setup
	$(BIN)/python -m sandbox.local_airflow

lint: setup
	$(BIN)/ruff check plugins dags sandbox tests
	$(BIN)/mypy plugins/ai_usage

lock: | $(UV)
	$(UV) pip compile requirements.in -o requirements.txt --python-version 3.11 --quiet

compose-check:
	docker-compose -f docker-compose.yaml config --quiet

clean:
	rm -rf $(STATE)
