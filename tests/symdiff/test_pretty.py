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
                "in", "times", "begin", "end"}


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
