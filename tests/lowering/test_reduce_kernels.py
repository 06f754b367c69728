"""max_axis and mean_axis (csrc/include/symdiff/cpu/reduce.hpp) against a float64 numpy reference."""

import numpy as np
import pytest
from symdiff.lowering import _native, native

SIZES = (1, 2, 3, 7, 17, 33, 65, 127, 255, 1000)
DTYPES = [np.float32, np.float64]


def _mean_tolerance(dtype):
    # The float64 reference is computed from the same float32 inputs: only the final rounding differs.
    return {"rtol": 1e-5, "atol": 1e-6} if dtype == np.float32 else {"rtol": 1e-12, "atol": 1e-13}


def _check(a, axis, keepdims):
    ref = a.astype(np.float64)
    got_max = native.max_axis(a, axis, keepdims=keepdims)
    want_max = ref.max(axis=axis, keepdims=keepdims)
    assert got_max.dtype == a.dtype and got_max.shape == want_max.shape
    np.testing.assert_array_equal(got_max, want_max.astype(a.dtype))  # max is exact
    got_mean = native.mean_axis(a, axis, keepdims=keepdims)
    want_mean = ref.mean(axis=axis, keepdims=keepdims)
    assert got_mean.dtype == a.dtype and got_mean.shape == want_mean.shape
    np.testing.assert_allclose(got_mean, want_mean, **_mean_tolerance(a.dtype))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n", SIZES)
def test_vectors_and_matrices_of_odd_sizes(dtype, n, threads):
    rng = np.random.default_rng(n)
    _check(rng.standard_normal(n).astype(dtype), 0, False)
    m = rng.standard_normal((n, 7)).astype(dtype)
    for axis in (0, 1, -1, -2):
        _check(m, axis, False)
    _check(rng.standard_normal((3, n)).astype(dtype), 1, True)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(3, 65, 5), (2, 1000, 33), (127, 3, 2), (1, 100_000, 1), (2, 3, 4, 5),
                                   (2, 300, 257), (1, 17)])
def test_every_axis_and_keepdims(dtype, shape, threads):
    a = (np.random.default_rng(0).standard_normal(shape) * 100).astype(dtype)
    for axis in range(-a.ndim, a.ndim):
        for keepdims in (False, True):
            _check(a, axis, keepdims)


@pytest.mark.parametrize("dtype", DTYPES)
def test_extreme_values_do_not_overflow(dtype, threads):
    a = np.array([[1e4, -1e4, 3.0], [-np.inf, -np.inf, -1e4], [-np.inf, -np.inf, -np.inf]], dtype)
    for axis in (0, 1):
        _check(a, axis, False)
    if dtype == np.float32:  # the double accumulator holds sums far past float32's range
        big = np.full((5, 1000), np.finfo(np.float32).max / 2, np.float32)
        np.testing.assert_allclose(native.mean_axis(big, 1), np.finfo(np.float32).max / 2, rtol=1e-6)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape,axis", [((1000,), 0), ((7, 255), 1), ((255, 7), 0), ((3, 100_003), 1),
                                        ((4, 33, 300), 1)])
def test_max_propagates_nan_like_numpy(dtype, shape, axis, threads):
    a = np.random.default_rng(3).standard_normal(shape).astype(dtype)
    a.flat[a.size // 2] = np.nan
    a.flat[-1] = np.nan
    want = a.max(axis=axis)
    got = native.max_axis(a, axis)
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    np.testing.assert_array_equal(got, want)
    assert np.isnan(native.mean_axis(a, axis)).sum() == np.isnan(a.mean(axis=axis)).sum()


def test_mean_of_an_empty_axis_is_nan_and_max_is_an_error():
    a = np.ones((3, 0), np.float64)
    assert np.isnan(native.mean_axis(a, 1)).all() and native.mean_axis(a, 1).shape == (3,)
    assert native.max_axis(a, 0).shape == (0,)  # reducing a non-empty axis of an empty array is fine
    with pytest.raises(ValueError, match=r"max_axis: axis 1 of a \(shape \(3, 0\)\) has length 0"):
        native.max_axis(a, 1)
    with pytest.raises(ValueError, match=r"max_axis\(a\): axis -1 of shape \(3, 0\) has length 0"):
        _native.max_axis(a, -1)


@pytest.mark.parametrize("fn", [native.max_axis, native.mean_axis])
def test_results_are_deterministic_for_a_thread_count(fn, threads):
    a = np.random.default_rng(1).standard_normal((3, 200_003)).astype(np.float32)
    for axis in (0, 1):
        first = fn(a, axis)
        assert all(np.array_equal(first, fn(a, axis)) for _ in range(3))


def test_mean_keeps_float32_precision_over_long_axes():
    a = np.full(10_000_000, 0.1, np.float32)
    assert float(native.mean_axis(a, 0)) == pytest.approx(float(np.float32(0.1)), rel=1e-7)


def test_sum_still_matches_after_the_shared_reduction_template(threads):
    a = np.random.default_rng(5).standard_normal((33, 17, 65)).astype(np.float32)
    for axis in range(3):
        np.testing.assert_allclose(native.sum_axis(a, axis), a.astype(np.float64).sum(axis), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name", ["max_axis", "mean_axis"])
def test_bad_arguments_are_clear_errors(name):
    fn, raw = getattr(native, name), getattr(_native, name)
    with pytest.raises(TypeError, match=f"{name}: a must be float32 or float64, got int64"):
        fn(np.arange(6).reshape(2, 3), 0)
    with pytest.raises(TypeError, match=f"{name}: a must be a numpy array"):
        fn([1.0, 2.0], 0)
    with pytest.raises(ValueError, match=f"{name}: a must be C-contiguous"):
        fn(np.ones((4, 6))[:, ::2], 0)
    with pytest.raises(ValueError, match=rf"{name}: axis 2 is out of range for an array of shape \(2, 3\)"):
        fn(np.ones((2, 3)), 2)
    with pytest.raises(ValueError, match=f"{name}: axis -3 is out of range"):
        fn(np.ones((2, 3)), -3)
    with pytest.raises(ValueError, match=f"{name}: a must have at least one dimension"):
        fn(np.array(1.0), 0)
    # the compiled module checks too, naming the argument
    with pytest.raises(TypeError, match=rf"{name}\(a\): expected float32 or float64, got int64"):
        raw(np.arange(6), 0)
    with pytest.raises(ValueError, match=rf"{name}\(a\): the array must be C-contiguous"):
        raw(np.ones((4, 6))[:, ::2], 0)
    with pytest.raises(ValueError, match=rf"{name}\(axis\): axis 5 is out of range for 1 dimensions"):
        raw(np.ones(3), 5)
    with pytest.raises(ValueError, match=rf"{name}\(a\): needs at least one dimension"):
        raw(np.array(1.0), 0)
