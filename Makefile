# Northstar: the few obvious verbs. `make demo` and `make test` work from a fresh clone.
SHELL := /bin/bash
.DEFAULT_GOAL := help

UV := $(shell command -v uv 2>/dev/null || echo "python3 -m uv")
PY := .venv/bin/python
SCALE ?= demo
SEED ?= 7
# how the demo makes its runs: scheduler (as production: REST API, task logs in the UI) or dags-test
RUNNER ?= scheduler
PYTEST_ARGS ?=
# two pytest-xdist workers (the suite's shared fixtures stay on one worker each: tests/conftest.py)
TEST_WORKERS ?= 2

export UV_PYTHON ?= 3.11
export DBT_SEND_ANONYMOUS_USAGE_STATS := False
export AIRFLOW__COSMOS__ENABLE_TELEMETRY := False
export SCARF_ANALYTICS := false
export DO_NOT_TRACK := 1

.PHONY: help install uv system-deps java demo test test-stack lint format bench ui clean distclean

help:  ## list the verbs
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

uv:  ## install uv itself if it is missing (from PyPI)
	@command -v uv >/dev/null 2>&1 || python3 -m uv --version >/dev/null 2>&1 || python3 -m pip install --quiet --user uv

# The spark extra (dbt-spark, pyspark): added when NORTHSTAR_ENGINE=spark, and always by `make test`
# and `make bench` (the Spark equality test and bench_engines build on Spark); else left out.
SPARK_EXTRA ?= $(filter spark,$(NORTHSTAR_ENGINE))
test bench: SPARK_EXTRA := spark
install: uv  ## create .venv from uv.lock (exact pins), with the deploy extra the stack test runs
	$(UV) sync --frozen --extra deploy $(if $(SPARK_EXTRA),--extra spark)

system-deps:  ## Debian packages the tests use: Chromium, docker-compose, PostgreSQL + Redis for the local stack, a Java runtime for Spark
	@missing=""; \
	command -v chromium >/dev/null 2>&1 || missing="$$missing chromium"; \
	{ command -v java >/dev/null 2>&1 && java -version >/dev/null 2>&1; } || missing="$$missing openjdk-17-jre-headless"; \
	command -v docker-compose >/dev/null 2>&1 || missing="$$missing docker-compose"; \
	ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing="$$missing postgresql"; \
	command -v redis-server >/dev/null 2>&1 || missing="$$missing redis-server"; \
	if [ -n "$$missing" ]; then \
		if command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
			echo "installing Debian packages:$$missing"; \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
		else \
			echo "error: missing Debian packages:$$missing (run as root or install them: apt-get install$$missing)" >&2; exit 1; \
		fi; \
	fi

demo: install  ## seed the demo world, start the sandbox, run both DAGs, print a summary
	$(PY) -m northstar demo --scale $(SCALE) --seed $(SEED) --runner $(RUNNER)

test: install system-deps  ## the whole test suite (unit, integration, end-to-end, browser, stack, Spark = DuckDB), on $(TEST_WORKERS) workers
	$(PY) -m pytest -n $(TEST_WORKERS) --dist loadgroup --no-loadscope-reorder --durations=25 $(PYTEST_ARGS)

test-stack: install system-deps  ## the deployment suite: the compose topology as local processes, both DAGs via the REST API
	$(PY) -m pytest tests/stack $(PYTEST_ARGS)

lint: install  ## ruff for Python, sqlfluff (dbt templater) for SQL
	.venv/bin/ruff check .
	.venv/bin/ruff check --select AIR dags/
	@# sqlfluff's dbt templater is only honoured from the project folder; it compiles against an
	@# in-memory DuckDB so linting needs no warehouse (and a throwaway salt: nothing is hashed).
	cd dbt_project && NORTHSTAR_WAREHOUSE=:memory: NORTHSTAR_PII_SALT=lint-only ../.venv/bin/sqlfluff lint .

format: install  ## apply ruff's formatter and sqlfluff's fixes
	.venv/bin/ruff check --fix .
	cd dbt_project && NORTHSTAR_WAREHOUSE=:memory: NORTHSTAR_PII_SALT=lint-only ../.venv/bin/sqlfluff fix .

java:  ## a Java runtime for the Spark engine (Debian's openjdk-17-jre-headless when java is missing)
	@{ command -v java >/dev/null 2>&1 && java -version >/dev/null 2>&1; } || { \
		if command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
			echo "installing Debian packages: openjdk-17-jre-headless"; \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openjdk-17-jre-headless >/dev/null; \
		else \
			echo "error: no Java runtime (run as root or: apt-get install openjdk-17-jre-headless)" >&2; exit 1; \
		fi; \
	}

bench: install java  ## performance figures (large world; takes a while; bench_engines builds on Spark too, so Java)
	$(PY) -m bench

ui: install  ## Airflow :8080 (login printed), MLflow :5000, dbt docs :8081, Data Docs :8082, KPI dashboard :8083 on 127.0.0.1 (Ctrl-C stops all)
	$(PY) -m northstar ui

clean:  ## remove generated data (var/) and caches
	rm -rf var dbt_project/target dbt_project/logs .pytest_cache .ruff_cache
	find . -name __pycache__ -type d -prune -not -path './.venv/*' -exec rm -rf {} +

distclean: clean  ## also remove the virtual environment
	rm -rf .venv
