# Developer commands for Neena. `make help` lists them; `make run` and `make test` set everything up first.

PYTHON ?= python3.11
VENV ?= .venv
# Extra arguments for pytest, e.g. make test PYTEST_ARGS="-x -k flows" or PYTEST_ARGS="-n auto".
PYTEST_ARGS ?=

BIN := $(VENV)/bin
# Django commands in `make lint` run with the test settings, which need no secrets.
DJANGO_TEST_ENV := DJANGO_SETTINGS_MODULE=neena.settings.test

.DEFAULT_GOAL := help
.PHONY: help venv run test test-sqlite test-postgres smoke lint format clean bench bench-planner bench-webhooks bench-slow-clients

help: ## List the targets
	@grep -E '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk -F ':.*## ' '{printf "  %-14s %s\n", $$1, $$2}'

venv: $(VENV)/.installed ## Create the virtualenv and install requirements-dev.txt (again only when they change)

# The stamp is newer than the requirements files once they are installed, so pip runs again only after a change.
$(VENV)/.installed: requirements.txt requirements-dev.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --disable-pip-version-check -r requirements-dev.txt
	$(BIN)/python -m pip check
	touch $@

run: venv ## Migrate, print a demo API key, and run web server, worker, beat and Redis in the foreground
	VENV=$(VENV) bash scripts/run.sh

test: test-sqlite test-postgres ## Run the whole suite on SQLite, then on a throwaway PostgreSQL

# DATABASE_URL is dropped so the SQLite half really runs on SQLite, whatever the shell has exported.
test-sqlite: venv ## Run the suite on SQLite
	env -u DATABASE_URL $(BIN)/pytest $(PYTEST_ARGS)

test-postgres: venv ## Run the suite on a throwaway PostgreSQL server (installed with apt-get if missing)
	bash scripts/with_postgres.sh $(BIN)/pytest $(PYTEST_ARGS)

# Needs no `make venv`: the smoke builds its own virtualenv from requirements.txt alone.
smoke: ## Production smoke: fresh virtualenv, PostgreSQL, Redis, gunicorn, workers, beat; the README over HTTP; a kill drill
	PYTHON=$(PYTHON) bash scripts/smoke.sh

lint: venv ## ruff, ruff format --check, mypy, manage.py check and makemigrations --check
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy .
	mkdir -p var
	$(DJANGO_TEST_ENV) $(BIN)/python manage.py check
	$(DJANGO_TEST_ENV) $(BIN)/python manage.py makemigrations --check --dry-run

bench: venv ## All benchmarks: engine and API on SQLite and PostgreSQL, planner, webhooks, slow clients
	env -u DATABASE_URL $(BIN)/python bench/run_all.py
	bash scripts/with_postgres.sh $(BIN)/python bench/run_all.py
	$(BIN)/python bench/planner.py
	$(BIN)/python bench/webhooks.py
	$(BIN)/python bench/slow_clients.py

bench-planner: venv ## Planner accuracy on the labelled requests, and planning time against catalogue size
	$(BIN)/python bench/planner.py

bench-webhooks: venv ## Inbound webhooks under gunicorn at 200 signed events/s: acknowledgement rate, p50/p99, lost events
	$(BIN)/python bench/webhooks.py

bench-slow-clients: venv ## /healthz answer times while 300 clients dribble their headers, against none
	$(BIN)/python bench/slow_clients.py

# Fix first, then format, as ruff recommends; --exit-zero so unfixable findings are shown without stopping here.
format: venv ## Apply ruff's safe fixes and format the code
	$(BIN)/ruff check --fix --exit-zero .
	$(BIN)/ruff format .

clean: ## Remove var/ (local database, demo key), collected static files and caches
	rm -rf var staticfiles .pytest_cache .mypy_cache .ruff_cache
	find . -path ./$(VENV) -prune -o -name __pycache__ -type d -exec rm -rf {} +
