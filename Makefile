# The two set-up commands: `make demo` and `make test`. Each creates .venv itself.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# Where registered datasets are looked for (Fashion-MNIST for the full-size tests and benchmarks).
NNPIPE_DATA ?= $(abspath ../shared/datasets)
export NNPIPE_DATA

.PHONY: demo demo-plugin test bench bench-layers clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --upgrade pip >/dev/null

# nnpipe itself, then the example third-party plugin distribution (examples/with-plugin.yaml uses it).
EXTRAS := examples/plugins/nnpipe-extras

$(VENV)/.installed: $(BIN)/python pyproject.toml $(EXTRAS)/pyproject.toml
	$(BIN)/python -m pip install -e .
	$(BIN)/python -m pip install -e $(EXTRAS)
	touch $@

$(VENV)/.installed-test: $(VENV)/.installed
	$(BIN)/python -m pip install -e '.[test]'
	touch $@

# Benchmark-only dependencies (torch==2.13.0 CPU wheel, scikit-learn) live in the "bench" extra.
$(VENV)/.installed-bench: $(VENV)/.installed
	$(BIN)/python -m pip install -e '.[bench]'
	touch $@

demo: $(VENV)/.installed
	$(BIN)/nnpipe run examples/mnist.yaml

demo-plugin: $(VENV)/.installed
	$(BIN)/nnpipe plugins --check
	$(BIN)/nnpipe run examples/with-plugin.yaml

test: $(VENV)/.installed-test
	$(BIN)/python -m pytest

bench: $(VENV)/.installed-bench
	$(BIN)/python benchmarks/bench_fashion.py $(BENCH_ARGS)

# The layer stack against PyTorch: default and batch-norm networks, batch x width matrix,
# the diagnostics' cost (benchmarks/README.md). OPENBLAS_CORETYPE/L2_SIZE unset for this only.
bench-layers: $(VENV)/.installed-bench
	env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE $(BIN)/python benchmarks/bench_layers.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) runs
