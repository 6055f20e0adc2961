# The two commands of the README: `make demo` and `make test`. Each sets up everything it needs on a fresh Debian
# machine: .venv/ at the repo root with xlainspect (editable), JAX, TensorFlow (CPU) and the test tools, and Debian's
# graphviz. Re-running is quick: a stamp file remembers the install until setup.cfg or pyproject.toml change.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
VPY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=

.PHONY: help venv install install-gpu system-deps test-deps test demo bench clean distclean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/:.*## /\t/' | expand -t 14

venv: $(VPY)  ## create .venv/ if it is missing (PYTHON=python3.12 picks the interpreter)

$(VPY):
	$(PYTHON) -m venv $(VENV)
	$(VPY) -m pip install --quiet --upgrade pip

$(STAMP): setup.cfg pyproject.toml | $(VPY)
	$(VPY) -m pip install --quiet -e '.[all,test]'
	touch $(STAMP)

install: $(STAMP)  ## create .venv/ and install xlainspect with jax, tensorflow-cpu and test tools

GPU_STAMP := $(VENV)/.installed-gpu

$(GPU_STAMP): $(STAMP)
	@echo "xlainspect: installing jax's CUDA plugin for deviceless GPU compilation (about 4.4 GB of wheels)"
	$(VPY) -m pip install --quiet -e '.[gpu]'
	touch $(GPU_STAMP)

install-gpu: $(GPU_STAMP)  ## also install the [gpu] extra: XLA's GPU compiler, to compile for an H100 without one

# $(call apt_install,PROGRAM,PACKAGE,WHY): install Debian's PACKAGE when PROGRAM is missing (as root, or with sudo),
# or stop with one line that says what to run.
define apt_install
	@if ! command -v $(1) >/dev/null 2>&1; then \
	  sudo=""; if [ "$$(id -u)" != 0 ] && command -v sudo >/dev/null 2>&1; then sudo=sudo; fi; \
	  echo "xlainspect: installing Debian's $(2) ($(3))"; \
	  if ! { $$sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y -qq --no-install-recommends $(2) >/dev/null; }; then \
	    echo "xlainspect: could not install Debian's $(2) ($(3)); install it with 'sudo apt-get install $(2)' and re-run" >&2; \
	    exit 1; \
	  fi; \
	fi
endef

system-deps:  ## install Debian's graphviz (the dot program) if it is missing
	$(call apt_install,dot,graphviz,the 'dot' program that draws kernel graphs)

test-deps: system-deps  ## also Debian's chromium, which the HTML report's headless-browser test opens pages in
	$(call apt_install,chromium,chromium,a headless browser for the report test)

test: install install-gpu test-deps  ## set up, then run the whole test suite (PYTEST_ARGS="-k parse" to pick)
	$(VPY) -m pytest $(PYTEST_ARGS)

demo: install system-deps  ## set up, then dump linear_grad from JAX and TF, diff, draw and report (dumps/demo/)
	$(VPY) -m xlainspect demo

bench: install  ## parser speed against XLA's parser, render time of a 100k-instruction module, diff speed on 15 MB modules
	$(VPY) bench/parse_speed.py
	$(VPY) bench/render_speed.py
	$(VPY) bench/diff_speed.py

clean:  ## remove caches and build leftovers (keeps .venv/)
	rm -rf .pytest_cache .hypothesis build dist *.egg-info dumps/demo
	find . -name __pycache__ -type d -not -path './.venv/*' -prune -exec rm -rf {} +

distclean: clean  ## also remove .venv/
	rm -rf $(VENV)
