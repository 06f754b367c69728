"""sd.flip: numpy.flip's semantics, its rules as graph ops, printing, parsing and every AD mode.

The registry-driven tests (test_ops, test_autodiff, test_symbolic, test_pretty, test_rewrite)
check flip's cases in symdiff.testing; these check what is particular to it."""

import numpy as np
import pytest

import symdiff as sd

RNG = np.random.default_rng(14)
A = sd.tensor("A", (2, 3, 4))
AXES = [None, 0, 1, -1, (0, 2), (-1, 0), [1], (), np.int64(2)]


@pytest.mark.parametrize("axis", AXES, ids=repr)
def test_values_are_numpys(axis):
    a = RNG.standard_normal((2, 3, 4))
    want = np.flip(a, tuple(axis) if isinstance(axis, list) else axis)
    np.testing.assert_array_equal(sd.evaluate(sd.flip(A, axis), {A: a}), want)


def test_nothing_to_reverse_is_the_input_itself():
    x, v = sd.symbols("x"), sd.tensor("v", (3, 1))
    assert sd.flip(x) is x and sd.flip(A, ()) is A
    assert sd.flip(v, 1) is v  # one element along the axis
    assert sd.flip(v).attr("axis") == (0,)
    assert sd.flip(A, (2, 0)) is sd.flip(A, (0, -1))  # one node, however the axes are written


@pytest.mark.parametrize("axis,error,match", [
    (3, sd.ShapeError, r"flip: axis 3 is out of range for an array of shape \(2, 3, 4\)"),
    ((0, -4), sd.ShapeError, r"flip: axis -4 is out of range for an array of shape \(2, 3, 4\)"),
    ((1, 1), sd.ShapeError, r"flip: repeated axis"),
    (1.0, TypeError, r"flip: axis must be an int, a tuple of ints or None, got 1.0"),
    (True, TypeError, r"flip: axis must be an int"),
    ((0, None), TypeError, r"flip: axis must be an int"),
])
def test_bad_axes_are_clear_errors(axis, error, match):
    with pytest.raises(error, match=match):
        sd.flip(A, axis)


def test_symbolic_shapes_are_named_in_errors_and_kept():
    X = sd.tensor("X", ("m", "n"))
    assert sd.flip(X, 0).shape == X.shape
    with pytest.raises(sd.ShapeError, match=r"shape \(m, n\)"):
        sd.flip(X, 2)


def test_jvp_and_vjp_are_flips():
    X, T, C = sd.tensor("X", (3, 4)), sd.tensor("T", (3, 4)), sd.tensor("C", (3, 4))
    f = sd.flip(X, -1)
    assert sd.jvp(f, [X], [T]) is sd.flip(T, 1)
    (pulled,) = sd.vjp(f, [X], C)
    assert pulled is sd.flip(C, 1)  # flip is its own transpose: the VJP is one view, not a scatter
    (J,) = sd.jacobian(sd.flip(sd.tensor("v", (4,))), [sd.tensor("v", (4,))], mode="reverse")
    np.testing.assert_array_equal(sd.evaluate(J, {}), np.eye(4)[::-1])


@pytest.mark.parametrize("mode", ["reverse", "forward", "symbolic", "symbolic-cse"])
def test_every_mode_agrees_with_central_differences(mode):
    X, w = sd.tensor("X", (3, 4)), sd.tensor("w", (4,))
    f = sd.sum(sd.sin(X) * sd.flip(X, 1)) + sd.sum(sd.flip(sd.tanh(X @ w)) ** 2)
    at = {X: RNG.standard_normal((3, 4)), w: RNG.standard_normal(4)}
    got = sd.evaluate(sd.grad(f, [X, w], mode=mode, at=at), at)
    for g, n in zip(got, sd.numeric_grad(f, [X, w], at=at)):
        np.testing.assert_allclose(g, n, rtol=1e-6, atol=1e-8)


def test_second_order_and_symbolic_shapes():
    X = sd.tensor("X", ("m", "n"))
    f = sd.sum(sd.flip(X, 0) * X ** 3)
    at = {X: RNG.standard_normal((3, 5))}
    sd.check_grads(f, [X], at=at, order=2)  # raises if forward, reverse or ⟨J·t, c⟩ = ⟨t, Jᵀ·c⟩ is off
    v = sd.tensor("v", (3,))
    H = sd.hessian(sd.sum(sd.flip(v) ** 2 * v), [v])  # v0·v2² + v1³ + v2·v0²
    np.testing.assert_allclose(sd.evaluate(H[0][0], {v: np.array([1.0, 2.0, 3.0])}),
                               [[6, 0, 8], [0, 12, 0], [8, 0, 2]])


@pytest.mark.parametrize("axis,text", [(None, "flip(A)"), (0, "flip(A, axis=0)"), (-1, "flip(A, axis=2)"),
                                        ((0, 2), "flip(A, axis=(0, 2))")])
def test_text_prints_the_axes_and_reads_back(axis, text):
    f = sd.flip(A, axis)
    assert str(f) == text
    assert sd.parse(text, {"A": A}) is f
    assert sd.parse(str(sd.exp(f) + 1.0), {"A": A}) is sd.exp(f) + 1.0


def test_pretty_and_latex_print_a_call():
    v = sd.tensor("v", (3,))
    assert sd.pretty(sd.flip(v)) == "flip(v)"
    assert sd.latex(sd.flip(v)) == "\\operatorname{flip}\\left(v\\right)"


def test_optimize_keeps_values_and_counts_a_view_as_free():
    X = sd.tensor("X", (30, 40))
    f = sd.sum(sd.exp(sd.flip(X, 0)) * 2.0)
    at = {X: RNG.standard_normal((30, 40))}
    np.testing.assert_allclose(sd.evaluate(sd.optimize(f), at), sd.evaluate(f, at))
    from symdiff.memory import peak_bytes

    assert peak_bytes(sd.flip(X, 0)) == 0  # a view of its input, as in numpy
    assert sd.cost(sd.flip(X))["flops"] == 0
