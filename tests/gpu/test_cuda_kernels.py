"""The CUDA kernels against float64 numpy references (marked gpu: skipped without a device), and,
on every machine, the build flag, the errors raised without CUDA or without a device, the argument
checks that come before any CUDA call, and nvcc compiling each csrc/cuda/*.cu.

A build configured with ``-Cmake.define.SYMDIFF_CUDA=OFF`` is tested with ``SYMDIFF_CUDA=OFF`` in
the environment, so the build-flag test knows not to expect CUDA although nvcc is installed.
"""

import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from symdiff.lowering import _native, cuda

ROOT = Path(__file__).resolve().parents[2]
INFO = cuda.info()
needs_device = pytest.mark.skipif(INFO["device_count"] == 0, reason="no CUDA device")

SIZES = (1, 7, 33, 65, 127, 1000)
# Each size as m, as n and as k, paired with other sizes so the suite stays fast.
SHAPES = [(s, SIZES[(i + 2) % 6], SIZES[(i + 4) % 6]) for i, s in enumerate(SIZES)]
SHAPES += [(n, k, m) for (m, n, k) in SHAPES] + [(k, m, n) for (m, n, k) in SHAPES]
VARIANTS = [(False, False), (True, False), (False, True), (True, True)]
VARIANT_IDS = ["AB", "AtB", "ABt", "AtBt"]
DTYPES = [np.float32, np.float64]
ROW_FUNCTIONS = {"softmax": cuda.softmax_rows, "log_softmax": cuda.log_softmax_rows,
                 "logsumexp": cuda.logsumexp_rows}


def _nvcc():
    found = shutil.which("nvcc")
    if found is None and os.path.exists("/usr/local/cuda/bin/nvcc"):
        found = "/usr/local/cuda/bin/nvcc"
    return found


def _check_gemm(got, a, b, ta, tb, alpha=1.0, beta=0.0, c0=None):
    """|got - exact| within (k + 2) * eps * (|alpha| |A||B| + |beta| |C|), as in tests/lowering/test_gemm.py."""
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    opa, opb = (a64.T if ta else a64), (b64.T if tb else b64)
    ref = alpha * (opa @ opb)
    bound = abs(alpha) * (np.abs(opa) @ np.abs(opb))
    if c0 is not None and beta != 0:
        ref = ref + beta * c0.astype(np.float64)
        bound = bound + abs(beta) * np.abs(c0.astype(np.float64))
    eps = np.finfo(a.dtype).eps
    assert got.shape == ref.shape and got.dtype == a.dtype
    err = np.abs(got.astype(np.float64) - ref)
    tol = (opa.shape[1] + 2) * eps * bound + np.finfo(a.dtype).tiny
    assert np.all(err <= tol), f"max error {err.max():.3g}, worst ratio {(err / tol).max():.3g}"


def _operands(rng, m, n, k, ta, tb, dtype):
    a = rng.standard_normal((k, m) if ta else (m, k)).astype(dtype)
    b = rng.standard_normal((n, k) if tb else (k, n)).astype(dtype)
    return a, b


@pytest.mark.gpu
@needs_device
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("ta,tb", VARIANTS, ids=VARIANT_IDS)
@pytest.mark.parametrize("m,n,k", SHAPES)
def test_gemm_sizes_and_transposes_match_numpy(m, n, k, ta, tb, dtype):
    rng = np.random.default_rng(m * 10007 + n * 101 + k)
    a, b = _operands(rng, m, n, k, ta, tb, dtype)
    _check_gemm(cuda.gemm(a, b, trans_a=ta, trans_b=tb), a, b, ta, tb)


@pytest.mark.gpu
@needs_device
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("ta,tb", VARIANTS, ids=VARIANT_IDS)
@pytest.mark.parametrize("alpha,beta", [(1.0, 1.0), (-0.5, 2.0), (3.0, 0.0), (0.0, -1.0)])
def test_gemm_alpha_beta_write_into_c(alpha, beta, ta, tb, dtype):
    rng = np.random.default_rng(7)
    m, n, k = 65, 33, 127
    a, b = _operands(rng, m, n, k, ta, tb, dtype)
    c0 = rng.standard_normal((m, n)).astype(dtype)
    c = c0.copy()
    got = cuda.gemm(a, b, c, trans_a=ta, trans_b=tb, alpha=alpha, beta=beta)
    assert got is c
    _check_gemm(c, a, b, ta, tb, alpha, beta, c0)


@pytest.mark.gpu
@needs_device
@pytest.mark.parametrize("dtype", DTYPES)
def test_gemm_does_not_read_c_when_beta_is_zero(dtype):
    a = np.ones((7, 33), dtype)
    c = np.full((7, 1), np.nan, dtype)
    cuda.gemm(a, np.ones((33, 1), dtype), c, beta=0.0)
    assert np.array_equal(c, np.full((7, 1), 33, dtype))


REDUCE_SHAPES = [(1,), (7,), (1000,), (33, 65), (127, 1, 7), (2, 1000, 3), (3, 5, 7, 2)]


@pytest.mark.gpu
@needs_device
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", REDUCE_SHAPES, ids=str)
def test_max_and_mean_on_every_axis_match_numpy(shape, dtype):
    a = np.random.default_rng(len(shape)).standard_normal(shape).astype(dtype)
    for axis in range(-a.ndim, a.ndim):
        for keepdims in (False, True):
            got = cuda.max_axis(a, axis, keepdims=keepdims)
            assert got.dtype == dtype
            assert np.array_equal(got, a.max(axis=axis, keepdims=keepdims))  # max is exact
            got = cuda.mean_axis(a, axis, keepdims=keepdims)
            want = a.astype(np.float64).mean(axis=axis, keepdims=keepdims)
            assert got.dtype == dtype and got.shape == want.shape
            tol = {"rtol": 1e-6, "atol": 1e-6} if dtype == np.float32 else {"rtol": 1e-12, "atol": 1e-14}
            np.testing.assert_allclose(got, want, **tol)


@pytest.mark.gpu
@needs_device
@pytest.mark.parametrize("dtype", DTYPES)
def test_max_propagates_nan_and_sees_infinities(dtype):
    a = np.zeros((3, 1000), dtype)
    a[0, 500] = np.nan
    a[1, :] = -np.inf
    a[2, 999] = np.inf
    got = cuda.max_axis(a, 1)
    assert np.isnan(got[0]) and got[1] == -np.inf and got[2] == np.inf


def _reference(name, x):
    """float64 softmax / log_softmax / logsumexp along the last axis, shifted by the finite row max."""
    x = x.astype(np.float64)
    top = x.max(axis=-1, keepdims=True) if x.shape[-1] else np.zeros(x.shape[:-1] + (1,))
    shift = np.where(np.isfinite(top), top, 0.0)
    total = np.exp(x - shift).sum(axis=-1, keepdims=True)
    if name == "softmax":
        return np.exp(x - shift) / total
    if name == "log_softmax":
        return x - shift - np.log(total)
    return (shift + np.log(total))[..., 0]


def _check_rows(name, x):
    got = ROW_FUNCTIONS[name](x)
    want = _reference(name, x)
    assert got.dtype == x.dtype and got.shape == want.shape
    # Error model: (x - shift) is rounded (eps |x - shift|, which exp turns into a relative error),
    # the n-term sum carries up to about n eps relative error, the log adds that much absolutely.
    eps, n = np.finfo(x.dtype).eps, x.shape[-1]
    x64 = x.astype(np.float64)
    top = np.max(np.where(np.isfinite(x64), x64, -np.inf), axis=-1, keepdims=True) if n else 0.0
    spread = np.where(np.isfinite(x64), np.abs(x64 - np.where(np.isfinite(top), top, 0.0)), 0.0)
    if name == "softmax":
        tol = eps * (n + 8 + spread) * np.abs(want) + np.finfo(x.dtype).tiny * 1e6
    elif name == "log_softmax":
        tol = eps * (n + 8 + spread + np.abs(want))
    else:
        tol = eps * (n + 8 + np.where(np.isfinite(want), np.abs(want), 0.0))
    same = (got == want) | (np.abs(got.astype(np.float64) - want) <= tol)  # == also covers ±inf
    assert same.all(), f"{name}: worst at {np.argwhere(~same)[:3].tolist()}: got {got[~same][:3]}, want {want[~same][:3]}"


@pytest.mark.gpu
@needs_device
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", ROW_FUNCTIONS)
@pytest.mark.parametrize("n", SIZES)
@pytest.mark.parametrize("scale", [1.0, 30.0, 1e4])
def test_row_functions_match_numpy(n, name, dtype, scale):
    rows = 33
    x = (np.random.default_rng(n).standard_normal((rows, n)) * scale).astype(dtype)
    x[0] = 1e4  # a constant row at the extremes: softmax 1/n, no overflow
    x[1] = -1e4
    if n > 1:
        x[2, 0] = 1e4  # one huge entry next to ordinary ones
        x[3, 1:] = -np.inf  # masked entries, as in attention
    _check_rows(name, x)


@pytest.mark.gpu
@needs_device
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", ROW_FUNCTIONS)
def test_row_functions_on_other_ranks(name, dtype):
    rng = np.random.default_rng(3)
    for shape in [(1000,), (2, 7, 65), (1, 1, 1)]:
        _check_rows(name, rng.standard_normal(shape).astype(dtype))


@pytest.mark.gpu
@needs_device
def test_logsumexp_of_an_empty_or_all_minus_inf_row_is_minus_inf():
    assert cuda.logsumexp_rows(np.zeros((2, 0))).tolist() == [-np.inf, -np.inf]
    assert cuda.logsumexp_rows(np.full((1, 7), -np.inf, np.float32)).tolist() == [-np.inf]


# ---- these run on every machine --------------------------------------------------------------

def test_the_kernels_are_built_when_nvcc_exists():
    if os.environ.get("SYMDIFF_CUDA", "").upper() == "OFF":
        assert not INFO["built"] and INFO["device_count"] == 0
    elif shutil.which("nvcc") or os.environ.get("CUDACXX"):
        assert INFO["built"], "nvcc is on PATH but the extension was built without CUDA"
    else:
        pytest.skip("nvcc is not on PATH: a build without CUDA is expected")


VALID_CALLS = {
    "cuda_gemm": lambda: cuda.gemm(np.ones((2, 3)), np.ones((3, 4))),
    "cuda_max_axis": lambda: cuda.max_axis(np.ones((2, 3)), 1),
    "cuda_mean_axis": lambda: cuda.mean_axis(np.ones((2, 3), np.float32), 0),
    "cuda_softmax_rows": lambda: cuda.softmax_rows(np.ones((2, 3))),
    "cuda_log_softmax_rows": lambda: cuda.log_softmax_rows(np.ones((2, 3))),
    "cuda_logsumexp_rows": lambda: cuda.logsumexp_rows(np.ones((2, 3))),
}


@pytest.mark.skipif(INFO["device_count"] > 0, reason="a CUDA device is present")
@pytest.mark.parametrize("name", VALID_CALLS)
def test_without_a_device_each_function_says_why(name):
    if INFO["built"]:
        match = f"^{name}: no CUDA device is available$"
    else:
        match = rf"^{name}: symdiff was built without CUDA \(nvcc was not found\)$"
    with pytest.raises(RuntimeError, match=match):
        VALID_CALLS[name]()


f32, f64 = np.ones((3, 3), np.float32), np.ones((3, 3))
read_only = np.ones((3, 3))
read_only.flags.writeable = False
gemm_ = _native.cuda_gemm  # the private module: these test the C++ checks
BAD_CALLS = [  # (call, error, message)
    (lambda: gemm_(np.ones((2, 3), np.int64), f64), TypeError, r"cuda_gemm\(a\): expected float32 or float64, got int64"),
    (lambda: gemm_(f64, f32), TypeError, r"cuda_gemm\(b\): dtype float32 does not match a's float64"),
    (lambda: gemm_(f64.T[:, :2], f64), ValueError, r"cuda_gemm\(a\): .*C-contiguous"),
    (lambda: gemm_(f64, f64[:, ::2]), ValueError, r"cuda_gemm\(b\): .*C-contiguous"),
    (lambda: gemm_(np.ones(3), f64), ValueError, r"cuda_gemm\(a\): expected a 2-D array, got shape \(3,\)"),
    (lambda: gemm_(f64, np.ones((4, 2))), ValueError, r"cuda_gemm\(b\): inner dimensions differ"),
    (lambda: gemm_(f64, np.ones((2, 3)), trans_b=False), ValueError, r"cuda_gemm\(b\): inner"),
    (lambda: gemm_(f64, f64, np.ones((3, 4))), ValueError, r"cuda_gemm\(c\): expected shape \(3, 3\), got \(3, 4\)"),
    (lambda: gemm_(f64, f64, f32.copy()), TypeError, r"cuda_gemm\(c\): dtype float32 does not match"),
    (lambda: gemm_(f64, f64, np.ones((3, 6))[:, ::2]), ValueError, r"cuda_gemm\(c\): .*C-contiguous"),
    (lambda: gemm_(f64, f64, np.broadcast_to(1.0, (3, 3))), ValueError, r"cuda_gemm\(c\)"),
    (lambda: gemm_(f64, f64, read_only), ValueError, r"cuda_gemm\(c\): the array is read-only"),
    (lambda: gemm_(f64, f64, "c"), TypeError, r"cuda_gemm\(c\): expected a numpy array or None"),
    (lambda: _native.cuda_max_axis(np.arange(3), 0), TypeError, r"cuda_max_axis\(a\): expected float32 or float64"),
    (lambda: _native.cuda_max_axis(f64, 2), ValueError, r"cuda_max_axis\(axis\): axis 2 is out of range"),
    (lambda: _native.cuda_max_axis(np.ones((2, 0)), 1), ValueError, r"cuda_max_axis\(a\): axis 1 has size 0"),
    (lambda: _native.cuda_max_axis(np.array(1.0), 0), ValueError, r"cuda_max_axis\(a\): needs at least one"),
    (lambda: _native.cuda_mean_axis(f64[:, ::2], 0), ValueError, r"cuda_mean_axis\(a\): .*C-contiguous"),
    (lambda: _native.cuda_mean_axis(f64, -3), ValueError, r"cuda_mean_axis\(axis\): axis -3 is out of range"),
    (lambda: _native.cuda_softmax_rows(np.ones(3, np.float16)), TypeError, r"cuda_softmax_rows\(a\): .*got float16"),
    (lambda: _native.cuda_log_softmax_rows(f64[::2]), ValueError, r"cuda_log_softmax_rows\(a\): .*C-contiguous"),
    (lambda: _native.cuda_logsumexp_rows(np.array(1.0)), ValueError, r"cuda_logsumexp_rows\(a\): needs at least one"),
    (lambda: cuda.gemm([[1.0]], f64), TypeError, r"cuda_gemm\(a\): expected a numpy array, got list"),
    (lambda: cuda.gemm(f64, f64, [[1.0]]), TypeError, r"cuda_gemm\(c\): expected a numpy array"),
    (lambda: cuda.max_axis(f64, 1.5), TypeError, r"cuda_max_axis\(axis\): expected an int"),
    (lambda: cuda.softmax_rows((1.0, 2.0)), TypeError, r"cuda_softmax_rows\(a\): expected a numpy array"),
]


@pytest.mark.parametrize("call,error,match", BAD_CALLS)
def test_bad_arguments_raise_before_any_cuda_call(call, error, match):
    # A RuntimeError (no CUDA / no device) here would mean CUDA was reached before the check.
    with pytest.raises(error, match=match):
        call()


@pytest.mark.parametrize("source", sorted(p.name for p in (ROOT / "csrc" / "cuda").glob("*.cu")))
def test_each_cuda_source_compiles_with_nvcc(source, tmp_path):
    nvcc = _nvcc()
    if nvcc is None:
        pytest.skip("nvcc is not on PATH or in /usr/local/cuda/bin")
    cmd = [nvcc, "-c", "-std=c++17", "-I", str(ROOT / "csrc" / "include"), str(ROOT / "csrc" / "cuda" / source),
           "-o", str(tmp_path / (source + ".o"))]
    done = subprocess.run(cmd, check=False, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / (source + ".o")).stat().st_size > 0
