"""Matrix-calculus gradients print in the textbook's form and size (issue 17): a table of cases,
each with its printed form, its operation count, a check against central differences and
against the textbook formula."""


import numpy as np
import pytest

import symdiff as sd

n = "n"
A, B, D, X = (sd.tensor(s, (n, n)) for s in "ABDX")
a, b, c, x, y = (sd.tensor(s, (n,)) for s in "abcxy")
tr = sd.trace

# id: (f, wrt, printed gradient, its count_ops, the textbook formula)
GRADIENTS = {
    "aT X b": (a @ (X @ b), X, "a·bᵀ", 3, sd.outer(a, b) if hasattr(sd, "outer") else None),
    "aT XT b": (a @ (X.T @ b), X, "b·aᵀ", 3, None),
    "tr(AX)": (tr(A @ X), X, "Aᵀ", 1, A.T),
    "tr(XT A)": (tr(X.T @ A), X, "A", 0, A),
    "tr(AXB)": (tr(A @ X @ B), X, "Aᵀ·Bᵀ", 3, A.T @ B.T),
    "tr(A XT B)": (tr(A @ X.T @ B), X, "B·A", 1, B @ A),
    "tr(XT A X)": (tr(X.T @ A @ X), X, "(A + Aᵀ)·X", 3, (A + A.T) @ X),
    "tr(X A XT)": (tr(X @ A @ X.T), X, "X·(A + Aᵀ)", 3, X @ (A + A.T)),
    "xT A x": (x @ (A @ x), x, "(A + Aᵀ)·x", 3, (A + A.T) @ x),
    "(xT A) x": ((x @ A) @ x, x, "(A + Aᵀ)·x", 3, (A + A.T) @ x),
    "half xT A x": (0.5 * (x @ (A @ x)), x, "½(A + Aᵀ)·x", 4, 0.5 * ((A + A.T) @ x)),
    "|Ax - y|^2": (sd.sum((A @ x - y) ** 2), x, "2·Aᵀ·(A·x − y)", 5, 2 * (A.T @ (A @ x - y))),
    "tr(X^2)": (tr(X @ X), X, "2Xᵀ", 2, 2 * X.T),
    "bT XT D X c": (b @ (X.T @ (D @ (X @ c))), X, "D·X·c·bᵀ + Dᵀ·X·b·cᵀ", 12, None),
    "(Xb+c)T D (Xb+c)": ((X @ b + c) @ (D @ (X @ b + c)), X, "(D + Dᵀ)·(c + X·b)·bᵀ", 8, None),
    "|x|": (sd.sqrt(sd.sum(x * x)), x, "x / √Σ(x ⊙ x)", 5, x / sd.sqrt(sd.sum(x * x))),
}

HESSIANS = {
    "xT A x": (x @ (A @ x), "A + Aᵀ", 2, A + A.T),
    "|Ax - y|^2": (sd.sum((A @ x - y) ** 2), "2·Aᵀ·A", 3, 2 * (A.T @ A)),
    "sum exp": (sd.sum(sd.exp(x)), "diag(exp(x))", 4, None),
}


def _values(leaves, size=4, seed=0):
    rng = np.random.default_rng(seed)
    return {leaf: rng.normal(size=tuple(size for _ in leaf.shape)) for leaf in leaves}


@pytest.mark.parametrize("case", GRADIENTS, ids=str)
def test_gradient_prints_in_textbook_form(case):
    f, wrt, printed, ops, textbook = GRADIENTS[case]
    g = sd.optimize(sd.grad(f, [wrt])[0])
    assert sd.pretty(g) == f"∂f/∂{wrt.name} = {printed}"
    assert sd.count_ops(g) == ops
    values = _values(sd.graph.leaves([f]))
    got = sd.evaluate(g, values)
    np.testing.assert_allclose(got, sd.numeric_grad(f, [wrt], at=values)[0], rtol=1e-6, atol=1e-6)
    if textbook is not None:
        np.testing.assert_allclose(got, sd.evaluate(textbook, values), rtol=1e-12, atol=1e-12)
        assert sd.count_ops(g) <= sd.count_ops(textbook)


def _numeric_hessian(f, values, eps=1e-5):
    g = sd.grad(f, [x])[0]
    base = values[x]
    cols = []
    for i in range(base.size):
        step = np.zeros_like(base)
        step[i] = eps
        hi = sd.evaluate(g, {**values, x: base + step})
        lo = sd.evaluate(g, {**values, x: base - step})
        cols.append((hi - lo) / (2 * eps))
    return np.stack(cols, axis=1)


@pytest.mark.parametrize("case", HESSIANS, ids=str)
def test_hessian_prints_in_textbook_form(case):
    f, printed, ops, textbook = HESSIANS[case]
    H = sd.optimize(sd.hessian(f, [x]))  # the nested list sd.hessian returns
    assert isinstance(H, list) and isinstance(H[0], list) and len(H) == len(H[0]) == 1
    h = H[0][0]
    assert sd.pretty(h) == printed
    assert sd.count_ops(h) == ops
    values = _values(sd.graph.leaves([f]), seed=1)
    got = sd.evaluate(h, values)
    np.testing.assert_allclose(got, _numeric_hessian(f, values), rtol=1e-5, atol=1e-5)
    if textbook is not None:
        np.testing.assert_allclose(got, sd.evaluate(textbook, values), rtol=1e-12, atol=1e-12)
    else:
        np.testing.assert_allclose(got, np.diag(np.exp(values[x])), rtol=1e-12)


def test_printed_form_does_not_depend_on_dimension_names_or_parenthesization():
    forms = set()
    for dim in ("n", "k", "m"):
        M, v = sd.tensor("A", (dim, dim)), sd.tensor("x", (dim,))
        for f in (v @ (M @ v), (v @ M) @ v):
            forms.add(sd.pretty(sd.optimize(sd.grad(f, [v])[0])))
    assert forms == {"∂f/∂x = (A + Aᵀ)·x"}
    p, q, r = sd.symbols("p q r")
    assert sd.optimize((r + p) + q) is sd.optimize(p + (q + r))


def test_transposes_move_through_products_and_cancel():
    assert sd.optimize((A.T @ B.T).T) is B @ A
    assert sd.optimize((A @ B.T).T) is B @ A.T
    assert sd.optimize(((A.T @ A) * 2.0).T) is sd.optimize((A.T @ A) * 2.0)
    assert sd.count_ops(sd.optimize((A.T + B).T)) == 2  # A + Bᵀ, not (Aᵀ + B)ᵀ


def test_like_terms_and_constants_fold():
    s = sd.symbols("s")
    assert sd.pretty(sd.optimize(0.5 * (A @ x) + 0.5 * (A.T @ x))).endswith("½(A + Aᵀ)·x")
    assert sd.pretty(sd.optimize(2.0 * A + 3.0 * A)) == "5A"
    assert sd.pretty(sd.optimize(2.0 * x / (2.0 * s))) == "x / s"
    assert sd.pretty(sd.optimize(x + x)) == "2x"
    values = _values([A, x])
    np.testing.assert_allclose(sd.evaluate(sd.optimize(2.0 * A - 3.0 * A), values), -values[A])


def test_latex_writes_numbers_first_and_halves_as_fractions():
    s = sd.symbols("s")
    assert sd.latex(s * 2) == "2 \\cdot s"
    assert sd.latex(0.5 * s) == "\\frac{1}{2} s"
    assert sd.pretty(s * 2) == "2s"


def _mlp_gradient(layers):
    Xm, labels = sd.tensor("X", ("m", "n")), sd.tensor("y", ("m",), "int64")
    weights = [sd.tensor(f"W{i}", ("n", "n")) for i in range(layers)]
    h = Xm
    for W in weights[:-1]:
        h = sd.relu(h @ W)
    return sd.grad(sd.softmax_cross_entropy(h @ weights[-1], labels), weights)


def test_optimizing_a_deep_mlp_gradient_visits_each_node_a_bounded_number_of_times(monkeypatch):
    """The pass rewrites only what rules build: the rule calls grow linearly with depth
    (counted, not timed)."""
    from symdiff.rewrite import registry

    calls = {"n": 0}
    real = registry.rules_for

    def counting(rules, op):
        calls["n"] += 1
        return real(rules, op)

    monkeypatch.setattr(registry, "rules_for", counting)
    counts = []
    for layers in (16, 64):
        calls["n"] = 0
        sd.optimize(_mlp_gradient(layers))
        counts.append(calls["n"])
    assert counts[1] < 4 * counts[0] * 1.25, counts  # 4x the layers: about 4x the work
