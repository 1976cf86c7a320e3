# The two commands a newcomer needs: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 8000

.PHONY: run test lint format bench drills services services-stop audit clean

$(BIN)/.installed: requirements/base.txt requirements/dev.txt requirements/constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check \
		-r requirements/dev.txt -c requirements/constraints.txt
	touch $@

venv: $(BIN)/.installed

## Serve the API and admin on http://127.0.0.1:$(PORT) on the embedded default.
run: venv
	PORT=$(PORT) scripts/run.sh

## The whole suite against real PostgreSQL, Redis and Kafka.
test: venv
	scripts/test.sh

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: venv
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

## Benchmarks and fault drills (see docs/benchmarks.md).
bench: venv
	scripts/bench.sh

## Fault and security drills at full size (docs/drills.md); `make test`
## runs them at a small size.
drills: venv
	DRILL_SCALE=full DRILL_COMMAND="make drills" scripts/test.sh -m drill tests/drills

## Long-lived local servers in .services/ (`source .services/env` to use).
services:
	$(PYTHON) scripts/services.py start

services-stop:
	$(PYTHON) scripts/services.py stop

audit: venv
	$(BIN)/pip-audit --strict -r requirements/base.txt
	$(BIN)/bandit -q -c pyproject.toml -r ccweb actions visits segments

clean:
	rm -rf $(VENV) .celery .pytest_cache .ruff_cache
