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

test: setup lint  ## the whole suite, nbval included
	$(BIN)/python -m pytest

lint: setup
	$(BIN)/ruff check cckit tests conftest.py

golden: setup  ## re-execute the runbooks against fresh mocks and save their golden outputs
	$(BIN)/python -m cckit.golden

lab: setup  ## open copies of the runbooks in JupyterLab (runs/lab/<UTC time>/): runbooks/ never changes
	@d=runs/lab/$$(date -u +%Y%m%dT%H%M%SZ); mkdir -p $$d && cp runbooks/*.ipynb $$d/ && \
	  echo "lab: working copies in $$d (relative site files resolve against $(CURDIR))" && \
	  CCKIT_LAUNCH_DIR="$(CURDIR)" CCKIT_RUNS_DIR="$(CURDIR)/runs" $(BIN)/jupyter lab "$$d"

wheel-check:  ## build the wheel, install it in a fresh venv outside the tree, run cckit demo
	.ci/wheel-check

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache build *.egg-info
