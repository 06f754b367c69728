"""nn.attention: MultiheadAttention, TransformerEncoderLayer, PositionalEmbedding — PyTorch's
layouts, an independent numpy implementation, central differences, PyTorch itself where
installed, and a compiled (cpu) loss-and-gradients step."""

from __future__ import annotations

import math

import numpy as np
import pytest
from symdiff.nn.attention import MultiheadAttention, PositionalEmbedding, TransformerEncoderLayer

import symdiff as sd
from symdiff import nn

RNG = np.random.default_rng(16)
_erf = np.vectorize(math.erf)


# -- an independent numpy implementation ----------------------------------------------------
def _softmax(a):
    e = np.exp(a - a.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def _numpy_mha(q_in, k_in, v_in, p, heads, causal=False, prefix=""):
    """Per batch element and head, with explicit loops: no shared code with the layer."""
    w, b = p[prefix + "in_proj_weight"], p[prefix + "in_proj_bias"]
    E = w.shape[1]
    d = E // heads
    q = q_in @ w[:E].T + b[:E]
    k = k_in @ w[E:2 * E].T + b[E:2 * E]
    v = v_in @ w[2 * E:].T + b[2 * E:]
    T, B, _ = q.shape
    S = k.shape[0]
    out = np.zeros((T, B, E))
    for n in range(B):
        for h in range(heads):
            cols = slice(h * d, (h + 1) * d)
            scores = q[:, n, cols] @ k[:, n, cols].T / math.sqrt(d)
            if causal:
                scores = np.where(np.arange(S)[None, :] > np.arange(T)[:, None], -np.inf, scores)
            out[:, n, cols] = _softmax(scores) @ v[:, n, cols]
    return out @ p[prefix + "out_proj.weight"].T + p[prefix + "out_proj.bias"]


def _numpy_layer_norm(x, gamma, beta, eps=1e-5):
    mu = x.mean(axis=-1, keepdims=True)
    var = ((x - mu) ** 2).mean(axis=-1, keepdims=True)
    return (x - mu) / np.sqrt(var + eps) * gamma + beta


def _numpy_encoder_layer(x, p, heads, activation, norm_first, causal):
    def act(a):
        return np.maximum(a, 0) if activation == "relu" else a * 0.5 * (1 + _erf(a / math.sqrt(2)))

    def attention(h):
        return _numpy_mha(h, h, h, p, heads, causal, prefix="self_attn.")

    def feed_forward(h):
        return act(h @ p["linear1.weight"].T + p["linear1.bias"]) @ p["linear2.weight"].T + p["linear2.bias"]

    def norm(h, k):
        return _numpy_layer_norm(h, p[f"norm{k}.weight"], p[f"norm{k}.bias"])

    if norm_first:
        x = x + attention(norm(x, 1))
        return x + feed_forward(norm(x, 2))
    x = norm(x + attention(x), 1)
    return norm(x + feed_forward(x), 2)


# -- helpers --------------------------------------------------------------------------------
def _randomize(module, scale=0.5):
    """Random values for every parameter (PyTorch zeros some biases and sets γ = 1: too easy)."""
    for _, p in module.named_parameters():
        p.data[...] = scale * RNG.standard_normal(p.data.shape)
        if p.short == "gamma":
            p.data += 1.0
    return {name: p.data for name, p in module.named_parameters()}


def _leaves(module):
    module.name_leaves()
    return [p.leaf for _, p in module.named_parameters()]


def _loss(y):
    """A loss that weighs every output differently, so no gradient is a plain sum."""
    return sd.sum(y * sd.constant(RNG.standard_normal(y.shape))) + sd.sum(y * y)


def _x(shape):
    return RNG.standard_normal(shape)


# -- layouts --------------------------------------------------------------------------------
def test_parameter_names_and_shapes_are_pytorchs():
    shapes = {n: p.shape for n, p in TransformerEncoderLayer(8, 2, dim_feedforward=12).named_parameters()}
    assert shapes == {
        "self_attn.in_proj_weight": (24, 8), "self_attn.in_proj_bias": (24,),
        "self_attn.out_proj.weight": (8, 8), "self_attn.out_proj.bias": (8,),
        "linear1.weight": (12, 8), "linear1.bias": (12,), "linear2.weight": (8, 12), "linear2.bias": (8,),
        "norm1.weight": (8,), "norm1.bias": (8,), "norm2.weight": (8,), "norm2.bias": (8,)}
    mha = MultiheadAttention(6, 3, dtype="float64")
    assert mha.in_proj_weight.dtype == "float64" and mha.head_dim == 2
    assert not mha.in_proj_bias.data.any() and not mha.out_proj.bias.data.any()  # PyTorch zeros them
    assert [n for n, _ in MultiheadAttention(6, 3, bias=False).named_parameters()] == [
        "in_proj_weight", "out_proj.weight"]
    assert PositionalEmbedding(7, 4).weight.shape == (7, 4)


def test_encoder_layer_without_biases_has_pytorchs_parameters_and_values():
    layer = TransformerEncoderLayer(4, 2, dim_feedforward=6, dropout=0.0, bias=False, dtype="float64")
    assert [n for n, _ in layer.named_parameters()] == [  # torch.nn.TransformerEncoderLayer(bias=False)
        "self_attn.in_proj_weight", "self_attn.out_proj.weight", "linear1.weight", "linear2.weight",
        "norm1.weight", "norm2.weight"]
    p = _randomize(layer)
    zeros = {"self_attn.in_proj_bias": np.zeros(12), "self_attn.out_proj.bias": np.zeros(4),
             "linear1.bias": np.zeros(6), "linear2.bias": np.zeros(4),
             "norm1.bias": np.zeros(4), "norm2.bias": np.zeros(4)}
    x = _x((3, 2, 4))
    X = sd.tensor("X", x.shape)
    y = layer(X)
    want = _numpy_encoder_layer(x, {**p, **zeros}, 2, "relu", False, causal=False)
    np.testing.assert_allclose(sd.evaluate(y, {X: x, **layer.feed()}), want, rtol=1e-12, atol=1e-12)
    sd.check_grads(_loss(y), [X, *_leaves(layer)], at={X: x, **layer.feed()}, order=1)


# -- against numpy, and central differences -------------------------------------------------
@pytest.mark.parametrize("causal", [False, True])
def test_self_attention_equals_numpy_and_its_gradients_are_right(causal):
    mha = MultiheadAttention(4, 2, dtype="float64")
    p = _randomize(mha)
    x = _x((3, 2, 4))
    X = sd.tensor("X", x.shape)
    y = mha(X, causal=causal)
    at = {X: x, **mha.feed()}
    np.testing.assert_allclose(sd.evaluate(y, at), _numpy_mha(x, x, x, p, 2, causal), rtol=1e-12, atol=1e-12)
    sd.check_grads(_loss(y), [X, *_leaves(mha)], at=at, order=1)


def test_cross_attention_and_masks_equal_numpy():
    mha = MultiheadAttention(4, 2, dtype="float64")
    p = _randomize(mha)
    q, kv = _x((3, 2, 4)), _x((5, 2, 4))
    Q, KV = sd.tensor("Q", q.shape), sd.tensor("KV", kv.shape)
    at = {Q: q, KV: kv, **mha.feed()}
    np.testing.assert_allclose(sd.evaluate(mha(Q, KV), at), _numpy_mha(q, kv, kv, p, 2),
                               rtol=1e-12, atol=1e-12)
    x = _x((4, 2, 4))
    X = sd.tensor("X", x.shape)
    at[X] = x
    causal = sd.evaluate(mha(X, causal=True), at)
    bool_mask = np.triu(np.ones((4, 4), bool), k=1)
    float_mask = np.where(bool_mask, -np.inf, 0.0)
    np.testing.assert_allclose(sd.evaluate(mha(X, attn_mask=sd.constant(bool_mask)), at), causal, rtol=1e-13)
    np.testing.assert_allclose(sd.evaluate(mha(X, attn_mask=sd.constant(float_mask)), at), causal, rtol=1e-13)


@pytest.mark.parametrize("norm_first,activation", [(False, "relu"), (True, "gelu")])
def test_encoder_layer_equals_numpy_and_its_gradients_are_right(norm_first, activation):
    layer = TransformerEncoderLayer(4, 2, dim_feedforward=6, dropout=0.0, activation=activation,
                                    norm_first=norm_first, dtype="float64")
    p = _randomize(layer)
    x = _x((3, 2, 4))
    X = sd.tensor("X", x.shape)
    y = layer(X, causal=True)
    at = {X: x, **layer.feed()}
    want = _numpy_encoder_layer(x, p, 2, activation, norm_first, causal=True)
    np.testing.assert_allclose(sd.evaluate(y, at), want, rtol=1e-12, atol=1e-12)
    sd.check_grads(_loss(y), [X, *_leaves(layer)], at=at, order=1)


def test_positional_embedding_adds_the_first_T_rows():
    pos = PositionalEmbedding(6, 3, dtype="float64")
    x = _x((4, 2, 3))
    X = sd.tensor("X", x.shape)
    y = pos(X)
    at = {X: x, **pos.feed()}
    np.testing.assert_allclose(sd.evaluate(y, at), x + pos.weight.data[:4, None, :], rtol=1e-15)
    (g,) = sd.evaluate(sd.grad(sd.sum(y * y), [pos.weight.leaf]), at)
    want = np.zeros((6, 3))
    want[:4] = (2 * (x + pos.weight.data[:4, None, :])).sum(axis=1)
    np.testing.assert_allclose(g, want, rtol=1e-12)


# -- dropout ---------------------------------------------------------------------------------
def test_dropout_masks_in_training_and_identity_in_eval():
    layer = TransformerEncoderLayer(4, 2, dim_feedforward=6, dropout=0.25, dtype="float64")
    _randomize(layer)
    x = _x((3, 2, 4))
    X = sd.tensor("X", x.shape)
    eval_out = sd.evaluate(layer.eval()(X), {X: x, **layer.feed()})
    layer.train()
    with pytest.raises(RuntimeError, match="nn.trace"):
        layer(X)
    with nn.trace() as t:
        y = layer(X)
    # PyTorch's four: attention weights (B, heads, T, T), after the activation, after each block
    assert [(tuple(m.shape), keep) for m, keep in t.masks] == [
        ((2, 2, 3, 3), 0.75), ((3, 2, 4), 0.75), ((3, 2, 6), 0.75), ((3, 2, 4), 0.75)]
    at = {X: x, **layer.feed()}
    keep_all = {m: np.full(m.shape, keep) for m, keep in t.masks}  # x·mask/keep = x
    np.testing.assert_allclose(sd.evaluate(y, {**at, **keep_all}), eval_out, rtol=1e-12, atol=1e-12)
    random = {m: (RNG.random(m.shape) < keep).astype(np.float64) for m, keep in t.masks}
    assert not np.allclose(sd.evaluate(y, {**at, **random}), eval_out)
    sd.check_grads(_loss(y), [X, layer.linear1.weight.leaf], at={**at, **random}, order=1)


# -- errors ----------------------------------------------------------------------------------
def test_bad_inputs_are_refused_with_the_expected_layout():
    mha = MultiheadAttention(4, 2)
    with pytest.raises(sd.ShapeError, match=r"queries of shape \(T, B, E\) with E = 4 .* got \(3, 4\)"):
        mha(sd.tensor("x", (3, 4), "float32"))
    with pytest.raises(sd.ShapeError, match=r"with E = 4 .* got \(3, 2, 5\)"):
        mha(sd.tensor("x", (3, 2, 5), "float32"))
    with pytest.raises(sd.ShapeError, match=r"keys of shape \(T, B, E\) with E = 4 .* got \(3, 2, 6\)"):
        mha(sd.tensor("q", (3, 2, 4), "float32"), sd.tensor("k", (3, 2, 6), "float32"))
    with pytest.raises(sd.ShapeError, match=r"attn_mask must be \(T, S\) = \(3, 3\)"):
        mha(sd.tensor("x", (3, 2, 4), "float32"), attn_mask=sd.constant(np.zeros((2, 2), bool)))
    with pytest.raises(ValueError, match="not divisible"):
        MultiheadAttention(5, 2)
    with pytest.raises(sd.ShapeError, match=r"Layer\(4\) takes inputs of shape \(T, B, E\) with E = 4"):
        TransformerEncoderLayer(4, 2, 8).eval()(sd.tensor("x", (2, 3, 4, 4), "float32"))
    with pytest.raises(ValueError, match="activation"):
        TransformerEncoderLayer(4, 2, activation="tanh")
    pos = PositionalEmbedding(5, 4)
    with pytest.raises(sd.ShapeError, match="length 6 exceeds max_len = 5"):
        pos(sd.tensor("x", (6, 2, 4), "float32"))
    with pytest.raises(sd.ShapeError, match=r"\(T, B, E\) with E = 4 .* got \(5, 3\)"):
        pos(sd.tensor("x", (5, 3), "float32"))


# -- compiled ----------------------------------------------------------------------------------
@pytest.mark.parametrize("norm_first", [True, False])
def test_a_compiled_loss_and_gradients_equal_the_evaluator(norm_first):
    """Batched matmuls with broadcasting, softmax over the last axis of (B, heads, T, T) scores
    and the causal mask, in generated C++."""
    layer = TransformerEncoderLayer(4, 2, dim_feedforward=6, dropout=0.0, activation="gelu",
                                    norm_first=norm_first, dtype="float64").eval()
    pos = PositionalEmbedding(5, 4, dtype="float64")
    _randomize(layer)
    X = sd.tensor("X", (3, 2, 4), "float64")
    y = layer(pos(X), causal=True)
    loss = sd.mean(y * y * sd.constant(RNG.standard_normal(y.shape)))
    leaves = [X, *_leaves(layer), pos.weight.leaf]
    grads = sd.grad(loss, leaves)
    at = {X: _x((3, 2, 4)), **layer.feed(), **pos.feed()}
    want = sd.evaluate([loss, *grads], at)
    program = sd.compile([loss, *grads], leaves, backend="cpu")
    got = program(*[at[leaf] for leaf in leaves])
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=1e-10, atol=1e-12)


def test_a_compiled_training_step_with_dropout_and_a_symbolic_batch():
    """float32, B symbolic, the attention-weight dropout mask an input of the program."""
    mha = MultiheadAttention(4, 2, dropout=0.5)
    _randomize(mha)
    X = sd.tensor("X", (3, "B", 4), "float32")
    with nn.trace() as t:
        y = mha(X, causal=True)
    ((mask, keep),) = t.masks
    loss = sd.mean(y * y)
    leaves = _leaves(mha)
    program = sd.compile([loss, *sd.grad(loss, leaves)], [X, mask, *leaves], backend="cpu")
    x = _x((3, 5, 4)).astype(np.float32)
    m = (RNG.random((5, 2, 3, 3)) < keep).astype(np.float32)
    got = program(x, m, *[p.data for p in mha.parameters()])
    want = sd.evaluate([loss, *sd.grad(loss, leaves)], {X: x, mask: m, **mha.feed()})
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=1e-4, atol=1e-6)


# -- PyTorch --------------------------------------------------------------------------------
def _torch_mask(torch, T):
    return torch.triu(torch.ones(T, T, dtype=torch.bool), diagonal=1)


def _copy_into(torch, t_module, params):
    with torch.no_grad():
        state = t_module.state_dict()
        assert set(state) == set(params), (sorted(state), sorted(params))
        for name, value in params.items():
            assert tuple(state[name].shape) == value.shape, name
            state[name].copy_(torch.from_numpy(value))


def _compare_with_torch(torch, module, t_module, y, X, x, t_out, tx):
    t_weights = torch.from_numpy(RNG.standard_normal(tuple(t_out.shape)))
    ((t_out * t_weights).sum() + (t_out ** 2).sum()).backward()
    loss = sd.sum(y * sd.constant(t_weights.numpy())) + sd.sum(y * y)
    at = {X: x, **module.feed()}
    np.testing.assert_allclose(sd.evaluate(y, at), t_out.detach().numpy(), rtol=1e-10, atol=1e-12)
    names = [n for n, _ in module.named_parameters()]
    grads = sd.evaluate(sd.grad(loss, [X, *_leaves(module)]), at)
    np.testing.assert_allclose(grads[0], tx.grad.numpy(), rtol=1e-10, atol=1e-11)
    t_params = dict(t_module.named_parameters())
    for name, g in zip(names, grads[1:]):
        np.testing.assert_allclose(g, t_params[name].grad.numpy(), rtol=1e-10, atol=1e-11, err_msg=name)


@pytest.mark.parametrize("causal", [False, True])
def test_multihead_attention_against_pytorch(causal):
    torch = pytest.importorskip("torch")
    mha = MultiheadAttention(6, 3, dtype="float64")
    params = _randomize(mha)
    t_mha = torch.nn.MultiheadAttention(6, 3).double()
    _copy_into(torch, t_mha, params)
    x = _x((4, 2, 6))
    tx = torch.tensor(x, requires_grad=True)
    t_out = t_mha(tx, tx, tx, need_weights=False, attn_mask=_torch_mask(torch, 4) if causal else None)[0]
    X = sd.tensor("X", x.shape)
    _compare_with_torch(torch, mha, t_mha, mha(X, causal=causal), X, x, t_out, tx)


@pytest.mark.parametrize("norm_first", [False, True])
@pytest.mark.parametrize("activation", ["relu", "gelu"])
def test_encoder_layer_against_pytorch(norm_first, activation):
    torch = pytest.importorskip("torch")
    kwargs = {"dim_feedforward": 10, "dropout": 0.1, "activation": activation, "norm_first": norm_first}
    layer = TransformerEncoderLayer(6, 2, dtype="float64", **kwargs).eval()
    params = _randomize(layer)
    t_layer = torch.nn.TransformerEncoderLayer(6, 2, **kwargs).double().eval()
    _copy_into(torch, t_layer, params)
    x = _x((4, 3, 6))
    tx = torch.tensor(x, requires_grad=True)
    t_out = t_layer(tx, src_mask=_torch_mask(torch, 4))
    X = sd.tensor("X", x.shape)
    _compare_with_torch(torch, layer, t_layer, layer(X, causal=True), X, x, t_out, tx)
