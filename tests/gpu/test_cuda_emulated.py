"""The CUDA kernels of csrc/cuda, and the generated CUDA programs of sd.compile(backend="cuda"),
run on the CPU emulation in tests/gpu/cuda_emulator on every machine, against float64 numpy
references and the reference evaluator.

The emulation is not a GPU. Each launch runs its blocks one after another, and the threads of a
block are fibers that switch only at barriers. It checks what the kernels compute: the
indexing, the tiling and its edge guards, and the shared-memory barriers. A thread runs as far
as it can before the others, so a missing __syncthreads shows up as a wrong result. It also
checks the warp shuffles and the block reductions. One build uses AddressSanitizer and UBSan, so
any read or write outside a buffer fails. Speed, coalescing and the hardware's own behaviour are
left to the @pytest.mark.gpu tests in test_cuda_kernels.py, which need a device.

Each launch ``kernel<<<grid, block, shmem, stream>>>(args)`` is rewritten into a call of the
emulator (see ``rewrite_launches``), and the sources are compiled with g++ against the emulated
``cuda_runtime.h``.
"""

import ctypes
import os
import re
import shutil
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
EMULATOR = Path(__file__).resolve().parent / "cuda_emulator"
CXX = os.environ.get("CXX") or shutil.which("g++") or shutil.which("c++")
pytestmark = pytest.mark.skipif(CXX is None or not sys.platform.startswith("linux"),
                                reason="the emulation needs a C++ compiler and Linux ucontext")

LAUNCH = re.compile(r"([A-Za-z_][\w:]*(?:<[^<>;()]*>)?)\s*<<<(.*?)>>>\s*\(\s*(\)?)")
DTYPES = [np.float32, np.float64]
VARIANTS = [(False, False), (True, False), (False, True), (True, True)]
VARIANT_IDS = ["AB", "AtB", "ABt", "AtBt"]


def rewrite_launches(source: str) -> tuple[str, int]:
    """``k<<<g, b, s, st>>>(x, y)`` -> ``::cuda_emulator::launch(g, b, s, st).run(k, x, y)``."""
    def launch(match):
        kernel, config, no_args = match.groups()
        return f"::cuda_emulator::launch({config}).run({kernel}" + (")" if no_args else ", ")
    return LAUNCH.subn(launch, source)


def rewritten_sources(out_dir: Path, edit=None) -> list[Path]:
    """csrc/cuda/*.cu with their launches rewritten, as out_dir/NAME (common.cuh copied beside
    them, so a generated program's ``#include "gemm.cu"`` finds the rewritten one)."""
    written = []
    for cu in sorted((ROOT / "csrc" / "cuda").glob("*.cu")):
        text, launches = rewrite_launches(cu.read_text())
        assert launches > 0, f"{cu.name}: no kernel launch found to rewrite"
        if edit is not None:
            text = edit(cu.name, text)
        (out_dir / cu.name).write_text(text)
        written.append(out_dir / cu.name)
    shutil.copy(ROOT / "csrc" / "cuda" / "common.cuh", out_dir / "common.cuh")
    return written


def compile_emulated(sources, lib: Path, include: Path, sanitize: bool = False) -> Path:
    cmd = [CXX, "-std=c++20", "-O1", "-g", "-fPIC", "-shared", "-Wall", "-Wno-unknown-pragmas",
           f"-I{include}", f"-I{EMULATOR}", f"-I{ROOT / 'csrc' / 'include'}",
           "-include", str(EMULATOR / "cuda_runtime.h"), "-x", "c++", *map(str, sources), "-o", str(lib)]
    if sanitize:
        cmd[1:1] = ["-fsanitize=address,undefined", "-fno-omit-frame-pointer", "-fno-sanitize-recover=all"]
    done = subprocess.run(cmd, check=False, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, f"emulated build failed:\n{' '.join(cmd)}\n{done.stderr[-3000:]}"
    return lib


def build(out_dir: Path, sanitize: bool = False, edit=None) -> Path:
    """The shared library of csrc/cuda/*.cu + shim.cpp on the emulated runtime. ``edit(name, text)``
    may change a source first (the tests that show a broken kernel is caught)."""
    sources = rewritten_sources(out_dir, edit) + [EMULATOR / "shim.cpp"]
    lib = out_dir / ("libcuda_emulated_asan.so" if sanitize else "libcuda_emulated.so")
    return compile_emulated(sources, lib, out_dir, sanitize)


class Kernels:
    """ctypes calls into the emulated library; a kernel error becomes RuntimeError."""

    def __init__(self, path):
        self.lib = ctypes.CDLL(str(path))
        self.error = ctypes.create_string_buffer(512)

    def _call(self, name, dtype, *args):
        fn = getattr(self.lib, f"emu_{name}_{'f32' if dtype == np.float32 else 'f64'}")
        scalar = ctypes.c_float if dtype == np.float32 else ctypes.c_double
        conv = [a.ctypes.data_as(ctypes.c_void_p) if isinstance(a, np.ndarray)
                else scalar(a) if isinstance(a, float) else ctypes.c_int64(a) for a in args]
        if fn(self.error, ctypes.c_int64(len(self.error)), *conv) != 0:
            raise RuntimeError(self.error.value.decode())

    def gemm(self, a, b, ta=False, tb=False, alpha=1.0, beta=0.0, c=None):
        m, k = (a.shape[1], a.shape[0]) if ta else a.shape
        n = b.shape[0] if tb else b.shape[1]
        c = np.zeros((m, n), a.dtype) if c is None else c
        fn = getattr(self.lib, f"emu_gemm_{'f32' if a.dtype == np.float32 else 'f64'}")
        scalar = ctypes.c_float if a.dtype == np.float32 else ctypes.c_double
        def p(x):
            return x.ctypes.data_as(ctypes.c_void_p)

        i64 = ctypes.c_int64
        if fn(self.error, i64(512), int(ta), int(tb), i64(m), i64(n), i64(k), scalar(alpha), p(a), p(b),
              scalar(beta), p(c)) != 0:
            raise RuntimeError(self.error.value.decode())
        return c

    def reduce(self, name, x, axis):
        x = np.ascontiguousarray(x)
        outer, n, inner = int(np.prod(x.shape[:axis])), x.shape[axis], int(np.prod(x.shape[axis + 1:]))
        out = np.empty(x.shape[:axis] + x.shape[axis + 1:], x.dtype)
        self._call(name, x.dtype, x, out, outer, n, inner)
        return out

    def rows(self, name, x):
        rows, n = x.shape
        out = np.empty((rows,) if name == "logsumexp_rows" else (rows, n), x.dtype)
        self._call(name, x.dtype, np.ascontiguousarray(x), out, rows, n)
        return out


@pytest.fixture(scope="module")
def emulated(tmp_path_factory):
    return Kernels(build(tmp_path_factory.mktemp("cuda_emulated")))


def _check_gemm(got, a, b, ta, tb, alpha=1.0, beta=0.0, c0=None):
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    opa, opb = (a64.T if ta else a64), (b64.T if tb else b64)
    ref, bound = alpha * (opa @ opb), abs(alpha) * (np.abs(opa) @ np.abs(opb))
    if c0 is not None and beta != 0:
        ref, bound = ref + beta * c0, bound + abs(beta) * np.abs(c0.astype(np.float64))
    tol = (opa.shape[1] + 2) * np.finfo(a.dtype).eps * bound + np.finfo(a.dtype).tiny
    err = np.abs(got.astype(np.float64) - ref)
    assert np.all(err <= tol), f"max error {err.max():.3g}, worst ratio {(err / tol).max():.3g}"


# m, n, k around the 64 x 64 x 16 block tile: one element, partial tiles, several K steps
SHAPES = [(1, 1, 1), (7, 65, 33), (64, 64, 16), (65, 130, 17), (130, 3, 80)]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("ta,tb", VARIANTS, ids=VARIANT_IDS)
@pytest.mark.parametrize("m,n,k", SHAPES)
def test_gemm_matches_numpy(emulated, m, n, k, ta, tb, dtype):
    rng = np.random.default_rng(m * 1009 + n * 31 + k)
    a = rng.standard_normal((k, m) if ta else (m, k)).astype(dtype)
    b = rng.standard_normal((n, k) if tb else (k, n)).astype(dtype)
    _check_gemm(emulated.gemm(a, b, ta, tb), a, b, ta, tb)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("alpha,beta", [(0.5, -2.0), (-1.0, 1.0), (2.0, 0.0)])
def test_gemm_alpha_beta_and_c_unread_when_beta_is_zero(emulated, alpha, beta, dtype):
    rng = np.random.default_rng(5)
    a, b = rng.standard_normal((70, 20)).astype(dtype), rng.standard_normal((20, 66)).astype(dtype)
    c0 = rng.standard_normal((70, 66)).astype(dtype)
    c = np.full_like(c0, np.nan) if beta == 0 else c0.copy()
    _check_gemm(emulated.gemm(a, b, alpha=alpha, beta=beta, c=c), a, b, False, False, alpha, beta, c0)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape,axis", [((5, 300, 3), 1), ((4, 7), 0), ((3, 1000), 1), ((2, 1, 9), 1), ((33,), 0)])
def test_reductions_match_numpy(emulated, shape, axis, dtype):
    x = np.random.default_rng(len(shape) * 7 + axis).standard_normal(shape).astype(dtype)
    x64 = x.astype(np.float64)
    tol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(emulated.reduce("sum_axis", x, axis), x64.sum(axis), rtol=tol, atol=tol * shape[axis])
    np.testing.assert_allclose(emulated.reduce("mean_axis", x, axis), x64.mean(axis), rtol=tol, atol=tol)
    np.testing.assert_array_equal(emulated.reduce("max_axis", x, axis), x.max(axis))


def test_max_propagates_nan_and_sees_infinities(emulated):
    x = np.zeros((3, 600))
    x[0, 517] = np.nan
    x[1, 3] = np.inf
    x[2, :] = -np.inf
    np.testing.assert_array_equal(emulated.reduce("max_axis", x, 1), [np.nan, np.inf, -np.inf])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n", [1, 31, 32, 257, 1000])
def test_row_functions_match_numpy_at_extreme_values(emulated, n, dtype):
    rng = np.random.default_rng(n)
    x = rng.standard_normal((4, n)) * np.array([[1.0], [1e4], [-1e4], [30.0]])
    x = x.astype(dtype)
    x64 = x.astype(np.float64)
    shift = x64.max(axis=1, keepdims=True)
    lse = shift[:, 0] + np.log(np.exp(x64 - shift).sum(axis=1))
    tol = 2e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(emulated.rows("logsumexp_rows", x), lse, rtol=tol)
    np.testing.assert_allclose(emulated.rows("log_softmax_rows", x), x64 - lse[:, None], rtol=tol, atol=tol * 10)
    np.testing.assert_allclose(emulated.rows("softmax_rows", x), np.exp(x64 - lse[:, None]), rtol=tol, atol=1e-30)


def test_logsumexp_of_an_all_minus_inf_row_is_minus_inf(emulated):
    x = np.array([[-np.inf] * 40, [0.0] * 40])
    np.testing.assert_array_equal(emulated.rows("logsumexp_rows", x), [-np.inf, np.log(40.0)])


def test_a_missing_barrier_is_caught(tmp_path):
    # The emulation must be able to fail: without the barrier between loading the shared tiles
    # and using them, a thread computes with tiles the others have not filled yet.
    def drop_first_barrier(name, text):
        return text.replace("    __syncthreads();\n", "", 1) if name == "gemm.cu" else text
    broken = Kernels(build(tmp_path, edit=drop_first_barrier))
    rng = np.random.default_rng(1)
    a, b = rng.standard_normal((7, 65)), rng.standard_normal((65, 33))
    assert not np.allclose(broken.gemm(a, b), a @ b)


def test_barriers_that_cannot_open_are_an_error_not_a_hang(tmp_path):
    # Odd lanes wait at a block barrier while even lanes wait at their warp's shuffle: neither
    # barrier can open (on a GPU this is undefined behaviour, often a hang).
    def diverge(name, text):
        if name != "reduce.cu":
            return text
        return text.replace("  acc = detail::block_sum(acc, scratch);",
                            "  if (threadIdx.x % 2) __syncthreads();\n  acc = detail::block_sum(acc, scratch);", 1)
    broken = Kernels(build(tmp_path, edit=diverge))
    with pytest.raises(RuntimeError, match="barriers that cannot open"):
        broken.reduce("sum_axis", np.ones((2, 50)), 1)


ASAN_SCRIPT = textwrap.dedent("""
    import sys
    import numpy as np
    sys.path.insert(0, {tests!r})
    from test_cuda_emulated import Kernels, _check_gemm
    k = Kernels({lib!r})
    rng = np.random.default_rng(0)
    for dtype in (np.float32, np.float64):
        for m, n, k_ in [(1, 1, 1), (7, 65, 33), (65, 130, 17), (130, 3, 80)]:
            for ta in (False, True):
                for tb in (False, True):
                    a = rng.standard_normal((k_, m) if ta else (m, k_)).astype(dtype)
                    b = rng.standard_normal((n, k_) if tb else (k_, n)).astype(dtype)
                    _check_gemm(k.gemm(a, b, ta, tb), a, b, ta, tb)
        x = rng.standard_normal((3, 37, 4)).astype(dtype)  # 148, 12 and 111 blocks of 256 threads
        for axis in (0, 1, 2):
            for name in ("sum_axis", "mean_axis", "max_axis"):
                k.reduce(name, x, axis)
        for name in ("softmax_rows", "log_softmax_rows", "logsumexp_rows"):
            k.rows(name, rng.standard_normal((3, 300)).astype(dtype))
    print("emulated kernels ok")
""")


def _sanitizer_runtime():
    libs = []
    for name in ("libasan.so", "libubsan.so"):
        found = subprocess.run([CXX, f"-print-file-name={name}"], check=False, capture_output=True,
                               text=True).stdout.strip()
        if not os.path.isabs(found):
            pytest.skip(f"{CXX} has no {name}")
        libs.append(found)
    return " ".join(libs)


def _run_under_asan(lib, tmp_path):
    script = tmp_path / "run.py"
    script.write_text(ASAN_SCRIPT.format(tests=str(Path(__file__).parent), lib=str(lib)))
    env = dict(os.environ, LD_PRELOAD=_sanitizer_runtime(), ASAN_OPTIONS="detect_leaks=0:abort_on_error=1",
               UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1")
    return subprocess.run([sys.executable, str(script)], check=False, capture_output=True, text=True, env=env,
                          timeout=600)


@pytest.mark.slow
def test_kernels_stay_inside_their_buffers_under_asan(tmp_path):
    done = _run_under_asan(build(tmp_path, sanitize=True), tmp_path)
    assert done.returncode == 0 and "emulated kernels ok" in done.stdout, done.stderr[-3000:]
    assert "AddressSanitizer" not in done.stderr and "runtime error" not in done.stderr, done.stderr[-3000:]


@pytest.mark.slow
def test_asan_catches_a_kernel_reading_past_a_buffer(tmp_path):
    # Drop the row guard of the A tile loads: the last block reads rows of A that do not exist.
    def unguarded(name, text):
        return text.replace("(gi < m && gp < k) ?", "(gp < k) ?", 1) if name == "gemm.cu" else text
    done = _run_under_asan(build(tmp_path, sanitize=True, edit=unguarded), tmp_path)
    assert done.returncode != 0 and "heap-buffer-overflow" in done.stderr, done.stderr[-3000:]


# -- generated programs (sd.compile(backend="cuda")) ---------------------------------------------


def _has_nvcc():
    from symdiff.lowering.compiler import toolchain

    try:
        toolchain.nvcc()  # part of the program cache's key, so the cache needs it even here
        return True
    except toolchain.CompilerNotFound:
        return False


@pytest.fixture(scope="module")
def emulated_programs(tmp_path_factory):
    """sd.compile(backend="cuda") with its builds done by g++ on the emulation, in a private cache
    (an emulated library must never sit where a real nvcc build is looked up)."""
    if not _has_nvcc():
        pytest.skip("the program cache keys CUDA builds by nvcc, which is not installed")
    from symdiff.lowering.compiler import cache

    include = tmp_path_factory.mktemp("cuda_sources")
    rewritten_sources(include)
    real_compile = cache.compile_shared

    def compile_on_emulation(source, kind="cpu", workdir=None):
        if kind != "cuda":
            return real_compile(source, kind, workdir)
        work = Path(tempfile.mkdtemp(prefix="emulated-", dir=workdir))
        text, launches = rewrite_launches(source)
        assert launches > 0, "a generated CUDA program without a launch"
        (work / "program.cu").write_text(text)
        return compile_emulated([work / "program.cu"], work / "program.so", include)

    mp = pytest.MonkeyPatch()
    mp.setenv("SYMDIFF_CACHE_DIR", str(tmp_path_factory.mktemp("emulated_cache")))
    mp.setattr(cache, "compile_shared", compile_on_emulation)
    cache.forget_loaded()
    yield
    mp.undo()
    cache.forget_loaded()


PROGRAM_GRAPHS = ["every_op_float64", "every_op_float32", "softmax_regression_sgd", "mlp_step"]


@pytest.mark.parametrize("graph", PROGRAM_GRAPHS)
def test_generated_programs_equal_the_reference_evaluator(emulated_programs, graph):
    # the graphs and tolerances of test_cuda_program.py's on-device test, run on the emulation
    from symdiff.lowering.programs.cuda import CudaProgram
    from test_cuda_program import GRAPHS, TOL, TRAIN_TOL, assert_equals_the_evaluator

    outputs, inputs, updates, env, dtype = GRAPHS[graph]()
    prog = CudaProgram(outputs, inputs, updates, optimize=not graph.startswith("every_op"))
    tol = (TOL if graph.startswith("every_op") else TRAIN_TOL)[dtype]
    assert_equals_the_evaluator(prog, [env[leaf].copy() for leaf in prog.inputs], tol, f"{graph}: ")


def test_out_of_range_labels_are_an_error_in_a_generated_program(emulated_programs):
    from symdiff.lowering.programs.cuda import CudaProgram
    from test_cuda_program import softmax_regression_sgd

    outputs, inputs, updates, env, _ = softmax_regression_sgd()
    prog = CudaProgram(outputs, inputs, updates)
    arrays = [env[leaf].copy() for leaf in prog.inputs]
    arrays[2][[5, 9]] = [99, -3]
    with pytest.raises(RuntimeError, match="label 99 at flat position 5 is out of range"):
        prog(*arrays)


def test_negative_integer_exponents_are_an_error_in_a_generated_program(emulated_programs):
    from symdiff.lowering.programs.cuda import CudaProgram

    import symdiff as sd

    y, k = sd.tensor("y", (4,), "int64"), sd.tensor("k", (4,), "int64")
    prog = CudaProgram([y ** k], [y, k])
    np.testing.assert_array_equal(prog(np.array([2, 3, 4, 5]), np.array([0, 1, 2, 3]))[0], [1, 3, 16, 125])
    with pytest.raises(ValueError, match="negative integer powers are not allowed; the exponent -2 at flat position 2"):
        prog(np.array([2, 3, 4, 5]), np.array([0, 1, -2, 3]))


def _batch_step(dtype):
    """mlp_step with a symbolic batch: one CUDA program for every batch size."""
    import symdiff as sd

    X, y = sd.tensor("X", ("m", 40), dtype), sd.tensor("y", ("m",), "int64")
    W1, b1 = sd.tensor("W1", (40, 300), dtype), sd.tensor("b1", (300,), dtype)
    W2, b2 = sd.tensor("W2", (300, 10), dtype), sd.tensor("b2", (10,), dtype)
    params = [W1, b1, W2, b2]
    loss = sd.softmax_cross_entropy(sd.relu(X @ W1 + b1) @ W2 + b2, y)
    grads = sd.grad(loss, params)
    outputs = [loss, sd.sum(X, axis=0), sd.softmax(X @ W1, axis=0)]  # batch-axis reductions too
    return outputs, [X, y, *params], {p: p - 0.05 * g for p, g in zip(params, grads)}


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_a_generated_program_with_a_run_time_batch_serves_every_size(emulated_programs, dtype):
    from symdiff.lowering.programs.cuda import CudaProgram
    from test_cuda_program import TRAIN_TOL, assert_equals_the_evaluator

    outputs, inputs, updates = _batch_step(dtype)
    prog = CudaProgram(outputs, inputs, updates)
    for m in (128, 37, 1, 300):  # 300 grows the device pool past the first sizes'
        rng = np.random.default_rng(m)
        arrays = [rng.standard_normal((m, 40)).astype(dtype), rng.integers(0, 10, m)]
        arrays += [(0.2 * rng.standard_normal(p.shape)).astype(dtype) for p in inputs[2:]]
        assert_equals_the_evaluator(prog, arrays, TRAIN_TOL[dtype], f"m={m}: ")
    assert prog.libraries == 1 and prog.specialized_because is None, prog.specialized_because
    assert "symdiff_blocks(" in prog.source and "const int64_t D0" in prog.source


# -- convolutions and pooling (the LeNet-like step is in test_conv_cuda_emulated.py) -------------


WINDOW_KINDS = ("conv2d", "max_pool2d", "max_pool2d_scatter", "avg_pool2d", "avg_pool2d_scatter")


def _window_cases(dtype):
    """Every registry case of an op with a convolution or pooling kernel, in one program, its
    symbolic batches kept symbolic (a run-time N): (outputs, inputs, {id(leaf): shape in N})."""
    import symdiff as sd
    from symdiff.ops.registry import OPS
    from symdiff.testing import cases

    outputs, inputs, shape_at = [], [], {}
    for k, case in enumerate(c for c in cases() if getattr(OPS.get(c.op), "kernel", None) in WINDOW_KINDS):
        leaves = [sd.tensor(f"c{k}_a{i}", spec.shape, dtype) for i, spec in enumerate(case.inputs)]
        outputs.append(case.build(*leaves))
        inputs += leaves
        shape_at.update({id(leaf): tuple(spec.shape) for leaf, spec in zip(leaves, case.inputs)})
    return outputs, inputs, shape_at


@pytest.mark.parametrize("dtype", ["float32"])  # float64: test_conv_cuda_emulated.py's bounds test
def test_conv_and_pool_cases_with_a_run_time_batch_equal_the_evaluator(emulated_programs, dtype):
    from symdiff.lowering.programs.cuda import CudaProgram
    from test_cuda_program import TOL, assert_equals_the_evaluator

    outputs, inputs, shape_at = _window_cases(dtype)
    prog = CudaProgram(outputs, inputs, optimize=False)
    for n in (3, 1, 6):
        rng = np.random.default_rng(n)
        arrays = [rng.standard_normal(tuple(n if str(d) == "N" else d for d in shape_at[id(leaf)])).astype(dtype)
                  for leaf in inputs]
        assert_equals_the_evaluator(prog, arrays, TOL[dtype], f"N={n}: ")
    assert prog.libraries == 1 and prog.specialized_because is None, prog.specialized_because


def test_max_pool_ties_infinities_and_nans_route_like_the_evaluator(emulated_programs):
    # the first maximum of each window (row-major) takes the tangent and the cotangent; a NaN is
    # the maximum; a window of -inf whose first place is padding passes nothing on
    from symdiff.lowering.programs.cuda import CudaProgram
    from test_cuda_program import TOL, assert_equals_the_evaluator

    import symdiff as sd

    X, T = sd.tensor("X", ("N", 2, 5, 4)), sd.tensor("T", ("N", 2, 5, 4))
    C = sd.tensor("C", ("N", 2, 3, 5))
    pool = sd.max_pool2d(X, (3, 2), stride=(2, 1), padding=1)
    (scattered,) = sd.grad(sd.sum(pool * C), [X])
    gathered = sd.jvp(pool, [X], [T])
    prog = CudaProgram([pool, scattered, gathered], [X, T, C], optimize=False)
    assert "max_pool2d_scatter" in str(scattered) and "max_pool2d_gather" in str(gathered)
    rng = np.random.default_rng(0)
    x = rng.integers(-1, 2, (4, 2, 5, 4)).astype(np.float64)  # ties in nearly every window
    x[0, 0, :2, :2] = -np.inf
    x[1, 1, 2, 1] = np.nan
    x[2] = 1.0
    arrays = [x, rng.standard_normal((4, 2, 5, 4)), rng.standard_normal((4, 2, 3, 5))]
    assert_equals_the_evaluator(prog, arrays, TOL["float64"])
