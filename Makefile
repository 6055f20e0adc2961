# The two commands of the README: `make demo` and `make test`. Each sets up everything it needs on a fresh Debian
# machine: .venv/ at the repo root with xlainspect (editable), JAX, TensorFlow (CPU) and the test tools, and Debian's
# graphviz. Re-running is quick: a stamp file remembers the install until setup.cfg or pyproject.toml change.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

# The interpreter .venv/ is made with: Python 3.12 (jax 0.11 and newer need it). A working python3.12 on PATH comes
# first, then pyenv's newest 3.12.x (installed but not selected, its shim answers "command not found"). PYTHON=...
# overrides both.
PY_MINOR := 3.12
define find_python
$(shell for p in python$(1) "$$(pyenv root 2>/dev/null)/versions/$$(pyenv versions --bare 2>/dev/null | grep -E '^$(subst .,\.,$(1))\.[0-9]+$$' | sort -t. -k3 -n | tail -1)/bin/python3"; do \
  if "$$p" -c 'import sys; sys.exit(sys.version_info[:2] != tuple(map(int, "$(1)".split("."))))' >/dev/null 2>&1; then command -v "$$p" || echo "$$p"; break; fi; done)
endef
ifeq ($(origin PYTHON),undefined)
PYTHON := $(call find_python,$(PY_MINOR))
endif
VENV := .venv
VPY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=

.PHONY: help venv install install-gpu compat-env torch-env system-deps test-deps test test-compat demo bench clean distclean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/:.*## /\t/' | expand -t 14

venv: $(VPY)  ## create .venv/ if it is missing (PYTHON=python3.12 picks the interpreter)

# pip runs with -qq: errors still print, but not setuptools' notice on every editable install of a flat layout nor
# pip's line per package about index locations this machine's pip.conf names; make demo stays readable.
$(VPY):
	@if [ -z "$(PYTHON)" ]; then echo "xlainspect: Python $(PY_MINOR) not found (neither python$(PY_MINOR) on PATH nor in pyenv); install it (e.g. 'pyenv install $(PY_MINOR)') or run make with PYTHON=/path/to/python$(PY_MINOR)" >&2; exit 1; fi
	$(PYTHON) -m venv $(VENV)
	$(VPY) -m pip install --quiet --quiet --upgrade pip

$(STAMP): setup.cfg pyproject.toml | $(VPY)
	$(VPY) -m pip install --quiet --quiet -e '.[all,test]'
	touch $(STAMP)

install: $(STAMP)  ## create .venv/ and install xlainspect with jax, tensorflow-cpu and test tools

GPU_STAMP := $(VENV)/.installed-gpu

$(GPU_STAMP): $(STAMP)
	@echo "xlainspect: installing jax's CUDA plugin for deviceless GPU compilation (about 4.4 GB of wheels)"
	$(VPY) -m pip install --quiet --quiet -e '.[gpu]'
	touch $(GPU_STAMP)

install-gpu: $(GPU_STAMP)  ## also install the [gpu] extra: XLA's GPU compiler, to compile for an H100 without one

# The compatibility environment: the oldest supported end, Python 3.11 with jax 0.10.2 (and its CUDA plugin for
# deviceless GPU compiles) and TF, and nothing else: no xlainspect. Framework children run under it through
# XLAINSPECT_PYTHON, as a user's own environment runs them through --python, while .venv's xlainspect drives them.
COMPAT_PY_MINOR := 3.11
COMPAT_VENV := .venv-jax0.10
COMPAT_VPY := $(COMPAT_VENV)/bin/python
COMPAT_STAMP := $(COMPAT_VENV)/.installed
COMPAT_PACKAGES := 'jax[cuda12]==0.10.2' 'jaxlib==0.10.2' 'tensorflow-cpu==2.21.*' 'numpy<3'
ifeq ($(origin COMPAT_PYTHON),undefined)
COMPAT_PYTHON := $(call find_python,$(COMPAT_PY_MINOR))
endif
# Tests that run a framework in a child process: the compatibility run repeats these under jax 0.10.2. The PyTorch
# tests are left out: their JAX side runs in the test process, so under jax 0.10.2 they would only repeat themselves.
COMPAT_MARKERS := (requires_jax or requires_tf or requires_jax_cuda) and not (requires_torch or requires_torch_xla)
COMPAT_PYTEST_ARGS ?=

$(COMPAT_STAMP):
	@if [ -z "$(COMPAT_PYTHON)" ]; then echo "xlainspect: Python $(COMPAT_PY_MINOR) not found (neither python$(COMPAT_PY_MINOR) on PATH nor in pyenv); install it or run make with COMPAT_PYTHON=/path/to/python$(COMPAT_PY_MINOR)" >&2; exit 1; fi
	@echo "xlainspect: making $(COMPAT_VENV)/ (Python $(COMPAT_PY_MINOR), jax 0.10.2, TF): the oldest versions xlainspect supports"
	rm -rf $(COMPAT_VENV)
	$(COMPAT_PYTHON) -m venv $(COMPAT_VENV)
	$(COMPAT_VPY) -m pip install --quiet --quiet --upgrade pip
	$(COMPAT_VPY) -m pip install --quiet --quiet $(COMPAT_PACKAGES)
	touch $(COMPAT_STAMP)

compat-env: $(COMPAT_STAMP)  ## make .venv-jax0.10/: Python 3.11, jax 0.10.2 and TF only, for the compatibility tests

test-compat: install install-gpu test-deps $(COMPAT_STAMP)  ## the framework-facing tests again, with children under jax 0.10.2
	XLAINSPECT_PYTHON=$(abspath $(COMPAT_VPY)) XLAINSPECT_COMPAT_RUN=1 $(VPY) -m pytest -m '$(COMPAT_MARKERS)' $(COMPAT_PYTEST_ARGS)

# The PyTorch environment: eager PyTorch with Opacus (DP-SGD) and PyTorch/XLA, exactly the versions of the [torch]
# extra, with no xlainspect (tests put the checkout on PYTHONPATH). It is separate from .venv/ because PyPI's torch
# 2.9.0 is the CUDA build and pins nvidia-*-cu12 wheels older than the ones jax's CUDA plugin in .venv/ needs, and
# torch_xla 2.9 needs exactly torch 2.9.0. Tests marked requires_torch/requires_torch_xla run their PyTorch code
# under it (tests/torch_helpers.py).
TORCH_PY_MINOR := 3.12
TORCH_VENV := .venv-torch
TORCH_VPY := $(TORCH_VENV)/bin/python
TORCH_STAMP := $(TORCH_VENV)/.installed
TORCH_PACKAGES := 'torch==2.9.0' 'torch-xla==2.9.0' 'opacus==1.6.0' 'numpy<3'
ifeq ($(origin TORCH_PYTHON),undefined)
TORCH_PYTHON := $(call find_python,$(TORCH_PY_MINOR))
endif

# A failed install leaves no half-made environment behind: the next make starts over rather than trusting it.
$(TORCH_STAMP):
	@if [ -z "$(TORCH_PYTHON)" ]; then echo "xlainspect: Python $(TORCH_PY_MINOR) not found (neither python$(TORCH_PY_MINOR) on PATH nor in pyenv); install it or run make with TORCH_PYTHON=/path/to/python$(TORCH_PY_MINOR)" >&2; exit 1; fi
	@echo "xlainspect: making $(TORCH_VENV)/ (Python $(TORCH_PY_MINOR), torch 2.9.0, torch-xla 2.9.0, opacus 1.6.0): about 7.2 GB, PyPI's torch being the CUDA build"
	rm -rf $(TORCH_VENV)
	$(TORCH_PYTHON) -m venv $(TORCH_VENV)
	$(TORCH_VPY) -m pip install --quiet --quiet --upgrade pip || { rm -rf $(TORCH_VENV); echo "xlainspect: could not make $(TORCH_VENV)/ (pip upgrade failed)" >&2; exit 1; }
	$(TORCH_VPY) -m pip install --quiet --quiet $(TORCH_PACKAGES) || { rm -rf $(TORCH_VENV); echo "xlainspect: could not install $(TORCH_PACKAGES) into $(TORCH_VENV)/; it was removed, re-run make torch-env" >&2; exit 1; }
	touch $(TORCH_STAMP)

torch-env: $(TORCH_STAMP)  ## make .venv-torch/: Python 3.12 with torch, torch-xla and opacus (7.2 GB), for the PyTorch tests

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

test-deps: system-deps  ## also Debian's chromium and chromium-driver, in which the HTML report's browser tests run
	$(call apt_install,chromium,chromium,a headless browser for the report test)
	$(call apt_install,chromedriver,chromium-driver,the driver through which the report's browser tests click)

test: install install-gpu test-deps $(COMPAT_STAMP) $(TORCH_STAMP)  ## set up, run the whole suite, then the framework tests under jax 0.10.2
	$(VPY) -m pytest $(PYTEST_ARGS)
	$(MAKE) --no-print-directory test-compat

demo: install system-deps  ## set up, then dump linear_grad from JAX and TF, diff, draw and report (dumps/demo/)
	$(VPY) -m xlainspect demo

bench: install  ## parser speed against XLA's parser, render time of a 100k-instruction module, diff speed on 15 MB modules
	$(VPY) bench/parse_speed.py
	$(VPY) bench/render_speed.py
	$(VPY) bench/diff_speed.py

clean:  ## remove caches and build leftovers (keeps .venv/)
	rm -rf .pytest_cache .hypothesis build dist *.egg-info dumps/demo
	find . -name __pycache__ -type d -not -path './.venv/*' -prune -exec rm -rf {} +

distclean: clean  ## also remove .venv/, .venv-jax0.10/ and .venv-torch/
	rm -rf $(VENV) $(COMPAT_VENV) $(TORCH_VENV)
