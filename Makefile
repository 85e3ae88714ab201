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

.PHONY: lab test test-unit test-notebooks test-e2e bench clean

# The stored notebook outputs come from the offline model; nbval compares against them, so the
# tests use it even where VGG16's weights are cached (`make test GRADCAM_MODEL=...` overrides).
test test-notebooks test-e2e: export GRADCAM_MODEL := efficientnet_lite0

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

## Run every test: unit tests, then the notebooks through nbval.
test: $(STAMP)
	$(BIN)/python -m pytest -m "not e2e" --nbval --nbval-sanitize-with notebooks/sanitize.cfg $(PYTEST_ARGS)

test-unit: $(STAMP)
	$(BIN)/python -m pytest -m "not e2e" tests $(PYTEST_ARGS)

test-notebooks: $(STAMP)
	$(BIN)/python -m pytest --nbval --nbval-sanitize-with notebooks/sanitize.cfg notebooks $(PYTEST_ARGS)

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
