# Two commands matter: `make demo` and `make test`. Both create .venv and install what they need.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-dev
BENCH_STAMP := $(VENV)/.installed-bench

.PHONY: demo test lint typecheck unit integration chaos bench bench-scaling clean install browser-test prometheus-test

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

# The bench's peers (huey, dramatiq, saq, taskiq; arq apart) are the `bench` extra: installed only for `make bench`.
$(BENCH_STAMP): $(STAMP) pyproject.toml
	$(BIN)/python -m pip install --quiet -e '.[dev,bench]'
	# arq 0.28 declares redis<6 but runs on redis 8: installed without its pins, not in the extra.
	$(BIN)/python -m pip install --quiet --no-deps 'arq==0.28.*'
	touch $(BENCH_STAMP)

## The main flow: a worker, ingest_doc for every shipped document, a table of results.
demo: $(STAMP)
	$(BIN)/python -m app.demo

## Lint, type-check and run every test (starts a private Redis if none is reachable).
test: lint typecheck
	$(BIN)/python -m pytest -n 2

lint: $(STAMP)
	$(BIN)/ruff check app tests chaos bench examples
	$(BIN)/ruff format --check app tests chaos bench examples

typecheck: $(STAMP)
	$(BIN)/mypy

unit: $(STAMP)
	$(BIN)/python -m pytest tests/unit

integration: $(STAMP)
	$(BIN)/python -m pytest tests/integration tests/e2e

## The chaos suite (issue 4): private redis-servers, killed workers, cut connections; fails on any loss.
chaos: $(STAMP)
	$(BIN)/python -m chaos

## The dashboard in headless Chromium: installs Debian's chromium first if it is missing (as root).
## `make test` runs the same test, which skips with a message where the browser is missing.
browser-test: $(STAMP)
	@test -x /usr/bin/chromium || { apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium; }
	$(BIN)/python -m pytest tests/e2e/test_dashboard.py -rs

## A real Prometheus scraping two workers: installs Debian's prometheus first if it is missing (as root).
## `make test` runs the same test, which skips with a message where Prometheus is missing.
prometheus-test: $(STAMP)
	@test -x /usr/bin/prometheus || { apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus; }
	$(BIN)/python -m pytest tests/e2e/test_prometheus.py -rs

## Issue 7: taskq vs rq, huey, dramatiq and raw Redis on a private redis-server; prints one table,
## writes bench/results/latest.json. Under 10 minutes; BENCH_QUICK=1 for a ~30 s smoke run.
bench: $(BENCH_STAMP)
	$(BIN)/python -m bench

## Issue 17: the scaling curve, 1 to 8 worker processes on one Redis, with Redis's CPU per job
## (~3-4 minutes; apart from `make bench`, which it would push past ten). BENCH_QUICK=1 for a smoke run.
bench-scaling: $(BENCH_STAMP)
	$(BIN)/python -m bench.scaling

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache data/ingested
