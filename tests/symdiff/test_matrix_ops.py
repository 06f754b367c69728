"""symdiff.ops.matrix: values against numpy, derivatives against central differences (Hessians
included), the singular-matrix policy, symbolic mode, and the Matrix Cookbook's formulas printed."""

import numpy as np
import pytest

import symdiff as sd
from symdiff.ops.matrix import LinAlgError

RNG = np.random.default_rng(17)


def _well_conditioned(*shape):
    n = shape[-1]
    return RNG.uniform(-1, 1, shape) + n * np.eye(n)


def _numeric_matrix_grad(f, X, at):
    return sd.numeric_grad(f, [X], at=at)[0]


# -- values --------------------------------------------------------------------------------------
def test_batched_values_equal_numpy():
    A = sd.tensor("A", (4, 2, 3, 3))
    b = sd.tensor("b", (2, 3, 5))
    a, bv = _well_conditioned(4, 2, 3, 3), RNG.normal(size=(2, 3, 5))
    at = {A: a, b: bv}
    inv, det, logdet, sign, x = sd.evaluate([sd.inv(A), sd.det(A), sd.logdet(A), sd.slogdet(A)[0], sd.solve(A, b)], at)
    np.testing.assert_allclose(inv, np.linalg.inv(a), rtol=1e-12)
    np.testing.assert_allclose(det, np.linalg.det(a), rtol=1e-12)
    np.testing.assert_allclose(logdet, np.linalg.slogdet(a)[1], rtol=1e-12)
    np.testing.assert_array_equal(sign, np.linalg.slogdet(a)[0])
    np.testing.assert_allclose(x, np.linalg.solve(a, np.broadcast_to(bv, (4, 2, 3, 5))), rtol=1e-12)
    assert sd.solve(A, b).shape == (4, 2, 3, 5) and sd.det(A).shape == (4, 2)


def test_structural_ops_equal_numpy():
    v, C, D = sd.tensor("v", (4,)), sd.tensor("C", (3, 4)), sd.tensor("D", (2, 5))
    vv, cv, dv = RNG.normal(size=4), RNG.normal(size=(3, 4)), RNG.normal(size=(2, 5))
    at = {v: vv, C: cv, D: dv}
    got = sd.evaluate([sd.diag(v), sd.diag(C), sd.diagonal(C, -1), sd.kron(C, D), sd.kron(v, v), sd.norm(C),
                       sd.norm(v), sd.outer(v, C)], at)
    want = [np.diag(vv), np.diag(cv), np.diagonal(cv, -1), np.kron(cv, dv), np.kron(vv, vv), np.linalg.norm(cv),
            np.linalg.norm(vv), np.outer(vv, cv)]
    for g, w in zip(got, want):
        assert g.shape == w.shape
        np.testing.assert_allclose(g, w, rtol=1e-13)


def test_shape_costs_and_bad_input():
    n = sd.shapes.dim("n")
    X = sd.tensor("X", ("n", "n"))
    assert sd.cost(sd.det(X))["flops"] == 2 * n**3 / 3
    assert sd.cost(sd.inv(X))["flops"] == 2 * n**3
    with pytest.raises(sd.ShapeError, match=r"inv: needs a square matrix.*\(2, 3\)"):
        sd.inv(sd.tensor("R", (2, 3)))
    with pytest.raises(sd.ShapeError, match=r"solve: A \(3, 3\) and b \(4,\)"):
        sd.solve(sd.tensor("S", (3, 3)), sd.tensor("w", (4,)))
    with pytest.raises(sd.ShapeError, match="kron: takes two vectors or two matrices"):
        sd.kron(sd.tensor("p", (3,)), sd.tensor("Q", (2, 2)))
    with pytest.raises(NotImplementedError, match="norm: only ord=None"):
        sd.norm(X, ord=1)
    with pytest.raises(TypeError, match="det: needs a float matrix"):
        sd.OPS["det"].infer([sd.tensor("I", (2, 2), "int64")], {})


# -- the singular-matrix policy ------------------------------------------------------------------
def test_singular_matrices_raise_or_give_numpys_values():
    A = sd.tensor("A", (2, 2, 2))
    b = sd.tensor("b", (2,))
    singular = np.array([np.eye(2), [[1.0, 2.0], [2.0, 4.0]]])
    with pytest.raises(LinAlgError, match=r"inv: the matrix at batch index 1 of \(2, 2, 2\) is singular"):
        sd.evaluate(sd.inv(A), {A: singular})
    with pytest.raises(ValueError, match=r"solve: the matrix at batch index 1 of \(2, 2, 2\) is singular"):
        sd.evaluate(sd.solve(A, b), {A: singular, b: [1.0, 1.0]})
    det, logdet, sign = sd.evaluate([sd.det(A), sd.logdet(A), sd.slogdet(A)[0]], {A: singular})
    assert det.tolist() == [1.0, 0.0] and logdet.tolist() == [0.0, -np.inf] and sign.tolist() == [1.0, 0.0]
    with pytest.raises(LinAlgError, match="inv: "):  # det's gradient det·A⁻ᵀ is built from A⁻¹
        sd.evaluate(sd.grad(sd.sum(sd.det(A)), A), {A: singular})


def test_norm_gradient_at_zero_is_the_zero_subgradient():
    x = sd.tensor("x", (3,))
    g, h = sd.evaluate([sd.grad(sd.norm(x), x), sd.hessian(sd.norm(x), x)], {x: np.zeros(3)})
    assert g.tolist() == [0.0, 0.0, 0.0] and np.isfinite(h).all()
    at = {x: np.array([3.0, 0.0, 4.0])}
    np.testing.assert_allclose(sd.evaluate(sd.grad(sd.norm(x), x), at), [0.6, 0.0, 0.8])


# -- derivatives ---------------------------------------------------------------------------------
@pytest.mark.parametrize("build", [
    lambda X, Y, v: sd.sum(sd.inv(X) * Y),
    lambda X, Y, v: sd.sum(sd.det(X)) + sd.sum(sd.logdet(X) * sd.logdet(Y)),
    lambda X, Y, v: sd.sum(sd.solve(X, Y[..., :2]) ** 2),
    lambda X, Y, v: sd.sum(sd.solve(X[0], v) * v),
    lambda X, Y, v: sd.sum(sd.kron(X[0], Y[1]) ** 2),
    lambda X, Y, v: sd.norm(X) * sd.norm(v) + sd.sum(sd.diag(v) * X[1]) + sd.sum(sd.diagonal(Y, 0, 1, 2) ** 2),
], ids=["inv", "det-logdet", "solve", "solve-vector", "kron", "norm-diag"])
def test_first_and_second_derivatives_against_central_differences(build):
    X, Y, v = sd.tensor("X", (2, 3, 3)), sd.tensor("Y", (2, 3, 3)), sd.tensor("v", (3,))
    at = {X: _well_conditioned(2, 3, 3), Y: _well_conditioned(2, 3, 3), v: RNG.normal(size=3)}
    f = build(X, Y, v)
    sd.check_grads(f, [X, Y, v], at, order=2)


def test_hessian_of_logdet_against_numeric():
    """∂²log|det X| / ∂X_ij ∂X_kl = −(X⁻¹)_jk (X⁻¹)_li."""
    X = sd.tensor("X", (3, 3))
    x = _well_conditioned(3, 3)
    H = sd.evaluate(sd.hessian(sd.logdet(X), X), {X: x})
    y = np.linalg.inv(x)
    np.testing.assert_allclose(H, -np.einsum("jk,li->ijkl", y, y), rtol=1e-10, atol=1e-12)
    gx = sd.grad(sd.logdet(X), X)
    numeric = np.stack([_numeric_matrix_grad(sd.sum(gx * np.eye(9)[k].reshape(3, 3)), X, {X: x})
                        for k in range(9)]).reshape(3, 3, 3, 3)
    np.testing.assert_allclose(H, numeric, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("mode", ["symbolic", "symbolic-cse"])
def test_symbolic_mode_agrees_with_reverse(mode):
    A, b = sd.tensor("A", (2, 2)), sd.tensor("b", (2,))
    at = {A: _well_conditioned(2, 2), b: RNG.normal(size=2)}
    f = sd.logdet(A) + sd.sum(sd.solve(A, b) * b) + sd.det(A) ** 2 + sd.norm(sd.inv(A))
    for s, r in zip(sd.evaluate(sd.grad(f, [A, b], mode=mode, at=at), at), sd.evaluate(sd.grad(f, [A, b]), at)):
        np.testing.assert_allclose(s, r, rtol=1e-10, atol=1e-12)


# -- the Matrix Cookbook, printed and checked ----------------------------------------------------
def _cookbook():
    X, A, B = (sd.tensor(name, ("n", "n")) for name in "XAB")
    a, b = sd.tensor("a", ("n",)), sd.tensor("b", ("n",))
    return X, A, B, a, b, [
        (sd.trace(A @ sd.inv(X) @ B), lambda x, A_, B_, a_, b_: -np.linalg.inv(x).T @ A_.T @ B_.T @ np.linalg.inv(x).T,
         {"∂f/∂X = −(X⁻ᵀ·Aᵀ·Bᵀ·X⁻ᵀ)", "∂f/∂X = −(X⁻ᵀ·(Aᵀ·Bᵀ)·X⁻ᵀ)"}),
        (sd.det(X), lambda x, *_: np.linalg.det(x) * np.linalg.inv(x).T, {"∂f/∂X = det(X)·X⁻ᵀ"}),
        (sd.logdet(X), lambda x, *_: np.linalg.inv(x).T, {"∂f/∂X = X⁻ᵀ"}),
        (a @ sd.inv(X) @ b, lambda x, A_, B_, a_, b_: -np.linalg.inv(x).T @ np.outer(a_, b_) @ np.linalg.inv(x).T,
         {"∂f/∂X = −(X⁻ᵀ·a·bᵀ·X⁻ᵀ)", "∂f/∂X = −(X⁻ᵀ·(a·bᵀ)·X⁻ᵀ)"}),
    ]


def test_cookbook_gradients_print_as_the_cookbook_and_equal_central_differences():
    X, A, B, a, b, formulas = _cookbook()
    n = 4
    values = {X: _well_conditioned(n, n), A: RNG.normal(size=(n, n)), B: RNG.normal(size=(n, n)),
              a: RNG.normal(size=n), b: RNG.normal(size=n)}
    for f, closed_form, printed in formulas:
        g = sd.optimize(sd.grad(f, [X]))
        assert sd.pretty(g) in printed  # the two forms: products printed as associative or not
        got = sd.evaluate(g[0], values)
        want = closed_form(*(values[k] for k in (X, A, B, a, b)))
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(got, sd.numeric_grad(f, [X], at=values)[0], rtol=1e-6, atol=1e-8)
    det_latex = sd.latex(sd.optimize(sd.grad(sd.det(X), [X])))
    assert det_latex == "\\frac{\\partial f}{\\partial X} = \\operatorname{det}\\left(X\\right) \\cdot {X}^{-\\top}"


def test_printed_forms_of_every_op():
    X, A = sd.tensor("X", (3, 3)), sd.tensor("A", (3, 3))
    v, b = sd.tensor("v", (3,)), sd.tensor("b", (3,))
    unicode = {sd.inv(X): "X⁻¹", sd.inv(X).T: "X⁻ᵀ", sd.inv(X @ A): "(X·A)⁻¹", sd.det(X): "det(X)",
               sd.logdet(X): "log|det X|", sd.slogdet(X)[0]: "sign(det X)", sd.solve(X, b): "X⁻¹·b",
               sd.solve(X, A): "X⁻¹·A", sd.diag(v): "diag(v)", sd.kron(X, A): "X ⊗ A", sd.norm(v): "‖v‖",
               sd.norm(X): "‖X‖_F", sd.outer(v, b): "v·bᵀ", sd.trace(X): "tr(X)"}
    for expr, text in unicode.items():
        assert sd.pretty(expr) == text
    assert sd.latex(sd.kron(X, A)) == "X \\otimes A"
    assert sd.latex(sd.norm(v)) == "\\left\\| v \\right\\|"
    assert sd.latex(sd.logdet(X)) == "\\log\\left|\\operatorname{det} X\\right|"
    for expr in unicode:  # the text form is what the parser reads back
        assert str(sd.parse(str(expr), {"X": X, "A": A, "v": v, "b": b})) == str(expr)
