"""Printers never fail on valid graphs, LaTeX is well-formed, textbook models print as golden."""

import re

import numpy as np
import pytest
from hypothesis import given, settings

import symdiff as sd
from symdiff.cli import main
from symdiff.testing import cases, random_graphs
from symdiff.textbook import MODELS

KNOWN_MACROS = {"frac", "partial", "top", "odot", "cdot", "sigma", "mathbb", "left", "right", "sum",
                "sqrt", "operatorname", "exp", "log", "sin", "cos", "tan", "tanh", "le", "ge", "ne",
                "in", "times", "begin", "end", "mathrm", "mapsto", "otimes"}


def assert_well_formed_latex(text):
    depth = 0
    for ch in text.replace("\\{", "").replace("\\}", ""):
        depth += {"{": 1, "}": -1}.get(ch, 0)
        assert depth >= 0, f"unbalanced braces in {text!r}"
    assert depth == 0, f"unbalanced braces in {text!r}"
    macros = set(re.findall(r"\\([A-Za-z]+)", text))
    assert macros <= KNOWN_MACROS, f"unknown macros {macros - KNOWN_MACROS} in {text!r}"
    assert text.count("\\left") == text.count("\\right")
    assert text.count("\\begin") == text.count("\\end")


@pytest.mark.parametrize("case", list(cases()), ids=str)
def test_every_op_and_its_gradient_prints(case):
    expr, values = case.instantiate(np.random.default_rng(0))
    exprs = [expr]
    floats = [leaf for leaf in values if leaf.dtype == "float64"]
    if expr.dtype == "float64" and expr.op.differentiable and floats:
        exprs += sd.grad(sd.sum(expr * expr), floats)
    for e in exprs:
        assert sd.pretty(e) and sd.pretty(e, show_shapes=True)
        assert_well_formed_latex(sd.latex(e, show_shapes=True))
        assert e._repr_latex_().startswith("$\\displaystyle ")


@settings(max_examples=30, deadline=None)
@given(random_graphs())
def test_random_graphs_and_their_gradients_print_well_formed_latex(graph):
    f, leaves = graph
    everything = [f, *sd.optimize(sd.grad(f, leaves))]
    assert_well_formed_latex(sd.latex(everything))
    assert len(sd.pretty(everything).splitlines()) >= len(everything)


GOLDEN = {
    "softmax-regression": "∂L/∂W = Xᵀ·(softmax(X·W) − onehot(y)) / m",
    "least-squares": "∂L/∂w = 2·Xᵀ·(X·w − y) / m",
    "logistic-regression": "∂L/∂w = Xᵀ·(σ(X·w) − y) / m",
    "weight-decay": "∂L/∂W = lam·W + Xᵀ·(softmax(X·W) − onehot(y)) / m",
    "mlp2": "t₁ = X·W₁\nZ₁ = relu(t₁)\nt₂ = (softmax(Z₁·W₂) − onehot(y)) / m\n"
            "∂L/∂W₁ = Xᵀ·((t₂·W₂ᵀ) ⊙ 1[t₁ > 0])\n∂L/∂W₂ = Z₁ᵀ·t₂",
    "comp551": "Z = σ(X·V)\nt₁ = (softmax(Z·W) − onehot(y)) / m\n∂L/∂W = Zᵀ·t₁\n"
               "∂L/∂V = Xᵀ·((t₁·Wᵀ) ⊙ (Z ⊙ (1 − Z)))",
}


@pytest.mark.parametrize("model", sorted(MODELS))
def test_textbook_models_print_their_golden_formulas(model):
    loss, params = MODELS[model]()
    grads = sd.optimize(sd.grad(loss, params))
    assert sd.pretty(grads) == GOLDEN[model]
    assert_well_formed_latex(sd.latex(grads))


def test_shapes_are_annotated_symbolically():
    loss, params = MODELS["softmax-regression"]()
    assert sd.pretty(sd.optimize(sd.grad(loss, params)), show_shapes=True).endswith("∈ ℝ^(n×k)")


def test_user_names_and_subscripts():
    X, W1 = sd.tensor("X", (2, 3)), sd.tensor("W1", (3, 4))
    Z1 = sd.name(X @ W1, "Z1")
    assert sd.pretty(sd.relu(Z1) + Z1) == "Z₁ = X·W₁\nrelu(Z₁) + Z₁"
    with pytest.raises(ValueError):
        sd.name(Z1, "not a name")


@pytest.mark.parametrize("argv,expected", [
    (["grad", "--model", "softmax-regression"], "∂L/∂W = Xᵀ·(softmax(X·W) − onehot(y)) / m"),
    (["grad", "--model", "softmax-regression", "--latex"], "\\frac{\\partial L}{\\partial W}"),
    (["grad", "--model", "softmax-regression", "--shapes"], "∈ ℝ^(n×k)"),
    (["grad", "x*y + sin(x)", "--wrt", "x", "--raw"], "cos(x) + y"),
    (["grad", "x*y + sin(x)", "--wrt", "x"], "∂f/∂x = y + cos(x)"),
])
def test_grad_command_line_flags(capsys, argv, expected):
    assert main(argv) == 0
    assert expected in capsys.readouterr().out


def test_equal_derivatives_print_with_the_label_of_their_position():
    from symdiff.names import Labelled, label_derivatives

    x, y, z = sd.symbols("x y z")
    f = x + y + 2 * z
    grads = label_derivatives(sd.grad(f, [x, y, z]), f, [x, y, z])
    assert grads[0] is grads[1]  # one hash-consed node, two derivatives
    optimized = sd.optimize(grads)
    assert isinstance(optimized, Labelled)
    assert sd.pretty(optimized) == "∂f/∂x = 1\n∂f/∂y = 1\n∂f/∂z = 2"
    latex = sd.latex(optimized)
    for w in "xyz":
        assert f"\\frac{{\\partial f}}{{\\partial {w}}} &= " in latex
    assert_well_formed_latex(latex)
    sd.name(f, "L")
    assert sd.pretty(optimized).startswith("∂L/∂x = 1\n∂L/∂y = 1")  # the function's name when printed


def test_grad_results_carry_their_labels():
    x, y = sd.symbols("x y")
    assert sd.pretty(sd.optimize(sd.grad(x + y, [x, y]))) == "∂f/∂x = 1\n∂f/∂y = 1"


# -- printed maths is true: a reshape that makes an outer product, a broadcast that makes a
# diagonal and the identity inside a trace all show in the formula ---------------------------
RNG = np.random.default_rng(14)


def _values(*leaves):
    return {leaf: RNG.standard_normal(leaf.shape) for leaf in leaves}


def _round_trips(expr, values):
    """The text form reads back (sd.parse) as an expression with the same values."""
    namespace = {leaf.name: leaf for leaf in values}
    again = sd.parse(str(expr), namespace)
    np.testing.assert_allclose(sd.evaluate(again, values), sd.evaluate(expr, values))


def test_an_outer_product_prints_its_column_and_row():
    a, b, X = sd.tensor("a", (3,)), sd.tensor("b", (4,)), sd.tensor("X", (3, 4))
    grad = sd.grad(sd.name(a @ X @ b, "f"), X)
    optimized = sd.optimize(grad)
    assert sd.pretty(optimized) == "∂f/∂X = a·bᵀ"
    assert sd.latex(optimized) == "\\frac{\\partial f}{\\partial X} = a b^\\top"
    assert "ᵀ" in sd.pretty(grad)  # before simplification too
    values = _values(a, b, X)
    for g in (grad, optimized):
        np.testing.assert_allclose(sd.evaluate(g, values), np.outer(values[a], values[b]))
    _round_trips(optimized, values)
    v = sd.tensor("v", (3,))
    assert sd.pretty(sd.reshape(v, (1, 3))) == "vᵀ" and sd.pretty(sd.reshape(v, (3, 1))) == "v"
    assert sd.pretty(sd.reshape(X, (4, 3))) == "reshape(X, (4, 3))"  # a reshape that moves entries shows


def test_products_with_a_broadcast_vector_print_as_diag_and_elementwise_as_odot():
    A, x = sd.tensor("A", (2, 3)), sd.tensor("x", (3,))
    values = _values(A, x)
    want = values[A] @ np.diag(np.exp(values[x]))
    reverse, forward = sd.jacobian(A @ sd.exp(x), x, mode="reverse"), sd.jacobian(A @ sd.exp(x), x, mode="forward")
    assert sd.pretty(reverse) == "I·A·diag(exp(x))"
    assert sd.pretty(forward) == "(diag(exp(x))·Aᵀ)ᵀ"
    assert sd.pretty(sd.jacobian(A @ sd.exp(x), x)) == sd.pretty(reverse)
    for J in (reverse, forward):
        np.testing.assert_allclose(sd.evaluate(J, values), want)
    assert "\\operatorname{diag}\\left(\\exp\\left(x\\right)\\right)" in sd.latex(reverse)
    M, N, n = sd.tensor("M", (2, 3)), sd.tensor("N", (2, 3)), sd.tensor("n", (2,))
    assert sd.pretty(M * x) == "M·diag(x)" and sd.pretty(x * M) == "M·diag(x)"
    assert sd.pretty(sd.reshape(n, (2, 1)) * M) == "diag(n)·M"
    assert sd.pretty(sd.eye(3) * x) == "diag(x)"
    assert sd.pretty(M * N) == "M ⊙ N" and sd.latex(M * N) == "M \\odot N"
    assert sd.pretty(sd.exp(x) * x) == "exp(x) ⊙ x"
    assert sd.pretty(2 * x) == "2x" and sd.pretty(2 * (M @ x)) == "2·M·x"  # scalars stay juxtaposed
    values = _values(M, N, n, x)
    for e in (M * x, sd.reshape(n, (2, 1)) * M, M * N):
        _round_trips(e, values)


def test_the_identity_prints_with_its_size_and_a_trace_as_tr():
    M, P = sd.tensor("M", (3, 3)), sd.tensor("P", (3, 3))
    assert sd.pretty(sd.eye(3)) == "I₃" and sd.latex(sd.eye(3)) == "I_{3}"
    assert sd.pretty(sd.eye("n")) == "Iₙ"
    assert sd.pretty(M @ sd.eye(3)) == "M·I"  # its size is M's
    assert sd.pretty(sd.trace(M)) == "tr(M)"
    assert sd.latex(sd.trace(M)) == "\\operatorname{tr}\\left(M\\right)"
    assert sd.pretty(sd.trace(M @ P)) == "tr(M·P)"
    assert sd.pretty(sd.sum(M * sd.eye(3), axis=0)) == "Σ₀(M ⊙ I₃)"  # not a trace: the diagonal
    assert str(sd.eye(3)) == "eye(3)" and str(sd.trace(M)) == "sum(M*eye(3))"
    values = _values(M, P)
    np.testing.assert_allclose(sd.evaluate(sd.trace(M @ P), values), np.trace(values[M] @ values[P]))
    assert_well_formed_latex(sd.latex([sd.trace(M), sd.eye("n"), sd.eye(3) * M[0]]))
