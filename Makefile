# Two commands: `make demo` and `make test`. Each sets up .venv from scratch if needed.
PYTHON ?= python3.11
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: demo test test-slow test-all bench clean setup

setup: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "error: $(PYTHON) not found (hwsim needs Python 3.11; set PYTHON=...)" >&2; exit 2; }
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints.txt -e '.[test]'
	@touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/hwsim demo --out out/demo

test: $(STAMP)
	$(PY) -m pytest -q -m "not slow"

# The export configuration matrix (tests/algorithms/test_export_matrix.py): hours on two shared
# cores, resumable (passed cases are recorded under .hwsim-cache/export-matrix/); not part of
# `make test`.
test-slow: $(STAMP)
	nice $(PY) -m pytest -q -m slow --durations=15

test-all: $(STAMP)
	$(PY) -m pytest -q

bench: $(STAMP)
	$(PY) benchmarks/export_bench.py
	$(PY) benchmarks/run.py --peers --out BENCHMARKS.md

clean:
	rm -rf $(VENV) out .pytest_cache .hwsim-cache
