"""conv2d, conv1d and pooling: PyTorch's semantics, clear errors, derivatives as graph ops.

The registry cases (symdiff/testing.py, ``_window_cases``) check values against explicit
loops and every mode against central differences; this file checks what is particular to
convolutions: the argument forms, the errors, second derivatives, the printed rules, the
tie-breaking of max pooling, and PyTorch itself where it is installed.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest

import symdiff as sd
from symdiff.testing import conv2d_loops, pool2d_loops

RNG = np.random.default_rng(15)


def _values(*nodes):
    return {n: RNG.standard_normal(tuple(int(d) for d in n.shape)) for n in nodes}


@pytest.mark.parametrize("stride,padding,dilation,groups", [
    (1, 0, 1, 1), (2, 1, 1, 1), ((2, 1), (0, 2), (1, 2), 1), (1, 1, 1, 2), (3, 2, 2, 4), (2, "same", 1, 1),
])
def test_conv2d_equals_explicit_loops_and_its_gradients_are_right(stride, padding, dilation, groups):
    if padding == "same":
        stride = 1
    X, W = sd.tensor("X", (2, 4, 7, 6)), sd.tensor("W", (4, 4 // groups, 3, 2))
    y = sd.conv2d(X, W, stride=stride, padding=padding, dilation=dilation, groups=groups)
    at = _values(X, W)
    pair = lambda v: (v, v) if isinstance(v, int) else v  # noqa: E731
    if padding == "same":  # total padding d·(k − 1): 2 rows (1, 1) and 1 column, the extra one after
        ref = conv2d_loops(np.pad(at[X], ((0, 0), (0, 0), (1, 1), (0, 1))), at[W], groups=groups)
    else:
        ref = conv2d_loops(at[X], at[W], pair(stride), pair(padding), pair(dilation), groups)
    np.testing.assert_allclose(sd.evaluate(y, at), ref, rtol=1e-12, atol=1e-12)
    loss = sd.sum(sd.tanh(y) * sd.constant(RNG.standard_normal(ref.shape)))
    sd.check_grads(loss, [X, W], at=at, order=2)


def test_symbolic_batch_and_image_sizes():
    X, W = sd.tensor("X", ("N", 2, "H", "W")), sd.tensor("K", (3, 2, 3, 3))
    y = sd.conv2d(X, W, padding=1)
    assert str(y.shape) == "(N, 3, H, W)"
    assert sd.cost(y)["flops"] == 2 * 3 * 2 * 9 * sd.shapes.dim("N") * sd.shapes.dim("H") * sd.shapes.dim("W")
    for n, h, w in ((1, 5, 4), (3, 6, 6)):
        x, k = RNG.standard_normal((n, 2, h, w)), RNG.standard_normal((3, 2, 3, 3))
        np.testing.assert_allclose(sd.evaluate(y, {X: x, W: k}), conv2d_loops(x, k, padding=(1, 1)), atol=1e-12)
    strided = sd.conv2d(X, W, stride=2)
    assert strided.shape[2] == sd.ops.conv.output_size(sd.shapes.dim("H"), 3, 2, 0, 1)


def test_unbatched_input_and_conv1d():
    x, w = sd.tensor("x", (2, 5, 5)), sd.tensor("w", (3, 2, 3, 3))
    at = _values(x, w)
    np.testing.assert_allclose(sd.evaluate(sd.conv2d(x, w, padding=1), at),
                               conv2d_loops(at[x][None], at[w], padding=(1, 1))[0], atol=1e-12)
    s, k = sd.tensor("s", (2, 3, 11)), sd.tensor("k", (4, 3, 3))
    at = _values(s, k)
    want = conv2d_loops(at[s][:, :, None], at[k][:, :, None], (1, 2), (0, 1), (1, 2))[:, :, 0]
    y = sd.conv1d(s, k, stride=2, padding=1, dilation=2)
    np.testing.assert_allclose(sd.evaluate(y, at), want, atol=1e-12)
    sd.check_grads(sd.sum(sd.sin(y)), [s, k], at=at)


@pytest.mark.parametrize("build,message", [
    (lambda X: sd.conv2d(X, sd.tensor("V", (4, 2, 3, 3))), "the input has 3 channels but the weight (4, 2, 3, 3) expects 2"),
    (lambda X: sd.conv2d(X, sd.tensor("V", (4, 3, 9, 3))), "kernel spans 9 elements along axis 2, more than the padded"),
    (lambda X: sd.conv2d(X, sd.tensor("V", (4, 3, 3, 3)), stride=0), "stride must be positive, got 0"),
    (lambda X: sd.conv2d(X, sd.tensor("V", (4, 3, 3, 3)), stride=-1), "stride must be positive"),
    (lambda X: sd.conv2d(X, sd.tensor("V", (4, 1, 3, 3)), groups=2), "groups=2 must divide the input's 3 channels"),
    (lambda X: sd.conv2d(X, sd.tensor("V", (4, 3, 3, 3)), padding=-1), "padding must be non-negative"),
    (lambda X: sd.conv2d(X, sd.tensor("V", (4, 3)), padding=1), "the weight must be (O, C/groups, kH, kW)"),
    (lambda X: sd.conv2d(sd.tensor("v", (3, 8)), sd.tensor("V", (4, 3, 3, 3))), "the input must be (N, C, H, W)"),
    (lambda X: sd.conv2d(X, sd.tensor("V", (4, 3, 3, 3)), padding="same", stride=2), "padding='same' needs stride 1"),
    (lambda X: sd.max_pool2d(X, 3, padding=2), "padding (2, 2) must be at most half the kernel size"),
    (lambda X: sd.avg_pool2d(X, 0), "kernel_size must be positive"),
    (lambda X: sd.max_pool2d(X, 9), "kernel spans 9 elements"),
])
def test_bad_arguments_are_clear_errors_at_graph_construction(build, message):
    X = sd.tensor("X", (2, 3, 8, 8))
    with pytest.raises(sd.ShapeError) as info:
        build(X)
    assert message in str(info.value)


@pytest.mark.parametrize("build", [
    lambda X, W: sd.conv2d(X, W, padding=1.5), lambda X, W: sd.conv2d(X, W, stride=(1, 2.0)),
    lambda X, W: sd.conv2d(X, W, dilation=True), lambda X, W: sd.max_pool2d(X, "2"),
    lambda X, W: sd.conv2d(X, sd.tensor("I", (4, 3, 3, 3), "int64")),
])
def test_non_integer_arguments_and_dtypes_are_type_errors(build):
    X, W = sd.tensor("X", (2, 3, 8, 8)), sd.tensor("W", (4, 3, 3, 3))
    with pytest.raises(TypeError):
        build(X, W)


def test_rules_are_convolutions_and_print_as_such():
    X, W, C = sd.tensor("X", ("N", 3, 8, 8)), sd.tensor("W", (4, 3, 3, 3)), sd.tensor("C", ("N", 4, 4, 4))
    y = sd.conv2d(X, W, stride=2, padding=1)
    dx, dw = sd.vjp(y, [X, W], C)
    assert sd.pretty(dx) == "conv2d(pad(dilate(C, 1, (2, 3)), (0, 0), (0, 0), (1, 1), (1, 1)), flip(transpose(W, (1, 0, 2, 3)), axis=2,3))"
    assert sd.pretty(dw).startswith("transpose(conv2d(transpose(X, (1, 0, 2, 3)), transpose(C, (1, 0, 2, 3)), padding=1, dilation=2)")
    assert {n.op.name for n in sd.toposort([dx, dw]) if not n.is_leaf} <= {
        "conv2d", "pad", "dilate", "flip", "transpose", "getitem"}
    text = str(y)
    assert text == "conv2d(X, W, stride=(2, 2), padding=(1, 1))"
    assert sd.parse(text, {"X": X, "W": W}) is y
    assert sd.latex(y) == r"\operatorname{conv2d}\left(X, W, \mathrm{stride}=2, \mathrm{padding}=1\right)"
    assert sd.latex(sd.max_pool2d(X, 2)) == r"\operatorname{max\_pool2d}\left(X, \mathrm{kernel\_size}=2, \mathrm{stride}=2\right)"


def test_hessian_vector_products_of_a_convolutional_loss():
    X, W = sd.tensor("X", (2, 2, 5, 5)), sd.tensor("W", (3, 2, 3, 3))
    loss = sd.sum(sd.softplus(sd.avg_pool2d(sd.conv2d(X, W, padding=1), 2)) ** 2)
    at = _values(X, W)
    V = sd.tensor("V", W.shape)
    (hv,) = sd.hvp(loss, [W], [V])
    v = RNG.standard_normal(W.shape)
    (g,) = sd.grad(loss, [W])
    eps = 1e-5
    plus = sd.evaluate(g, {**at, W: at[W] + eps * v})
    minus = sd.evaluate(g, {**at, W: at[W] - eps * v})
    np.testing.assert_allclose(sd.evaluate(hv, {**at, V: v}), (plus - minus) / (2 * eps), rtol=1e-6, atol=1e-8)


def test_every_mode_agrees_on_a_small_cnn_loss():
    X, W = sd.tensor("X", (1, 1, 4, 4)), sd.tensor("W", (2, 1, 2, 2))
    loss = sd.sum(sd.max_pool2d(sd.tanh(sd.conv2d(X, W)), 2, stride=1) ** 2)
    at = _values(X, W)
    grads = {mode: sd.evaluate(sd.grad(loss, [W], mode=mode, at=at), at)[0]
             for mode in ("reverse", "forward", "symbolic", "symbolic-cse")}
    numeric = sd.numeric_grad(loss, [W], at=at)[0]
    for mode, g in grads.items():
        np.testing.assert_allclose(g, numeric, rtol=1e-6, atol=1e-9, err_msg=mode)


def test_max_pool_ties_route_to_the_first_maximum_as_pytorch():
    X = sd.tensor("X", (1, 1, 2, 4))
    x = np.array([[[[1.0, 1.0, 0.0, 2.0], [1.0, 0.5, 2.0, 2.0]]]])
    (g,) = sd.grad(sd.sum(sd.max_pool2d(X, 2)), [X])
    assert sd.evaluate(g, {X: x})[0, 0].tolist() == [[1.0, 0.0, 0.0, 1.0], [0.0, 0.0, 0.0, 0.0]]
    T = sd.tensor("T", X.shape)
    (jv,) = sd.jvp(sd.max_pool2d(X, 2), [X], [T])
    t = np.arange(8.0).reshape(1, 1, 2, 4)
    assert sd.evaluate(jv, {X: x, T: t}).reshape(-1).tolist() == [0.0, 3.0]  # t at (0, 0) and at (0, 3)


def test_max_pool_padding_is_never_chosen():
    X = sd.tensor("X", (1, 3, 3))
    x = -np.ones((1, 3, 3)) * 5.0  # every value below 0, the padding's value in average pooling
    y = sd.max_pool2d(X, 2, stride=2, padding=1)
    np.testing.assert_array_equal(sd.evaluate(y, {X: x}), pool2d_loops(x, (2, 2), (2, 2), (1, 1), "max"))
    (g,) = sd.grad(sd.sum(y), [X])
    assert sd.evaluate(g, {X: x}).sum() == 4.0  # one route per window, all inside the image


def test_global_average_pool():
    X = sd.tensor("X", ("N", 3, 4, 5))
    x = RNG.standard_normal((2, 3, 4, 5))
    np.testing.assert_allclose(sd.evaluate(sd.global_avg_pool2d(X), {X: x}), x.mean(axis=(2, 3), keepdims=True))


def test_against_pytorch_when_installed():
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    for (stride, padding, dilation, groups), (kind, k, s, p) in itertools.product(
            [(1, 0, 1, 1), (2, 1, 1, 2), ((1, 2), (2, 1), (2, 1), 1)], [("max", 2, 2, 0), ("avg", 3, 2, 1)]):
        X, W = sd.tensor("X", (2, 4, 9, 8)), sd.tensor("W", (6, 4 // groups, 3, 3))
        y = sd.conv2d(X, W, stride=stride, padding=padding, dilation=dilation, groups=groups)
        pooled = (sd.max_pool2d if kind == "max" else sd.avg_pool2d)(sd.relu(y), k, stride=s, padding=p)
        loss = sd.sum(pooled ** 2)
        at = _values(X, W)
        tx, tw = (torch.tensor(at[n], requires_grad=True) for n in (X, W))
        ty = F.conv2d(tx, tw, stride=stride, padding=padding, dilation=dilation, groups=groups)
        pool = F.max_pool2d if kind == "max" else F.avg_pool2d
        tl = (pool(F.relu(ty), k, stride=s, padding=p) ** 2).sum()
        tl.backward()
        np.testing.assert_allclose(sd.evaluate(loss, at), tl.item(), rtol=1e-12)
        for got, want in zip(sd.evaluate(sd.grad(loss, [X, W]), at), (tx.grad, tw.grad)):
            np.testing.assert_allclose(got, want.numpy(), rtol=1e-10, atol=1e-12)
