"""Symbolic mode on the course's losses: softmax regression without label values (one-hot rows
as 0/1 indicator symbols), and stable at z = ±1000 and logits ±1e4 (issue 17)."""

from __future__ import annotations

import numpy as np
import pytest
import sympy

import symdiff as sd
from symdiff.ops import sympy_functions as sf
from symdiff.symbolic import symbolic_derivatives

MODES = ("symbolic", "symbolic-cse")


def _regression(form):
    X, W = sd.tensor("X_sym", (5, 3)), sd.tensor("W_sym", (3, 4))
    y = sd.tensor("y_sym", (5,), "int64")
    U, Y = X @ W, sd.one_hot(y, 4)
    losses = {
        "op": sd.softmax_cross_entropy(U, y),
        "onehot * log softmax": -sd.mean(sd.sum(Y * sd.log(sd.softmax(U)), axis=1)),
        "picked - log sum exp": -sd.mean(sd.sum(U * Y, axis=1) - sd.log(sd.sum(sd.exp(U), axis=1))),
        "onehot * log_softmax": -sd.mean(sd.sum(Y * sd.log_softmax(U), axis=1)),
    }
    return X, W, y, losses[form]


@pytest.mark.parametrize("form", ["op", "onehot * log softmax", "picked - log sum exp", "onehot * log_softmax"])
def test_softmax_regression_in_symbolic_mode_needs_no_label_values(form):
    X, W, y, L = _regression(form)
    grads = {mode: sd.grad(L, [W], mode=mode) for mode in MODES}  # no `at`: the labels are unknown
    rng = np.random.default_rng(7)
    for _ in range(3):  # one derivative, valid for every labelling
        at = {X: rng.normal(size=(5, 3)), W: rng.normal(size=(3, 4)), y: rng.integers(0, 4, 5)}
        (want,) = sd.evaluate(sd.grad(L, [W]), at)
        for mode, g in grads.items():
            np.testing.assert_allclose(sd.evaluate(g[0], at), want, rtol=1e-10, atol=1e-12, err_msg=mode)


def test_the_cross_entropy_differentiates_to_softmax_minus_the_indicators():
    z, y = sd.tensor("z_ind", (2, 3)), sd.tensor("y_ind", (2,), "int64")
    expressions = symbolic_derivatives(sd.softmax_cross_entropy(z, y), [z]).expressions
    for index, e in zip(np.ndindex(2, 3), expressions):
        i, j = index
        row = [sympy.Symbol(f"z_ind[{i}, {k}]", real=True) for k in range(3)]
        hot = sympy.Symbol(f"onehot(y_ind)[{i}, {j}]", nonnegative=True)
        assert sympy.simplify(e - (sf.softmax(j, *row) - hot) / 2) == 0, e


def test_one_hot_rows_sum_to_one_in_a_derivative_the_graph_rules_do_not_see():
    # one row's loss picked out by an index: not the cross-entropy op, so sympy sees Σⱼ Yⱼ·(zⱼ − lse)
    z, y = sd.tensor("z_row", (1, 3)), sd.tensor("y_row", (1,), "int64")
    f = -sd.sum(sd.one_hot(y, 3) * sd.log(sd.softmax(z)), axis=1)[0]
    expressions = symbolic_derivatives(f, [z]).expressions
    row = [sympy.Symbol(f"z_row[0, {k}]", real=True) for k in range(3)]
    for k, e in enumerate(expressions):
        assert e == sf.softmax(k, *row) - sympy.Symbol(f"onehot(y_row)[0, {k}]", nonnegative=True), e
    at = {z: np.array([[0.3, -1.0, 2.0]]), y: np.array([2])}
    (want,) = sd.evaluate(sd.grad(f, [z]), at)
    np.testing.assert_allclose(sd.evaluate(sd.grad(f, z, mode="symbolic"), at), want, rtol=1e-12)


def test_labels_used_other_than_as_one_hot_rows_still_need_values():
    X, W, y, _ = _regression("op")
    with pytest.raises(ValueError, match="needs the values of integer inputs: give y_sym in `at` .take uses them"):
        sd.grad(sd.sum(sd.take(X, y, axis=0) @ W), W, mode="symbolic")


@pytest.mark.parametrize("mode", MODES)
def test_symbolic_mode_is_stable_at_extreme_logits(mode):
    U, y = sd.tensor("U_big", (2, 3)), sd.tensor("y_big", (2,), "int64")
    Y = sd.one_hot(y, 3)
    L = -sd.mean(sd.sum(U * Y, axis=1) - sd.log(sd.sum(sd.exp(U), axis=1)))
    at = {U: np.array([[1e4, 0.0, -1e4], [-1e4, 1e4, 0.0]]), y: np.array([0, 2])}
    g = sd.evaluate(sd.grad(L, U, mode=mode), at)  # labels unknown while deriving
    np.testing.assert_allclose(g, [[0.0, 0.0, 0.0], [0.0, 0.5, -0.5]], atol=1e-12)


@pytest.mark.parametrize("mode", MODES)
def test_symbolic_mode_of_logistic_regression_written_by_hand_is_stable_at_1000(mode):
    X, w, y = sd.tensor("X_lr", (2, 1)), sd.tensor("w_lr", (1,)), sd.tensor("y_lr", (2,))
    L = sd.mean(sd.log(1 + sd.exp(-y * (X @ w))))
    at = {X: np.array([[1000.0], [-1000.0]]), w: np.array([1.0]), y: np.array([1.0, 1.0])}
    g = sd.grad(L, w, mode=mode)
    # z = −y·x·w = (−1000, 1000): ∂L/∂w = (−1000·σ(−1000) + 1000·σ(1000))/2 = 500
    np.testing.assert_allclose(sd.evaluate(g, at), [500.0], rtol=1e-12)
    expressions = symbolic_derivatives(L, [w]).expressions
    assert all(e.has(sf.sigmoid) and not e.has(sympy.exp) for e in expressions), expressions
    rng = np.random.default_rng(4)
    moderate = {X: rng.normal(size=(2, 1)), w: rng.normal(size=1), y: np.array([1.0, -1.0])}
    (numeric,) = sd.numeric_grad(L, [w], at=moderate)
    np.testing.assert_allclose(sd.evaluate(g, moderate), numeric, rtol=1e-8, atol=1e-10)
