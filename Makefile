# ionscope: the two set-up commands (see README.md).
#   make demo   create .venv, install, run the demo, print where the report is
#   make test   create .venv if needed, install with test extras (and Chromium for the browser tests,
#               from Debian, when missing), ruff, then pytest on both cores
#   make test-min   the suite in .venv-min at the minimum dependency versions pyproject declares
#   make docs   install with the docs extras, build the site (docs/_build/html) with every gallery example
#               run; any warning or failing example fails the build
PYTHON ?= $(shell command -v python3.11 2>/dev/null || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
PIP    := $(BIN)/python -m pip --disable-pip-version-check
DEMO_OUT ?= demo-output
# pytest-xdist workers (the machines have 2 cores); loadfile keeps a module's tests, and so its
# module-scoped fixtures (simulated twins, demo runs), on one worker
TEST_JOBS ?= 2
PYTEST := -m pytest -q -n $(TEST_JOBS) --dist loadfile
MIN_VENV := .venv-min
# pip byte-compiles every module it installs (sympy, hyperspy, scipy, ...: ~3/4 of the install
# time); Python compiles the few that are imported on first import instead, and keeps them
# (PYTHONDONTWRITEBYTECODE is cleared for the test run, else every worker recompiles them)
NO_COMPILE := --no-compile

# the browser tests (tests/browser.py) drive Debian's headless Chromium through selenium; installed
# here when missing (CI runs as root; a developer's machine through sudo)
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

# Sphinx's parallel jobs (the gallery runs two examples at a time: docs/conf.py)
DOCS_JOBS ?= 2

.PHONY: demo test test-min docs bench-deps browser clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q -c constraints.txt pip setuptools wheel

$(VENV)/.installed-base: $(BIN)/python pyproject.toml constraints.txt
	$(PIP) install -q $(NO_COMPILE) -c constraints.txt -e .
	touch $@

$(VENV)/.installed-test: $(BIN)/python pyproject.toml constraints.txt
	$(PIP) install -q $(NO_COMPILE) -c constraints.txt -e ".[test]"
	touch $(VENV)/.installed-base $@

$(VENV)/.installed-docs: $(BIN)/python pyproject.toml constraints.txt
	$(PIP) install -q $(NO_COMPILE) -c constraints.txt -e ".[test,docs]"
	touch $(VENV)/.installed-base $(VENV)/.installed-test $@

demo: $(VENV)/.installed-base
	$(BIN)/ionscope demo --out $(DEMO_OUT) --overwrite

browser:
	@if [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/chromedriver ]; then \
		$(SUDO) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq chromium chromium-driver; \
	fi

test: $(VENV)/.installed-test browser
	$(BIN)/ruff check src tests docs
	PYTHONDONTWRITEBYTECODE= $(BIN)/python $(PYTEST)

# the real measured files of the gallery come from the tests' cache (tests/.real-data, filled with
# pip download as the tests fill it: docs/examples/_real_files.py); nothing else is fetched
docs: $(VENV)/.installed-docs
	PYTHONDONTWRITEBYTECODE= $(BIN)/python -m sphinx -W --keep-going -q -j $(DOCS_JOBS) -b html docs docs/_build/html
	@echo "docs: docs/_build/html/index.html"

# the declared floors (>=) of pyproject as == pins (tools/min_constraints.py), in a separate venv
test-min:
	rm -rf $(MIN_VENV)
	$(PYTHON) -m venv $(MIN_VENV)
	$(MIN_VENV)/bin/python -m pip --disable-pip-version-check install -q -c constraints.txt pip setuptools wheel
	$(MIN_VENV)/bin/python tools/min_constraints.py test > $(MIN_VENV)/min-constraints.txt
	$(MIN_VENV)/bin/python -m pip --disable-pip-version-check install -q $(NO_COMPILE) -c $(MIN_VENV)/min-constraints.txt -e ".[test]"
	$(MAKE) browser
	PYTHONDONTWRITEBYTECODE= $(MIN_VENV)/bin/python $(PYTEST)

# peers the benchmarks compare against (HyperSpy, exSpy, scikit-learn); not needed to use ionscope
bench-deps: $(VENV)/.installed-base
	$(PIP) install -q -c constraints.txt -e ".[test,bench]"

clean:
	rm -rf $(VENV) $(MIN_VENV) $(DEMO_OUT) build src/*.egg-info .pytest_cache docs/_build docs/api docs/auto_examples \
		docs/sg_execution_times.rst
