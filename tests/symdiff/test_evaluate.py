"""The reference evaluator's contract: values by leaf or name, shapes bound, clear errors."""

import numpy as np
import pytest

import symdiff as sd
from symdiff.shapes import ShapeError


def test_list_in_list_out_and_single_in_single_out():
    x, y = sd.symbols("x y")
    assert isinstance(sd.evaluate([x + y], {x: 1, y: 2}), list)
    assert float(sd.evaluate(x * y, {"x": 2.0, "y": 4.0})) == 8.0


def test_missing_leaves_are_named():
    X = sd.tensor("X", ("m", "n"))
    w = sd.tensor("w", ("n",))
    with pytest.raises(KeyError, match=r"no value for X \(shape \(m, n\), float64\), w"):
        sd.evaluate(X @ w, {})


def test_shape_mismatch_names_the_leaf_and_shapes():
    X = sd.tensor("X", (2, 3))
    with pytest.raises(ShapeError, match=r"X expects shape \(2, 3\) = \(2, 3\), got \(3, 2\)"):
        sd.evaluate(X.sum(), {X: np.zeros((3, 2))})
    with pytest.raises(ShapeError, match=r"X expects shape \(2, 3\), got \(6,\)"):
        sd.evaluate(X.sum(), {X: np.zeros(6)})


def test_symbolic_dims_bind_consistently():
    X, w = sd.tensor("X", ("m", "n")), sd.tensor("w", ("n",))
    out = sd.evaluate(X @ w, {X: np.ones((4, 3)), w: np.arange(3.0)})
    np.testing.assert_allclose(out, [3.0] * 4)
    with pytest.raises(ShapeError, match=r"dimension n is 3 elsewhere but 5 in w"):
        sd.evaluate(X @ w, {X: np.ones((4, 3)), w: np.ones(5)})


def test_dtype_casting_rules():
    i = sd.tensor("i", (2,), "int64")
    f32 = sd.tensor("f", (2,), "float32")
    b = sd.tensor("b", (2,), "bool")
    with pytest.raises(TypeError, match="i is int64; a value of dtype float64 cannot be cast"):
        sd.evaluate(i + 1, {i: [1.5, 2.0]})
    assert sd.evaluate(f32 * 2, {f32: np.array([1.0, 2.0])}).dtype == np.float32
    assert sd.evaluate(f32 * 2, {f32: [3, 4]}).tolist() == [6.0, 8.0]  # ints for a float leaf
    with pytest.raises(TypeError, match="b is bool"):
        sd.evaluate(sd.where(b, f32, 0.0), {b: [1, 0], f32: [1.0, 2.0]})
    with pytest.raises(TypeError, match="complex"):
        sd.evaluate(f32 * 2, {f32: np.array([1j, 2])})


def test_python_numbers_broadcast_only_to_scalar_leaves():
    x = sd.symbols("x")
    assert float(sd.evaluate(x * 2, {x: 3})) == 6.0
    v = sd.tensor("v", (2,))
    with pytest.raises(ShapeError):
        sd.evaluate(v * 2, {v: 3.0})


def test_names_that_are_ambiguous_must_be_keyed_by_leaf():
    a, b = sd.tensor("X", (2,)), sd.tensor("X", (3,))
    with pytest.raises(ValueError, match="ambiguous"):
        sd.evaluate(a.sum() + b.sum(), {"X": np.ones(2)})
    assert float(sd.evaluate(a.sum() + b.sum(), {a: np.ones(2), b: np.ones(3)})) == 5.0


def test_outputs_never_alias_inputs_or_views():
    X = sd.tensor("X", (2, 2))
    value = np.ones((2, 2))
    out_leaf, out_t = sd.evaluate([X, X.T], {X: value})
    out_leaf[0, 0] = 7.0
    out_t[0, 0] = 9.0
    assert value[0, 0] == 1.0


def test_keys_must_be_leaves_or_names():
    x = sd.symbols("x")
    with pytest.raises(TypeError, match="only leaves"):
        sd.evaluate(x, {x + 1: 2.0})
    with pytest.raises(TypeError, match="expression"):
        sd.evaluate(x, {x: x})
