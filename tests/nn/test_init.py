import numpy as np
import pytest
from symdiff.nn import init


def test_reproducible_from_the_seed():
    init.manual_seed(5)
    a = init.kaiming_uniform(30, 20)
    b = init.normal((7,))
    init.manual_seed(5)
    assert np.array_equal(a, init.kaiming_uniform(30, 20)) and np.array_equal(b, init.normal((7,)))
    assert not np.array_equal(a, init.kaiming_uniform(30, 20))  # the stream moved on


@pytest.mark.parametrize("fn, fan_in, fan_out, bound, std", [
    (init.xavier_uniform, 300, 200, (6 / 500) ** 0.5, (6 / 500) ** 0.5 / 3 ** 0.5),
    (init.kaiming_uniform, 300, 200, (2 * 3 / 300) ** 0.5, (2 / 300) ** 0.5),
    (init.xavier_normal, 300, 200, None, (2 / 500) ** 0.5),
    (init.kaiming_normal, 300, 200, None, (2 / 300) ** 0.5),
])
def test_scales(fn, fan_in, fan_out, bound, std):
    init.manual_seed(0)
    w = fn(fan_in, fan_out)
    assert w.shape == (fan_in, fan_out) and w.dtype == np.float32
    if bound is not None:
        assert np.abs(w).max() <= bound
    assert abs(w.std() / std - 1) < 0.02
    assert abs(w.mean()) < 0.01 * std * 10


def test_gain_and_bad_nonlinearity():
    init.manual_seed(0)
    w = init.kaiming_normal(400, 400, nonlinearity="tanh", dtype="float64")
    assert w.dtype == np.float64 and abs(w.std() / ((5 / 3) / 20) - 1) < 0.02
    with pytest.raises(ValueError, match="unknown nonlinearity"):
        init.kaiming_uniform(3, 3, nonlinearity="swish")
