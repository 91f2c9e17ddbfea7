# axhw: `make demo` sets everything up and runs the main job; `make test` sets up and runs the tests.
# Both are idempotent: a second run re-uses the system tools and the virtual environment.

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.axhw-installed
APT_PACKAGES := iverilog yosys qflow-tech-osu018 opensta gcc
SYSTEM_TOOLS := iverilog vvp yosys sta cc
PYTEST_ARGS ?=

.PHONY: demo test system venv clean-venv help

help:
	@echo "make demo   set up (system tools, .venv) and run the demo on the embedded default model"
	@echo "make test   set up and run the test suite"

system:
	@missing=""; for t in $(SYSTEM_TOOLS); do command -v $$t >/dev/null 2>&1 || missing="$$missing $$t"; done; \
	[ -f /usr/share/qflow/tech/osu018/osu018_stdcells.lib ] || missing="$$missing osu018-liberty"; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = "0" ]; then \
	    echo "installing system tools (missing:$$missing)"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(APT_PACKAGES) >/dev/null || exit 1; \
	  else \
	    echo "missing system tools:$$missing"; \
	    echo "run: sudo apt-get install -y $(APT_PACKAGES)"; exit 1; \
	  fi; \
	fi

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip setuptools wheel

$(STAMP): $(PY) pyproject.toml constraints.txt
	$(PY) -m pip install -q -c constraints.txt -e '.[dev]'
	$(PY) -c "import axhw, axhw.emulator, axhw.search" && touch $(STAMP)

venv: system $(STAMP)

demo: venv
	$(VENV)/bin/axhw doctor
	$(PY) -m axhw.demo

test: venv
	$(PY) -m pytest $(PYTEST_ARGS)

clean-venv:
	rm -rf $(VENV)
