"""The image layers (Conv2d, pooling, BatchNorm2d, Flatten) and the CNN models against
independent numpy loops, and against PyTorch when it is installed (same weights, copied)."""

import itertools
import math

import numpy as np
import pytest
from symdiff.nn.data import ArrayDataset, DataLoader

import symdiff as sd
from symdiff import nn

RNG = np.random.default_rng(0)


def _x(*shape, dtype="float64"):
    return RNG.normal(size=shape).astype(dtype)


def _run(module, x, training=False):
    """(output, {buffer name: new value}) of ``module`` on ``x`` through the reference evaluator."""
    X = sd.tensor("X", ("m", *x.shape[1:]), x.dtype.name)
    module.train(training)
    with nn.trace() as t:
        out = module(X)
    values = sd.evaluate([out, *t.updates.values()], {X: x, **module.feed()})
    return np.asarray(values[0]), {leaf.name: np.asarray(v) for leaf, v in zip(t.updates, values[1:])}


def conv_loop(x, w, b, stride, padding, dilation, groups):
    """Convolution by explicit loops over every output element (cross-correlation, as PyTorch)."""
    n, _, h, wd = x.shape
    o, cg, kh, kw = w.shape
    (sh, sw), (ph, pw), (dh, dw) = stride, padding, dilation
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    oh = (h + 2 * ph - dh * (kh - 1) - 1) // sh + 1
    ow = (wd + 2 * pw - dw * (kw - 1) - 1) // sw + 1
    out = np.zeros((n, o, oh, ow))
    per_group = o // groups
    for i, k, r, s in itertools.product(range(n), range(o), range(oh), range(ow)):
        g = k // per_group
        total = 0.0
        for ci, u, v in itertools.product(range(cg), range(kh), range(kw)):
            total += xp[i, g * cg + ci, r * sh + u * dh, s * sw + v * dw] * w[k, ci, u, v]
        out[i, k, r, s] = total + (b[k] if b is not None else 0.0)
    return out


# -- Conv2d -------------------------------------------------------------------------------------

def test_conv2d_parameters_have_pytorch_shapes_and_init():
    nn.init.manual_seed(0)
    conv = nn.Conv2d(6, 16, 5, groups=2)
    assert conv.weight.shape == (16, 3, 5, 5) and conv.bias.shape == (16,)
    bound = 1 / math.sqrt(3 * 5 * 5)  # kaiming_uniform(a=√5): U(−1/√fan_in, 1/√fan_in)
    for p in (conv.weight.data, conv.bias.data):
        assert p.dtype == np.float32 and np.abs(p).max() <= bound
    assert np.abs(conv.weight.data).max() > 0.9 * bound  # uses the whole range
    assert abs(float(conv.weight.data.std()) - bound / math.sqrt(3)) < 0.1 * bound
    assert [n for n, _ in nn.Conv2d(1, 2, 3, bias=False).named_parameters()] == ["weight"]
    assert nn.Conv2d(1, 2, (3, 5), stride=(1, 2), padding=(1, 2)).weight.shape == (2, 1, 3, 5)


@pytest.mark.parametrize("c, o, k, stride, padding, dilation, groups", [
    (1, 2, 3, 1, 0, 1, 1),
    (2, 3, 3, 2, 1, 1, 1),
    (4, 6, (3, 2), (2, 1), (1, 2), 1, 2),
    (3, 2, 2, 1, 2, 2, 1),
    (4, 4, 3, 1, 1, 1, 4),  # depthwise
])
def test_conv2d_forward_equals_a_loop(c, o, k, stride, padding, dilation, groups):
    conv = nn.Conv2d(c, o, k, stride=stride, padding=padding, dilation=dilation, groups=groups, dtype="float64")
    x = _x(2, c, 7, 6)
    out, _ = _run(conv, x)
    pair = lambda v: v if isinstance(v, tuple) else (v, v)
    want = conv_loop(x, conv.weight.data, conv.bias.data, pair(stride), pair(padding), pair(dilation), groups)
    assert out.shape == want.shape
    np.testing.assert_allclose(out, want, rtol=1e-12, atol=1e-12)


def test_conv2d_gradients_check_numerically():
    conv = nn.Conv2d(2, 3, 3, stride=2, padding=1, dtype="float64")
    X = sd.tensor("X", (2, 2, 5, 5), "float64")
    loss = sd.sum(sd.square(conv(X)))
    at = {X: _x(2, 2, 5, 5), **conv.feed()}
    leaves = [X, conv.weight.leaf, conv.bias.leaf]
    for got, want in zip(sd.grad(loss, leaves), sd.numeric_grad(loss, leaves, at=at)):
        np.testing.assert_allclose(sd.evaluate(got, at), want, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("make, message", [
    (lambda: nn.Conv2d(3, 4, 3, groups=2), "in_channels 3 is not divisible by groups 2"),
    (lambda: nn.Conv2d(4, 6, 3, groups=4), "out_channels 6 is not divisible by groups 4"),
    (lambda: nn.Conv2d(1, 2, 0), "kernel_size must be >= 1, got 0"),
    (lambda: nn.Conv2d(1, 2, 3, stride=0), "stride must be >= 1, got 0"),
    (lambda: nn.Conv2d(1, 2, 3, padding=-1), "padding must be >= 0, got -1"),
    (lambda: nn.Conv2d(1, 2, 3, stride=1.5), "stride must be an int or a pair of ints"),
    (lambda: nn.Conv2d(0, 2, 3), "in_channels must be an int >= 1, got 0"),
    (lambda: nn.MaxPool2d(2, padding=2), "padding 2 must be at most half of kernel_size 2"),
    (lambda: nn.AvgPool2d(0), "kernel_size must be >= 1"),
    (lambda: nn.AdaptiveAvgPool2d((2, 2)), "only output_size 1"),
])
def test_bad_layer_arguments_are_clear_errors(make, message):
    with pytest.raises((ValueError, TypeError), match=message):
        make()


def test_bad_inputs_name_the_layer_and_both_channel_counts():
    conv = nn.Conv2d(3, 8, 3)
    with pytest.raises(sd.ShapeError, match=r"Conv2d\(3, 8\) expects 3 input channels, but the input "
                                            r"\(m, 1, 28, 28\) has 1"):
        conv(sd.tensor("X", ("m", 1, 28, 28)))
    with pytest.raises(sd.ShapeError, match=r"Conv2d\(3, 8\) takes images of shape \(N, C, H, W\), got shape "
                                            r"\(m, 784\)"):
        conv(sd.tensor("X", ("m", 784)))
    with pytest.raises(sd.ShapeError, match="MaxPool2d takes images"):
        nn.MaxPool2d(2)(sd.tensor("X", ("m", 4)))
    with pytest.raises(sd.ShapeError, match=r"BatchNorm2d\(4\) takes images of shape \(N, 4, H, W\)"):
        nn.BatchNorm2d(4).eval()(sd.tensor("X", ("m", 3, 2, 2)))
    with pytest.raises(sd.ShapeError, match="kernel"):  # the core's check: a kernel larger than the input
        nn.Conv2d(1, 1, 5)(sd.tensor("X", ("m", 1, 3, 3)))


# -- pooling, Flatten -------------------------------------------------------------------------

def test_pooling_layers_equal_numpy():
    x = _x(2, 3, 6, 6)
    blocks = x.reshape(2, 3, 3, 2, 3, 2)
    out, _ = _run(nn.MaxPool2d(2), x)
    np.testing.assert_array_equal(out, blocks.max(axis=(3, 5)))
    out, _ = _run(nn.AvgPool2d(2), x)
    np.testing.assert_allclose(out, blocks.mean(axis=(3, 5)), rtol=1e-12)
    out, _ = _run(nn.AvgPool2d(3, stride=1, padding=1), x)  # padding counts as zeros (PyTorch's default)
    padded = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    want = sum(padded[:, :, i:i + 6, j:j + 6] for i in range(3) for j in range(3)) / 9
    np.testing.assert_allclose(out, want, rtol=1e-12)
    out, _ = _run(nn.MaxPool2d(3, stride=2, padding=1), x)  # padding never wins a maximum
    padded = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)), constant_values=-np.inf)
    want = np.max([padded[:, :, i:i + 5:2, j:j + 5:2] for i in range(3) for j in range(3)], axis=0)
    np.testing.assert_array_equal(out, want)
    out, _ = _run(nn.AdaptiveAvgPool2d(1), x)
    np.testing.assert_allclose(out, x.mean(axis=(2, 3), keepdims=True), rtol=1e-12)
    out, _ = _run(nn.Flatten(), x)
    np.testing.assert_array_equal(out, x.reshape(2, 108))


# -- BatchNorm2d ------------------------------------------------------------------------------

def batch_norm_2d(x, gamma, beta, rm, rv, momentum=0.1, eps=1e-5):
    """(output, new running mean, new running var) of a training step, PyTorch's way."""
    mean, var = x.mean(axis=(0, 2, 3)), x.var(axis=(0, 2, 3))
    n = x.size // x.shape[1]
    c = (1, -1, 1, 1)
    out = gamma.reshape(c) * (x - mean.reshape(c)) / np.sqrt(var.reshape(c) + eps) + beta.reshape(c)
    return out, (1 - momentum) * rm + momentum * mean, (1 - momentum) * rv + momentum * var * n / (n - 1)


def _bn(c=3):
    bn = nn.BatchNorm2d(c, momentum=0.2, dtype="float64")
    bn.weight.data[:] = RNG.uniform(0.5, 1.5, c)
    bn.bias.data[:] = RNG.normal(size=c)
    bn.running_mean.data[:] = RNG.normal(size=c)
    bn.running_var.data[:] = RNG.uniform(0.5, 2, c)
    return bn


def test_batchnorm2d_training_and_running_statistics_equal_numpy():
    bn = _bn()
    assert [p.shape for p in bn.parameters()] == [(3,), (3,)]
    assert [b.shape for b in bn.buffers()] == [(3,), (3,)]
    x = 3 * _x(4, 3, 5, 2) + 1
    out, updates = _run(bn, x, training=True)
    want, rm, rv = batch_norm_2d(x, bn.weight.data, bn.bias.data, bn.running_mean.data, bn.running_var.data, 0.2)
    np.testing.assert_allclose(out, want, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(updates["mu1"], rm, rtol=1e-12)
    np.testing.assert_allclose(updates["var1"], rv, rtol=1e-12)  # unbiased: ·40/39
    out, updates = _run(bn, x, training=False)
    c = (1, -1, 1, 1)
    want = (bn.weight.data.reshape(c) * (x - bn.running_mean.data.reshape(c))
            / np.sqrt(bn.running_var.data.reshape(c) + 1e-5) + bn.bias.data.reshape(c))
    np.testing.assert_allclose(out, want, rtol=1e-10)
    assert updates == {}
    with pytest.raises(RuntimeError, match="BatchNorm2d in training mode gives its running statistics"):
        bn.train()(sd.tensor("X", ("m", 3, 2, 2)))
    with pytest.raises(sd.ShapeError, match="more than one value per channel"), nn.trace():
        bn(sd.tensor("X", (1, 3, 1, 1)))


def test_batchnorm2d_compiled_step_moves_the_running_statistics():
    """Three batches (16, 16, 8 images) through one compiled step with a run-time batch size:
    the running statistics equal numpy's, batch after batch."""
    x = (2 * _x(40, 3, 4, 4) + 1).astype(np.float32)
    y = RNG.integers(0, 2, 40)
    nn.init.manual_seed(0)
    model = nn.Sequential(nn.BatchNorm2d(3), nn.Flatten(), nn.Linear(48, 2))
    trainer = nn.Trainer(model, nn.SoftmaxLoss(), nn.optim.SGD(model.parameters(), lr=0.1), backend="cpu",
                         progress=False)
    rm, rv = np.zeros(3), np.ones(3)
    for start in (0, 16, 32):
        b = x[start:start + 16].astype(np.float64)
        _, rm, rv = batch_norm_2d(b, np.ones(3), np.zeros(3), rm, rv)
    trainer.fit(DataLoader(ArrayDataset(x, y), batch_size=16), epochs=1)
    np.testing.assert_allclose(model.layers[0].running_mean.data, rm, rtol=1e-5)
    np.testing.assert_allclose(model.layers[0].running_var.data, rv, rtol=1e-5)


def test_batchnorm2d_equals_torch():
    torch = pytest.importorskip("torch")
    bn = _bn(4)
    ref = torch.nn.BatchNorm2d(4, momentum=0.2).double()
    with torch.no_grad():
        for name, p in (("weight", bn.weight), ("bias", bn.bias), ("running_mean", bn.running_mean),
                        ("running_var", bn.running_var)):
            getattr(ref, name).copy_(torch.from_numpy(p.data))
    x = _x(3, 4, 3, 5)
    out, updates = _run(bn, x, training=True)
    want = ref.train()(torch.from_numpy(x)).detach().numpy()
    np.testing.assert_allclose(out, want, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(updates["mu1"], ref.running_mean.numpy(), rtol=1e-12)
    np.testing.assert_allclose(updates["var1"], ref.running_var.numpy(), rtol=1e-12)


# -- the models -------------------------------------------------------------------------------

def test_model_shapes_at_28_and_8_pixels():
    lenet = nn.LeNet5(batchnorm=True)
    shapes = {n: p.shape for n, p in lenet.named_parameters()}
    assert shapes["layers.0.weight"] == (6, 1, 5, 5) and shapes["layers.4.weight"] == (16, 6, 5, 5)
    assert shapes["layers.9.weight"] == (400, 120)  # Linear keeps the course's (in, out)
    plain = nn.LeNet5()
    assert sum(p.data.size for p in plain.parameters()) == 61706  # LeNet-5's well-known count
    for size in (28, 8):
        X = sd.tensor("X", ("m", 1, size, size), "float32")
        assert str(nn.LeNet5(num_classes=7, image_size=size)(X).shape) == "(m, 7)"
        assert str(nn.ResNet9(num_classes=5, image_size=size).eval()(X).shape) == "(m, 5)"
    resnet = nn.ResNet9()
    conv_bn = lambda c, o, k: o * c * k * k + 2 * o  # no conv bias; BatchNorm's γ, β
    count = (conv_bn(1, 16, 7) + conv_bn(16, 32, 3) + 2 * conv_bn(32, 32, 3) + conv_bn(32, 64, 3)
             + conv_bn(64, 128, 3) + 2 * conv_bn(128, 128, 3) + 128 * 128 + 128 + 128 * 10 + 10)
    assert sum(p.data.size for p in resnet.parameters()) == count == 429_818
    assert resnet.layers[0].layers[0].weight.shape == (16, 1, 7, 7) and resnet.layers[0].layers[0].stride == (4, 4)
    assert nn.ResNet9(image_size=8).layers[0].layers[0].weight.shape == (16, 1, 3, 3)
    with pytest.raises(ValueError, match="too small"):
        nn.LeNet5(image_size=3)


def test_models_rebuild_from_their_description():
    for model in (nn.LeNet5(in_channels=1, num_classes=10, image_size=8, batchnorm=True), nn.ResNet9(image_size=8)):
        again = nn.from_config(model.config())
        assert type(again) is type(model) and repr(again) == repr(model)
        assert {k: v.shape for k, v in again.state_dict().items()} == {k: v.shape for k, v in
                                                                        model.state_dict().items()}


def _torch_lenet(torch, model):
    """PyTorch's LeNet-5 with BatchNorm2d, holding ``model``'s weights."""
    t = torch.nn
    ref = t.Sequential(t.Conv2d(1, 6, 5, padding=2), t.BatchNorm2d(6), t.ReLU(), t.MaxPool2d(2),
                       t.Conv2d(6, 16, 5), t.BatchNorm2d(16), t.ReLU(), t.MaxPool2d(2), t.Flatten(),
                       t.Linear(400, 120), t.ReLU(), t.Linear(120, 84), t.ReLU(), t.Linear(84, 10)).double()
    with torch.no_grad():
        for key, value in model.state_dict().items():
            target = ref.state_dict()[key.removeprefix("layers.")]
            value = value.T if target.ndim == 2 else value  # Linear: (in, out) here, (out, in) there
            target.copy_(torch.from_numpy(np.ascontiguousarray(value)))
    return ref


def test_a_lenet_training_step_equals_torch():
    """One SGD-with-momentum step of LeNet-5 (BatchNorm2d after each convolution) on 6 MNIST-
    sized images: loss, every parameter and the running statistics equal PyTorch's."""
    torch = pytest.importorskip("torch")
    nn.init.manual_seed(1)
    model = nn.LeNet5(batchnorm=True)
    for p in model.parameters():
        p.data = p.data.astype(np.float64)
    for b in model.buffers():
        b.data = b.data.astype(np.float64)
    ref = _torch_lenet(torch, model)
    x, y = RNG.uniform(size=(6, 1, 28, 28)), RNG.integers(0, 10, 6)
    trainer = nn.Trainer(model, nn.SoftmaxLoss(), nn.optim.SGD(model.parameters(), lr=0.05, momentum=0.9),
                         backend="numpy", progress=False)
    trainer.fit(DataLoader(ArrayDataset(x, y), batch_size=6), epochs=2)
    opt = torch.optim.SGD(ref.parameters(), lr=0.05, momentum=0.9)
    losses = []
    for _ in range(2):
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(ref(torch.from_numpy(x)), torch.from_numpy(y))
        loss.backward()
        opt.step()
        losses.append(loss.item())
    np.testing.assert_allclose(trainer.history["batch_loss"], losses, rtol=1e-9)
    want = ref.state_dict()
    for key, value in model.state_dict().items():
        expected = want[key.removeprefix("layers.")].numpy()
        np.testing.assert_allclose(value, expected.T if expected.ndim == 2 else expected, rtol=1e-8, atol=1e-10,
                                   err_msg=key)


def test_a_compiled_lenet_step_equals_the_evaluator():
    """The cpu backend's LeNet-5 (with BatchNorm2d) step: same losses and weights as the
    reference evaluator's (needs the conv/pool lowering)."""
    x = RNG.uniform(size=(40, 1, 12, 12)).astype(np.float32)
    y = RNG.integers(0, 10, 40)
    states = {}
    for backend in ("numpy", "cpu"):
        nn.init.manual_seed(2)
        model = nn.LeNet5(image_size=12, batchnorm=True)
        trainer = nn.Trainer(model, nn.SoftmaxLoss(), nn.optim.SGD(model.parameters(), lr=0.05, momentum=0.9),
                             backend=backend, progress=False)
        trainer.fit(DataLoader(ArrayDataset(x, y), batch_size=16), epochs=1)
        states[backend] = (trainer.history["batch_loss"], model.state_dict())
    np.testing.assert_allclose(states["cpu"][0], states["numpy"][0], rtol=1e-4)
    for key, value in states["cpu"][1].items():
        np.testing.assert_allclose(value, states["numpy"][1][key], rtol=1e-3, atol=1e-5, err_msg=key)
