# Two entry points (see README): `make demo` and `make test`. Both set up .venv on first use.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# torch goes in first, so the project's `torch>=2.4` is already met. 2.13.0 is this machine's CPU
# build (a file in /opt/wheels; ~1 GB in the venv instead of ~6 GB for the CUDA build and its
# nvidia-* libraries). On a GPU machine: make setup TORCH='torch==2.14.1'.
TORCH ?= torch==2.13.0
PIP := $(PY) -m pip install -q --no-cache-dir
# pytest-xdist workers for `make test` (2: CI's and this machine's cores; each runs its own torch and
# FAISS on its share of the cores, tests/conftest.py). TEST_WORKERS=0: the suite in one process.
# --dist loadscope: a test file's tests go to one worker, so its module fixtures are built once
# (the whole suite, session 42: 464 s wall, 554 s CPU; --dist load: 761 s, 603 s, on busier cores).
TEST_WORKERS ?= 2

.PHONY: setup demo test bench clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(PIP) --upgrade pip
	$(PIP) '$(TORCH)'
	$(PIP) -e '.[test]'
	touch $@

demo: setup
	$(PY) -m ui.demo

test: setup
	$(PY) -m pytest -q -n $(TEST_WORKERS) --dist loadscope

clean:
	rm -rf $(VENV) demo indexes/demo
