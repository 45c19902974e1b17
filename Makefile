# regbench front door. `make repro` runs the study, `make test` the tests; both set up .venv first.
.DEFAULT_GOAL := help
SHELL := /bin/bash

# torch 2.14.1 wheels exist for CPython 3.11; PYTHON=... picks another interpreter.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
LOCK := requirements.lock
# The stamp is keyed on the lock's hash: a changed lock rebuilds .venv, an unchanged one installs nothing.
STAMP := $(VENV)/.installed-$(shell cat $(LOCK) | sha256sum | cut -c1-16)
BIN := $(VENV)/bin
PORT ?= 5000
# make tracking-server: the database (postgresql://user[:password]@host[:port]/database), where
# artifacts go, and the address to bind: loopback unless HOST=0.0.0.0 opens it to the cluster.
TRACKING_DB ?= postgresql://$(shell id -un)@127.0.0.1:5432/mlflow
ARTIFACTS ?= $(CURDIR)/mlartifacts-server
HOST ?= 127.0.0.1
PYTEST_ARGS ?=
BENCH_ARGS ?=
REF ?= HEAD

.PHONY: help setup repro test test-fast lint ui tracking-server bench compare lock clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

# Order-only: the lock must exist, but its modification time says nothing (a checkout or a touch
# changes it); its content is in the stamp's name.
$(STAMP): | $(LOCK)
	@echo "setting up $(VENV) from $(LOCK) (first run only; torch is large)"
	rm -rf $(VENV)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -r $(LOCK)
	touch $@

setup: $(STAMP) ## create or refresh .venv from requirements.lock

# Stages run `python -m ...`: the venv goes first on PATH so that python is the venv's.
RUN := PATH="$(CURDIR)/$(BIN):$$PATH"

repro: $(STAMP) ## run the whole study: dvc repro (profile from params.yaml)
	$(RUN) dvc repro

test: $(STAMP) ## run every test (PYTEST_ARGS="-m 'not slow'" skips the end-to-end ones)
	$(RUN) python -m pytest $(PYTEST_ARGS)

lint: $(STAMP) ## ruff (lint, import order, formatting) and mypy over pipelines, benchmarks and tests
	$(BIN)/ruff check pipelines benchmarks tests
	$(BIN)/ruff format --check pipelines benchmarks tests
	$(BIN)/mypy

test-fast: $(STAMP) ## the tests without the slow end-to-end ones
	$(RUN) python -m pytest -m "not slow" $(PYTEST_ARGS)

ui: $(STAMP) ## browse the runs: MLflow UI on 127.0.0.1:5000 (PORT=... to change)
	@uri=$${MLFLOW_TRACKING_URI:-sqlite:///$(CURDIR)/mlflow.db}; \
	case "$$uri" in http*) echo "runs are on the tracking server: open $$uri in a browser"; exit 0;; esac; \
	echo "MLflow UI for $$uri at http://127.0.0.1:$(PORT)  (Ctrl-C to stop); each experiment's runs:"; \
	$(BIN)/python -m pipelines.training.browse "$$uri" "http://127.0.0.1:$(PORT)"; \
	$(BIN)/mlflow ui --backend-store-uri "$$uri" --host 127.0.0.1 --port $(PORT) --workers 1

tracking-server: $(STAMP) ## MLflow server on PostgreSQL for the ray backend (TRACKING_DB=, ARTIFACTS=, HOST=, PORT=)
	@case "$(TRACKING_DB)" in postgresql://*) ;; *) echo "TRACKING_DB=$(TRACKING_DB): expected postgresql://user@host:port/database"; exit 2;; esac
	@echo "MLflow tracking server at http://$(HOST):$(PORT) on $(TRACKING_DB); on every node: export MLFLOW_TRACKING_URI=http://<this host>:$(PORT)"
	MLFLOW_DISABLE_TELEMETRY=true $(BIN)/mlflow server --backend-store-uri "$(TRACKING_DB)" \
	  --artifacts-destination "$(ARTIFACTS)" --host $(HOST) --port $(PORT) --workers 2

bench: $(STAMP) ## speed benchmarks: batched trainer vs the reference loop (BENCH_ARGS=...), MLflow tracking
	$(RUN) python -m benchmarks.trainer $(BENCH_ARGS)
	$(RUN) python -m benchmarks.tracking

compare: $(STAMP) ## ./reports against the committed results (REF=HEAD): each number in seed spreads, every verdict
	$(RUN) python -m pipelines.reporting.compare $(REF)

lock: ## re-resolve requirements.lock from pyproject.toml
	rm -rf .lock-venv && $(PYTHON) -m venv .lock-venv
	.lock-venv/bin/pip install --quiet ".[dev]"
	( echo "# Exact versions for reproducibility; regenerate with 'make lock' after editing pyproject.toml."; \
	  .lock-venv/bin/pip freeze --exclude regbench ) > $(LOCK)
	rm -rf .lock-venv

clean: ## remove .venv and Python caches (DVC outputs stay)
	rm -rf $(VENV) .pytest_cache
	find . -name __pycache__ -prune -exec rm -rf {} +
