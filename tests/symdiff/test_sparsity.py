"""sd.sparsity patterns from the graph, colouring, sparse Jacobians/Hessians, and jacobian's auto mode."""

import html

import numpy as np
import pytest

import symdiff as sd
from symdiff.results import note_of
from symdiff.sparsity import colour_columns


def laplacian(n):
    x = sd.tensor("x", (n,))
    p = sd.pad(x, ((1, 1),))
    return x, p[:-2] - 2 * x + p[2:]


def test_laplacian_stencil_is_tridiagonal_and_needs_three_jvps():
    x, F = laplacian(7)
    S = sd.sparsity(F, x)
    want = (np.abs(np.subtract.outer(np.arange(7), np.arange(7))) <= 1)
    np.testing.assert_array_equal(S.pattern, want)
    assert S.nnz == 19 and str(S).splitlines()[0] == "■■·····"
    assert int(colour_columns(S.pattern).max()) + 1 == 3
    at = {x: np.random.default_rng(0).standard_normal(7)}
    J = sd.jacobian(F, x, sparse=True, at=at)
    assert J.products == 3 and J.mode == "forward"
    dense = sd.evaluate(sd.jacobian(F, x), at)
    np.testing.assert_allclose(np.asarray(J), dense, atol=1e-12)
    Jr = sd.jacobian(F, x, sparse=True, at=at, mode="reverse")
    assert Jr.products == 3
    np.testing.assert_allclose(Jr.dense, dense, atol=1e-12)


def test_hessian_of_a_separable_sum_is_diagonal_one_colour():
    x = sd.tensor("x", (6,))
    f = sd.sum(sd.sin(x) * sd.exp(x))
    print(sd.sparsity(sd.hessian(f, x)))
    np.testing.assert_array_equal(sd.sparsity(sd.hessian(f, x)).pattern, np.eye(6, dtype=bool))
    np.testing.assert_array_equal(sd.sparsity(sd.grad(f, x), x).pattern, np.eye(6, dtype=bool))
    at = {x: np.linspace(-1, 1, 6)}
    H = sd.hessian(f, x, sparse=True, at=at)
    assert H.products == 1
    np.testing.assert_allclose(H.dense, sd.evaluate(sd.hessian(f, x), at), rtol=1e-12, atol=1e-12)
    v = at[x]  # d²/dx² sin(x)eˣ = 2cos(x)eˣ
    np.testing.assert_allclose(np.diag(H.dense), 2 * np.cos(v) * np.exp(v), rtol=1e-12)


def test_matmul_reductions_and_conservative_ops_are_supersets():
    A = sd.tensor("A", (3, 4))
    x = sd.tensor("x", (4,))
    S = sd.sparsity(sd.tanh(A @ x), x)
    assert S.pattern.all()  # each output reads every x
    S = sd.sparsity(sd.tanh(A @ x), A)  # output i depends on row i of A only
    np.testing.assert_array_equal(S.pattern, np.kron(np.eye(3, dtype=bool), np.ones((1, 4), dtype=bool)))
    S = sd.sparsity(sd.softmax(x) * x[::-1], x)
    assert S.pattern.all()
    S = sd.sparsity(sd.stop_gradient(x) * 2.0, x)
    assert S.nnz == 0


def test_patterns_need_concrete_sizes_and_a_leaf():
    v = sd.tensor("v", ("n",))
    with pytest.raises(sd.ShapeError, match="concrete sizes"):
        sd.sparsity(sd.exp(v), v)
    with pytest.raises(TypeError, match="wrt"):
        sd.sparsity(sd.exp(v))
    x, F = laplacian(3)
    with pytest.raises(ValueError, match="needs at="):
        sd.jacobian(F, x, sparse=True)


def test_auto_mode_both_sides_of_the_crossover_and_the_symbolic_condition():
    A, v = sd.tensor("A", ("m", "n")), sd.tensor("v", ("n",))
    F = sd.tanh(A @ v)
    _, why = sd.jacobian(F, v, explain=True, at={"m": 3, "n": 5})
    assert why.startswith("reverse mode") and "m = 3" in why
    _, why = sd.jacobian(F, v, explain=True, at={A: np.ones((6, 2)), v: np.ones(2)})
    assert why.startswith("forward mode") and "n = 2" in why
    J, why = sd.jacobian(F, v, explain=True)
    assert "cannot order" not in why and "crossover at m = n" in why
    assert "forward when n < m, reverse when m < n" in why
    assert note_of(J) == why
    assert html.escape(why) in J._repr_html_()
    # the mode built is correct either way
    at = {A: np.arange(6.0).reshape(2, 3) / 7, v: np.ones(3)}
    np.testing.assert_allclose(sd.evaluate(J, at), sd.evaluate(sd.jacobian(F, v, mode="forward"), at))
    Js = sd.jacobian(F, [A, v], at={"m": 2, "n": 3})
    assert Js.mode_note.startswith("reverse mode")
