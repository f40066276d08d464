# Phalanx: `make run` starts everything on this machine, `make test` runs every check.
# Needs only Python 3.11+; everything else is installed into .venv from PyPI with the exact
# pins in constraints.txt.

SHELL := /bin/bash
VENV := .venv
BIN := $(VENV)/bin
PY := $(BIN)/python
PYTHON ?= $(shell for p in python3.13 python3.12 python3.11 python3; do \
	command -v $$p >/dev/null 2>&1 && $$p -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null && { echo $$p; break; }; done)
MEMBERS := libs/common libs/tradovate libs/testing services/ingest services/auth \
	services/executor services/ledger services/console sim bench
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=
# Two pytest workers (pytest-xdist), one test file per worker at a time: most tests wait on real
# servers and timers, so two of them share two cores well. PYTEST_WORKERS=0 runs in one process.
PYTEST_WORKERS ?= 2

.PHONY: install run test lint typecheck pytest bench clean help

help:
	@echo "make run   - install and start NATS, Redis, the simulator and every service with 25 demo accounts"
	@echo "make test  - install and run ruff, mypy --strict and the whole pytest suite (real servers)"
	@echo "make bench - calibrate a floor, run the benchmark presets (BENCH_ARGS=--preset ...), write JSON and a PNG chart"

CHECKOV_VENV := $(VENV)/tools/checkov
CHECKOV_PIN := $(shell grep -m1 '^checkov==' deploy/k8s/checkov-constraints.txt)

$(STAMP): constraints.txt requirements-dev.txt deploy/k8s/checkov-constraints.txt \
		$(foreach m,$(MEMBERS),$(m)/pyproject.toml)
	@test -n "$(PYTHON)" || { echo "Phalanx needs Python 3.11 or newer on the PATH"; exit 1; }
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints.txt -r requirements-dev.txt \
		$(foreach m,$(filter-out bench,$(MEMBERS)),-e $(m)) -e 'bench[system]'
	@# checkov (Kubernetes policy checks) in its own venv: its pins clash with the project's.
	@test -x $(CHECKOV_VENV)/bin/python || $(PY) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/python -m pip install --quiet -c deploy/k8s/checkov-constraints.txt \
		$(CHECKOV_PIN)
	@touch $(STAMP)

install: $(STAMP)

# A demo: state lives in .run/ and starts fresh each time.
run: install
	@rm -rf .run && mkdir -p .run
	$(BIN)/honcho -f deploy/local/Procfile -e deploy/local/dev.env -d . start

lint: install
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .

typecheck: install
	$(BIN)/mypy libs services sim bench tests

# pytest exits 5 when it collects nothing: for this suite that is a broken collection, so fail.
pytest: install
	@bash .ci/install-browser.sh
	@$(BIN)/pytest -n $(PYTEST_WORKERS) --dist loadfile $(PYTEST_ARGS); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests: failing" >&2; exit 1; fi; exit $$rc

test: lint typecheck pytest

bench: install
	$(BIN)/phalanx-bench $(BENCH_ARGS)
	$(BIN)/python -m phalanx_bench.ledger_rebuild $(LEDGER_BENCH_ARGS)

clean:
	rm -rf .run .mypy_cache .ruff_cache .pytest_cache
