"""im2col / col2im against numpy references: odd sizes, strides, padding, dilation, 1x1 and
input-sized kernels; conv2d by im2col + GEMM against a direct convolution; col2im as the exact
adjoint of im2col; both dtypes, 1 and 2 threads; the errors for arguments they must refuse."""

import numpy as np
import pytest
from symdiff.lowering import conv, native

DTYPES = [np.float32, np.float64]

# (N, C, H, W), (KH, KW), stride, padding, dilation
CONFIGS = [
    ((1, 1, 1, 1), (1, 1), (1, 1), (0, 0), (1, 1)),
    ((2, 3, 5, 7), (3, 3), (1, 1), (0, 0), (1, 1)),
    ((2, 3, 7, 5), (3, 3), (2, 2), (1, 1), (1, 1)),
    ((1, 2, 9, 11), (3, 2), (3, 2), (1, 0), (1, 1)),
    ((2, 2, 8, 8), (3, 3), (1, 1), (2, 2), (2, 2)),
    ((1, 2, 10, 9), (3, 2), (1, 2), (2, 3), (3, 2)),
    ((3, 4, 13, 17), (4, 3), (2, 3), (2, 1), (2, 1)),
    ((1, 3, 6, 6), (1, 1), (1, 1), (0, 0), (1, 1)),
    ((2, 3, 7, 6), (1, 1), (2, 3), (0, 0), (1, 1)),
    ((1, 3, 6, 6), (1, 1), (1, 1), (1, 2), (1, 1)),
    ((2, 2, 5, 6), (5, 6), (1, 1), (0, 0), (1, 1)),
    ((1, 2, 5, 5), (5, 5), (2, 3), (2, 2), (1, 1)),
    ((1, 1, 10, 10), (2, 2), (3, 3), (0, 0), (1, 1)),
    ((1, 2, 3, 3), (3, 3), (1, 1), (5, 4), (1, 1)),
    ((2, 1, 4, 9), (1, 3), (1, 2), (0, 1), (1, 4)),
    ((4, 16, 32, 32), (3, 3), (1, 1), (1, 1), (1, 1)),  # large enough for the OpenMP path
    ((2, 8, 31, 29), (5, 3), (2, 1), (2, 1), (2, 3)),
]
IDS = [
    "x".join(map(str, c[0]))
    + f"-k{c[1][0]}{c[1][1]}-s{c[2][0]}{c[2][1]}-p{c[3][0]}{c[3][1]}-d{c[4][0]}{c[4][1]}"
    for c in CONFIGS
]


def _windows(xp, kernel_size, stride, dilation, out_hw):
    """xp (padded) viewed at every tap: {(i, j): (N, C, OH, OW)} by strided slicing."""
    (kh, kw), (sh, sw), (dh, dw), (oh, ow) = kernel_size, stride, dilation, out_hw
    return {
        (i, j): xp[:, :, i * dh : i * dh + sh * (oh - 1) + 1 : sh, j * dw : j * dw + sw * (ow - 1) + 1 : sw]
        for i in range(kh)
        for j in range(kw)
    }


def _out_hw(shape, kernel_size, stride, padding, dilation):
    return tuple(
        conv.output_size(shape[2 + a], kernel_size[a], stride[a], padding[a], dilation[a]) for a in (0, 1)
    )


def _pad(x, padding):
    return np.pad(x, ((0, 0), (0, 0), (padding[0], padding[0]), (padding[1], padding[1])))


def reference_im2col(x, kernel_size, stride, padding, dilation):
    n, c = x.shape[:2]
    oh, ow = _out_hw(x.shape, kernel_size, stride, padding, dilation)
    taps = _windows(_pad(x, padding), kernel_size, stride, dilation, (oh, ow))
    stacked = np.stack([taps[i, j] for i in range(kernel_size[0]) for j in range(kernel_size[1])], axis=2)
    return stacked.reshape(n, c * kernel_size[0] * kernel_size[1], oh * ow)  # rows ordered (c, i, j)


def reference_col2im(cols, shape, kernel_size, stride, padding, dilation):
    n, c, h, w = shape
    oh, ow = _out_hw(shape, kernel_size, stride, padding, dilation)
    xp = np.zeros((n, c, h + 2 * padding[0], w + 2 * padding[1]), cols.dtype)
    taps = _windows(xp, kernel_size, stride, dilation, (oh, ow))  # views into xp: += scatters
    blocks = cols.reshape(n, c, kernel_size[0], kernel_size[1], oh, ow)
    for (i, j), view in taps.items():
        view += blocks[:, :, i, j]
    return xp[:, :, padding[0] : padding[0] + h, padding[1] : padding[1] + w]


def direct_conv2d(x, weight, stride, padding, dilation):
    """Sum over taps of weight[:, :, i, j] contracted with the shifted input: no column matrix."""
    x64, w64 = x.astype(np.float64), weight.astype(np.float64)
    kernel_size = weight.shape[2:]
    oh, ow = _out_hw(x.shape, kernel_size, stride, padding, dilation)
    out = np.zeros((x.shape[0], weight.shape[0], oh, ow))
    for (i, j), view in _windows(_pad(x64, padding), kernel_size, stride, dilation, (oh, ow)).items():
        out += np.einsum("kc,ncyx->nkyx", w64[:, :, i, j], view)
    return out


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape,kernel_size,stride,padding,dilation", CONFIGS, ids=IDS)
def test_im2col_matches_numpy(shape, kernel_size, stride, padding, dilation, dtype, threads):
    x = np.random.default_rng(sum(shape)).standard_normal(shape).astype(dtype)
    got = conv.im2col(x, kernel_size, stride, padding, dilation)
    want = reference_im2col(x, kernel_size, stride, padding, dilation)
    assert got.dtype == dtype and got.shape == want.shape
    np.testing.assert_array_equal(got, want)  # a pure copy: bit for bit


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape,kernel_size,stride,padding,dilation", CONFIGS, ids=IDS)
def test_col2im_matches_numpy(shape, kernel_size, stride, padding, dilation, dtype, threads):
    oh, ow = _out_hw(shape, kernel_size, stride, padding, dilation)
    cols_shape = (shape[0], shape[1] * kernel_size[0] * kernel_size[1], oh * ow)
    cols = np.random.default_rng(sum(shape) + 1).standard_normal(cols_shape).astype(dtype)
    got = conv.col2im(cols, shape, kernel_size, stride, padding, dilation)
    want = reference_col2im(cols.astype(np.float64), shape, kernel_size, stride, padding, dilation)
    assert got.dtype == dtype and got.shape == shape
    taps = kernel_size[0] * kernel_size[1]
    np.testing.assert_allclose(got, want, rtol=0, atol=taps * 8 * np.finfo(dtype).eps)


@pytest.mark.parametrize("shape,kernel_size,stride,padding,dilation", CONFIGS, ids=IDS)
def test_col2im_is_the_adjoint_of_im2col(shape, kernel_size, stride, padding, dilation, threads):
    """<im2col(x), y> == <x, col2im(y)> in float64."""
    rng = np.random.default_rng(sum(shape) + 2)
    x = rng.standard_normal(shape)
    cols = conv.im2col(x, kernel_size, stride, padding, dilation)
    y = rng.standard_normal(cols.shape)
    lhs = np.dot(cols.ravel(), y.ravel())
    rhs = np.dot(x.ravel(), conv.col2im(y, shape, kernel_size, stride, padding, dilation).ravel())
    scale = np.dot(np.abs(cols.ravel()), np.abs(y.ravel())) + 1.0
    assert abs(lhs - rhs) <= 1e-13 * scale, (lhs, rhs)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(
    "shape,kernel_size,stride,padding,dilation", CONFIGS[1:7] + CONFIGS[10:], ids=IDS[1:7] + IDS[10:]
)
def test_conv2d_by_im2col_and_gemm_matches_direct_convolution(
    shape, kernel_size, stride, padding, dilation, dtype, threads
):
    rng = np.random.default_rng(sum(shape) + 3)
    x = rng.standard_normal(shape).astype(dtype)
    weight = rng.standard_normal((5, shape[1], *kernel_size)).astype(dtype)
    got = conv.conv2d(x, weight, stride, padding, dilation)
    want = direct_conv2d(x, weight, stride, padding, dilation)
    assert got.dtype == dtype and got.shape == want.shape
    # The GEMM bound: (k + 2) eps sum |w| |x| over the k = C*KH*KW products of each output.
    bound = direct_conv2d(np.abs(x), np.abs(weight), stride, padding, dilation)
    k = shape[1] * kernel_size[0] * kernel_size[1]
    assert np.all(np.abs(got - want) <= (k + 2) * np.finfo(dtype).eps * bound + np.finfo(dtype).tiny)


def test_results_do_not_depend_on_the_thread_count():
    rng = np.random.default_rng(9)
    shape, kernel_size, stride, padding, dilation = CONFIGS[-1]
    x = rng.standard_normal(shape)
    before = native.num_threads()
    try:
        results = []
        for n in (1, 2):
            native.set_num_threads(n)
            cols = conv.im2col(x, kernel_size, stride, padding, dilation)
            results.append((cols, conv.col2im(cols, shape, kernel_size, stride, padding, dilation)))
    finally:
        native.set_num_threads(before)
    for a, b in zip(results[0], results[1]):
        np.testing.assert_array_equal(a, b)


def test_int_and_pair_arguments_agree():
    x = np.random.default_rng(4).standard_normal((1, 2, 7, 7))
    np.testing.assert_array_equal(conv.im2col(x, 3, 2, 1, 1), conv.im2col(x, (3, 3), [2, 2], (1, 1), (1, 1)))
    np.testing.assert_array_equal(conv.im2col(x, np.int64(3)), conv.im2col(x, (3, 3)))


X = np.ones((2, 3, 5, 5), np.float32)
COLS = np.ones((2, 27, 9), np.float32)  # im2col(X, 3)


@pytest.mark.parametrize(
    "call,error,match",
    [
        (
            lambda: conv.im2col(X.astype(np.int32), 3),
            TypeError,
            r"im2col\(x\): expected float32 or float64, got int32",
        ),
        (lambda: conv.im2col(X[:, :, :, ::2], 3), ValueError, r"im2col\(x\): the array must be C-contiguous"),
        (
            lambda: conv.im2col(X[0], 3),
            ValueError,
            r"im2col\(x\): expected a 4-D \(N, C, H, W\) array, got shape \(3, 5, 5\)",
        ),
        (
            lambda: conv.im2col(X, (0, 3)),
            ValueError,
            r"im2col\(kernel_size\): must be positive, got \(0, 3\)",
        ),
        (lambda: conv.im2col(X, 3, stride=(1, 0)), ValueError, r"im2col\(stride\): must be positive"),
        (
            lambda: conv.im2col(X, 3, padding=-1),
            ValueError,
            r"im2col\(padding\): must be non-negative, got \(-1, -1\)",
        ),
        (lambda: conv.im2col(X, 3, dilation=0), ValueError, r"im2col\(dilation\): must be positive"),
        (
            lambda: conv.im2col(X, 3, dilation=3),
            ValueError,
            (
                r"im2col\(x\): input shape \(2, 3, 5, 5\) gives no output: "
                r"the dilated kernel spans \(7, 7\) but the "
                r"padded input is only \(5, 5\)"
            ),
        ),
        (lambda: conv.im2col(X, (2, 6)), ValueError, r"im2col\(x\): input shape .* spans \(2, 6\)"),
        (lambda: conv.im2col(X, 2.0), TypeError, r"im2col\(kernel_size\): expected an int or a pair of ints"),
        (lambda: conv.im2col(X, (1, 2, 3)), TypeError, r"im2col\(kernel_size\): expected an int or a pair"),
        (lambda: conv.im2col(X, True), TypeError, r"im2col\(kernel_size\): expected an int or a pair"),
        (
            lambda: conv.col2im(COLS.astype(np.int64), X.shape, 3),
            TypeError,
            r"col2im\(cols\): expected float32",
        ),
        (
            lambda: conv.col2im(np.ones((2, 9, 27), np.float32).T, X.shape, 3),
            ValueError,
            r"col2im\(cols\): the array must be C-contiguous",
        ),
        (
            lambda: conv.col2im(COLS, (2, 3, 5, 6), 3),
            ValueError,
            (
                r"col2im\(cols\): expected shape \(2, 27, 12\) = \(N, C\*KH\*KW, OH\*OW\) "
                r"for input_shape \(2, 3, 5, 6\) "
                r"and kernel_size \(3, 3\), got \(2, 27, 9\)"
            ),
        ),
        (
            lambda: conv.col2im(COLS[0], X.shape, 3),
            ValueError,
            r"col2im\(cols\): expected shape \(2, 27, 9\).*got \(27, 9\)",
        ),
        (
            lambda: conv.col2im(COLS, (2, -3, 5, 5), 3),
            ValueError,
            r"col2im\(input_shape\): sizes must be non-negative",
        ),
        (
            lambda: conv.col2im(COLS, (2, 3, 2, 5), 3),
            ValueError,
            r"col2im\(input_shape\): .* gives no output",
        ),
        (lambda: conv.col2im(COLS, (2, 3, 5), 3), TypeError, r"col2im\(input_shape\): expected four ints"),
        (lambda: conv.col2im(COLS, X.shape, 3, stride=0), ValueError, r"col2im\(stride\): must be positive"),
        (
            lambda: conv.conv2d(X, np.ones((4, 2, 3, 3), np.float32)),
            ValueError,
            r"conv2d\(x\): expected \(N, 2, H, W\)",
        ),
        (
            lambda: conv.conv2d(X, np.ones((3, 3), np.float32)),
            ValueError,
            r"conv2d\(weight\): expected a 4-D",
        ),
    ],
    ids=[
        "x-int",
        "x-strided",
        "x-3d",
        "kernel-0",
        "stride-0",
        "padding-neg",
        "dilation-0",
        "too-dilated",
        "too-wide",
        "kernel-float",
        "kernel-triple",
        "kernel-bool",
        "cols-int",
        "cols-fortran",
        "cols-shape",
        "cols-2d",
        "shape-neg",
        "shape-small",
        "shape-3",
        "col2im-stride",
        "conv-channels",
        "conv-weight",
    ],
)
def test_bad_arguments_are_refused(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_sizes_beyond_the_index_range_are_refused():
    with pytest.raises(ValueError, match=r"im2col\(stride\): must be below 2\*\*31"):
        conv.im2col(X, 3, stride=2**31)
    with pytest.raises(ValueError, match=r"col2im\(input_shape\): input shape .* has a dimension of 2\*\*31"):
        conv.col2im(COLS, (2, 3, 2**31, 5), 3)
    with pytest.raises(ValueError, match=r"col2im\(input_shape\): .* would need .* column entries"):
        conv.col2im(COLS, (2**30, 2**30, 2**30, 5), 3)
