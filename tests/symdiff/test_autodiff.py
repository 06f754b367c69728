"""Derivatives: every op against central differences, modes against each other, seed examples."""

import zlib

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import symdiff as sd
from symdiff.testing import cases, extreme_cases, random_graphs

# stop_gradient's derivative is 0 by definition, not its central difference: test_composites.py checks it
DIFFERENTIABLE = [c for c in cases() if c.op != "stop_gradient"]


def _float_leaves(values):
    return [leaf for leaf in values if leaf.dtype.startswith("float")]


def _differentiable(expr, values):
    return expr.dtype.startswith("float") and expr.op.differentiable and _float_leaves(values)


@pytest.mark.parametrize("dtype,order", [("float64", 2), ("float32", 1)])
@pytest.mark.parametrize("case", DIFFERENTIABLE, ids=str)
def test_every_op_against_central_differences(case, dtype, order):
    """Forward and reverse mode, first and second order, and <J·t, c> = <t, Jᵀ·c>."""
    rng = np.random.default_rng(zlib.crc32(repr(str(case)).encode()))
    expr, values = case.instantiate(rng, dtype)
    if not _differentiable(expr, values):
        pytest.skip(f"{case} has no derivative (non-float output or non-differentiable op)")
    sd.check_grads(expr, _float_leaves(values), values, order=order)


@pytest.mark.parametrize("case", DIFFERENTIABLE, ids=str)
def test_forward_and_reverse_gradients_are_equal(case):
    rng = np.random.default_rng(7)
    expr, values = case.instantiate(rng)
    if not _differentiable(expr, values):
        pytest.skip(f"{case} has no derivative")
    weights = sd.tensor("weights", expr.shape, expr.dtype)
    values[weights] = rng.standard_normal(np.shape(sd.evaluate(expr, values)))
    loss = sd.sum(weights * expr)
    wrt = _float_leaves({k: v for k, v in values.items() if k is not weights})
    reverse = sd.evaluate(sd.grad(loss, wrt, mode="reverse"), values)
    forward = sd.evaluate(sd.grad(loss, wrt, mode="forward"), values)
    numeric = sd.numeric_grad(loss, wrt, at=values)
    for r, f, n, w in zip(reverse, forward, numeric, wrt):
        assert r.shape == f.shape == n.shape
        np.testing.assert_allclose(r, f, rtol=1e-10, atol=1e-12, err_msg=f"{case} d/d{w.name}")
        tol = 1e-5 if expr.dtype == "float64" else 2e-2  # the oracle evaluates in the graph's dtype
        np.testing.assert_allclose(r, n, rtol=tol, atol=tol / 100, err_msg=f"{case} d/d{w.name}")


@pytest.mark.parametrize("case", extreme_cases(), ids=str)
def test_forward_and_reverse_agree_at_extremes(case):
    """±1e4, ±50 and 0 in float64: finite wherever the op and its derivative are."""
    expr, values = case.instantiate(None)
    size = int(np.prod(expr.shape, dtype=np.int64))
    loss = sd.sum(expr * np.linspace(0.5, 1.5, size).reshape(expr.shape)) if expr.shape else expr
    wrt = _float_leaves(values)
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        reverse = sd.evaluate(sd.grad(loss, wrt, mode="reverse"), values)
        forward = sd.evaluate(sd.grad(loss, wrt, mode="forward"), values)
    for r, f, w in zip(reverse, forward, wrt):
        assert np.isfinite(r).all(), f"{case} d/d{w.name}"
        np.testing.assert_allclose(r, f, rtol=1e-10, atol=1e-12, err_msg=f"{case} d/d{w.name}")


# -- random graphs from the registry -------------------------------------------------------
@settings(max_examples=40, deadline=None)
@given(random_graphs(), st.integers(0, 2**31 - 1))
def test_random_graphs_all_modes_agree(graph, seed):
    f, leaves = graph
    rng = np.random.default_rng(seed)
    values = {leaf: rng.uniform(-1.5, 1.5, leaf.shape) for leaf in leaves}
    reverse = sd.evaluate(sd.grad(f, leaves, mode="reverse"), values)
    forward = sd.evaluate(sd.grad(f, leaves, mode="forward"), values)
    numeric = sd.numeric_grad(f, leaves, at=values)
    for r, fw, n in zip(reverse, forward, numeric):
        np.testing.assert_allclose(r, fw, rtol=1e-9, atol=1e-10)
        np.testing.assert_allclose(r, n, rtol=1e-4, atol=1e-6)


# -- the seed lectures' examples -----------------------------------------------------------
def test_comp551_two_outputs_one_forward_pass_and_one_reverse_pass():
    """y1 = sin(w1 x + w0), y2 = cos(w1 x + w0): one forward pass per input gives both outputs'
    derivatives; one reverse pass per output gives both weights' derivatives."""
    x, w0, w1 = sd.symbols("x w0 w1")
    y1, y2 = sd.sin(w1 * x + w0), sd.cos(w1 * x + w0)
    at = {x: 0.7, w0: -0.3, w1: 1.9}
    z = 1.9 * 0.7 - 0.3
    d1, d2 = sd.evaluate(sd.jvp([y1, y2], [w0, w1], [0.0, 1.0]), at)  # one pass: d/dw1 of both
    assert np.isclose(d1, np.cos(z) * 0.7) and np.isclose(d2, -np.sin(z) * 0.7)
    g0, g1 = sd.evaluate(sd.vjp(y1, [w0, w1], 1.0), at)  # one pass: both weights for y1
    assert np.isclose(g0, np.cos(z)) and np.isclose(g1, np.cos(z) * 0.7)
    # and the forward pass shares the common w1*x + w0 with the tangent computation
    assert sd.count_ops([y1, y2]) == 4


def test_needle_gradient_of_gradient():
    x = sd.symbols("x")
    y = x * x * x
    gx = sd.grad(y, x)
    ggx = sd.grad(gx, x)
    gggx = sd.grad(ggx, x)
    assert [float(v) for v in sd.evaluate([gx, ggx, gggx], {x: 2.0})] == [12.0, 12.0, 6.0]


def test_softmax_regression_gradient_is_the_textbook_formula():
    X, W = sd.tensor("X", ("m", "n")), sd.tensor("W", ("n", "k"))
    y = sd.tensor("y", ("m",), "int64")
    loss = sd.softmax_cross_entropy(X @ W, y)
    rng = np.random.default_rng(3)
    Xv, Wv, yv = rng.normal(size=(50, 8)), rng.normal(size=(8, 5)), rng.integers(0, 5, 50)
    Z = Xv @ Wv
    P = np.exp(Z - Z.max(axis=1, keepdims=True))
    P /= P.sum(axis=1, keepdims=True)
    textbook = Xv.T @ (P - np.eye(5)[yv]) / 50
    for mode in ("reverse", "forward"):
        got = sd.evaluate(sd.grad(loss, W, mode=mode), {X: Xv, W: Wv, y: yv})
        np.testing.assert_allclose(got, textbook, rtol=1e-12, atol=1e-14)


def test_hessian_and_hessian_vector_product():
    x = sd.tensor("x", (3,))
    A = sd.tensor("A", (3, 3))
    f = sd.sum(sd.tanh(A @ x) ** 2) + sd.sum(x**3)
    rng = np.random.default_rng(0)
    at = {x: rng.normal(size=3), A: rng.normal(size=(3, 3))}
    H = sd.evaluate(sd.hessian(f, x), at)
    g = sd.grad(f, x)
    numeric = np.stack([sd.numeric_grad(g[i], x, at=at) for i in range(3)])
    np.testing.assert_allclose(H, numeric, rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(H, H.T, atol=1e-12)
    v = rng.normal(size=3)
    np.testing.assert_allclose(sd.evaluate(sd.hvp(f, [x], [sd.constant(v)])[0], at), H @ v, rtol=1e-10)


@pytest.mark.parametrize("n,m,expected", [(10, 1000, "forward"), (1000, 10, "reverse"), (1000, 1, "reverse"),
                                          (100, 100, "reverse")])
def test_jacobian_auto_mode_follows_the_sizes(n, m, expected):
    A, x = sd.tensor("A", (m, n)), sd.tensor("x", (n,))
    _, why = sd.jacobian(sd.tanh(A @ x), x, explain=True)
    assert why.startswith(expected)


@pytest.mark.parametrize("mode", ["forward", "reverse"])
def test_jacobian_shapes_and_values(mode):
    A, x = sd.tensor("A", (4, 3)), sd.tensor("x", (3,))
    rng = np.random.default_rng(1)
    at = {A: rng.normal(size=(4, 3)), x: rng.normal(size=3)}
    J = sd.evaluate(sd.jacobian(sd.tanh(A @ x), x, mode=mode), at)
    want = (1 - np.tanh(at[A] @ at[x]) ** 2)[:, None] * at[A]
    np.testing.assert_allclose(J, want, rtol=1e-12)
    JA = sd.evaluate(sd.jacobian(sd.tanh(A @ x), A, mode=mode), at)
    assert JA.shape == (4, 4, 3)


def test_reverse_gradient_reuses_forward_values():
    x = sd.tensor("x", (5,))
    s = sd.sigmoid(x)
    (g,) = sd.grad(sd.sum(s), [x])
    assert s in [n for n in sd.toposort(g) if n is s] and any(n is s for n in sd.toposort(g))
    t = sd.tanh(x)
    assert any(n is t for n in sd.toposort(sd.grad(sd.sum(t), x)))


# -- bad input -----------------------------------------------------------------------------
def test_grad_of_a_non_scalar_points_to_jacobian_and_vjp():
    X = sd.tensor("X", (2, 3))
    with pytest.raises(sd.DifferentiationError, match=r"scalar function, got shape \(2, 3\).*jacobian.*vjp"):
        sd.grad(sd.exp(X), X)


def test_differentiating_with_respect_to_integers_or_non_leaves_is_an_error():
    i = sd.tensor("i", (3,), "int64")
    x = sd.symbols("x")
    with pytest.raises(sd.DifferentiationError, match="i: it is int64"):
        sd.grad(sd.sum(i * 1.0), i)
    with pytest.raises(sd.DifferentiationError, match="only differentiate with respect to leaves"):
        sd.grad(sd.sin(x), x * 2)
    with pytest.raises(ValueError, match="unknown mode"):
        sd.grad(x * x, x, mode="telepathy")


def test_unused_leaves_get_zeros_of_their_shape():
    x, W = sd.symbols("x"), sd.tensor("W", ("n", 3))
    _, gW = sd.grad(x**2, [x, W])
    assert gW.shape == W.shape
    out = sd.evaluate(gW, {x: 1.0, W: np.ones((4, 3))})
    assert out.shape == (4, 3) and not out.any()


def test_non_differentiable_ops_have_zero_derivative():
    x = sd.tensor("x", (4,))
    y = sd.tensor("y", (4,), "int64")
    f = sd.sum(sd.where(x > 0, x, 0.0)) + sd.sum(sd.astype(sd.argmax(sd.reshape(x, (2, 2)), axis=1), "float64"))
    f = f + sd.sum(sd.one_hot(y, 3) * 2.0)
    at = {x: np.array([-1.0, 2.0, 3.0, -4.0]), y: np.array([0, 1, 2, 0])}
    np.testing.assert_array_equal(sd.evaluate(sd.grad(f, x), at), [0.0, 1.0, 1.0, 0.0])


def test_relu_and_abs_derivatives_at_zero_are_zero():
    x = sd.tensor("x", (3,))
    at = {x: np.array([-1.0, 0.0, 2.0])}
    np.testing.assert_array_equal(sd.evaluate(sd.grad(sd.sum(sd.relu(x)), x), at), [0, 0, 1])
    np.testing.assert_array_equal(sd.evaluate(sd.grad(sd.sum(sd.abs(x)), x), at), [-1, 0, 1])
