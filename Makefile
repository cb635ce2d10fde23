# Everything installs itself on first use: `make run` and `make test` work on a fresh machine.
PYTHON ?= python3
VENV ?= .venv
# Ralph (the LRS the tests run) lives in a virtualenv of its own, beside the project's.
RALPH_PYTHON ?= python3
RALPH_VENV ?= .venv-ralph
BIN := $(VENV)/bin
PIP := -m pip install -qq --disable-pip-version-check

.PHONY: run test lint bench clean system-deps

$(VENV)/.installed: pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11) and "xapitap needs Python 3.11 or newer; set PYTHON=" or 0)'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python $(PIP) -e '.[test]'
	@touch $@

$(RALPH_VENV)/.installed:
	$(RALPH_PYTHON) -m venv $(RALPH_VENV)
	$(RALPH_VENV)/bin/python $(PIP) 'ralph-malph[cli,lrs]==5.1.0' requests uvicorn
	@touch $@

run: $(VENV)/.installed
	$(BIN)/xapitap run --confdir certs

lint: $(VENV)/.installed
	$(BIN)/ruff check src tests addons bench
	$(BIN)/ruff format --check src tests addons bench
	$(BIN)/mypy

# The browser tests need Debian's chromium (driven by Playwright, which downloads nothing
# with executable_path) and ffmpeg (to make the test clip).
system-deps:
	@missing=""; for tool in chromium ffmpeg; do command -v $$tool >/dev/null || missing="$$missing $$tool"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing$$missing with apt-get"; \
	  sudo=""; [ "$$(id -u)" = 0 ] || sudo=sudo; \
	  $$sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y -qq $$missing; \
	fi

test: lint $(RALPH_VENV)/.installed system-deps
	@$(BIN)/python -c 'import mitmproxy.version, sys; print("python", sys.version.split()[0], "mitmproxy", mitmproxy.version.VERSION)'
	XAPITAP_RALPH_VENV=$(abspath $(RALPH_VENV)) $(BIN)/pytest

bench: $(VENV)/.installed
	$(BIN)/python bench/bench.py

clean:
	rm -rf $(VENV) $(RALPH_VENV) .venv312 .pytest_cache .mypy_cache .ruff_cache
