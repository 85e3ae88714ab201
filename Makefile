# Two commands do everything:  `make lab`  and  `make test`.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# TensorFlow's C++ start-up logs are noise for learners and would end up in notebook outputs.
export TF_CPP_MIN_LOG_LEVEL ?= 3
export PYTHONWARNINGS ?= ignore::DeprecationWarning

# Jupyter refuses to run as root without being told; root is normal in containers and CI.
LAB_ARGS ?= $(if $(filter 0,$(shell id -u)),--allow-root,)

.PHONY: lab test test-unit test-notebooks test-slow test-fuzz test-numeric test-e2e ci lint format bench clean

NBVAL  := --nbval --nbval-sanitize-with notebooks/sanitize.cfg
# Three numeric configurations meet in the notebook tests: the stored outputs come from two
# threads with oneDNN off (scripts/execute_notebooks.sh), `make test` runs TensorFlow's default
# (oneDNN on, all threads) and `make test-numeric` one thread with oneDNN on. Printed numbers
# must compare within the tolerance of conftest.py; anything else is a real change.
NUMERIC_ENV := TF_NUM_INTRAOP_THREADS=1 TF_NUM_INTEROP_THREADS=1 OMP_NUM_THREADS=1 TF_ENABLE_ONEDNN_OPTS=1

# The stored notebook outputs come from the offline model; nbval compares against them, so the
# tests use it even where VGG16's weights are cached (`make test GRADCAM_MODEL=...` overrides).
test test-notebooks test-numeric test-slow test-e2e ci: export GRADCAM_MODEL := efficientnet_lite0

$(STAMP): requirements.txt requirements-dev.txt constraints.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt -c constraints.txt
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (guided-gradcam)" > /dev/null
	touch $@

## Open the notebooks in JupyterLab (sets everything up on first use).
lab: $(STAMP)
	$(BIN)/jupyter lab --notebook-dir=notebooks $(LAB_ARGS)

## Run the tests: unit tests, then the notebooks through nbval (slow, fuzz and browser tests: `make ci`).
test: $(STAMP)
	$(BIN)/python -m pytest -m "not e2e and not slow and not fuzz" $(NBVAL) $(PYTEST_ARGS)

test-unit: $(STAMP)
	$(BIN)/python -m pytest -m "not e2e and not slow and not fuzz" tests $(PYTEST_ARGS)

test-notebooks: $(STAMP)
	$(BIN)/python -m pytest $(NBVAL) notebooks $(PYTEST_ARGS)

## VGG16-sized models, the wheel, subprocesses.
test-slow: $(STAMP)
	$(BIN)/python -m pytest -m "slow and not e2e" tests $(PYTEST_ARGS)

## Property-based fuzzing of the image and weights readers (Hypothesis, about a minute).
test-fuzz: $(STAMP)
	$(BIN)/python -m pytest -m fuzz tests $(PYTEST_ARGS)

## The notebooks again under another numeric configuration (see NUMERIC_ENV).
test-numeric: $(STAMP)
	$(NUMERIC_ENV) $(BIN)/python -m pytest -p no:cacheprovider $(NBVAL) notebooks $(PYTEST_ARGS)

## Everything CI runs: lint, the tests, slow and fuzz tests, the second numeric run, the browser.
ci: lint test test-slow test-fuzz test-numeric test-e2e

## ruff (lint and format check; `make format` rewrites) and the import layers (pyproject.toml).
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

format: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

## Real-browser test of the widgets (needs Debian's chromium: apt-get install chromium).
test-e2e: $(STAMP)
	$(BIN)/python -m pytest -m e2e tests/e2e $(PYTEST_ARGS)

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_speed.py
	$(BIN)/python benchmarks/bench_memory.py
	$(BIN)/python benchmarks/bench_load.py
	$(BIN)/python benchmarks/bench_notebook_memory.py

clean:
	rm -rf $(VENV) .pytest_cache artifacts
