"""The sequence models' small ops: var/std, clip, split, embedding, masked_fill, causal_mask,
stop_gradient, erf and gelu (issue 16): numpy's and PyTorch's semantics, every mode, compiled."""

from __future__ import annotations

import math

import numpy as np
import pytest

import symdiff as sd

RNG = np.random.default_rng(16)


@pytest.mark.parametrize("axis,keepdims,ddof", [(None, False, 0), (1, False, 1), ((0, 2), True, 0), (-1, True, 1)])
def test_var_and_std_are_numpys(axis, keepdims, ddof):
    X = sd.tensor("X", (3, 4, 5))
    x = RNG.standard_normal((3, 4, 5))
    np.testing.assert_allclose(sd.evaluate(sd.var(X, axis, keepdims, ddof), {X: x}),
                               np.var(x, axis=axis, keepdims=keepdims, ddof=ddof), rtol=1e-12)
    np.testing.assert_allclose(sd.evaluate(sd.std(X, axis, keepdims, ddof), {X: x}),
                               np.std(x, axis=axis, keepdims=keepdims, ddof=ddof), rtol=1e-12)
    sd.check_grads(sd.sum(sd.std(X, axis, keepdims, ddof) * 1.5), [X], at={X: x}, order=2)


def test_var_errors():
    with pytest.raises(ValueError, match="ddof=3 needs more than 3 elements"):
        sd.var(sd.tensor("v", (3,)), ddof=3)
    with pytest.raises(ValueError, match="ddof must be a non-negative int"):
        sd.var(sd.tensor("v", (3,)), ddof=-1)


def test_clip():
    v = sd.tensor("v", (5,))
    x = np.array([-3.0, -0.5, 0.2, 0.9, 4.0])
    np.testing.assert_array_equal(sd.evaluate(sd.clip(v, -1.0, 1.0), {v: x}), np.clip(x, -1, 1))
    np.testing.assert_array_equal(sd.evaluate(sd.clip(v, None, 0.5), {v: x}), np.clip(x, None, 0.5))
    (g,) = sd.grad(sd.sum(sd.clip(v, -1.0, 1.0)), [v])
    assert sd.evaluate(g, {v: x}).tolist() == [0.0, 1.0, 1.0, 1.0, 0.0]
    with pytest.raises(ValueError, match="give a_min, a_max or both"):
        sd.clip(v)


def test_split_is_numpys_and_the_inverse_of_concatenate():
    X = sd.tensor("X", (2, 7))
    x = RNG.standard_normal((2, 7))
    for arg in ([2, 5], [-3], [0, 7], [3, 3]):
        got = sd.evaluate(sd.split(X, arg, axis=1), {X: x})
        for a, b in zip(got, np.split(x, arg, axis=1)):
            np.testing.assert_array_equal(a, b)
    parts = sd.split(sd.tensor("Y", (6, "n")), 3)
    assert [p.shape for p in parts] == [(2, sd.shapes.dim("n"))] * 3
    whole = sd.concatenate(sd.split(X, [2, 5], axis=1), axis=1)
    np.testing.assert_array_equal(sd.evaluate(whole, {X: x}), x)
    weights = [sd.constant(RNG.standard_normal((2, k))) for k in (2, 3, 2)]
    loss = sum(sd.sum(sd.tanh(p) * w) for p, w in zip(sd.split(X, [2, 5], axis=1), weights))
    sd.check_grads(loss, [X], at={X: x}, order=2)
    with pytest.raises(sd.ShapeError, match="3 sections do not divide axis 1 of size 7"):
        sd.split(X, 3, axis=1)
    with pytest.raises(sd.ShapeError, match="3 sections do not divide the symbolic axis"):
        sd.split(sd.tensor("Z", ("n", 2)), 3)


def test_embedding_gathers_rows_and_its_gradient_adds_repeats():
    E, ids = sd.tensor("E", (5, 3)), sd.tensor("ids", (2, 4), "int64")
    e, i = RNG.standard_normal((5, 3)), np.array([[0, 4, 4, 1], [2, 0, 4, 3]])
    out = sd.embedding(E, ids)
    np.testing.assert_array_equal(sd.evaluate(out, {E: e, ids: i}), e[i])
    (g,) = sd.grad(sd.sum(out), [E])
    assert sd.evaluate(g, {E: e, ids: i})[:, 0].tolist() == [2.0, 1.0, 1.0, 1.0, 3.0]
    program = sd.compile([out, g], [E, ids])
    got = program(e.astype(np.float64), i)
    np.testing.assert_array_equal(got[0], e[i])
    with pytest.raises(IndexError):
        sd.evaluate(out, {E: e, ids: np.array([[0, 5, 0, 0], [0, 0, 0, 0]])})
    with pytest.raises(Exception, match="out of range|out of bounds"):
        program(e, np.array([[0, 5, 0, 0], [0, 0, 0, 0]]))
    with pytest.raises(TypeError, match="indices must be int64"):
        sd.embedding(E, sd.tensor("f", (2,)))


def test_masked_fill_and_a_causal_softmax():
    S = sd.tensor("S", (4, 4))
    s = RNG.standard_normal((4, 4))
    attn = sd.softmax(sd.masked_fill(S, sd.causal_mask(4), -np.inf), axis=-1)
    got = sd.evaluate(attn, {S: s})
    want = np.exp(np.where(np.triu(np.ones((4, 4), bool), 1), -np.inf, s))
    np.testing.assert_allclose(got, want / want.sum(-1, keepdims=True), rtol=1e-12)
    assert np.all(got[np.triu_indices(4, 1)] == 0)
    compiled = sd.compile([attn], [S])(s)
    np.testing.assert_allclose(compiled[0] if isinstance(compiled, list) else compiled, got, rtol=1e-12)
    with pytest.raises(TypeError, match="mask must be bool"):
        sd.masked_fill(S, S, 0.0)
    with pytest.raises(ValueError, match="positive int"):
        sd.causal_mask(0)


@pytest.mark.parametrize("mode", ["reverse", "forward", "symbolic", "symbolic-cse"])
def test_stop_gradient_is_a_constant_in_every_mode(mode):
    x, y = sd.tensor("x", (3,)), sd.tensor("y", (3,))
    f = sd.sum(x * sd.stop_gradient(x * y) + sd.stop_gradient(y))
    at = {x: RNG.standard_normal(3), y: RNG.standard_normal(3)}
    gx, gy = sd.evaluate(sd.grad(f, [x, y], mode=mode, at=at), at)
    np.testing.assert_allclose(gx, at[x] * at[y], rtol=1e-12)
    np.testing.assert_array_equal(gy, np.zeros(3))
    np.testing.assert_allclose(sd.evaluate(f, at), np.sum(at[x] ** 2 * at[y] + at[y]))


def test_stop_gradient_compiles_to_nothing():
    x = sd.tensor("x", (8,), "float32")
    f = sd.exp(sd.stop_gradient(x)) * 2.0
    program = sd.compile([f, *sd.grad(sd.sum(f * x), [x])], [x])
    v = RNG.standard_normal(8).astype(np.float32)
    out, g = program(v)
    np.testing.assert_allclose(out, np.exp(v) * 2, rtol=1e-6)
    np.testing.assert_allclose(g, np.exp(v) * 2, rtol=1e-6)
    assert program.stats["kernels"] <= 2


def test_erf_and_gelu_are_pytorchs():
    x = sd.tensor("x", (9,))
    v = np.array([-1e4, -50.0, -8.0, -1.0, 0.0, 0.5, 3.0, 50.0, 1e4])
    np.testing.assert_allclose(sd.evaluate(sd.erf(x), {x: v}), [math.erf(t) for t in v], rtol=1e-15)
    gelu = sd.evaluate(sd.gelu(x), {x: v})
    want = [t * math.erfc(-t / math.sqrt(2)) / 2 for t in v]
    np.testing.assert_allclose(gelu, want, rtol=1e-14, atol=0)
    assert gelu[2] != 0  # the (1 + erf) form gives 0 below −6; erfc keeps Φ(−8)
    (g,) = sd.grad(sd.sum(sd.gelu(x)), [x])
    gv = sd.evaluate(g, {x: v})
    assert np.all(np.isfinite(gv)) and gv[0] == 0.0 and gv[-1] == 1.0
    compiled = sd.compile([sd.gelu(x), g], [x])(v)
    np.testing.assert_allclose(compiled[0], gelu, rtol=1e-13)
    np.testing.assert_allclose(compiled[1], gv, rtol=1e-12, atol=1e-300)


def test_gelu_against_pytorch_when_installed():
    torch = pytest.importorskip("torch")
    v = np.linspace(-9, 9, 101)
    t = torch.tensor(v, requires_grad=True)
    torch.nn.functional.gelu(t).sum().backward()
    x = sd.tensor("x", (101,))
    # PyTorch computes x·(1 + erf(x/√2))/2, which cancels to within 1e-16·|x| of 0 below −6; ours
    # keeps Φ(x) there, so the two agree to that absolute floor (and ours is the exact one)
    np.testing.assert_allclose(sd.evaluate(sd.gelu(x), {x: v}), torch.nn.functional.gelu(t).detach().numpy(),
                               rtol=1e-12, atol=2e-15)
    (g,) = sd.grad(sd.sum(sd.gelu(x)), [x])
    np.testing.assert_allclose(sd.evaluate(g, {x: v}), t.grad.numpy(), rtol=1e-10, atol=2e-15)


def test_a_causal_attention_step_compiles_batched_and_4d():
    """Batched 4-D matmuls (heads as a batch axis), a masked softmax over the last axis, gelu: the
    compiled forward and gradients equal the evaluator, for two batch sizes of one program."""
    Q, K = sd.tensor("Q", ("B", 4, 8, 16), "float32"), sd.tensor("K", ("B", 4, 8, 16), "float32")
    V = sd.tensor("V", (16, 16), "float32")
    scores = Q @ sd.transpose(K, (0, 1, 3, 2)) / 4.0
    attn = sd.softmax(sd.masked_fill(scores, sd.causal_mask(8), -1e9), axis=-1)
    loss = sd.sum(sd.gelu((attn @ K) @ V) ** 2)
    grads = sd.grad(loss, [Q, K, V])
    program = sd.compile([loss, *grads], [Q, K, V])
    for b in (3, 1):
        at = {Q: RNG.standard_normal((b, 4, 8, 16)).astype(np.float32),
              K: RNG.standard_normal((b, 4, 8, 16)).astype(np.float32),
              V: RNG.standard_normal((16, 16)).astype(np.float32)}
        for got, want in zip(program(at[Q], at[K], at[V]), sd.evaluate([loss, *grads], at)):
            np.testing.assert_allclose(got, want, rtol=2e-4, atol=2e-4 * float(np.abs(want).max()))
    assert program.libraries == 1
