# byok: `make serve` runs the gateway, `make test` runs every test, `make lint` checks style, types and
# import layers. Each sets itself up.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: serve demo token test lint bench migrate clean

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip

$(VENV)/.runtime: requirements.txt | $(VENV)/bin/python
	$(PY) -m pip install -q -r requirements.txt
	touch $@

$(VENV)/.dev: requirements.txt requirements-dev.txt | $(VENV)/bin/python
	$(PY) -m pip install -q -r requirements-dev.txt
	touch $(VENV)/.runtime $@

# Development secrets: generated once into .local-secrets.env (git-ignored) when not in the environment.
migrate: $(VENV)/.runtime
	BYOK_LOCAL_SECRETS=1 $(PY) manage.py migrate --noinput
	BYOK_LOCAL_SECRETS=1 $(PY) manage.py ensure_admin
	BYOK_LOCAL_SECRETS=1 $(PY) manage.py collectstatic --noinput -v 0

serve: migrate
	BYOK_LOCAL_SECRETS=1 HOST=$(HOST) PORT=$(PORT) exec $(PY) -m byok_project.serve

# Four providers (openai, anthropic, deepseek, gemini) played by the fake provider: chat without a real key.
demo: $(VENV)/.runtime
	HOST=$(HOST) PORT=$(PORT) exec $(PY) -m devtools.demo

# A new API token for an existing user, printed once (stored hashed): TOKEN=$$(make -s token USER=admin);
# a user who has one already needs RESET=1 (the old token then stops working).
token: $(VENV)/.runtime
	@out=$$(BYOK_LOCAL_SECRETS=1 $(PY) manage.py drf_create_token $(if $(RESET),-r) "$(USER)") && echo "$${out}" | awk '{print $$3}'

test: $(VENV)/.dev
	$(PY) -m pytest --cov=byok --cov-branch --cov-report=term-missing:skip-covered --cov-fail-under=90 $(PYTEST_ARGS)

# ruff (lint + format), mypy (django-stubs, drf-stubs) and the import-linter contracts, all configured in pyproject.toml.
lint: $(VENV)/.dev
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	BYOK_LOCAL_SECRETS=1 $(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

bench: $(VENV)/.dev
	BYOK_LOCAL_SECRETS=1 $(PY) -m devtools.bench

clean:
	rm -rf $(VENV) staticfiles .coverage
