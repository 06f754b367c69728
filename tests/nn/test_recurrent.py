"""nn.RNNCell, nn.LSTMCell, nn.RNN, nn.LSTM: PyTorch's layouts (gate order i, f, g, o), an
independent numpy implementation, PyTorch itself where installed, and a compiled BPTT step."""

from __future__ import annotations

import numpy as np
import pytest

import symdiff as sd
from symdiff import nn

RNG = np.random.default_rng(16)


def _sigmoid(a):
    return 1 / (1 + np.exp(-a))


def _numpy_lstm(x, params, num_layers, h0=None, c0=None):
    T, B, _ = x.shape
    H = params["weight_hh_l0"].shape[1]
    hs = [np.zeros((B, H)) if h0 is None else h0[k] for k in range(num_layers)]
    cs = [np.zeros((B, H)) if c0 is None else c0[k] for k in range(num_layers)]
    seq = list(x)
    for k in range(num_layers):
        out = []
        for xt in seq:
            z = xt @ params[f"weight_ih_l{k}"].T + params[f"bias_ih_l{k}"] + hs[k] @ params[f"weight_hh_l{k}"].T \
                + params[f"bias_hh_l{k}"]
            i, f, g, o = np.split(z, 4, axis=1)
            cs[k] = _sigmoid(f) * cs[k] + _sigmoid(i) * np.tanh(g)
            hs[k] = _sigmoid(o) * np.tanh(cs[k])
            out.append(hs[k])
        seq = out
    return np.stack(seq), np.stack(hs), np.stack(cs)


def _numpy_rnn(x, params, num_layers, act):
    T, B, _ = x.shape
    H = params["weight_hh_l0"].shape[1]
    hs = [np.zeros((B, H)) for _ in range(num_layers)]
    seq = list(x)
    for k in range(num_layers):
        out = []
        for xt in seq:
            hs[k] = act(xt @ params[f"weight_ih_l{k}"].T + params[f"bias_ih_l{k}"] + hs[k] @ params[f"weight_hh_l{k}"].T
                        + params[f"bias_hh_l{k}"])
            out.append(hs[k])
        seq = out
    return np.stack(seq), np.stack(hs)


def _bindings(module):
    return {p.leaf: p.data for _, p in module.named_parameters()}


def test_parameter_names_and_shapes_are_pytorchs():
    lstm = nn.LSTM(5, 7, num_layers=2, dtype="float64")
    shapes = {n: p.data.shape for n, p in lstm.named_parameters()}
    assert shapes == {"weight_ih_l0": (28, 5), "weight_hh_l0": (28, 7), "bias_ih_l0": (28,), "bias_hh_l0": (28,),
                      "weight_ih_l1": (28, 7), "weight_hh_l1": (28, 7), "bias_ih_l1": (28,), "bias_hh_l1": (28,)}
    bound = 1 / np.sqrt(7)
    assert all(np.abs(p.data).max() <= bound for _, p in lstm.named_parameters())
    assert {n: p.data.shape for n, p in nn.RNN(3, 4, bias=False).named_parameters()} == {
        "weight_ih_l0": (4, 3), "weight_hh_l0": (4, 4)}


@pytest.mark.parametrize("num_layers", [1, 2])
def test_lstm_equals_numpy_and_its_gradients_are_right(num_layers):
    lstm = nn.LSTM(3, 4, num_layers=num_layers, dtype="float64")
    x = RNG.standard_normal((5, 2, 3))
    h0, c0 = RNG.standard_normal((num_layers, 2, 4)), RNG.standard_normal((num_layers, 2, 4))
    X, H0, C0 = sd.tensor("X", x.shape), sd.tensor("H0", h0.shape), sd.tensor("C0", c0.shape)
    out, (h, c) = lstm(X, (H0, C0))
    at = {X: x, H0: h0, C0: c0, **_bindings(lstm)}
    params = {n: p.data for n, p in lstm.named_parameters()}
    want = _numpy_lstm(x, params, num_layers, h0, c0)
    for got, ref in zip(sd.evaluate([out, h, c], at), want):
        np.testing.assert_allclose(got, ref, rtol=1e-12, atol=1e-12)
    loss = sd.sum(out * sd.constant(RNG.standard_normal(out.shape))) + sd.sum(c)
    sd.check_grads(loss, [X, H0, lstm.weight_hh_l0.leaf], at=at)


@pytest.mark.parametrize("nonlinearity", ["tanh", "relu"])
def test_rnn_equals_numpy(nonlinearity):
    rnn = nn.RNN(3, 4, num_layers=2, nonlinearity=nonlinearity, dtype="float64")
    x = RNG.standard_normal((6, 2, 3))
    X = sd.tensor("X", x.shape)
    out, h = rnn(X)
    act = np.tanh if nonlinearity == "tanh" else (lambda a: np.maximum(a, 0))
    want = _numpy_rnn(x, {n: p.data for n, p in rnn.named_parameters()}, 2, act)
    for got, ref in zip(sd.evaluate([out, h], {X: x, **_bindings(rnn)}), want):
        np.testing.assert_allclose(got, ref, rtol=1e-12, atol=1e-12)


def test_cells_and_layouts_errors():
    cell = nn.LSTMCell(3, 2, dtype="float64")
    x = RNG.standard_normal((4, 3))
    X = sd.tensor("X", x.shape)
    h, c = cell(X)
    params = {f"{n}_l0": p.data for n, p in cell.named_parameters()}
    _, hn, cn = _numpy_lstm(x[None], params, 1)
    np.testing.assert_allclose(sd.evaluate(h, {X: x, **_bindings(cell)}), hn[0], rtol=1e-12)
    np.testing.assert_allclose(sd.evaluate(c, {X: x, **_bindings(cell)}), cn[0], rtol=1e-12)
    with pytest.raises(sd.ShapeError, match=r"\(T, B, F\) with F = 3"):
        nn.LSTM(3, 2)(sd.tensor("v", (4, 3)))
    with pytest.raises(sd.ShapeError, match=r"h0 must be \(num_layers, B, H\) = \(1, B, 2\)"):
        nn.LSTM(3, 2)(sd.tensor("v", (5, 4, 3)), (sd.tensor("h", (2, 4, 2)), sd.tensor("c", (1, 4, 2))))
    with pytest.raises(ValueError, match="nonlinearity"):
        nn.RNN(3, 2, nonlinearity="gelu")


def test_a_compiled_truncated_bptt_step():
    """Two windows of one compiled step: the final states of the first are the initial states of
    the second, and the compiled losses and gradients equal the evaluator's."""
    lstm = nn.LSTM(3, 5, dtype="float32")
    X = sd.tensor("X", (6, "B", 3), "float32")
    H0, C0 = sd.tensor("H0", (1, "B", 5), "float32"), sd.tensor("C0", (1, "B", 5), "float32")
    out, (h, c) = lstm(X, (H0, C0))
    loss = sd.mean(out ** 2)
    leaves = [p.leaf for p in lstm.parameters()]
    grads = sd.grad(loss, leaves)
    program = sd.compile([loss, h, c, *grads], [X, H0, C0, *leaves])
    values = [p.data for p in lstm.parameters()]
    state = (np.zeros((1, 4, 5), np.float32), np.zeros((1, 4, 5), np.float32))
    for _ in range(2):
        x = RNG.standard_normal((6, 4, 3)).astype(np.float32)
        got = program(x, *state, *values)
        want = sd.evaluate([loss, h, c, *grads], {X: x, H0: state[0], C0: state[1], **dict(zip(leaves, values))})
        for g, w in zip(got, want):
            np.testing.assert_allclose(g, w, rtol=1e-4, atol=1e-5)
        state = (got[1], got[2])


def test_against_pytorch_when_installed():
    torch = pytest.importorskip("torch")
    lstm = nn.LSTM(3, 4, num_layers=2, dtype="float64")
    t = torch.nn.LSTM(3, 4, num_layers=2).double()
    with torch.no_grad():
        for name, p in lstm.named_parameters():
            getattr(t, name).copy_(torch.from_numpy(p.data))
    x = RNG.standard_normal((5, 2, 3))
    tx = torch.tensor(x, requires_grad=True)
    tout, (th, tc) = t(tx)
    (tout.sum() + tc.sum()).backward()
    X = sd.tensor("X", x.shape)
    out, (h, c) = lstm(X)
    at = {X: x, **_bindings(lstm)}
    for got, want in zip(sd.evaluate([out, h, c], at), (tout, th, tc)):
        np.testing.assert_allclose(got, want.detach().numpy(), rtol=1e-12, atol=1e-12)
    gx, gw = sd.evaluate(sd.grad(sd.sum(out) + sd.sum(c), [X, lstm.weight_hh_l1.leaf]), at)
    np.testing.assert_allclose(gx, tx.grad.numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(gw, t.weight_hh_l1.grad.numpy(), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("kind", ["lstm", "rnn"])
def test_scan_layers_equal_the_unrolled_graph_values_gradients_and_compiled(kind):
    """The default layers are one sd.scan each; unroll=True is the course's graph of T steps:
    the same values and gradients, and the scan compiles (its step once)."""
    layer = nn.LSTM(3, 4, num_layers=2, dtype="float64") if kind == "lstm" else nn.RNN(3, 4, 2, dtype="float64")
    x = sd.tensor("x", (5, 2, 3))
    leaves = [p.leaf for p in layer.parameters()]
    outs = []
    for unroll in (False, True):
        layer.unroll = unroll
        y, state = layer(x)
        last = state[1] if kind == "lstm" else state
        loss = sd.sum(y * y) + sd.sum(sd.tanh(last))
        outs.append((loss, sd.grad(loss, [x] + leaves)))
    env = {**_bindings(layer), x: np.random.default_rng(3).normal(size=(5, 2, 3))}
    scanned, unrolled = (sd.evaluate([loss] + grads, env) for loss, grads in outs)
    for a, b in zip(scanned, unrolled):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)
    loss, grads = outs[0]
    assert "scan" in {n.op.name for n in sd.toposort([loss])}
    program = sd.compile([loss] + grads, [x] + leaves)
    got = program(env[x], *[env[leaf] for leaf in leaves])
    for a, b in zip(got, scanned):
        np.testing.assert_allclose(a, b, rtol=1e-11, atol=1e-12)
