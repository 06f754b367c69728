"""Every module's forward against a numpy reference; gradients through sd.check_grads."""

import numpy as np
import pytest

import symdiff as sd
from symdiff import nn

RNG = np.random.default_rng(0)


def relu(x):
    return np.maximum(x, 0)


def layer_norm(x, eps=1e-5):
    mu = x.mean(axis=1, keepdims=True)
    return (x - mu) / np.sqrt(x.var(axis=1, keepdims=True) + eps)


def batch_norm(x, mean, var, eps=1e-5):
    return (x - mean) / np.sqrt(var + eps)


def _run(module, x, training=False, masks=()):
    X = sd.tensor("X", ("m", *x.shape[1:]), x.dtype.name)
    module.train(training)
    with nn.trace() as t:
        out = module(X)
    env = {X: x, **module.feed(), **{leaf: m for (leaf, _), m in zip(t.masks, masks)}}
    return np.asarray(sd.evaluate(out, env)), t


def _x(*shape, dtype="float64"):
    return RNG.normal(size=shape).astype(dtype)


def test_linear_matches_numpy():
    lin = nn.Linear(5, 3, dtype="float64")
    lin.bias.data[:] = RNG.normal(size=3)
    x = _x(4, 5)
    out, _ = _run(lin, x)
    np.testing.assert_allclose(out, x @ lin.weight.data + lin.bias.data, rtol=1e-12)
    no_bias = nn.Linear(5, 3, bias=False, dtype="float64")
    out, _ = _run(no_bias, x)
    np.testing.assert_allclose(out, x @ no_bias.weight.data, rtol=1e-12)
    assert [n for n, _ in no_bias.named_parameters()] == ["weight"]


@pytest.mark.parametrize("module, reference", [
    (nn.ReLU(), relu), (nn.Sigmoid(), lambda x: 1 / (1 + np.exp(-x))), (nn.Tanh(), np.tanh),
    (nn.Identity(), lambda x: x)], ids=["relu", "sigmoid", "tanh", "identity"])
def test_activations_match_numpy(module, reference):
    x = _x(4, 6)
    out, _ = _run(module, x)
    np.testing.assert_allclose(out, reference(x), rtol=1e-12)


def test_sequential_and_residual_compose():
    a, b = nn.Linear(4, 4, dtype="float64"), nn.Linear(4, 4, dtype="float64")
    model = nn.Sequential(a, nn.ReLU(), nn.Residual(nn.Sequential(b, nn.Tanh())))
    x = _x(3, 4)
    out, _ = _run(model, x)
    h = relu(x @ a.weight.data + a.bias.data)
    np.testing.assert_allclose(out, np.tanh(h @ b.weight.data + b.bias.data) + h, rtol=1e-12)


def test_flatten():
    x = _x(3, 2, 5)
    out, _ = _run(nn.Flatten(), x)
    np.testing.assert_array_equal(out, x.reshape(3, 10))


def test_dropout_uses_the_mask_in_training_and_is_the_identity_in_eval():
    x = _x(4, 5)
    mask = (RNG.random((4, 5)) < 0.7).astype(np.float64)
    drop = nn.Dropout(0.3)
    out, t = _run(drop, x, training=True, masks=[mask])
    assert [(leaf.shape, p) for leaf, p in t.masks] == [(sd.tensor("X", ("m", 5)).shape, 0.7)]
    np.testing.assert_allclose(out, x * mask / 0.7, rtol=1e-12)
    out, t = _run(drop, x, training=False)
    assert not t.masks
    np.testing.assert_array_equal(out, x)
    with pytest.raises(ValueError, match="p must be"):
        nn.Dropout(1.0)
    drop.train()
    with pytest.raises(RuntimeError, match="nn.trace"):
        drop(sd.tensor("X", (2, 2)))


def test_layer_norm_matches_numpy():
    ln = nn.LayerNorm1d(6, dtype="float64")
    ln.weight.data[:] = RNG.normal(size=6)
    ln.bias.data[:] = RNG.normal(size=6)
    x = _x(5, 6)
    out, _ = _run(ln, x)
    np.testing.assert_allclose(out, ln.weight.data * layer_norm(x) + ln.bias.data, rtol=1e-10)


def test_batch_norm_training_statistics_and_running_updates():
    bn = nn.BatchNorm1d(4, momentum=0.2, dtype="float64")
    bn.weight.data[:] = [1.0, 2.0, 0.5, -1.0]
    bn.running_mean.data[:] = 1.0
    x = _x(8, 4) * 3 + 2
    out, t = _run(bn, x, training=True)
    expected = bn.weight.data * batch_norm(x, x.mean(0), x.var(0)) + bn.bias.data
    np.testing.assert_allclose(out, expected, rtol=1e-10)
    env = {sd.tensor("X", ("m", 4), "float64"): x, **bn.feed()}
    new = {leaf.name: np.asarray(v) for leaf, v in zip(t.updates, sd.evaluate(list(t.updates.values()), env))}
    np.testing.assert_allclose(new["mu1"], 0.8 * 1.0 + 0.2 * x.mean(0), rtol=1e-12)
    np.testing.assert_allclose(new["var1"], 0.8 * 1.0 + 0.2 * x.var(0), rtol=1e-12)
    # eval mode: the running statistics, no updates
    bn.running_mean.data[:] = new["mu1"]
    bn.running_var.data[:] = new["var1"]
    out, t = _run(bn, x, training=False)
    assert not t.updates
    np.testing.assert_allclose(out, bn.weight.data * batch_norm(x, new["mu1"], new["var1"]) + bn.bias.data,
                               rtol=1e-10)


def test_batch_norm_in_training_mode_outside_a_trace_is_refused_and_eval_needs_none():
    bn = nn.BatchNorm1d(3, dtype="float64")
    X = sd.tensor("X", ("m", 3), "float64")
    # the running-statistics update has nowhere to go without a trace: refused, as Dropout's mask is
    with pytest.raises(RuntimeError, match=r"BatchNorm1d in training mode.*running statistics.*"
                                           r"with nn\.trace\(\) as t:.*t\.updates.*model\.eval\(\)"):
        bn(X)
    with pytest.raises(RuntimeError, match="BatchNorm1d in training mode"):
        nn.Sequential(nn.Linear(3, 3, dtype="float64"), bn)(X)
    # eval mode reads the running statistics and needs no trace
    bn.running_mean.data[:] = [1.0, 2.0, 3.0]
    bn.running_var.data[:] = 4.0
    bn.eval()
    x = _x(5, 3)
    out = sd.evaluate(bn(X), {X: x, **bn.feed()})
    np.testing.assert_allclose(out, (x - [1.0, 2.0, 3.0]) / np.sqrt(4.0 + 1e-5), rtol=1e-12)


def test_losses_match_numpy():
    logits, labels = _x(6, 4), RNG.integers(0, 4, 6)
    L, y = sd.tensor("L", ("m", 4)), sd.tensor("y", ("m",), "int64")
    shifted = logits - logits.max(1, keepdims=True)
    log_p = shifted - np.log(np.exp(shifted).sum(1, keepdims=True))
    got = sd.evaluate(nn.SoftmaxLoss()(L, y), {L: logits, y: labels})
    np.testing.assert_allclose(got, -log_p[np.arange(6), labels].mean(), rtol=1e-12)
    target = _x(6, 4)
    T = sd.tensor("T", ("m", 4))
    got = sd.evaluate(nn.MSELoss()(L, T), {L: logits, T: target})
    np.testing.assert_allclose(got, ((logits - target) ** 2).mean(), rtol=1e-12)


# -- gradients -----------------------------------------------------------------------------

def _check_module_grads(module, x, training=False, masks=(), order=1):
    X = sd.tensor("X", x.shape, "float64")
    module.train(training)
    with nn.trace() as t:
        out = module(X)
    at = {X: x, **module.feed(), **{leaf: m for (leaf, _), m in zip(t.masks, masks)}}
    wrt = [X] + [p.leaf for p in module.parameters()]
    sd.check_grads(out, wrt, at, order=order)


@pytest.mark.parametrize("build", [
    lambda: nn.Linear(4, 3, dtype="float64"),
    lambda: nn.Sequential(nn.Linear(4, 5, dtype="float64"), nn.Sigmoid(), nn.Linear(5, 2, dtype="float64")),
    lambda: nn.Sequential(nn.Linear(4, 4, dtype="float64"), nn.Tanh()),
    lambda: nn.Residual(nn.Sequential(nn.Linear(4, 4, dtype="float64"), nn.ReLU())),
    lambda: nn.LayerNorm1d(4, dtype="float64"),
    lambda: nn.BatchNorm1d(4, dtype="float64"),
], ids=["linear", "sigmoid-mlp", "tanh", "residual-relu", "layernorm", "batchnorm"])
def test_module_gradients(build):
    module = build()
    for p in module.parameters():
        p.data[...] += RNG.normal(scale=0.3, size=p.shape)
    x = _x(5, 4)
    if isinstance(module, nn.Residual):  # keep relu's inputs off the kink
        x = x + np.sign(x) * 0.2
    _check_module_grads(module, x, training=True)


def test_dropout_gradient():
    mask = (RNG.random((5, 4)) < 0.5).astype(np.float64)
    _check_module_grads(nn.Sequential(nn.Linear(4, 4, dtype="float64"), nn.Dropout(0.5)), _x(5, 4),
                        training=True, masks=[mask])


def test_loss_gradients():
    L, y, T = sd.tensor("L", (5, 3)), sd.tensor("y", (5,), "int64"), sd.tensor("T", (5, 3))
    at = {L: _x(5, 3), y: RNG.integers(0, 3, 5), T: _x(5, 3)}
    sd.check_grads(nn.SoftmaxLoss()(L, y), [L], at, order=2)
    sd.check_grads(nn.MSELoss()(L, T), [L, T], at, order=2)


# -- structure -------------------------------------------------------------------------------

class Custom(nn.Module):
    def __init__(self):
        super().__init__()
        self.blocks = [nn.Linear(3, 3), nn.Linear(3, 3)]
        self.norm = nn.BatchNorm1d(3)
        self.shared = self.blocks[0]  # the same module twice: its parameters count once

    def forward(self, x):
        for block in self.blocks:
            x = sd.relu(block(x))
        return self.norm(self.shared(x))


def test_parameter_discovery_through_attributes_and_lists():
    model = Custom()
    names = [n for n, _ in model.named_parameters()]
    assert names == ["blocks.0.weight", "blocks.0.bias", "blocks.1.weight", "blocks.1.bias", "norm.weight",
                     "norm.bias"]
    assert [n for n, _ in model.named_buffers()] == ["norm.running_mean", "norm.running_var"]
    assert [p.name for p in model.parameters()] == ["W1", "b1", "W2", "b2", "gamma1", "beta1"]
    assert len(model.parameters()) == 6
    model.eval()
    assert not any(m.training for _, m in model.named_modules())
    model.train()
    assert all(m.training for _, m in model.named_modules())
    assert model.config() is None  # not a symdiff.nn class: Trainer.load needs model=


def test_state_dict_round_trip_in_place():
    a, b = nn.Sequential(nn.Linear(3, 2), nn.BatchNorm1d(2)), nn.Sequential(nn.Linear(3, 2), nn.BatchNorm1d(2))
    a.layers[1].running_mean.data[:] = 7
    weight = b.layers[0].weight.data
    b.load_state_dict(a.state_dict())
    assert b.layers[0].weight.data is weight  # copied into the existing array
    for (ka, va), (kb, vb) in zip(a.state_dict().items(), b.state_dict().items()):
        assert ka == kb and np.array_equal(va, vb)
    with pytest.raises(KeyError, match="missing"):
        b.load_state_dict({})
    bad = a.state_dict()
    bad["layers.0.weight"] = np.zeros((2, 3), np.float32)
    with pytest.raises(ValueError, match="layers.0.weight has shape"):
        b.load_state_dict(bad)


def test_config_rebuilds_the_architecture():
    model = nn.Sequential(nn.Linear(4, 8, bias=False), nn.LayerNorm1d(8, eps=1e-3),
                          nn.Residual(nn.Sequential(nn.Linear(8, 8), nn.Tanh())), nn.Dropout(0.25),
                          nn.BatchNorm1d(8, momentum=0.3), nn.Flatten())
    rebuilt = nn.from_config(model.config())
    assert repr(rebuilt) == repr(model)
    assert [(k, v.shape) for k, v in rebuilt.state_dict().items()] == \
        [(k, v.shape) for k, v in model.state_dict().items()]
    with pytest.raises(ValueError, match="unknown module"):
        nn.from_config({"module": "os.system", "args": [], "kwargs": {}})
