# hyperapi: `make run` serves the API, `make test` runs the tests. Both set up .venv first.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
INI ?= development.ini

.PHONY: run test lint format bench clean chromium

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip "setuptools<82" wheel

# Reinstall when the package metadata changes.
$(VENV)/.installed: setup.cfg pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e ".[testing,postgres,redis]"
	touch $@

run: $(VENV)/.installed
	$(BIN)/hyperapi-initializedb $(INI)
	$(BIN)/pserve $(INI)

# The docs page test renders /api/v1/docs in headless Chromium. On a root Debian machine
# without it, install it (quietly; a no-op once installed); elsewhere that test skips, or
# fails under HYPERAPI_REQUIRE_BACKENDS, and says why.
chromium:
	@command -v chromium >/dev/null 2>&1 || [ "$$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1 || \
		{ echo "installing chromium (apt-get)"; apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; } || \
		echo "chromium could not be installed; the docs page browser test will say so"

test: $(VENV)/.installed chromium
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/pytest --cov --cov-report=term $(PYTEST_ARGS)

lint: $(VENV)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(VENV)/.installed
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

$(VENV)/.bench-installed: setup.cfg pyproject.toml | $(VENV)/.installed
	$(BIN)/pip install --quiet -e ".[bench]"
	touch $@

# BENCH_ARGS=--quick for a short run; wrk itself comes from the OS (apt-get install wrk).
bench: $(VENV)/.bench-installed
	$(BIN)/python bench/run.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache .ruff_cache .coverage htmlcov
