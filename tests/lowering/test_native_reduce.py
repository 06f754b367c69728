"""The extension's OpenMP reduction against numpy; runtime facts; CUDA build flags."""

import os

import numpy as np
import pytest
from symdiff.lowering import native

SIZES = (1, 2, 3, 7, 17, 33, 65, 127, 255, 1000)


def _tolerance(dtype, n):
    return dict(rtol=1e-6 * np.sqrt(n), atol=1e-5) if dtype == np.float32 else dict(rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n", SIZES)
def test_vector_and_matrix_sums_match_numpy(dtype, n, threads):
    rng = np.random.default_rng(n)
    v = rng.standard_normal(n).astype(dtype)
    np.testing.assert_allclose(native.sum_axis(v, 0), v.astype(np.float64).sum(), **_tolerance(dtype, n))
    m = rng.standard_normal((n, 7)).astype(dtype)
    for axis in (0, 1, -1, -2):
        got = native.sum_axis(m, axis)
        assert got.dtype == dtype
        np.testing.assert_allclose(got, m.astype(np.float64).sum(axis=axis), **_tolerance(dtype, n))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(3, 65, 5), (2, 1000, 33), (127, 3, 2), (1, 100000, 1), (2, 3, 4, 5)])
def test_every_axis_and_keepdims(dtype, shape, threads):
    rng = np.random.default_rng(0)
    a = rng.standard_normal(shape).astype(dtype)
    for axis in range(-a.ndim, a.ndim):
        for keepdims in (False, True):
            got = native.sum_axis(a, axis, keepdims=keepdims)
            want = a.astype(np.float64).sum(axis=axis, keepdims=keepdims)
            assert got.shape == want.shape
            np.testing.assert_allclose(got, want, **_tolerance(dtype, shape[axis]))


def test_long_float32_sums_keep_precision():
    a = np.full(10_000_000, 0.1, np.float32)
    assert abs(float(native.sum_axis(a, 0)) - 0.1 * 1e7) / 1e6 < 1e-4  # numpy's float32 pairwise sum is close too


def test_results_are_deterministic_for_a_thread_count(threads):
    a = np.random.default_rng(1).standard_normal((3, 200_003)).astype(np.float32)
    first = native.sum_axis(a, 1)
    assert all(np.array_equal(first, native.sum_axis(a, 1)) for _ in range(3))


def test_bad_arguments_are_clear_errors():
    with pytest.raises(TypeError, match="float32 or float64, got int64"):
        native.sum_axis(np.arange(6).reshape(2, 3), 0)
    with pytest.raises(ValueError, match="C-contiguous"):
        native.sum_axis(np.ones((4, 6))[:, ::2], 0)
    with pytest.raises(ValueError, match="axis 2 is out of range"):
        native.sum_axis(np.ones((2, 3)), 2)
    with pytest.raises(ValueError, match="at least one dimension"):
        native.sum_axis(np.array(1.0), 0)
    with pytest.raises(TypeError, match="numpy array"):
        native.sum_axis([1.0, 2.0], 0)
    with pytest.raises(ValueError, match="positive int"):
        native.set_num_threads(0)


def test_the_private_module_checks_arguments_too():
    from symdiff.lowering import _native

    with pytest.raises(TypeError, match=r"sum_axis\(a\): expected float32 or float64, got int64"):
        _native.sum_axis(np.arange(6), 0)
    with pytest.raises(ValueError, match="C-contiguous"):
        _native.sum_axis(np.ones((4, 6))[:, ::2], 0)
    with pytest.raises(ValueError, match="out of range"):
        _native.sum_axis(np.ones(3), 5)


def test_cpu_features_agree_with_the_kernel():
    features = native.cpu_features()
    assert all(isinstance(features[k], bool) for k in ("avx2", "fma", "avx512f"))
    assert features["l1d_bytes"] > 0 and features["l2_bytes"] >= features["l1d_bytes"]
    if os.path.exists("/proc/cpuinfo"):
        flags = set()
        for line in open("/proc/cpuinfo"):
            if line.startswith("flags"):
                flags |= set(line.split(":", 1)[1].split())
        assert features["avx2"] == ("avx2" in flags)
        assert features["avx512f"] == ("avx512f" in flags)
        assert features["fma"] == ("fma" in flags)


def test_cuda_info_reports_the_build_and_devices():
    info = native.cuda_info()
    assert set(info) == {"built", "device_count", "devices"}
    assert info["device_count"] == len(info["devices"])
    if not info["built"]:
        assert info["device_count"] == 0
        with pytest.raises(RuntimeError, match="without CUDA"):
            native.cuda_sum_axis(np.ones(3), 0)
    elif info["device_count"] == 0:
        with pytest.raises(RuntimeError, match="no CUDA device"):
            native.cuda_sum_axis(np.ones(3), 0)


@pytest.mark.gpu
@pytest.mark.skipif(native.cuda_info()["device_count"] == 0, reason="no CUDA device")
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_cuda_sum_matches_numpy(dtype):
    rng = np.random.default_rng(2)
    a = rng.standard_normal((33, 1000, 7)).astype(dtype)
    for axis in range(3):
        np.testing.assert_allclose(native.cuda_sum_axis(a, axis), a.astype(np.float64).sum(axis=axis),
                                   **_tolerance(dtype, a.shape[axis]))
