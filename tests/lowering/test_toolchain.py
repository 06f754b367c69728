"""Compiling generated programs and calling them through native_program (real compiler, real files)."""

import shutil
import threading
import time

import numpy as np
import pytest
from symdiff.lowering import _native
from symdiff.lowering.compiler import toolchain
from symdiff.lowering.compiler.toolchain import CompileError, CompilerNotFound, compile_shared

ABI = """#include <cstdint>
#include <cstdio>
extern "C" const char* symdiff_program_abi(void) { return "symdiff-abi-1"; }
"""
ENTRY = """extern "C" int symdiff_program(void* const* buffers, const int64_t* dims,
                               char* error, int64_t error_size)"""

# out[i] = a[i] * 2 + dims[1], over dims[0] elements
TWICE_PLUS = ABI + ENTRY + """ {
  const double* a = static_cast<const double*>(buffers[0]);
  double* out = static_cast<double*>(buffers[1]);
  const int64_t n = dims[0];
  const double c = static_cast<double>(dims[1]);
  #pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; ++i) out[i] = a[i] * 2 + c;
  return 0;
}
"""

# fails with a message when dims[0] is negative; sleeps dims[1] ms otherwise
CHECKED = ABI + "#include <unistd.h>\n" + ENTRY + """ {
  if (dims[0] < 0) {
    std::snprintf(error, error_size, "n must be >= 0, got %lld", static_cast<long long>(dims[0]));
    return 2;
  }
  if (dims[0] == 0) return 5;  // fails without a message
  usleep(static_cast<useconds_t>(dims[1] * 1000));
  return 0;
}
"""


@pytest.fixture(scope="module")
def twice_plus(tmp_path_factory):
    return _native.native_program(str(compile_shared(TWICE_PLUS, "cpu", tmp_path_factory.mktemp("build"))))


@pytest.fixture(scope="module")
def checked(tmp_path_factory):
    return _native.native_program(str(compile_shared(CHECKED, "cpu", tmp_path_factory.mktemp("build"))))


@pytest.mark.parametrize("n", [0, 1, 7, 100_003])
def test_compiled_program_matches_numpy(twice_plus, n):
    a = np.random.default_rng(n).standard_normal(n)
    out = np.full(n, np.nan)
    twice_plus([a, out], [n, 5])
    np.testing.assert_array_equal(out, a * 2 + 5)


def test_compile_shared_builds_in_a_fresh_private_directory():
    first, second = compile_shared(TWICE_PLUS), compile_shared(TWICE_PLUS)
    try:
        assert first.parent != second.parent and first.name == "program.so"
        assert first.read_bytes()[:4] == b"\x7fELF"
    finally:
        shutil.rmtree(first.parent)
        shutil.rmtree(second.parent)


def test_compile_error_shows_the_command_and_the_diagnostic(tmp_path):
    bad = ABI + ENTRY + " { return undeclared_thing; }\n"
    with pytest.raises(CompileError) as info:
        compile_shared(bad, "cpu", tmp_path)
    message = str(info.value)
    assert "command: " in message and "-fopenmp" in message and "program.cpp" in message
    assert "undeclared_thing" in message and "error" in message
    assert list(tmp_path.iterdir()) == []  # the failed build left nothing behind


def test_long_diagnostics_are_cut_to_the_first_lines(tmp_path):
    bad = "\n".join(f"int f{i}() {{ return missing{i}; }}" for i in range(200))
    with pytest.raises(CompileError) as info:
        compile_shared(bad, "cpu", tmp_path)
    message = str(info.value)
    assert "missing0" in message and "missing199" not in message
    assert "more lines]" in message
    assert len(message.splitlines()) <= toolchain.DIAGNOSTIC_LINES + 3


def test_unknown_kind_is_a_value_error():
    with pytest.raises(ValueError, match="kind must be one of 'cpu', 'cuda'"):
        compile_shared("int x;", "fortran")


@pytest.mark.parametrize("cxx", ["/nonexistent/bin/c++", None])
def test_no_compiler_is_compiler_not_found_suggesting_numpy(monkeypatch, tmp_path, cxx):
    if cxx:
        monkeypatch.setenv("CXX", cxx)
    else:
        monkeypatch.delenv("CXX", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))  # an empty folder: no c++, g++ or clang++
    with pytest.raises(CompilerNotFound, match="backend='numpy'") as info:
        compile_shared(TWICE_PLUS)
    assert isinstance(info.value, RuntimeError)
    assert (cxx or "c++, g++, clang++") in str(info.value)


def test_explicit_cxx_is_used(monkeypatch):
    real = toolchain.cxx()
    monkeypatch.setenv("CXX", real)
    assert toolchain.cxx() == real and toolchain.toolchain_id("cpu").splitlines()[1] == real


def test_missing_nvcc_is_compiler_not_found(monkeypatch, tmp_path):
    monkeypatch.setenv("SYMDIFF_NVCC", str(tmp_path / "nvcc"))
    with pytest.raises(CompilerNotFound, match="SYMDIFF_NVCC"):
        toolchain.nvcc()


def test_compiler_version_is_a_first_line():
    line = toolchain.compiler_version(toolchain.cxx())
    assert line and "\n" not in line


def test_flags_and_include_dir():
    flags = toolchain.cxx_flags()
    for flag in ["-O3", "-march=native", "-fopenmp", "-fPIC", "-shared", "-std=c++17", "-fno-math-errno"]:
        assert flag in flags
    assert f"-I{toolchain.include_dir()}" in flags
    assert (toolchain.include_dir() / "symdiff" / "cpu" / "gemm.hpp").is_file()
    nvcc = toolchain.nvcc_flags()
    assert nvcc[:3] == ["-O3", "-shared", "-std=c++17"] and "-fPIC,-fopenmp" in nvcc


def test_include_dir_override(monkeypatch, tmp_path):
    monkeypatch.setenv("SYMDIFF_INCLUDE_DIR", str(tmp_path))
    with pytest.raises(CompilerNotFound, match="SYMDIFF_INCLUDE_DIR"):
        toolchain.include_dir()
    (tmp_path / "symdiff" / "cpu").mkdir(parents=True)
    assert toolchain.include_dir() == tmp_path


def test_extra_flags_change_the_toolchain_id(monkeypatch):
    before = toolchain.toolchain_id("cpu")
    monkeypatch.setenv("SYMDIFF_CXXFLAGS", "-DSYMDIFF_TEST_FLAG=1")
    after = toolchain.toolchain_id("cpu")
    assert before != after and "-DSYMDIFF_TEST_FLAG=1" in after


def test_nonzero_return_raises_with_the_programs_message(checked):
    with pytest.raises(RuntimeError, match="n must be >= 0, got -3"):
        checked([], [-3, 0])
    with pytest.raises(RuntimeError, match=r"code 5\) without a message"):
        checked([], [0, 0])
    checked([], [1, 0])  # still usable after a failure


def test_the_gil_is_released_while_a_program_runs(checked):
    threads = [threading.Thread(target=checked, args=([], [1, 300])) for _ in range(3)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert time.perf_counter() - t0 < 0.8  # three 300 ms calls overlapped


def test_arguments_are_checked(twice_plus):
    a, out = np.ones(8), np.zeros(8)
    with pytest.raises(ValueError, match="argument 0 is not C-contiguous"):
        twice_plus([np.ones(16)[::2], out], [8, 0])
    with pytest.raises(ValueError, match="argument 1 is not C-contiguous"):
        twice_plus([a, np.zeros((8, 2)).T], [8, 0])
    with pytest.raises(TypeError, match="argument 0 is not a numpy array"):
        twice_plus([[1.0] * 8, out], [8, 0])
    read_only = np.ones(8)
    read_only.flags.writeable = False
    twice_plus([read_only, out], [8, 1], written=[1])  # an input may be read-only
    np.testing.assert_array_equal(out, 3.0)
    with pytest.raises(ValueError, match="argument 1 is written by the program but is read-only"):
        twice_plus([a, read_only], [8, 0], written=[1])
    with pytest.raises(IndexError, match="written index 2"):
        twice_plus([a, out], [8, 0], written=[2])


def test_loading_checks_the_library(tmp_path):
    with pytest.raises(RuntimeError, match="cannot load .*nothing.so"):
        _native.native_program(str(tmp_path / "nothing.so"))
    no_abi = compile_shared("#include <cstdint>\n" + ENTRY + " { return 0; }\n", "cpu", tmp_path)
    with pytest.raises(RuntimeError, match="exports no symdiff_program_abi"):
        _native.native_program(str(no_abi))
    other_abi = compile_shared(ABI.replace("symdiff-abi-1", "symdiff-abi-0") + ENTRY + " { return 0; }\n",
                               "cpu", tmp_path)
    with pytest.raises(RuntimeError, match="ABI 'symdiff-abi-0', expected 'symdiff-abi-1'"):
        _native.native_program(str(other_abi))
    good = compile_shared(TWICE_PLUS, "cpu", tmp_path)
    with pytest.raises(RuntimeError, match="exports no symbol other_entry"):
        _native.native_program(str(good), "other_entry")
    assert _native.native_program(str(good)).path == str(good)


CUDA_TWICE = ABI + """
__global__ void twice_kernel(double* x, int64_t n) {
  int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x;
  if (i < n) x[i] *= 2;
}
""" + ENTRY + """ {
  double* x = static_cast<double*>(buffers[0]);
  twice_kernel<<<(dims[0] + 255) / 256, 256>>>(x, dims[0]);
  cudaError_t e = cudaDeviceSynchronize();
  if (e != cudaSuccess) { std::snprintf(error, error_size, "%s", cudaGetErrorString(e)); return 1; }
  return 0;
}
"""


def test_nvcc_compiles_a_cuda_program(tmp_path):
    try:
        toolchain.nvcc()
    except CompilerNotFound:
        pytest.skip("nvcc not found")
    lib = compile_shared(CUDA_TWICE, "cuda", tmp_path)
    assert lib.parent.joinpath("program.cu").is_file()
    # loading runs only host code (the ABI check); the kernel itself needs a GPU (tests/gpu)
    assert _native.native_program(str(lib)).path == str(lib)
