"""Compiled programs at the edges numpy defines: empty axes, integer powers (issue 13, item 13).

The cpu backend must do what the numpy backend (the reference) does: the same value, or an
error of the same kind."""

import numpy as np
import pytest
from symdiff.lowering import ProgramError

import symdiff as sd

BACKENDS = ["numpy", "cpu"]


pytestmark = pytest.mark.usefixtures("module_program_cache")  # tests/conftest.py


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_mean_over_an_empty_axis_is_nan(backend):
    x = sd.tensor("x", ("n",))
    X = sd.tensor("X", ("m", 3))
    with np.errstate(invalid="ignore", divide="ignore"):
        assert np.isnan(sd.compile(sd.mean(x), [x], backend=backend)(np.zeros(0)))
        means = sd.compile(sd.mean(X, axis=0), [X], backend=backend)(np.zeros((0, 3)))
    assert means.shape == (3,) and np.isnan(means).all()


@pytest.mark.parametrize("backend", BACKENDS)
def test_empty_arrays_flow_through_elementwise_ops_sums_and_softmax(backend):
    X = sd.tensor("X", ("m", 3))
    prog = sd.compile([sd.exp(X), sd.sum(X), sd.sum(X, axis=1), sd.softmax(X, axis=1)], [X], backend=backend)
    e, total, rows, soft = prog(np.zeros((0, 3)))
    assert e.shape == (0, 3) and total == 0.0 and rows.shape == (0,) and soft.shape == (0, 3)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("axis, shape", [(None, (0,)), (0, (0, 3))])
def test_max_of_nothing_is_an_error_as_in_numpy(backend, axis, shape):
    X = sd.tensor("X", tuple(f"d{k}" for k in range(len(shape))))
    prog = sd.compile(sd.max(X, axis=axis), [X], backend=backend)
    with pytest.raises(ValueError, match="max"):
        prog(np.zeros(shape))
    assert prog(np.ones(tuple(d or 2 for d in shape))).size >= 1  # the same program on data still works


@pytest.mark.parametrize("backend", BACKENDS)
def test_max_over_a_nonempty_axis_of_an_empty_array_is_empty(backend):
    X = sd.tensor("X", ("m", 3))
    out = sd.compile(sd.max(X, axis=1), [X], backend=backend)(np.zeros((0, 3)))
    assert out.shape == (0,)


@pytest.mark.parametrize("backend", BACKENDS)
def test_integers_to_negative_powers_are_an_error(backend):
    y, k = sd.tensor("y", (3,), "int64"), sd.tensor("k", (3,), "int64")
    with pytest.raises(ValueError, match="negative integer powers"):
        sd.compile(y ** -1, [y], backend=backend)(np.array([1, 2, 3]))
    prog = sd.compile(y ** k, [y, k], backend=backend)
    np.testing.assert_array_equal(prog(np.array([2, 3, 4]), np.array([0, 1, 2])), [1, 3, 16])
    with pytest.raises(ValueError, match="negative integer powers"):
        prog(np.array([2, 3, 4]), np.array([0, -1, 2]))


def test_a_program_error_is_also_a_runtime_error():
    assert issubclass(ProgramError, ValueError) and issubclass(ProgramError, RuntimeError)


def test_a_program_with_symbolic_dimensions_is_explained_for_given_sizes():
    # issue 13 item 11: the README called explain() before the first call and got a ValueError
    X, W = sd.tensor("X", ("m", 4)), sd.tensor("W", (4, 3))
    step = sd.compile([sd.sum(sd.tanh(X @ W))], [X, W])
    with pytest.raises(ValueError, match=r"symbolic dimensions m: call it once, or give their sizes .*explain\(m=64\)"):
        step.explain()
    assert "t0[8,3] = X·W" in step.explain(m=8) and step.explain(m=8).endswith("inputs: in0 = X, in1 = W")
    with pytest.raises(ValueError, match="no dimension n"):
        step.explain(n=3)
    step(np.ones((5, 4)), np.ones((4, 3)))
    assert "[5,3]" in step.explain()  # the latest call's sizes
