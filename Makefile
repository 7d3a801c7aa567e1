# povguard — everything starts from here on a machine with only Python 3.11+.
PYTHON ?= python3
UV := $(or $(shell command -v uv 2>/dev/null),$(CURDIR)/.uv/bin/uv)
VENV := .venv
BIN := $(VENV)/bin

.PHONY: install test lint typecheck unit fuzz demo up bench clean

$(CURDIR)/.uv/bin/uv:
	$(PYTHON) -m venv .uv
	.uv/bin/pip install --quiet uv

$(VENV)/.installed: pyproject.toml uv.lock libs/*/pyproject.toml services/*/pyproject.toml | $(UV)
	$(UV) sync --frozen --python $(PYTHON)
	touch $@

# Bytecode compiled once: every process would otherwise compile its imports from source each time it starts
# (PYTHONDONTWRITEBYTECODE keeps them from caching it), more than half of a service's start-up CPU. The libraries
# (uv compiles all of site-packages), then the workspace's own modules (editable, outside site-packages), again
# only those changed since.
$(VENV)/.site-bytecode: $(VENV)/.installed
	$(UV) sync --frozen --compile-bytecode --python $(PYTHON)
	touch $@

SOURCES := $(shell find libs services tools/src -name '*.py' -not -path '*/tests/*' 2>/dev/null)
$(VENV)/.bytecode: $(VENV)/.site-bytecode $(SOURCES)
	$(BIN)/python -m compileall -q -j0 libs/*/src services/*/src tools/src
	touch $@

install: $(VENV)/.installed $(VENV)/.bytecode  ## create .venv with the whole workspace

lint: install  ## ruff, and the layering (import-linter: contracts < platform < rules < services < tools)
	$(BIN)/ruff check .
	$(BIN)/lint-imports

typecheck: install
	$(BIN)/mypy libs/*/src services/*/src tools/src

unit: install
	$(BIN)/pytest -q

test: lint typecheck unit  ## what CI runs: ruff, mypy, then every test against real NATS and PostgreSQL

fuzz: install  ## the OpenAPI property-based run with 100 examples per operation (make test runs 6)
	POVGUARD_FUZZ_EXAMPLES=100 $(BIN)/pytest -q tests/test_openapi_fuzz.py --timeout 3600

demo: install  ## run the system on a synthetic county, end to end
	$(BIN)/povguard demo

up: install  ## run the system for real work; data kept under ./var between runs
	$(BIN)/povguard up --data-dir var

bench: install  ## benchmarks: figures printed and written to var/bench/
	$(BIN)/povguard bench eventstore

clean:
	rm -rf .venv .uv .mypy_cache .ruff_cache .pytest_cache
