# sweeplab: `make train` trains the default model, `make test` runs the test suite.
# Both create .venv and install the project into it first (once; again when pyproject.toml changes).

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
ARGS ?=

.PHONY: install train test test-slow test-all bench slurm-up slurm-down clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@

install: $(VENV)/.installed

train: install  ## train the default config (LeNet-5 on MNIST); extra overrides: make train ARGS="model=mlp"
	$(PY) train.py $(ARGS)

test: install  ## the fast suite (CI runs this)
	$(PY) -m pytest $(ARGS)

test-slow: install  ## only the slow tests
	$(PY) -m pytest -m slow $(ARGS)

test-all: install
	$(PY) -m pytest -m "slow or not slow" $(ARGS)

bench: install  ## the quick benchmarks (see benchmarks/)
	$(PY) benchmarks/throughput.py --quick
	$(PY) benchmarks/sweep_efficiency.py --quick
	$(PY) benchmarks/memory_layout.py

slurm-up:  ## a one-node SLURM cluster on 127.0.0.1 (installs Debian's munge and SLURM if missing; as root)
	bash cluster/slurm-local.sh up

slurm-down:  ## stop it (cancels its jobs)
	bash cluster/slurm-local.sh down

clean:
	rm -rf $(VENV) outputs .pytest_cache
