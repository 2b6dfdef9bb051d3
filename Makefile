# ionscope: the two set-up commands (see README.md).
#   make demo   create .venv, install, run the demo, print where the report is
#   make test   create .venv if needed, install with test extras, run pytest
PYTHON ?= $(shell command -v python3.11 2>/dev/null || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
PIP    := $(BIN)/python -m pip --disable-pip-version-check
DEMO_OUT ?= demo-output

.PHONY: demo test bench-deps clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q -c constraints.txt pip setuptools wheel

$(VENV)/.installed-base: $(BIN)/python pyproject.toml constraints.txt
	$(PIP) install -q -c constraints.txt -e .
	touch $@

$(VENV)/.installed-test: $(BIN)/python pyproject.toml constraints.txt
	$(PIP) install -q -c constraints.txt -e ".[test]"
	touch $(VENV)/.installed-base $@

demo: $(VENV)/.installed-base
	$(BIN)/ionscope demo --out $(DEMO_OUT) --overwrite

test: $(VENV)/.installed-test
	$(BIN)/python -m pytest -q

# peers the benchmarks compare against (HyperSpy, exSpy, scikit-learn); not needed to use ionscope
bench-deps: $(VENV)/.installed-base
	$(PIP) install -q -c constraints.txt -e ".[test,bench]"

clean:
	rm -rf $(VENV) $(DEMO_OUT) build src/*.egg-info .pytest_cache
