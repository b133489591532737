# Two commands for a fresh machine: `make demo` and `make test`. Each creates .venv if missing and installs hscl
# with every extra (".[all,test]": the images and graphs pipelines, and the test tools).
# TORCH picks the PyTorch build: the default is the CPU build; for CUDA, e.g.
#   make test TORCH="torch==2.13.0 --index-url <the CUDA wheel index for your CUDA version, from pytorch.org>"
PYTHON ?= python3
VENV ?= .venv
TORCH ?= torch==2.13.0
PY := $(VENV)/bin/python
STAMP := $(VENV)/.hscl-installed

.PHONY: demo test lint bench docs clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet $(TORCH)
	$(PY) -m pip install --quiet -e ".[all,test]"
	touch $(STAMP)

demo: $(STAMP)
	$(PY) -m hscl demo

test: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m pytest -q

lint: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

bench: $(STAMP)
	$(PY) benchmarks/bench_losses.py

docs: $(STAMP)
	$(PY) docs/build.py

clean:
	rm -rf $(VENV) build dist src/*.egg-info
