"""Symbolic mode (sympy.diff on the scalarized graph) agrees with reverse mode; limits are clear."""

import numpy as np
import pytest
import sympy

import symdiff as sd
from symdiff import symbolic
from symdiff.symbolic import TooLarge, scalarize, symbolic_derivatives
from symdiff.testing import cases, extreme_cases

# argmax and max pooling's derivatives pick elements by comparing them: no formula in the elements
SMALL = [c for c in cases() if c.op not in ("argmax", "max_pool2d_gather", "max_pool2d_scatter")]


@pytest.mark.parametrize("case", SMALL, ids=str)
def test_scalarized_function_evaluates_like_the_graph(case):
    rng = np.random.default_rng(5)
    expr, values = case.instantiate(rng)
    if not expr.dtype.startswith("float"):
        pytest.skip("symbolic mode scalarizes float functions")
    (scalar,) = scalarize([expr], at=values)
    substitutions = {}
    for leaf, value in values.items():
        if leaf.dtype.startswith("float"):
            value = np.asarray(value)
            for index in np.ndindex(*value.shape):
                name = leaf.name if not value.shape else f"{leaf.name}[{', '.join(map(str, index))}]"
                substitutions[name] = float(value[index])
    got = np.vectorize(lambda e: float(e.subs({s: substitutions[s.name] for s in e.free_symbols}))
                       if hasattr(e, "free_symbols") else float(e), otypes=[float])(scalar)
    tol = 1e-10 if expr.dtype == "float64" else 1e-6
    np.testing.assert_allclose(got, sd.evaluate(expr, values), rtol=tol, atol=tol)


@pytest.mark.parametrize("mode", ["symbolic", "symbolic-cse"])
@pytest.mark.parametrize("case", [c for c in SMALL if c.label in ("", "same shape", "broadcast", "axis 0", "keepdims")],
                         ids=str)
def test_symbolic_gradients_equal_reverse_mode(case, mode):
    rng = np.random.default_rng(6)
    expr, values = case.instantiate(rng)
    wrt = [leaf for leaf in values if leaf.dtype == "float64"]
    if not (expr.dtype == "float64" and expr.op.differentiable and wrt):
        pytest.skip("no derivative")
    loss = sd.sum(expr * expr)
    symbolic = sd.evaluate(sd.grad(loss, wrt, mode=mode, at=values), values)
    reverse = sd.evaluate(sd.grad(loss, wrt), values)
    for s, r in zip(symbolic, reverse):
        np.testing.assert_allclose(s, r, rtol=1e-9, atol=1e-11)


def test_composite_functions_and_labels():
    X, W = sd.tensor("X", (5, 3)), sd.tensor("W", (3, 4))
    y = sd.tensor("y", (5,), "int64")
    rng = np.random.default_rng(0)
    at = {X: rng.normal(size=(5, 3)), W: rng.normal(size=(3, 4)), y: rng.integers(0, 4, 5)}
    loss = sd.softmax_cross_entropy(sd.tanh(X @ W), y)
    want = sd.evaluate(sd.grad(loss, W), at)
    for mode in ("symbolic", "symbolic-cse"):
        np.testing.assert_allclose(sd.evaluate(sd.grad(loss, W, mode=mode, at=at), at), want, rtol=1e-10)
    # without label values the one-hot rows are 0/1 indicator symbols (tests/symdiff/test_symbolic_losses.py);
    # an op that needs the values themselves still asks for them
    np.testing.assert_allclose(sd.evaluate(sd.grad(loss, W, mode="symbolic"), at), want, rtol=1e-10)
    with pytest.raises(ValueError, match="needs the values of integer inputs: give y"):
        sd.grad(sd.sum(sd.take(X, y, axis=0) @ W), W, mode="symbolic")


def test_comp551_example():
    x, w0, w1 = sd.symbols("x w0 w1")
    f = sd.sin(w1 * x + w0)
    g0, g1 = sd.grad(f, [w0, w1], mode="symbolic")
    assert str(g0) == "cos(w0 + w1*x)" or "cos" in str(g0)
    at = {x: 0.7, w0: -0.3, w1: 1.9}
    np.testing.assert_allclose(sd.evaluate([g0, g1], at), sd.evaluate(sd.grad(f, [w0, w1]), at), rtol=1e-14)


def test_too_large_is_refused_with_the_size():
    A = sd.tensor("A", (300, 300))
    with pytest.raises(TooLarge, match=r"about [\d,]+ scalar operations \(limit 200,000\)"):
        sd.grad(sd.sum(A @ A), A, mode="symbolic")


def test_symbolic_shapes_need_values():
    X = sd.tensor("X", ("m", 2))
    with pytest.raises(ValueError, match="needs concrete shapes: give values for X"):
        sd.grad(sd.sum(X * X), X, mode="symbolic")


def test_swell_is_measured_and_cse_shrinks_it():
    x = sd.symbols("x")
    l = x
    for _ in range(6):
        l = 4 * l * (1 - l)
    plain = symbolic_derivatives(l, [x], cse=False)
    shared = symbolic_derivatives(l, [x], cse=True)
    assert plain.tree_ops > 20 * sd.count_ops(l)
    assert shared.dag_ops < plain.tree_ops / 5
    assert shared.cse_s > 0 and plain.cse_s == 0
    v = {x: 0.3}
    np.testing.assert_allclose(sd.evaluate(shared.graphs[0], v), sd.evaluate(sd.grad(l, x), v), rtol=1e-12)


def test_deterministic():
    x, y = sd.symbols("x y")
    f = sd.exp(x * y) / (1 + x**2)
    a = symbolic_derivatives(f, [x, y], cse=True)
    b = symbolic_derivatives(f, [x, y], cse=True)
    assert [str(e) for e in a.expressions] == [str(e) for e in b.expressions]
    assert all(p is q for p, q in zip(a.graphs, b.graphs))


# -- the stable ops: at the extremes, and as functions sympy keeps -------------------------
def _weighted_sum(expr):
    """A scalar loss that weighs every element differently (a plain sum of softmax is constant)."""
    size = int(np.prod(expr.shape, dtype=np.int64))
    return sd.sum(expr * np.linspace(0.5, 1.5, size).reshape(expr.shape)) if expr.shape else expr * 0.75


@pytest.mark.parametrize("mode", ["symbolic", "symbolic-cse"])
@pytest.mark.parametrize("case", extreme_cases(), ids=str)
def test_symbolic_gradients_at_extremes_equal_reverse_and_forward(case, mode):
    """±1e4, ±50, 0: symbolic mode goes through the stable forms, so no inf/inf = nan."""
    expr, values = case.instantiate(None)
    wrt = [leaf for leaf in values if leaf.dtype == "float64"]
    loss = _weighted_sum(expr)
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        symbolic = sd.evaluate(sd.grad(loss, wrt, mode=mode, at=values), values)
        reverse = sd.evaluate(sd.grad(loss, wrt, mode="reverse"), values)
        forward = sd.evaluate(sd.grad(loss, wrt, mode="forward"), values)
    for s, r, f in zip(symbolic, reverse, forward):
        assert np.isfinite(s).all()
        np.testing.assert_allclose(s, r, rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(f, r, rtol=1e-9, atol=1e-12)


def test_the_reported_nan_logsumexp_at_1e4():
    Z = sd.tensor("Z", (1, 2))
    (g,) = sd.grad(sd.logsumexp(Z), [Z], mode="symbolic", at={Z: [[1e4, 0.0]]})
    np.testing.assert_array_equal(sd.evaluate(g, {Z: [[1e4, 0.0]]}), [[1.0, 0.0]])


def test_stable_ops_stay_stable_in_sympy_and_in_the_rebuilt_graph():
    v = sd.tensor("v", (2,))
    info = symbolic_derivatives(sd.logsumexp(v), [v])
    assert [str(e) for e in info.expressions] == ["softmax(v[0], v[1])[0]", "softmax(v[0], v[1])[1]"]
    built = {n.op.name for n in sd.toposort(info.graphs)}
    assert "softmax" in built and not built & {"exp", "log", "divide", "reciprocal"}
    x = sd.symbols("x")
    assert [str(e) for e in symbolic_derivatives(sd.softplus(x), [x]).expressions] == ["sigmoid(x)"]
    (d,) = symbolic_derivatives(sd.sigmoid(x), [x]).graphs
    assert {n.op.name for n in sd.toposort(d)} <= {"leaf", "constant", "sigmoid", "subtract", "multiply"}


def test_stable_functions_are_counted_as_their_exp_log_forms():
    """The swell meter sees the math sympy would build from exp and log, not one op per call."""
    v = sd.tensor("v", (3,))
    a = sympy.symbols("v[0] v[1] v[2]", real=True)
    naive = sympy.log(sum(sympy.exp(s) for s in a))
    for cse in (False, True):
        info = symbolic_derivatives(sd.logsumexp(v), [v], cse=cse)
        assert info.function_tree_ops == sympy.count_ops(naive)
        assert info.tree_ops == sum(sympy.count_ops(sympy.diff(naive, s)) for s in a)
    assert 0 < info.dag_ops <= info.tree_ops


# -- the limit bounds sympy's work: wrt elements x f's tree, then the derivatives' trees ----
def test_many_wrt_elements_are_refused_before_scalarizing(monkeypatch):
    """A 20,000-operation function is small; differentiating it 2,368 times is not."""
    def scalarize(*args, **kwargs):
        raise AssertionError("scalarized past the limit")

    monkeypatch.setattr(symbolic, "scalarize", scalarize)
    X, W = sd.tensor("X", (64, 32)), sd.tensor("W", (32, 10))
    with pytest.raises(TooLarge, match=r"\(limit 200,000\): 2,368 wrt elements × about [\d,]+ operations of f"):
        sd.grad(sd.sum(sd.tanh(X @ W)), [X, W], mode="symbolic")


def test_the_limit_stops_sympy_diff_when_the_derivatives_swell(monkeypatch):
    """The logistic map's derivative is many times f's size: the estimate (4 × f) passes, and
    the derivatives' running size stops sympy.diff before it has done them all."""
    v = sd.tensor("v", (4,))
    l = v
    for _ in range(6):
        l = 4 * l * (1 - l)
    f = sd.sum(l)
    assert symbolic.derivative_estimate(f, [v]) < 5_000
    calls = []
    diff = sympy.diff
    monkeypatch.setattr(sympy, "diff", lambda *args: calls.append(args) or diff(*args))
    with pytest.raises(TooLarge, match=r"\(limit 5,000\): sympy.diff had built that many after \d of 4 wrt"):
        symbolic_derivatives(f, [v], max_operations=5_000)
    assert 0 < len(calls) < 4


def test_an_integer_power_beyond_int64_is_refused_before_sympy_computes_it():
    # issue 13 item 5: 9**(9**9) has 370 million digits; sympy would compute them all
    x = sd.symbols("x")
    with pytest.raises(OverflowError, match="overflows int64"):
        sd.grad(sd.constant(9) ** sd.constant(9**9) * x, x, mode="symbolic")
    assert str(sd.grad(sd.constant(3) ** sd.constant(4) * x, x, mode="symbolic")) == "81"


def test_an_op_without_a_formula_is_a_clear_error_in_symbolic_mode():
    X = sd.tensor("X", (1, 3))
    f = sd.sum(X * sd.one_hot(sd.argmax(X, axis=1), 3))
    with pytest.raises(ValueError, match="cannot write argmax as a formula.*mode='reverse'"):
        sd.grad(f, [X], mode="symbolic", at={X: [[1.0, 2.0, 3.0]]})
    assert sd.evaluate(sd.grad(f, [X]), {X: np.array([[1.0, 2.0, 3.0]])})[0].tolist() == [[0.0, 0.0, 1.0]]
