"""nn.Embedding, nn.LayerNorm, nn.GELU: PyTorch's layouts and values, a numpy reference, compiled."""

from __future__ import annotations

import numpy as np
import pytest

import symdiff as sd
from symdiff import nn

RNG = np.random.default_rng(16)


def _layer_norm(x, gamma, beta, k, eps=1e-5):
    axes = tuple(range(x.ndim - k, x.ndim))
    mu = x.mean(axis=axes, keepdims=True)
    var = ((x - mu) ** 2).mean(axis=axes, keepdims=True)
    return (x - mu) / np.sqrt(var + eps) * gamma + beta


@pytest.mark.parametrize("shape,normalized", [((5, 3, 8), 8), ((2, 4, 5), (4, 5)), ((7, 6), (6,))])
def test_layer_norm_equals_numpy_forward_and_compiled(shape, normalized):
    layer = nn.LayerNorm(normalized, dtype="float64")
    layer.weight.data[...] = RNG.standard_normal(layer.weight.data.shape)
    layer.bias.data[...] = RNG.standard_normal(layer.bias.data.shape)
    X = sd.tensor("X", shape, "float64")
    x = RNG.standard_normal(shape)
    y = layer(X)
    k = 1 if isinstance(normalized, int) else len(normalized)
    want = _layer_norm(x, layer.weight.data, layer.bias.data, k)
    at = {X: x, layer.weight.leaf: layer.weight.data, layer.bias.leaf: layer.bias.data}
    np.testing.assert_allclose(sd.evaluate(y, at), want, rtol=1e-12, atol=1e-12)
    sd.check_grads(sd.sum(sd.tanh(y)), [X, layer.weight.leaf], at=at)
    program = sd.compile([y], [X, layer.weight.leaf, layer.bias.leaf])
    got = program(x, layer.weight.data, layer.bias.data)
    np.testing.assert_allclose(got[0] if isinstance(got, list) else got, want, rtol=1e-10, atol=1e-12)


def test_layer_norm_refuses_a_wrong_trailing_shape():
    with pytest.raises(sd.ShapeError, match=r"normalizes the trailing shape \(8,\), got an input of shape \(5, 7\)"):
        nn.LayerNorm(8)(sd.tensor("X", (5, 7)))
    with pytest.raises(ValueError, match="positive ints"):
        nn.LayerNorm(0)


def test_embedding_layout_and_values():
    layer = nn.Embedding(11, 4)
    assert layer.weight.data.shape == (11, 4) and layer.weight.data.dtype == np.float32
    ids = sd.tensor("ids", ("T", "B"), "int64")
    out = layer(ids)
    i = RNG.integers(0, 11, (6, 3))
    np.testing.assert_array_equal(sd.evaluate(out, {ids: i, layer.weight.leaf: layer.weight.data}),
                                  layer.weight.data[i])
    with pytest.raises(TypeError, match="int64 indices"):
        layer(sd.tensor("f", (3,), "float32"))
    with pytest.raises(ValueError, match="positive int"):
        nn.Embedding(0, 3)


def test_against_pytorch_when_installed():
    torch = pytest.importorskip("torch")
    x = RNG.standard_normal((5, 3, 8))
    ln = nn.LayerNorm(8, dtype="float64")
    ln.weight.data[...] = RNG.standard_normal(8)
    ln.bias.data[...] = RNG.standard_normal(8)
    tln = torch.nn.LayerNorm(8).double()
    with torch.no_grad():
        tln.weight.copy_(torch.from_numpy(ln.weight.data))
        tln.bias.copy_(torch.from_numpy(ln.bias.data))
    X = sd.tensor("X", x.shape, "float64")
    loss = sd.sum(nn.GELU()(ln(X)) ** 2)
    at = {X: x, ln.weight.leaf: ln.weight.data, ln.bias.leaf: ln.bias.data}
    tx = torch.tensor(x, requires_grad=True)
    tl = (torch.nn.functional.gelu(tln(tx)) ** 2).sum()
    tl.backward()
    np.testing.assert_allclose(sd.evaluate(loss, at), tl.item(), rtol=1e-12)
    gx, gw = sd.evaluate(sd.grad(loss, [X, ln.weight.leaf]), at)
    np.testing.assert_allclose(gx, tx.grad.numpy(), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(gw, tln.weight.grad.numpy(), rtol=1e-9, atol=1e-12)
