# Two commands do all set-up on a fresh clone: `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.cckit-installed

.PHONY: setup demo test lint golden lab wheel-check clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test,lab,keyring]'
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (cckit)" >/dev/null
	touch $(STAMP)

setup: $(STAMP)  ## create .venv, install cckit with test + lab extras, register the kernel

demo: setup  ## run the main job against the embedded VOS mock
	$(BIN)/cckit demo

# the suite's tests wait on mock restarts and kernels as much as they compute: 4 workers keep
# 2 cores busy (conftest.py keeps a golden notebook's cells, and a few modules, on one worker)
WORKERS ?= 4

test: setup lint  ## the whole suite, nbval included (WORKERS=1: one process, no pytest-xdist)
	$(BIN)/python -m pytest $(if $(filter 1,$(WORKERS)),,-n $(WORKERS))

lint: setup
	$(BIN)/ruff check cckit tests conftest.py

golden: setup  ## re-execute the runbooks against fresh mocks and save their golden outputs
	$(BIN)/python -m cckit.golden

lab: setup  ## JupyterLab on fresh copies of the runbooks (runs/lab/<UTC time>/); ARGS="--port 9999 --no-browser --allow-root --dir DIR"
	$(BIN)/cckit lab $(ARGS)

wheel-check:  ## build the wheel, install it in a fresh venv outside the tree, run cckit demo
	.ci/wheel-check

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache build *.egg-info
