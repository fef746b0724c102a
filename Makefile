# inquest: every target works on a fresh machine; `make setup` is idempotent.
PYTHON ?= python3.11
VENV ?= .venv
PY := $(VENV)/bin/python
LAB ?= default
PYTEST_ARGS ?=

.DEFAULT_GOAL := help
.PHONY: help setup venv binaries demo test test-unit lint lab-up lab-down lab-status bench bench-scenarios bench-scale bench-load clean-lab

help: ## show this help
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

setup: venv binaries ## install everything: the venv, the apt packages and the Go builds (cached)

venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	@echo "[setup] python venv in $(VENV)"
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@$(PY) -m pip install -q --disable-pip-version-check --upgrade pip
	@$(PY) -m pip install -q --disable-pip-version-check -e '.[dev]'
	@touch $@

binaries: venv ## build the lab's binaries into $$INQUEST_CACHE (default ~/.cache/inquest)
	@$(PY) -m inquest.lab build

demo: setup ## start the lab and the shop application, and show it
	@$(PY) -m inquest.lab demo --name $(LAB)

test: setup ## run unit and lab integration tests (starts a private lab)
	@$(PY) -m pytest $(PYTEST_ARGS)

test-unit: venv ## run only the fast unit tests
	@$(PY) -m pytest tests/unit $(PYTEST_ARGS)

lint: venv ## ruff and mypy --strict
	@$(VENV)/bin/ruff check operator tests
	@$(VENV)/bin/ruff format --check operator tests
	@$(VENV)/bin/mypy
	@$(PY) -m inquest.api.crd --check
	@$(PY) -m inquest.rbac --check

lab-up: setup ## start a lab instance named $(LAB)
	@$(PY) -m inquest.lab up --name $(LAB)

lab-down: venv ## stop the lab instance named $(LAB)
	@$(PY) -m inquest.lab down --name $(LAB)

lab-status: venv ## show the lab instance named $(LAB)
	@$(PY) -m inquest.lab status --name $(LAB)

bench: setup ## every benchmark: lab, operator, scored scenarios, scale run and load run (about 50 min)
	@$(PY) -m inquest.lab bench-lab --output docs/lab.md
	@$(PY) -m inquest.lab bench-operator --output docs/benchmarks.md
	@$(MAKE) --no-print-directory bench-scenarios bench-scale bench-load

bench-scenarios: setup ## the scored scenario benchmark (tests/scenarios) into docs/benchmarks.md
	@$(PY) -m inquest.lab bench --output docs/benchmarks.md --json docs/scenarios.json

bench-scale: setup ## 10,000 pods, 100,000 Events, 50,000 series, 100 investigations into docs/benchmarks.md
	@$(PY) -m inquest.lab bench-scale --output docs/benchmarks.md

bench-load: setup ## 200 Investigations at once while 10,000 pods churn at 100+ updates/s into docs/trust.md (~12 min)
	@$(PY) -m inquest.lab bench-load --output docs/trust.md
