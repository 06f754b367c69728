"""The LeNet-like step of test_conv_cuda.py as a generated CUDA program on the CPU emulation
(tests/gpu/cuda_emulator, see test_cuda_emulated.py), at several run-time batch sizes: float32
as it is, float64 with every buffer access checked. Runs on every machine with g++ and nvcc.

A program keeps every buffer in one device allocation, so a sanitizer sees only a read past its
end. The bounds test therefore rewrites each ``buffer[index]`` of the generated kernels into a
checked access (an index outside the buffer is recorded, read as 0, and the call fails naming
the buffer), so a kernel that strays into a neighbouring buffer is caught too."""

import re
import tempfile
from pathlib import Path

import numpy as np
import pytest
from test_conv_cuda import check_against_the_reference, lenet_step, sample
from test_cuda_emulated import (CXX, _window_cases, compile_emulated, emulated_programs,  # noqa: F401
                                rewrite_launches, rewritten_sources)
from test_cuda_program import TOL, TRAIN_TOL, assert_equals_the_evaluator

pytestmark = pytest.mark.skipif(CXX is None, reason="the emulation needs a C++ compiler")


def test_the_conv_step_equals_the_reference_evaluator_on_the_emulation(emulated_programs):  # noqa: F811
    check_against_the_reference("float32")  # float64: in the bounds test below


CHECKS = r"""
namespace {
long long symdiff_bad_index = -1, symdiff_bad_size = 0;
const char* symdiff_bad_buffer = nullptr;
inline long long symdiff_in_bounds(long long i, long long n, const char* name) {
  if (i >= 0 && i < n) return i;
  if (symdiff_bad_buffer == nullptr) { symdiff_bad_buffer = name; symdiff_bad_index = i; symdiff_bad_size = n; }
  return 0;
}
}  // namespace
"""
AFTER_KERNELS = 'SYMDIFF_CHECK(cudaDeviceSynchronize(), "running the program\'s kernels");'
REPORT = ('if (symdiff_bad_buffer != nullptr) { std::snprintf(error, error_size, "out of bounds: %s[%lld] '
          'of %lld elements", symdiff_bad_buffer, symdiff_bad_index, symdiff_bad_size); return 1; }')


def checked_accesses(source: str, sizes: dict) -> str:
    """``source`` with every ``name[index]`` of a buffer in ``sizes`` (name -> C element count)
    checked against the buffer's extent."""
    pattern = re.compile(r"\b(" + "|".join(map(re.escape, sizes)) + r")\[([^\[\]]*)\]")
    text, count = pattern.subn(lambda m: f'{m[1]}[symdiff_in_bounds({m[2]}, {sizes[m[1]]}, "{m[1]}")]', source)
    assert count > 0 and source.count(AFTER_KERNELS) == 1
    text = text.replace(AFTER_KERNELS, AFTER_KERNELS + "\n  " + REPORT)
    return text.replace("#include <mutex>\n", "#include <mutex>\n" + CHECKS, 1)


@pytest.fixture
def bounds_checked(tmp_path, monkeypatch):
    """Builds on the emulation with checked buffer accesses; ``bounds_checked(prog)`` registers a
    program's buffers (its run-time-dimensions source) before its first call."""
    from symdiff.lowering.compiler import cache

    include = tmp_path / "sources"
    include.mkdir()
    rewritten_sources(include)
    registered: dict = {}

    def compile_checked(source, kind="cpu", workdir=None):
        assert kind == "cuda" and source in registered, "a CUDA program that was not registered"
        work = Path(tempfile.mkdtemp(prefix="checked-", dir=workdir))
        text, _ = rewrite_launches(checked_accesses(source, registered[source]))
        (work / "program.cu").write_text(text)
        return compile_emulated([work / "program.cu"], work / "program.so", include)

    monkeypatch.setenv("SYMDIFF_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(cache, "compile_shared", compile_checked)
    cache.forget_loaded()

    def register(prog):
        unit = prog.translate(prog._runtime)
        s = unit.schedule
        registered[unit.source] = {b.name: f"{b.numel}" for b in s.inputs + s.outputs + s.temps + s.consts}
        return prog

    yield register
    cache.forget_loaded()


def test_the_conv_step_and_the_registry_cases_stay_inside_their_buffers(bounds_checked):
    from symdiff.lowering.programs.cuda import CudaProgram

    prog = bounds_checked(CudaProgram(*lenet_step("float64")))
    for n in (3, 1):
        assert_equals_the_evaluator(prog, sample(prog.inputs, n, "float64"), TRAIN_TOL["float64"], f"N={n}: ")
    outputs, inputs, shape_at = _window_cases("float64")  # padding, strides, dilation, groups
    prog = bounds_checked(CudaProgram(outputs, inputs, optimize=False))
    rng = np.random.default_rng(0)
    arrays = [rng.standard_normal(tuple(2 if str(d) == "N" else d for d in shape_at[id(leaf)])) for leaf in inputs]
    assert_equals_the_evaluator(prog, arrays, TOL["float64"])


def test_a_stray_read_is_caught(bounds_checked):
    # the check must be able to fail: a convolution whose padding test is dropped reads outside x
    from symdiff.lowering.programs.cuda import CudaProgram
    from symdiff.lowering.render import cuda_windows

    import symdiff as sd

    X, K = sd.tensor("X", ("N", 1, 4, 4)), sd.tensor("K", (2, 1, 3, 3))
    original = cuda_windows._tap

    def unguarded(*args):
        return original(*args)[:1]

    prog = CudaProgram([sd.conv2d(X, K, padding=1)], [X, K])
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(cuda_windows, "_tap", unguarded)
        bounds_checked(prog)
        with pytest.raises(RuntimeError, match=r"out of bounds: in0\[-"):
            prog(np.ones((2, 1, 4, 4)), np.ones((2, 1, 3, 3)))
