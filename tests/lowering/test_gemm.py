"""The native GEMM against a float64 numpy reference: sizes, transposes, dtypes, threads, kernels,
alpha/beta, batches, strided views, and the errors for arguments it must refuse."""

import os
import re
import subprocess
import sys

import numpy as np
import pytest
from symdiff.lowering import gemm, native

SIZES = (1, 2, 3, 7, 17, 33, 65, 127, 255, 1000)
# Each size as m, as n and as k, paired with smaller odd sizes so the suite stays fast.
SHAPES = [(s, SIZES[(i + 3) % 7], SIZES[(i + 5) % 8]) for i, s in enumerate(SIZES)]
SHAPES += [(n, m, k) for (m, n, k) in SHAPES] + [(k, n, m) for (m, n, k) in SHAPES]
VARIANTS = [(False, False), (True, False), (False, True), (True, True)]
VARIANT_IDS = ["AB", "AtB", "ABt", "AtBt"]
DTYPES = [np.float32, np.float64]


def _supported_isas():
    feats = native.cpu_features()
    isas = ["scalar"]
    if feats["avx2"] and feats["fma"]:
        isas.append("avx2")
    if all(feats[f] for f in ("avx512f", "avx512dq", "avx512vl", "avx2", "fma")):
        isas.append("avx512")
    return isas


@pytest.fixture(params=["avx512", "avx2", "scalar"])
def isa(request):
    if request.param not in _supported_isas():
        pytest.skip(f"this CPU cannot run the {request.param} kernels")
    gemm.set_gemm_isa(request.param)
    yield request.param
    gemm.set_gemm_isa("auto")


def _operands(rng, m, n, k, ta, tb, dtype):
    a = rng.standard_normal((k, m) if ta else (m, k)).astype(dtype)
    b = rng.standard_normal((n, k) if tb else (k, n)).astype(dtype)
    return a, b


def _check(got, a, b, ta, tb, alpha=1.0, beta=0.0, c0=None):
    """|got - exact| within the textbook bound (k + 2) * eps * (|alpha| |A||B| + |beta| |C|)."""
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    opa, opb = (a64.T if ta else a64), (b64.T if tb else b64)
    ref = alpha * (opa @ opb)
    bound = abs(alpha) * (np.abs(opa) @ np.abs(opb))
    if c0 is not None and beta != 0:
        ref = ref + beta * c0.astype(np.float64)
        bound = bound + abs(beta) * np.abs(c0.astype(np.float64))
    eps = np.finfo(got.dtype).eps
    k = opa.shape[1]
    assert got.shape == ref.shape and got.dtype == a.dtype
    err = np.abs(got.astype(np.float64) - ref)
    tol = (k + 2) * eps * bound + np.finfo(got.dtype).tiny
    assert np.all(err <= tol), f"max error {err.max():.3g}, worst ratio {(err / tol).max():.3g}"


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("ta,tb", VARIANTS, ids=VARIANT_IDS)
@pytest.mark.parametrize("m,n,k", SHAPES)
def test_sizes_and_transposes_match_numpy(m, n, k, ta, tb, dtype, threads):
    rng = np.random.default_rng(m * 10007 + n * 101 + k)
    a, b = _operands(rng, m, n, k, ta, tb, dtype)
    _check(gemm.gemm(a, b, trans_a=ta, trans_b=tb), a, b, ta, tb)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("ta,tb", VARIANTS, ids=VARIANT_IDS)
@pytest.mark.parametrize("m,n,k", [(65, 127, 33), (7, 255, 17), (127, 3, 65), (33, 1000, 2)])
def test_every_kernel_family(m, n, k, ta, tb, dtype, isa, threads):
    rng = np.random.default_rng(7)
    a, b = _operands(rng, m, n, k, ta, tb, dtype)
    _check(gemm.gemm(a, b, trans_a=ta, trans_b=tb), a, b, ta, tb)
    assert gemm.current_gemm_isa() == isa


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("m,n,k", [(255, 1000, 1000), (1000, 65, 600), (100, 784, 100), (5000, 3, 600)])
def test_blocked_and_parallel_paths(m, n, k, dtype, threads):
    """Several K blocks, L2 blocks and shared-operand chunks, threads splitting either dimension."""
    rng = np.random.default_rng(1)
    for ta, tb in VARIANTS[:: 3 if m * n * k > 1e8 else 1]:
        a, b = _operands(rng, m, n, k, ta, tb, dtype)
        _check(gemm.gemm(a, b, trans_a=ta, trans_b=tb), a, b, ta, tb)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("alpha,beta", [(1.0, 1.0), (0.5, -2.0), (-3.0, 0.0), (0.0, 0.5), (0.0, 0.0)])
@pytest.mark.parametrize("ta,tb", VARIANTS, ids=VARIANT_IDS)
def test_alpha_beta_accumulate_into_c(alpha, beta, ta, tb, dtype, threads):
    rng = np.random.default_rng(3)
    for m, n, k in [(17, 33, 7), (127, 65, 255)]:
        a, b = _operands(rng, m, n, k, ta, tb, dtype)
        c0 = rng.standard_normal((m, n)).astype(dtype)
        c = c0.copy()
        out = gemm.gemm(a, b, c, trans_a=ta, trans_b=tb, alpha=alpha, beta=beta)
        assert out is c
        _check(c, a, b, ta, tb, alpha, beta, c0)


def _gemm_in_views(rng, m, n, k, ta, tb, dtype, alpha, beta, nan_c=False):
    """gemm on views with row strides inside larger arrays (C inside a frame of 7s), checked
    against the float64 reference, and nothing written outside the view of C. With ``nan_c``
    (beta == 0) C starts as NaN, which must never be read."""
    big_a = rng.standard_normal((k + 3, m + 4) if ta else (m + 3, k + 4)).astype(dtype)
    big_b = rng.standard_normal((n + 2, k + 5) if tb else (k + 2, n + 5)).astype(dtype)
    a = big_a[1:, 2:][: (k if ta else m), : (m if ta else k)]
    b = big_b[1:, 3:][: (n if tb else k), : (k if tb else n)]
    big_c = np.full((m + 2, n + 3), 7.0, dtype)
    c = big_c[1 : 1 + m, 2 : 2 + n]
    c0 = rng.standard_normal((m, n)).astype(dtype)
    c[...] = np.nan if nan_c else c0
    gemm.gemm(a, b, c, trans_a=ta, trans_b=tb, alpha=alpha, beta=beta)
    _check(c, a, b, ta, tb, alpha, beta, c0)
    outside = big_c.copy()
    outside[1 : 1 + m, 2 : 2 + n] = 7.0
    assert np.all(outside == 7.0), f"m={m} n={n} k={k}: gemm wrote outside the view of c"


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("ta,tb", VARIANTS, ids=VARIANT_IDS)
def test_few_columns_every_width(ta, tb, dtype, threads):
    """n <= 12 goes through the narrow kernels on AVX-512 (Cᵀ tiles for a transposed A, dot tiles
    for a row-major A): every width, M edges of each tile size, a K edge, alpha/beta, and views
    with row strides, writing nothing outside C."""
    rng = np.random.default_rng(11)
    for n in range(1, 14):
        for m, k in [(100, 100), (8, 3), (17, 33), (71, 255), (1000, 19)]:
            alpha, beta = (1.0, 0.0) if n % 2 else (-0.5, 2.0)
            _gemm_in_views(rng, m, n, k, ta, tb, dtype, alpha, beta)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("ta,tb", VARIANTS, ids=VARIANT_IDS)
def test_column_remainder_split_off_to_narrow_kernels(ta, tb, dtype, threads):
    """Wider products whose last columns are a short remainder of the vector width (n = 100 in
    float32: 6 vectors + 4) compute those columns with the narrow kernels, each thread on its rows:
    every remainder width and one past the cut-off, rows that do not fill a vector, a K edge,
    alpha/beta, views with row strides, and nothing written outside C."""
    rng = np.random.default_rng(17)
    lanes = 64 // np.dtype(dtype).itemsize
    for n in [lanes * j + w for j in (1, 2, 6) for w in range(1, lanes // 2 + 2)]:
        for m, k in [(784, 100), (17, 33), (100, 600)] if n % 3 == 0 else [(100, 100), (33, 7)]:
            alpha, beta = (1.0, 0.0) if n % 2 else (1.5, -1.0)
            _gemm_in_views(rng, m, n, k, ta, tb, dtype, alpha, beta)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("ta", [False, True], ids=["A", "At"])
def test_few_rows_stream_b(ta, dtype, threads):
    """m <= 4 with a row-major B takes the row-streaming kernels on AVX-512 (vector-matrix
    products): every m up to one past the cut-off, K not a multiple of the 4-row step, column
    chunks and their edges (5000 columns: several chunks of 16 KB of accumulators), alpha/beta,
    NaN in C when beta == 0, views with row strides, and nothing written outside C."""
    rng = np.random.default_rng(19)
    for m in range(1, 6):
        for k, n in [(1, 16), (3, 17), (5, 100), (100, 10), (784, 100), (7, 5000)]:
            alpha, beta = (1.0, 0.0) if (m + k) % 2 else (-0.5, 2.0)
            _gemm_in_views(rng, m, n, k, ta, False, dtype, alpha, beta, nan_c=beta == 0)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("ta", [False, True], ids=["A", "At"])
def test_few_rows_against_transposed_b(ta, dtype, threads):
    """m <= 12 against a B stored n x k computes Cᵀ = B · op(A)ᵀ with the narrow dot tiles on
    AVX-512, then transposes it into C: every m up to one past the cut-off, K edges, alpha/beta,
    NaN in C when beta == 0, views with row strides, and nothing written outside C."""
    rng = np.random.default_rng(23)
    for m in range(1, 14):
        for k, n in [(1, 16), (7, 17), (100, 100), (33, 1000)] if m % 4 == 1 else [(7, 33), (100, 100)]:
            alpha, beta = (1.0, 0.0) if (m + k) % 2 else (-0.5, 2.0)
            _gemm_in_views(rng, m, n, k, ta, True, dtype, alpha, beta, nan_c=beta == 0)


def test_beta_zero_never_reads_c(threads):
    a = np.ones((9, 5), np.float32)
    c = np.full((9, 9), np.nan, np.float32)
    gemm.gemm(a, a, c, trans_b=True, beta=0.0)
    np.testing.assert_array_equal(c, np.full((9, 9), 5.0, np.float32))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("ta,tb", VARIANTS, ids=VARIANT_IDS)
def test_row_strided_views(ta, tb, dtype, threads):
    """Slices with a row stride (lda > row length) are read and written in place."""
    rng = np.random.default_rng(5)
    m, n, k = 33, 65, 127
    big_a = rng.standard_normal((300, 300)).astype(dtype)
    big_b = rng.standard_normal((300, 300)).astype(dtype)
    a = big_a[1 : 1 + (k if ta else m), 3 : 3 + (m if ta else k)]
    b = big_b[::2, 5:][: (n if tb else k), : (k if tb else n)]
    big_c = np.zeros((m + 4, n + 11), dtype)
    c = big_c[2 : 2 + m, 7 : 7 + n]
    gemm.gemm(a, b, c, trans_a=ta, trans_b=tb)
    _check(c, a, b, ta, tb)
    untouched = big_c.copy()
    untouched[2 : 2 + m, 7 : 7 + n] = 0
    assert not untouched.any(), "gemm wrote outside the view of c"


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("ta,tb", VARIANTS, ids=VARIANT_IDS)
def test_batched_matches_per_matrix(ta, tb, dtype, threads):
    rng = np.random.default_rng(11)
    batch, m, n, k = 5, 17, 33, 65
    a = rng.standard_normal((batch, k, m) if ta else (batch, m, k)).astype(dtype)
    b = rng.standard_normal((2 * batch, n, k) if tb else (2 * batch, k, n)).astype(dtype)[::2]  # strided batch
    c0 = rng.standard_normal((batch, m, n)).astype(dtype)
    c = c0.copy()
    gemm.gemm_batched(a, b, c, trans_a=ta, trans_b=tb, alpha=0.5, beta=2.0)
    for i in range(batch):
        _check(c[i], a[i], b[i], ta, tb, 0.5, 2.0, c0[i])
    shared_b = b[:1]  # a batch of one is broadcast over the others
    out = gemm.gemm_batched(a, shared_b, trans_a=ta, trans_b=tb)
    for i in range(batch):
        _check(out[i], a[i], shared_b[0], ta, tb)


def test_batched_large_matrices_use_every_thread(threads):
    rng = np.random.default_rng(12)
    a = rng.standard_normal((3, 200, 300))
    b = rng.standard_normal((3, 300, 250))
    out = gemm.gemm_batched(a, b)
    for i in range(3):
        _check(out[i], a[i], b[i], False, False)


# Run in a fresh process with SYMDIFF_GEMM_ISA set (read once, at the first product): odd shapes
# of every layout and both dtypes, on 1 and 2 threads, against float64 numpy within the bound of
# _check; prints the family that ran and the worst error / bound.
_PINNED_CHILD = """
import numpy as np
from symdiff.lowering import gemm
rng = np.random.default_rng(3)
worst = 0.0
shapes = [(1, 1, 1), (5, 3, 7), (13, 37, 19), (65, 17, 300), (100, 100, 10), (7, 255, 33), (127, 130, 600),
          (301, 263, 517), (33, 1000, 2)]
for m, n, k in shapes:
    for ta in (False, True):
        for tb in (False, True):
            for dtype in (np.float32, np.float64):
                a = rng.standard_normal((k, m) if ta else (m, k)).astype(dtype)
                b = rng.standard_normal((n, k) if tb else (k, n)).astype(dtype)
                c0 = rng.standard_normal((m, n)).astype(dtype)
                got = gemm.gemm(a, b, c0.copy(), trans_a=ta, trans_b=tb, alpha=1.5, beta=-0.5)
                opa, opb = (a.T if ta else a).astype(np.float64), (b.T if tb else b).astype(np.float64)
                ref = 1.5 * opa @ opb - 0.5 * c0
                bound = 1.5 * np.abs(opa) @ np.abs(opb) + 0.5 * np.abs(c0)
                tol = (k + 2) * np.finfo(dtype).eps * bound + np.finfo(dtype).tiny
                worst = max(worst, float((np.abs(got - ref) / tol).max()))
print(gemm.current_gemm_isa(), gemm.gemm_kernel()["isa"], worst)
"""


def _run_pinned(isa, threads=2):
    env = dict(os.environ, SYMDIFF_GEMM_ISA=isa, OMP_NUM_THREADS=str(threads))
    return subprocess.run([sys.executable, "-c", _PINNED_CHILD], env=env, capture_output=True, text=True, check=False)


@pytest.mark.parametrize("threads_in_child", [1, 2])
@pytest.mark.parametrize("name", ["avx512", "avx2", "scalar"])
def test_every_isa_pinned_by_the_environment_matches_numpy(name, threads_in_child):
    if name not in _supported_isas():
        pytest.skip(f"this CPU cannot run the {name} kernels")
    out = _run_pinned(name, threads_in_child)
    assert out.returncode == 0, out.stderr
    ran, reported, worst = out.stdout.split()
    assert ran == reported == name
    assert float(worst) <= 1.0, f"{name}: worst error {worst} x the bound"


@pytest.mark.parametrize("name,match", [("sse9", r"SYMDIFF_GEMM_ISA='sse9': expected avx512, avx2, scalar or auto"),
                                        ("avx512", r"SYMDIFF_GEMM_ISA=avx512: this CPU can not run those kernels"),
                                        ("avx2", r"SYMDIFF_GEMM_ISA=avx2: this CPU can not run those kernels")])
def test_an_isa_the_cpu_lacks_is_refused(name, match):
    if name in _supported_isas():
        pytest.skip(f"this CPU runs the {name} kernels")
    out = _run_pinned(name)
    assert out.returncode != 0
    assert re.search("ValueError: " + match, out.stderr), out.stderr


def test_isa_choice_is_validated():
    assert gemm.current_gemm_isa() in _supported_isas()
    with pytest.raises(ValueError, match="must be one of"):
        gemm.set_gemm_isa("sse9")


F32 = np.ones((4, 3), np.float32)


@pytest.mark.parametrize(
    "call,error,match",
    [
        (lambda: gemm.gemm(F32.astype(np.int64), F32.T), TypeError, r"gemm\(a\): expected float32 or float64"),
        (lambda: gemm.gemm(F32, F32.T.astype(np.float64)), TypeError, r"gemm\(b\): dtype float64 does not match"),
        (lambda: gemm.gemm(F32[0], F32.T), ValueError, r"gemm\(a\): expected a 2-D array"),
        (lambda: gemm.gemm(F32, F32), ValueError, r"gemm\(b\): inner dimensions differ"),
        (lambda: gemm.gemm(F32, F32.T.copy(), trans_a=True), ValueError, r"gemm\(b\): inner dimensions differ"),
        (lambda: gemm.gemm(F32, np.ones((4, 3), np.float32).T.copy().T, trans_b=True), ValueError,
         r"gemm\(b\): columns must be contiguous"),
        (lambda: gemm.gemm(F32[:, ::2], np.ones((2, 2), np.float32)), ValueError,
         r"gemm\(a\): columns must be contiguous"),
        (lambda: gemm.gemm(F32[::-1], F32.T.copy()), ValueError, r"gemm\(a\): dimension 0 has stride -12"),
        (lambda: gemm.gemm(F32, F32.T.copy(), np.zeros((4, 5), np.float32)), ValueError,
         r"gemm\(c\): expected shape \(4, 4\)"),
        (lambda: gemm.gemm(F32, F32.T.copy(), np.zeros((4, 4))), TypeError, r"gemm\(c\): dtype float64"),
        (lambda: gemm.gemm(F32, F32.T.copy(), [[0.0] * 4] * 4), ValueError, r"gemm\(c\): expected a numpy array"),
        (lambda: gemm.gemm(F32, F32.T.copy(), np.broadcast_to(np.float32(0), (4, 4))), ValueError,
         r"gemm\(c\): the array is read-only"),
        (lambda: gemm.gemm_batched(F32, F32.T.copy()), ValueError, r"gemm_batched\(a\): expected a 3-D array"),
        (lambda: gemm.gemm_batched(np.ones((2, 4, 3)), np.ones((3, 3, 4))), ValueError,
         r"gemm_batched\(b\): batch sizes 2 \(a\) and 3 \(b\) differ"),
        (lambda: gemm.gemm(F32.astype(">f4"), F32.T), TypeError, r"gemm\(a\): expected float32 or float64, got >f4"),
        (lambda: gemm.gemm(F32, F32.T.astype(">f4")), TypeError, r"gemm\(b\): dtype >f4 does not match"),
        (lambda: gemm.gemm(F32, F32.T.copy(), np.zeros((4, 4), ">f4")), TypeError, r"gemm\(c\): dtype >f4"),
        (lambda: gemm.gemm(F32, F32.T.copy(), trans_a="no"), TypeError, r"incompatible function arguments"),
    ],
    ids=["int", "mixed", "ndim", "inner", "inner-trans", "fortran", "col-stride", "negative", "c-shape",
         "c-dtype", "c-list", "c-readonly", "batched-ndim", "batched-batch", "a-byteswapped", "b-byteswapped",
         "c-byteswapped", "trans-not-bool"],
)
def test_bad_arguments_are_refused(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_output_overlapping_an_input_is_refused():
    buf = np.ones((8, 8), np.float32)
    with pytest.raises(ValueError, match=r"gemm\(c\): shares memory with a"):
        gemm.gemm(buf[:4, :4], np.ones((4, 4), np.float32), buf[:4, 4:8])
    c = np.zeros((8, 8), np.float32)
    with pytest.raises(ValueError, match=r"gemm\(c\): rows overlap"):
        gemm.gemm(np.ones((3, 2), np.float32), np.ones((2, 4), np.float32),
                  np.lib.stride_tricks.as_strided(c, (3, 4), (8, 4)))
