"""sd.pad and sd.dilate: numpy's (and needle's) semantics, the errors, the rules being graph ops,
printing and parsing, every mode and second order. The registry cases (symdiff.testing) check
them against central differences in test_ops.py and test_autodiff.py too."""

import itertools

import numpy as np
import pytest

import symdiff as sd

RNG = np.random.default_rng(7)


def _loop_pad(a, widths, value):
    """pad by explicit loops: every output element is a[i - before] or value."""
    out_shape = tuple(d + b + e for d, (b, e) in zip(a.shape, widths))
    out = np.empty(out_shape)
    for idx in itertools.product(*map(range, out_shape)):
        src = tuple(i - b for i, (b, _) in zip(idx, widths))
        inside = all(0 <= j < d for j, d in zip(src, a.shape))
        out[idx] = a[src] if inside else value
    return out


def _loop_dilate(a, dilation, axes):
    """needle's dilate by explicit loops: out[i] = a[i / s] where i % s == 0 along axes, s = dilation + 1."""
    s = dilation + 1
    out_shape = tuple(d * s if k in axes else d for k, d in enumerate(a.shape))
    out = np.zeros(out_shape)
    for idx in itertools.product(*map(range, out_shape)):
        if all(idx[k] % s == 0 for k in axes):
            out[idx] = a[tuple(i // s if k in axes else i for k, i in enumerate(idx))]
    return out


@pytest.mark.parametrize("pad_width, widths", [
    (1, ((1, 1), (1, 1))),
    ((2,), ((2, 2), (2, 2))),
    ((1, 2), ((1, 2), (1, 2))),
    (((0, 3),), ((0, 3), (0, 3))),
    (((1, 0), (0, 2)), ((1, 0), (0, 2))),
    ([[2], [1]], ((2, 2), (1, 1))),
])
def test_pad_takes_numpys_pad_width_forms(pad_width, widths):
    X = sd.tensor("X", (2, 3))
    x = RNG.standard_normal((2, 3))
    y = sd.pad(X, pad_width, value=-0.5)
    assert y.attr("pad_width") == widths
    want = np.pad(x, pad_width, constant_values=-0.5)
    np.testing.assert_array_equal(sd.evaluate(y, {X: x}), want)
    np.testing.assert_array_equal(want, _loop_pad(x, widths, -0.5))


def test_pad_shapes_are_symbolic_and_nothing_to_pad_is_the_input():
    X = sd.tensor("X", ("m", "n"))
    m, n = X.shape
    assert sd.pad(X, ((1, 2), (0, 3))).shape == (m + 3, n + 3)
    assert str(sd.pad(X, 1).shape) == "(m + 2, n + 2)"
    assert sd.pad(X, 0) is X and sd.pad(X, ((0, 0), (0, 0)), value=3) is X
    assert sd.pad(X, 1) is sd.pad(X, ((1, 1), (1, 1)), value=0.0)  # one node however it is written
    x = RNG.standard_normal((4, 2))
    np.testing.assert_array_equal(sd.evaluate(sd.pad(X, ((1, 2), (0, 3))), {X: x}), np.pad(x, ((1, 2), (0, 3))))


def test_pad_of_ints_and_bools_keeps_the_dtype():
    i, b = sd.tensor("i", (3,), "int64"), sd.tensor("b", (2,), "bool")
    got = sd.evaluate(sd.pad(i, 1, value=-7), {i: np.array([1, 2, 3])})
    assert got.dtype == np.int64 and got.tolist() == [-7, 1, 2, 3, -7]
    assert sd.evaluate(sd.pad(b, (0, 1), value=True), {b: np.array([False, True])}).tolist() == [False, True, True]


@pytest.mark.parametrize("pad_width, error, message", [
    ((1, -1), sd.ShapeError, r"pad: pad widths must be non-negative, got \(1, -1\) for an array of shape \(m, 3\)"),
    (-2, sd.ShapeError, r"non-negative, got -2 for an array of shape \(m, 3\)"),
    (((1, 1), (1, 1), (1, 1)), sd.ShapeError, r"does not fit an array of shape \(m, 3\): give an int, a \(before, "
                                              r"after\) pair or 2 pairs"),
    ((1, 2, 3), sd.ShapeError, r"does not fit an array of shape \(m, 3\)"),
    ((((1,),),), sd.ShapeError, r"is not an int, a \(before, after\) pair or one pair per axis of an array of "
                               r"shape \(m, 3\)"),
    (((1, 1), (2,)), sd.ShapeError, r"is not an int, a \(before, after\) pair or one pair per axis"),
    (1.5, TypeError, "pad widths must be ints"),
    ((True, 1), TypeError, "pad widths must be ints"),
])
def test_bad_pad_widths_are_errors_naming_the_shape(pad_width, error, message):
    with pytest.raises(error, match=message):
        sd.pad(sd.tensor("X", ("m", 3)), pad_width)


def test_the_pad_value_is_a_number_of_the_arrays_dtype():
    with pytest.raises(TypeError, match="value must be a number"):
        sd.pad(sd.tensor("X", (2,)), 1, value=sd.tensor("c", ()))
    with pytest.raises(TypeError, match="cannot pad an int64 array with 0.5"):
        sd.pad(sd.tensor("i", (2,), "int64"), 1, value=0.5)


def test_dilate_is_needles_dilate():
    # needle's test_dilate_forward: dilate(A, axes=(0,), dilation=1) on a 2x5 array
    A = np.array([[6.0, 1.0, 4.0, 4.0, 8.0], [4.0, 6.0, 3.0, 5.0, 8.0]])
    X = sd.tensor("X", (2, 5))
    want = np.array([[6.0, 1.0, 4.0, 4.0, 8.0], [0.0] * 5, [4.0, 6.0, 3.0, 5.0, 8.0], [0.0] * 5])
    np.testing.assert_array_equal(sd.evaluate(sd.dilate(X, 1, (0,)), {X: A}), want)
    np.testing.assert_array_equal(sd.evaluate(sd.dilate(X, 0, 1), {X: A}), A)
    assert sd.dilate(X, 0, (0, 1)) is X and sd.dilate(X, 2, ()) is X


@pytest.mark.parametrize("shape, dilation, axes", [((3,), 2, (0,)), ((2, 3), 1, (0, 1)), ((2, 3, 2), 3, (-1,)),
                                                    ((2, 1, 3), 1, (1, 2))])
def test_dilate_matches_explicit_loops(shape, dilation, axes):
    X = sd.tensor("X", shape)
    x = RNG.standard_normal(shape)
    y = sd.dilate(X, dilation, axes)
    normalized = tuple(sorted(a % len(shape) for a in axes))
    assert y.attr("axes") == normalized
    assert y.shape == tuple(d * (dilation + 1) if k in normalized else d for k, d in enumerate(shape))
    np.testing.assert_array_equal(sd.evaluate(y, {X: x}), _loop_dilate(x, dilation, normalized))


def test_dilate_shapes_are_symbolic():
    X = sd.tensor("X", ("m", 3))
    assert str(sd.dilate(X, 1, 0).shape) == "(2*m, 3)"
    x = RNG.standard_normal((4, 3))
    np.testing.assert_array_equal(sd.evaluate(sd.dilate(X, 2, (0, 1)), {X: x}), _loop_dilate(x, 2, (0, 1)))


@pytest.mark.parametrize("args, error, message", [
    ((1, 2), sd.ShapeError, r"dilate: axis 2 is out of range for an array of shape \(m, 3\)"),
    ((1, (0, 0)), sd.ShapeError, "repeated axis"),
    ((-1, 0), sd.ShapeError, "dilation must be non-negative, got -1"),
    (((0,), 1), TypeError, r"dilation must be an int, got \(0,\) .*needle's is dilate\(a, axes, dilation\)"),
    ((1, 0.5), TypeError, "axes must be an int or a tuple of ints"),
])
def test_bad_dilations_are_errors(args, error, message):
    with pytest.raises(error, match=message):
        sd.dilate(sd.tensor("X", ("m", 3)), *args)


def test_the_rules_are_graph_ops():
    X = sd.tensor("X", ("m", 3))
    C = sd.tensor("C", (X.shape[0] + 3, 5))
    P = sd.pad(X, ((1, 2), (1, 1)))
    (ct,) = sd.vjp(P, [X], C)
    assert ct is C[1:-2, 1:-1] and ct.op.name == "getitem"  # the interior: a view
    D, E = sd.dilate(X, 2, 0), sd.tensor("E", (3 * X.shape[0], 3))
    (ct,) = sd.vjp(D, [X], E)
    assert ct is E[::3] and ct.shape == X.shape  # needle's undilate: a strided slice
    T = sd.tensor("T", ("m", 3))
    assert sd.jvp(P, [X], [T]) is sd.pad(T, ((1, 2), (1, 1)))
    assert sd.jvp(D, [X], [T]) is sd.dilate(T, 2, 0)
    assert sd.jvp(sd.pad(X, 1, value=5.0), [X], [T]) is sd.pad(T, 1)  # the tangent is padded with 0


def test_every_mode_and_second_order():
    X, W = sd.tensor("X", (3, 2)), sd.tensor("W", (6, 4))
    loss = sd.sum(sd.tanh(sd.pad(sd.dilate(X, 1, 0), ((0, 0), (1, 3)), value=0.25) @ W) ** 2)
    at = {X: RNG.standard_normal((3, 2)), W: RNG.standard_normal((6, 4))}
    numeric = sd.numeric_grad(loss, [X, W], at=at)
    for mode in ("reverse", "forward", "symbolic", "symbolic-cse"):
        got = sd.evaluate(sd.grad(loss, [X, W], mode=mode, at=at), at)
        for g, n in zip(got, numeric):
            np.testing.assert_allclose(g, n, rtol=1e-6, atol=1e-9, err_msg=mode)
    sd.check_grads(loss, [X, W], at=at, order=2)
    (gX,) = sd.grad(loss, [X])  # grad of grad: the getitem VJPs differentiate again
    (hv,) = sd.grad(sd.sum(gX * gX), [X])
    h = 1e-6
    bump = np.zeros((3, 2))
    bump[1, 0] = h
    f = lambda x: float(sd.evaluate(sd.sum(gX * gX), {X: x, W: at[W]}))  # noqa: E731
    np.testing.assert_allclose(sd.evaluate(hv, at)[1, 0], (f(at[X] + bump) - f(at[X] - bump)) / (2 * h), rtol=1e-5)


def test_symbolic_mode_reads_the_ops_on_sympy_entries():
    X = sd.tensor("X", (2, 2))
    x = RNG.standard_normal((2, 2))
    loss = sd.sum(sd.pad(X, 1, value=1.0) ** 3) + sd.sum(sd.exp(sd.dilate(X, 1, 1)))
    (g,) = sd.grad(loss, [X], mode="symbolic", at={X: x})
    np.testing.assert_allclose(sd.evaluate(g, {X: x}), 3 * x ** 2 + np.exp(x), rtol=1e-12)


def test_printing_and_parsing():
    X = sd.tensor("X", ("m", 3))
    P = sd.pad(X, ((0, 0), (1, 2)), value=-1.5)
    assert str(P) == "pad(X, pad_width=((0, 0), (1, 2)), value=-1.5)"
    assert str(sd.pad(X, 1)) == "pad(X, pad_width=((1, 1), (1, 1)))"  # value 0 is left out
    assert str(sd.dilate(X, 2, (0, 1))) == "dilate(X, dilation=2, axes=(0, 1))"
    assert str(sd.dilate(X, 1, -1)) == "dilate(X, dilation=1, axes=1)"
    for expr in (sd.dilate(X, 2, (0, 1)) * 2.0, sd.dilate(X, 1, -1), P, sd.pad(X, 1) + 1.0):
        assert sd.parse(str(expr), {"X": X}) is expr  # the text printer's promise: it reads back
    # the forms numpy broadcasts read back too; a tuple of tuples holds only tuples of ints
    assert sd.parse("pad(X, pad_width=(1, 2), value=-1.5)", {"X": X}) is sd.pad(X, (1, 2), value=-1.5)
    assert sd.parse("pad(X, pad_width=1)", {"X": X}) is sd.pad(X, 1)
    for bad in ("pad(X, pad_width=((0, 0), 1))", "pad(X, pad_width=((0, 0), (a, 1)))",
                "pad(X, pad_width=(((0, 0))))"):
        with pytest.raises(sd.ParseError, match="a tuple of tuples holds tuples of ints"):
            sd.parse(bad, {"X": X})
    assert sd.pretty(P) and sd.latex(P) and sd.pretty(sd.dilate(X, 1, 0))
