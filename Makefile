# Two commands: `make demo` and `make test`. Each sets up .venv from scratch if needed.
PYTHON ?= python3.11
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
# TensorFlow's own venv for `hwsim export --framework tensorflow` (algorithms/frameworks/): its
# pins are not hwsim's. The stamp tells the exporter that pip finished.
TF_VENV  := .venv-tf
TF_STAMP := $(TF_VENV)/.installed

.PHONY: demo test test-slow test-all bench clean setup tf browser peers

setup: $(STAMP)

# Debian's Chromium for the report tests (headless, driven by playwright's Python package,
# which is pointed at it and never downloads a browser). CI runs as root on a clean Debian.
CHROMIUM := /usr/bin/chromium
browser:
	@test -x $(CHROMIUM) || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
	    apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core >/dev/null; \
	  else echo "error: $(CHROMIUM) missing; run 'sudo apt-get install chromium' (the report tests need it)" >&2; exit 2; fi; }

$(STAMP): pyproject.toml constraints.txt
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "error: $(PYTHON) not found (hwsim needs Python 3.11; set PYTHON=...)" >&2; exit 2; }
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints.txt -e '.[test]'
	@touch $(STAMP)

# A changed constraints-tf.txt rebuilds the venv from nothing, so no old package lingers.
tf: $(TF_STAMP)

$(TF_STAMP): constraints-tf.txt
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "error: $(PYTHON) not found (the TensorFlow venv needs Python 3.11; set PYTHON=...)" >&2; exit 2; }
	rm -rf $(TF_VENV)
	$(PYTHON) -m venv $(TF_VENV)
	$(TF_VENV)/bin/python -m pip install --quiet -c constraints-tf.txt tensorflow-cpu tf2onnx onnx
	@touch $(TF_STAMP)

demo: $(STAMP)
	$(VENV)/bin/hwsim demo --out out/demo

test: $(STAMP) $(TF_STAMP) browser
	$(VENV)/bin/lint-imports --no-cache
	$(PY) -m pytest -q -m "not slow"

# The export configuration matrix (tests/algorithms/test_export_matrix.py): hours on two shared
# cores, resumable (passed cases are recorded under .hwsim-cache/export-matrix/); not part of
# `make test`.
test-slow: $(STAMP)
	nice $(PY) -m pytest -q -m slow --durations=15

test-all: $(STAMP) $(TF_STAMP) browser
	$(PY) -m pytest -q

# The peer tools, each in its own venv (their pins are not hwsim's): SCALE-Sim 3.0.0 needs
# numpy < 2.4; ZigZag 3.9.1 imports `six` without declaring it (benchmarks/peers/README.md).
PEERS := .venv-peers
peers: $(PEERS)/.installed

$(PEERS)/.installed:
	$(PYTHON) -m venv $(PEERS)/scalesim
	$(PEERS)/scalesim/bin/python -m pip install --quiet scalesim==3.0.0 'numpy<2.4'
	$(PYTHON) -m venv $(PEERS)/zigzag
	$(PEERS)/zigzag/bin/python -m pip install --quiet zigzag-dse==3.9.1 six
	@touch $@

bench: $(STAMP) $(TF_STAMP) peers
	$(PY) benchmarks/run.py --peers --out BENCHMARKS.md

clean:
	rm -rf $(VENV) $(TF_VENV) out .pytest_cache .hwsim-cache
