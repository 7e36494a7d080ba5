# The two README commands: `make demo` and `make test`. Both create .venv when it is missing
# and install the project into it; pip gets the exact torch/torchvision pins from constraints.txt.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.cnnlab-installed
PIP_INSTALL := $(BIN)/python -m pip install --disable-pip-version-check -c constraints.txt
# The suite in two pytest-xdist workers of one thread each (tests/conftest.py): on CI's 2 cores the
# Python-bound tests (shape walks, exports, tracing) run side by side. PARALLEL= runs it in one process.
PARALLEL ?= -n 2 --dist loadgroup

.PHONY: install demo test test-fp32 data browser graphviz bench notebooks clean

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(PIP_INSTALL) -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/cnnlab models
	$(BIN)/cnnlab demo

test: $(STAMP)
	$(MAKE) graphviz || echo "warning: could not install Graphviz; the drawing tests will be skipped"
	$(BIN)/python -m pytest $(PARALLEL)

# The suite as on a CPU without native bf16 (a student's laptop): PyTorch's and oneDNN's kernels
# capped at AVX2, and cnnlab's `--amp auto` resolved to float32. Not part of CI (up to 25 minutes).
test-fp32: $(STAMP)
	ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2 CNNLAB_AMP=none $(BIN)/python -m pytest $(PARALLEL)

# The full Fashion-MNIST (60,000 + 10,000 images) from Debian, into /usr/share/datasets/fashion-mnist.
data:
	test -d /usr/share/datasets/fashion-mnist || { \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq dataset-fashion-mnist; }

# Debian's Chromium: the tests open `cnnlab report` pages in it, headless.
browser:
	command -v chromium >/dev/null || { \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq chromium; }

# Debian's Graphviz: `cnnlab draw` and the report's diagrams lay networks out with its `dot`.
graphviz:
	command -v dot >/dev/null || { \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq graphviz; }

# The comparisons in BENCHMARKS.md (installs torchinfo, fvcore and ptflops beside cnnlab).
bench: $(STAMP)
	$(PIP_INSTALL) -e '.[test,bench]'
	$(BIN)/python benchmarks/peak.py
	$(BIN)/python benchmarks/analysis_speed.py

# The lectures in notebooks/, each executed in a fresh kernel: the executed notebooks and their HTML
# in build/notebooks/ (installs the notebook extra: nbconvert and JupyterLab beside the kernel).
notebooks: $(STAMP)
	$(PIP_INSTALL) -e '.[test,notebook]'
	$(BIN)/python notebooks/execute.py build/notebooks

clean:
	rm -rf $(VENV) build src/*.egg-info .pytest_cache
