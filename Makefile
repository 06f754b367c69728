# make test: set up .venv (build deps, editable install with test extras) and run the suite.
# make demo: the same set-up, then `symdiff demo`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.symdiff-installed
NATIVE_SOURCES := $(shell find csrc -type f) CMakeLists.txt pyproject.toml
PYTEST_ARGS ?=

.PHONY: test demo lint bench-quick clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# Rebuilds the extension when C++ or the build configuration changed; Python edits need nothing.
$(STAMP): $(BIN)/python $(NATIVE_SOURCES)
	$(BIN)/python -m pip install --quiet "scikit-build-core>=0.10" "pybind11>=2.12" ninja \
		$$(command -v cmake >/dev/null 2>&1 || echo cmake)
	$(BIN)/python -m pip install --quiet --no-build-isolation -e '.[test]'
	touch $(STAMP)

test: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

demo: $(STAMP)
	$(BIN)/symdiff demo

lint: $(STAMP)
	$(BIN)/python -m pip install --quiet ruff
	$(BIN)/python -m ruff check symdiff lowering nn tests bench

clean:
	rm -rf build $(VENV) .pytest_cache .hypothesis
