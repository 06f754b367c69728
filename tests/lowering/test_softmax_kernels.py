"""The row-wise softmax kernels (csrc/include/symdiff/cpu/softmax.hpp) against float64 numpy references.

float32 results are compared with the float64 reference computed from the same float32 inputs.
"""

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from symdiff.lowering import _native, native, softmax

SIZES = (1, 2, 3, 7, 17, 33, 65, 127, 255, 1000)
DTYPES = [np.float32, np.float64]
ISAS = ["baseline"] + (["avx2"] if native.cpu_features()["avx2"] and native.cpu_features()["fma"] else [])
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(params=ISAS)
def isa(request):
    softmax.set_softmax_isa(request.param)
    yield request.param
    softmax.set_softmax_isa("auto")


# ---------------------------------------------------------------- float64 references
def _stats(x):
    x = x.astype(np.float64)
    m = x.max(axis=-1, keepdims=True)
    shift = np.where(np.isfinite(m), m, 0.0)
    with np.errstate(invalid="ignore"):
        s = np.exp(x - shift).sum(axis=-1, keepdims=True)
    return x, shift, s


def ref_softmax(x):
    x, shift, s = _stats(x)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.exp(x - shift) / s


def ref_log_softmax(x):
    x, shift, s = _stats(x)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (x - shift) - np.log(s)


def ref_logsumexp(x, keepdims=False):
    _, shift, s = _stats(x)
    with np.errstate(divide="ignore"):
        out = shift + np.log(s)
    return out if keepdims else out[..., 0]


def tol(dtype, atol32=1e-6, atol64=1e-300):
    return {"rtol": 1e-5, "atol": atol32} if dtype == np.float32 else {"rtol": 1e-12, "atol": atol64}


# log-domain outputs near 0 are -log(sum) with sum ~ 1: an ulp of the sum is ~1e-16 absolute there
LOG_ATOL64 = 1e-14


def _check_forward(x):
    dt = x.dtype
    y = softmax.softmax_rows(x)
    assert y.dtype == dt and y.shape == x.shape
    np.testing.assert_allclose(y, ref_softmax(x), **tol(dt, atol32=1e-37))
    ly = softmax.log_softmax_rows(x)
    assert ly.dtype == dt and ly.shape == x.shape
    np.testing.assert_allclose(ly, ref_log_softmax(x), **tol(dt, atol64=LOG_ATOL64))
    for keepdims in (False, True):
        lse = softmax.logsumexp_rows(x, keepdims=keepdims)
        want = ref_logsumexp(x, keepdims)
        assert lse.dtype == dt and lse.shape == want.shape
        np.testing.assert_allclose(lse, want, **tol(dt, atol32=1e-5, atol64=LOG_ATOL64))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n", SIZES)
def test_forward_matches_numpy_for_odd_sizes_and_ranks(dtype, n, threads, isa):
    rng = np.random.default_rng(n)
    for lead in ((), (3,), (2, 5)):
        _check_forward((rng.standard_normal((*lead, n)) * 3).astype(dtype))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(1, 1), (4, 3000), (300, 65), (2, 3, 1025), (70, 257)])
def test_rows_longer_than_a_block_and_many_rows(dtype, shape, threads, isa):
    x = (np.random.default_rng(7).standard_normal(shape) * 10).astype(dtype)
    x[..., -1] += 30  # the max late in the row forces the running sum to be rescaled
    _check_forward(x)


@pytest.mark.parametrize("dtype", DTYPES)
def test_extreme_values_neither_overflow_nor_make_nan(dtype, isa):
    x = np.array([[1e4, -1e4, 1e4 - 1, 0.0],
                  [-1e4, -1e4, -1e4, -1e4 + 2],
                  [-np.inf, -np.inf, 5.0, -np.inf],
                  [-np.inf, -np.inf, -np.inf, -1e4]], dtype)
    y = softmax.softmax_rows(x)
    assert np.isfinite(y).all()
    np.testing.assert_allclose(y[2:], [[0, 0, 1, 0], [0, 0, 0, 1]], rtol=0, atol=0)
    _check_forward(x)
    ly = softmax.log_softmax_rows(x)
    assert not np.isnan(ly).any() and ly[2, 2] == 0 and ly[3, 3] == 0
    np.testing.assert_array_equal(softmax.logsumexp_rows(x)[2:], np.array([5.0, -1e4], dtype))
    # a long row of -inf with its one finite entry in the second block of the online pass
    row = np.full(3000, -np.inf, dtype)
    row[2500] = -1e4
    np.testing.assert_array_equal(softmax.softmax_rows(row), (row == -1e4).astype(dtype))


@pytest.mark.parametrize("dtype", DTYPES)
def test_underflowing_entries_round_like_numpy(dtype, isa):
    deep = -740.0 if dtype == np.float64 else -100.0  # below the normal range: subnormal results
    x = np.array([0.0, -20.0, deep, deep - 10, -np.inf], dtype)
    np.testing.assert_allclose(softmax.softmax_rows(x), ref_softmax(x), rtol=1e-5 if dtype == np.float32 else 1e-12,
                               atol=np.finfo(dtype).smallest_subnormal)


@pytest.mark.parametrize("dtype", DTYPES)
def test_special_rows_follow_scipy(dtype):
    x = np.array([[-np.inf, -np.inf], [np.nan, 1.0], [1.0, 2.0]], dtype)
    with np.errstate(invalid="ignore"):
        y, ly, lse = softmax.softmax_rows(x), softmax.log_softmax_rows(x), softmax.logsumexp_rows(x)
    assert lse[0] == -np.inf and np.isnan(y[0]).all() and np.isnan(ly[0]).all()  # all -inf: lse -inf
    assert np.isnan(y[1]).all() and np.isnan(ly[1]).all() and np.isnan(lse[1])  # a NaN poisons its row only
    np.testing.assert_allclose(y[2], ref_softmax(x[2]), **tol(dtype))
    assert softmax.logsumexp_rows(np.zeros((3, 0), dtype)).tolist() == [-np.inf] * 3  # log(0)
    assert softmax.softmax_rows(np.zeros((0, 5), dtype)).shape == (0, 5)


# ---------------------------------------------------------------- vjps
def ref_softmax_vjp(y, g):
    y, g = y.astype(np.float64), g.astype(np.float64)
    return y * (g - (g * y).sum(axis=-1, keepdims=True))


def ref_log_softmax_vjp(y, g):
    y, g = y.astype(np.float64), g.astype(np.float64)
    return g - np.exp(y) * g.sum(axis=-1, keepdims=True)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n", SIZES)
def test_vjps_match_numpy(dtype, n, threads, isa):
    rng = np.random.default_rng(100 + n)
    for lead in ((), (3,), (2, 5)):
        x = (rng.standard_normal((*lead, n)) * 3).astype(dtype)
        g = rng.standard_normal(x.shape).astype(dtype)
        y = softmax.softmax_rows(x)
        dx = softmax.softmax_rows_vjp(y, g)
        assert dx.dtype == dtype and dx.shape == x.shape
        # g - sum(g * y) cancels: compare with an absolute floor scaled to g ~ 1
        np.testing.assert_allclose(dx, ref_softmax_vjp(y, g), **tol(dtype, atol32=1e-6, atol64=1e-14))
        ly = softmax.log_softmax_rows(x)
        dx = softmax.log_softmax_rows_vjp(ly, g)
        assert dx.dtype == dtype and dx.shape == x.shape
        np.testing.assert_allclose(dx, ref_log_softmax_vjp(ly, g), **tol(dtype, atol32=1e-5, atol64=1e-14))


@pytest.mark.parametrize("n", [1, 2, 7, 33])
def test_vjps_are_the_transposed_jacobians(n, isa):
    rng = np.random.default_rng(n)
    x, g = rng.standard_normal(n), rng.standard_normal(n)
    y = softmax.softmax_rows(x)
    jac_softmax = np.diag(y) - np.outer(y, y)  # d softmax_i / d x_j
    np.testing.assert_allclose(softmax.softmax_rows_vjp(y, g), jac_softmax.T @ g, rtol=1e-12, atol=1e-14)
    jac_log = np.eye(n) - y[None, :]  # d log_softmax_i / d x_j
    np.testing.assert_allclose(softmax.log_softmax_rows_vjp(softmax.log_softmax_rows(x), g), jac_log.T @ g,
                               rtol=1e-12, atol=1e-14)
    # and against central differences of the forward kernels: <J t, g> = <t, J^T g>
    t, h = rng.standard_normal(n), 1e-6
    for forward, vjp, out in ((softmax.softmax_rows, softmax.softmax_rows_vjp, y),
                              (softmax.log_softmax_rows, softmax.log_softmax_rows_vjp, softmax.log_softmax_rows(x))):
        jt = (forward(x + h * t) - forward(x - h * t)) / (2 * h)
        assert np.dot(jt, g) == pytest.approx(np.dot(t, vjp(out, g)), rel=1e-6, abs=1e-9)


# ---------------------------------------------------------------- determinism
@pytest.mark.parametrize("dtype", DTYPES)
def test_results_are_bitwise_identical_across_calls_and_thread_counts(dtype, isa):
    rng = np.random.default_rng(9)
    x = (rng.standard_normal((64, 1000)) * 5).astype(dtype)
    g = rng.standard_normal(x.shape).astype(dtype)

    def everything():
        y, ly = softmax.softmax_rows(x), softmax.log_softmax_rows(x)
        return [y, ly, softmax.logsumexp_rows(x), softmax.softmax_rows_vjp(y, g), softmax.log_softmax_rows_vjp(ly, g)]

    before = native.num_threads()
    try:
        native.set_num_threads(1)
        one = everything()
        native.set_num_threads(2)
        for _ in range(3):
            assert all(np.array_equal(a, b) for a, b in zip(one, everything()))
    finally:
        native.set_num_threads(before)


def test_outputs_do_not_alias_inputs():
    x = np.random.default_rng(0).standard_normal((3, 5))
    keep = x.copy()
    y = softmax.softmax_rows(x)
    assert not np.shares_memory(x, y) and np.array_equal(x, keep)


# ---------------------------------------------------------------- bad arguments
FORWARD = ["softmax_rows", "log_softmax_rows", "logsumexp_rows"]
VJPS = ["softmax_rows_vjp", "log_softmax_rows_vjp"]


@pytest.mark.parametrize("name", FORWARD)
def test_forward_bad_arguments_are_clear_errors(name):
    fn, raw = getattr(softmax, name), getattr(_native, name)
    with pytest.raises(TypeError, match=f"{name}: x must be float32 or float64, got int64"):
        fn(np.arange(6).reshape(2, 3))
    with pytest.raises(TypeError, match=f"{name}: x must be float32 or float64, got float16"):
        fn(np.ones(3, np.float16))
    with pytest.raises(TypeError, match=f"{name}: x must be a numpy array, got list"):
        fn([1.0, 2.0])
    with pytest.raises(ValueError, match=rf"{name}: x must be C-contiguous \(shape \(4, 3\)"):
        fn(np.ones((4, 6))[:, ::2])
    with pytest.raises(ValueError, match=f"{name}: x must be C-contiguous"):
        fn(np.asfortranarray(np.ones((4, 6))))
    with pytest.raises(ValueError, match=f"{name}: x must have at least one dimension"):
        fn(np.array(1.0))
    # the compiled module checks before any kernel runs, naming the argument
    with pytest.raises(TypeError, match=rf"{name}\(x\): expected float32 or float64, got int64"):
        raw(np.arange(6))
    with pytest.raises(ValueError, match=rf"{name}\(x\): the array must be C-contiguous"):
        raw(np.ones((4, 6))[:, ::2])
    with pytest.raises(ValueError, match=rf"{name}\(x\): needs at least one dimension"):
        raw(np.array(1.0))


@pytest.mark.parametrize("name", VJPS)
def test_vjp_bad_arguments_are_clear_errors(name):
    fn, raw = getattr(softmax, name), getattr(_native, name)
    y = np.full((3, 4), 0.25)
    with pytest.raises(ValueError, match=rf"{name}: g has shape \(3, 5\) but y has shape \(3, 4\)"):
        fn(y, np.ones((3, 5)))
    with pytest.raises(ValueError, match=rf"{name}: g has shape \(12,\) but y has shape \(3, 4\)"):
        fn(y, np.ones(12))
    with pytest.raises(TypeError, match=f"{name}: g has dtype float32 but y has float64"):
        fn(y, np.ones((3, 4), np.float32))
    with pytest.raises(TypeError, match=f"{name}: y must be float32 or float64, got int64"):
        fn(np.ones((3, 4), np.int64), y)
    with pytest.raises(ValueError, match=f"{name}: g must be C-contiguous"):
        fn(y, np.ones((3, 8))[:, ::2])
    with pytest.raises(TypeError, match=f"{name}: g must be a numpy array"):
        fn(y, None)
    with pytest.raises(ValueError, match=rf"{name}\(g\): shape \(3, 5\) does not match y's shape \(3, 4\)"):
        raw(y, np.ones((3, 5)))
    with pytest.raises(ValueError, match=rf"{name}\(g\): shape \(4, 3\) does not match y's shape \(3, 4\)"):
        raw(y, np.ones((4, 3)))
    with pytest.raises(TypeError, match=rf"{name}\(g\): dtype float32 does not match y's float64"):
        raw(y, np.ones((3, 4), np.float32))
    with pytest.raises(ValueError, match=rf"{name}\(y\): the array must be C-contiguous"):
        raw(np.ones((3, 8))[:, ::2], y)


def test_isa_pinning_is_checked():
    with pytest.raises(ValueError, match="set_softmax_isa: name must be one of"):
        softmax.set_softmax_isa("sse")
    with pytest.raises(ValueError, match=r"set_softmax_isa\(name\): expected 'auto'"):
        _native.set_softmax_isa("sse")
    softmax.set_softmax_isa("auto")
    assert softmax.current_softmax_isa() == ISAS[-1]


# ---------------------------------------------------------------- the header on its own
STRIDED_PROGRAM = r"""
#include "symdiff/cpu/softmax.hpp"
#include <cstdio>
// Rows 5 elements long, stored 8 apart: results must equal the contiguous call, padding untouched.
int main() {
  const int rows = 3, n = 5, ld = 8;
  double x[rows * ld], y[rows * ld], xc[rows * n], yc[rows * n], g[rows * ld], dx[rows * ld], dxc[rows * n];
  for (int i = 0; i < rows * ld; ++i) { x[i] = 0.37 * i - 2; g[i] = 0.1 * (i % 7); y[i] = dx[i] = -99; }
  for (int r = 0; r < rows; ++r) for (int j = 0; j < n; ++j) xc[r * n + j] = x[r * ld + j];
  int bad = 0;
  symdiff::cpu::softmax_rows(x, y, rows, n, ld, ld);
  symdiff::cpu::softmax_rows(xc, yc, rows, n);
  for (int r = 0; r < rows; ++r) for (int j = 0; j < ld; ++j)
    bad += j < n ? y[r * ld + j] != yc[r * n + j] : y[r * ld + j] != -99;
  double gc[rows * n];
  for (int r = 0; r < rows; ++r) for (int j = 0; j < n; ++j) gc[r * n + j] = g[r * ld + j];
  symdiff::cpu::softmax_rows_vjp(y, g, dx, rows, n, ld, ld, ld);
  symdiff::cpu::softmax_rows_vjp(yc, gc, dxc, rows, n);
  for (int r = 0; r < rows; ++r) for (int j = 0; j < n; ++j) bad += dx[r * ld + j] != dxc[r * n + j];
  double lse[rows], lsec[rows];
  symdiff::cpu::logsumexp_rows(x, lse, rows, n, ld);
  symdiff::cpu::logsumexp_rows(xc, lsec, rows, n);
  for (int r = 0; r < rows; ++r) bad += lse[r] != lsec[r];
  std::printf("%d\n", bad);
  return bad != 0;
}
"""


@pytest.mark.skipif(shutil.which("g++") is None, reason="no g++")
def test_the_header_is_self_contained_and_honours_row_strides(tmp_path):
    src = tmp_path / "strided.cpp"
    src.write_text(STRIDED_PROGRAM)
    exe = tmp_path / "strided"
    subprocess.run(["g++", "-std=c++17", "-O2", "-fopenmp", "-Wall", "-Werror", f"-I{ROOT / 'csrc/include'}",
                    str(src), "-o", str(exe)], check=True, capture_output=True, text=True)
    out = subprocess.run([str(exe)], capture_output=True, text=True, check=False)
    assert out.returncode == 0 and out.stdout.strip() == "0", out.stdout + out.stderr
