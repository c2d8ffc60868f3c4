# Một Cửa — the two commands are `make run` and `make test`.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# openapi-python-client caps httpx below the services' pin: it lives in a venv of its own (offline after install).
OPENAPI_PYTHON_CLIENT := openapi-python-client==0.29.1
CLIENTGEN := $(VENV)/clientgen
CLIENTGEN_STAMP := $(CLIENTGEN)/.installed-$(OPENAPI_PYTHON_CLIENT)

.PHONY: install clientgen run test test-smoke fuzz chaos lint migrate seed bench simulate-postal seed-stats browser-deps db-stop clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Python 3.11+ is needed"'
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	@$(PY) -m scripts.devdb url >/dev/null 2>&1 || $(PY) -m pip install --quiet pgserver
	@touch $(STAMP)

$(CLIENTGEN_STAMP): $(STAMP)
	@test -x $(CLIENTGEN)/bin/python || $(PYTHON) -m venv $(CLIENTGEN)
	$(CLIENTGEN)/bin/python -m pip install --quiet '$(OPENAPI_PYTHON_CLIENT)'
	@touch $(CLIENTGEN_STAMP)

install: $(STAMP)

## The client generator the tests run on the merged OpenAPI (a venv of its own).
clientgen: $(CLIENTGEN_STAMP)

## Start everything: embedded PostgreSQL (unless DATABASE_URL), migrate, demo data, all processes.
run: install
	$(PY) -m scripts.run

## The whole test suite, on an embedded PostgreSQL (unless DATABASE_URL is set).
test: install clientgen browser-deps
	$(PY) -m pytest -q $(PYTEST_ARGS)

## Quick subset (also run by CI against the machine's own PostgreSQL when there is one).
test-smoke: install
	$(PY) -m pytest -q -m smoke $(PYTEST_ARGS)

## Schemathesis against the whole stack (own database), as an officer and an admin: 0 server errors,
## 0 undeclared answers. FUZZ_ARGS: e.g. --max-examples 30, or any `st run` option.
fuzz: install
	$(PY) -m scripts.fuzz $(FUZZ_ARGS)

## Faults under load (own PostgreSQL .data/pg-chaos, deleted after): SIGKILLs, PostgreSQL restarts, lock,
## stalled commit, slow SMS provider, lost answers. CHAOS_ARGS: --short, --only kill-intake,pg-fast, --json f.json
chaos: install
	$(PY) -m scripts.chaos $(CHAOS_ARGS)

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy shared gateway services scripts

migrate: install
	$(PY) -m scripts.migrate

seed: install
	$(PY) -m scripts.seed

## Throughput and latency, measured in one run against a fresh database.
bench: install
	@command -v wrk >/dev/null || { [ "$$(id -u)" = 0 ] && apt-get install -y -qq wrk >/dev/null; } || true
	$(PY) -m scripts.bench $(BENCH_ARGS)
	$(PY) -m scripts.bench_postal $(BENCH_POSTAL_ARGS)
	$(PY) -m scripts.bench_queue $(BENCH_QUEUE_ARGS)

## Play the postal partner against a running stack (make run): signed events, duplicates, disorder.
simulate-postal: install
	$(PY) -m services.postal_tracking.simulator --gateway $${GATEWAY:-http://127.0.0.1:8000} $(SIM_ARGS)

## A million finished dossiers with their history, for statistics at national scale.
seed-stats: install
	$(PY) -m scripts.seed_stats $(SEED_ARGS)

## Headless Chromium for the browser tests (Debian's package; installed where missing).
browser-deps:
	@bash scripts/ensure_chromium.sh

db-stop:
	-$(PY) -m scripts.devdb stop --name pg
	-$(PY) -m scripts.devdb stop --name pg-test
	-$(PY) -m scripts.devdb stop --name pg-bench
	-$(PY) -m scripts.devdb stop --name pg-fuzz
	-$(PY) -m scripts.devdb stop --name pg-chaos

clean: db-stop
	rm -rf .data
