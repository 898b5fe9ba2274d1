# sweeplab: `make train` trains the default model, `make test` runs the test suite.
# Both create .venv and install the project into it first (once; again when pyproject.toml changes).

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
ARGS ?=
# pip says only what went wrong (-qq: errors, not warnings): no version check, no root-user advice, no progress bars, and not
# setuptools' ten-line note that an editable install maps conf/ through a finder (pyproject.toml)
PIP := PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_ROOT_USER_ACTION=ignore PYTHONWARNINGS="ignore:Editable installation" \
	$(PY) -m pip --quiet --quiet --no-input

.PHONY: install train test test-slow test-all lint docs bench slurm-up slurm-down clean

$(VENV)/.installed: pyproject.toml
	@echo "installing sweeplab and its tools into $(VENV) (a few minutes the first time) ..."
	@$(PYTHON) -m venv $(VENV)
	@$(PIP) install --upgrade pip
	@$(PIP) install -e '.[dev]'
	@touch $@

install: $(VENV)/.installed

train: install  ## train the default config (LeNet-5 on MNIST); extra overrides: make train ARGS="model=mlp"
	$(PY) train.py $(ARGS)

test: install  ## the fast suite (CI runs this)
	$(PY) -m pytest $(ARGS)

test-slow: install  ## only the slow tests
	$(PY) -m pytest -m slow $(ARGS)

test-all: install
	$(PY) -m pytest -m "slow or not slow" $(ARGS)

lint: install  ## ruff (lint and format) and mypy, as CI runs them
	$(VENV)/bin/ruff check src tests benchmarks
	$(VENV)/bin/ruff format --check src tests benchmarks
	$(VENV)/bin/mypy

docs: install  ## build the documentation site into site/ (broken links and missing pages fail)
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict

bench: install  ## the quick benchmarks (see benchmarks/)
	$(PY) benchmarks/throughput.py --quick
	$(PY) benchmarks/sweep_efficiency.py --quick
	$(PY) benchmarks/memory_layout.py

slurm-up:  ## a one-node SLURM cluster on 127.0.0.1 (installs Debian's munge and SLURM if missing; as root)
	bash cluster/slurm-local.sh up

slurm-down:  ## stop it (cancels its jobs)
	bash cluster/slurm-local.sh down

clean:
	rm -rf $(VENV) outputs .pytest_cache site
