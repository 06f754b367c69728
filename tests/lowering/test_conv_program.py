"""conv2d and the pooling ops lowered on the cpu backend: a LeNet-like training step (conv,
relu, max pool, conv, relu, average pool, a dense layer, cross-entropy) and its gradients
with respect to every weight, against the reference evaluator, with stride, padding,
dilation, groups and a batch size known only at run time."""

import numpy as np
import pytest

import symdiff as sd

pytestmark = pytest.mark.usefixtures("module_program_cache")  # tests/conftest.py
TOL = {"float64": {"rtol": 1e-11, "atol": 1e-12}, "float32": {"rtol": 1e-4, "atol": 1e-5}}


def _lenet(dtype, batch="N"):
    """(loss, weights, inputs): two convolutions (groups=2 with padding; stride 2 with padding
    and dilation), max and average pooling, a dense layer and softmax cross-entropy."""
    X = sd.tensor("X", (batch, 2, 12, 12), dtype)
    labels = sd.tensor("y", (batch,), "int64")
    W1, b1 = sd.tensor("W1", (4, 1, 3, 3), dtype), sd.tensor("b1", (4,), dtype)
    W2, b2 = sd.tensor("W2", (6, 4, 3, 3), dtype), sd.tensor("b2", (6,), dtype)
    W3, b3 = sd.tensor("W3", (6, 10), dtype), sd.tensor("b3", (10,), dtype)
    h = sd.relu(sd.conv2d(X, W1, padding=1, groups=2) + b1.reshape((1, 4, 1, 1)))  # (N, 4, 12, 12)
    h = sd.max_pool2d(h, 2)                                                          # (N, 4, 6, 6)
    h = sd.relu(sd.conv2d(h, W2, stride=2, padding=2, dilation=2) + b2.reshape((1, 6, 1, 1)))  # (N, 6, 3, 3)
    h = sd.avg_pool2d(h, 2, stride=1)                                                # (N, 6, 2, 2)
    h = sd.max_pool2d(h, 2, stride=2, padding=1)                                     # (N, 6, 2, 2)
    z = h.reshape((h.shape[0], 24)) @ sd.concatenate([W3, W3[::-1], W3, W3[:, ::-1]], axis=0) + b3
    loss = sd.softmax_cross_entropy(z, labels)
    return loss, [W1, b1, W2, b2, W3, b3], [X, labels]


def _values(dtype, n, rng):
    shapes = [(4, 1, 3, 3), (4,), (6, 4, 3, 3), (6,), (6, 10), (10,)]
    weights = [(rng.standard_normal(s) * 0.5).astype(dtype) for s in shapes]
    return weights, [rng.standard_normal((n, 2, 12, 12)).astype(dtype), rng.integers(0, 10, n)]


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_a_lenet_step_and_its_gradients_equal_the_evaluator_at_two_batch_sizes(dtype):
    loss, weights, (X, labels) = _lenet(dtype)
    grads = sd.grad(loss, weights + [X])
    inputs = weights + [X, labels]
    step = sd.compile([loss] + grads, inputs)
    rng = np.random.default_rng(0)
    for n in (5, 2):
        w, (x, y) = _values(dtype, n, rng)
        env = dict(zip(inputs, w + [x, y]))
        got, want = step(*env.values()), sd.evaluate([loss] + grads, env)
        for k, (g, v) in enumerate(zip(got, want)):
            assert g.shape == v.shape and g.dtype == v.dtype
            np.testing.assert_allclose(g, v, **TOL[dtype], err_msg=f"n={n} output {k}")
    assert step.libraries == 1 and step.specialized_because is None  # one library serves both


def test_a_convolution_of_a_single_image_and_its_input_gradient():
    X, W = sd.tensor("X", (1, 3, 7, 9)), sd.tensor("W", (4, 3, 2, 3))
    C = sd.tensor("C", (1, 4, 4, 2))
    y = sd.conv2d(X, W, stride=(2, 3), padding=(1, 0), dilation=(1, 2))
    gx, gw = sd.grad(sd.sum(y * C), [X, W])
    prog = sd.compile([y, gx, gw], [X, W, C])
    rng = np.random.default_rng(1)
    env = {X: rng.standard_normal((1, 3, 7, 9)), W: rng.standard_normal((4, 3, 2, 3)),
           C: rng.standard_normal((1, 4, 4, 2))}
    for g, v in zip(prog(*env.values()), sd.evaluate([y, gx, gw], env)):
        np.testing.assert_allclose(g, v, **TOL["float64"])


def test_max_pooling_picks_the_first_maximum_and_never_the_padding():
    X, T = sd.tensor("X", (1, 1, 3, 4)), sd.tensor("T", (1, 1, 3, 4))
    x = np.array([[[[1.0, 1.0, -np.inf, 2.0], [1.0, 0.5, 2.0, 2.0], [-np.inf, -np.inf, 3.0, 3.0]]]])
    t = np.arange(12.0).reshape(1, 1, 3, 4)
    y = sd.max_pool2d(X, 2, padding=1)
    (jvp_like,) = sd.grad(sd.sum(y * y), [X])
    exprs = [y, jvp_like, sd.max_pool2d(sd.exp(X) + T, (3, 2), stride=1)]
    prog = sd.compile(exprs, [X, T])
    for g, v in zip(prog(x, t), sd.evaluate(exprs, {X: x, T: t})):
        np.testing.assert_array_equal(g, v)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_a_one_channel_layer_with_bias_and_relu_and_its_gradients(dtype):
    # LeNet's first layer, small: one input channel (the weight gradient's transposed input is a
    # reshape then), padding 2, a bias and a relu after it
    X, W, b = sd.tensor("X", ("N", 1, 9, 8), dtype), sd.tensor("W", (3, 1, 5, 5), dtype), sd.tensor("b", (3,), dtype)
    C = sd.tensor("C", ("N", 3, 9, 8), dtype)
    y = sd.relu(sd.conv2d(X, W, padding=2) + b.reshape((1, 3, 1, 1)))
    exprs = [y] + sd.grad(sd.sum(y * C), [X, W, b])
    prog = sd.compile(exprs, [X, W, b, C])
    rng = np.random.default_rng(2)
    for n in (3, 1):
        env = {X: rng.standard_normal((n, 1, 9, 8)).astype(dtype), W: rng.standard_normal((3, 1, 5, 5)).astype(dtype),
               b: rng.standard_normal(3).astype(dtype), C: rng.standard_normal((n, 3, 9, 8)).astype(dtype)}
        for k, (g, v) in enumerate(zip(prog(*env.values()), sd.evaluate(exprs, env))):
            np.testing.assert_allclose(g, v, **TOL[dtype], err_msg=f"n={n} output {k}")


def test_the_column_buffers_are_arena_memory():
    X, W = sd.tensor("X", (2, 3, 10, 10), "float32"), sd.tensor("W", (4, 3, 3, 3), "float32")
    prog = sd.compile(sd.conv2d(X, W), [X, W])  # no temporary but the columns of the im2col form
    assert "symdiff::cpu::conv_items(" in prog.source
    assert prog.stats["arena_bytes"] >= 4 * (3 * 3 * 3) * (8 * 8)


def _small_resnet_stage(dtype):
    """Convolutions of 4x4, 2x2 and 1x1 images (3x3, padding 1, strides 1 and 2) and a tiling
    max pool: the batched forms, their dropped taps and pixels, and the tiled pool scatter."""
    X = sd.tensor("X", ("N", 3, 8, 8), dtype)
    Ws = [sd.tensor(f"W{k}", s, dtype) for k, s in enumerate([(4, 3, 3, 3), (5, 4, 3, 3), (6, 5, 3, 3), (6, 6, 3, 3)])]
    h = sd.max_pool2d(sd.relu(sd.conv2d(X, Ws[0], padding=1)), 2)  # (N, 4, 4, 4)
    h = sd.relu(sd.conv2d(h, Ws[1], stride=2, padding=1))          # (N, 5, 2, 2)
    h = sd.relu(sd.conv2d(h, Ws[2], stride=2, padding=1))          # (N, 6, 1, 1)
    h = sd.conv2d(h, Ws[3], padding=1) + h                          # (N, 6, 1, 1): the centre tap only
    C = sd.tensor("C", ("N", 6, 1, 1), dtype)
    loss = sd.sum(h * C)
    return [h] + sd.grad(loss, Ws + [X]), Ws + [X, C]


@pytest.mark.parametrize("chunked", [False, True])
def test_small_images_by_one_product_over_the_batch_equal_the_evaluator(chunked, monkeypatch):
    from symdiff.lowering.render import cpu_conv

    if chunked:  # chunks of two images, and of a few channels for the weight gradients
        monkeypatch.setattr(cpu_conv, "COLUMN_TARGET", 2)
        monkeypatch.setattr(cpu_conv, "COLUMN_BUDGET", 64)
    exprs, inputs = _small_resnet_stage("float64")
    prog = sd.compile(exprs, inputs)
    rng = np.random.default_rng(3)
    for n in (5, 3):
        env = {leaf: rng.standard_normal(tuple(d if isinstance(d, int) else n for d in leaf.shape)) for leaf in inputs}
        env[inputs[-2]][:, :, :2, :2] = 1.0  # ties in the first pool window: the first maximum wins
        for k, (g, v) in enumerate(zip(prog(*env.values()), sd.evaluate(exprs, env))):
            np.testing.assert_allclose(g, v, **TOL["float64"], err_msg=f"n={n} output {k}")
    assert prog.libraries == 1


def test_a_convolution_of_a_one_pixel_image_multiplies_by_the_centre_tap_alone():
    X, W = sd.tensor("X", ("N", 8, 1, 1), "float32"), sd.tensor("W", (8, 8, 3, 3), "float32")
    prog = sd.compile(sd.conv2d(X, W, padding=1), [X, W])
    x, w = np.ones((2, 8, 1, 1), np.float32), np.ones((8, 8, 3, 3), np.float32)
    np.testing.assert_allclose(prog(x, w), np.full((2, 8, 1, 1), 8.0, np.float32))
    # the product's inner dimension is the 8 channels of one tap, not 8 x 9
    assert "symdiff::cpu::gemm<float>(false, false, 8, nbc * 1, cbc * 1," in prog.source


def _kernel_names(program, **sizes):
    import re
    return re.findall(r"k_[0-9a-f]{8}_(\w+):", program.explain(**sizes))


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("padding", [1, 3])  # 3: pixels that see only padding (the in-place epilogue pass)
def test_bias_batchnorm_and_relu_computed_in_the_convolutions_output_pass(dtype, padding):
    X, K = sd.tensor("X", ("N", 3, 8, 8), dtype), sd.tensor("K", (4, 3, 3, 3), dtype)
    b, mu, var, g, beta = (sd.tensor(name, (4,), dtype) for name in ("b", "mu", "var", "g", "beta"))
    per_channel = lambda v: v.reshape((1, 4, 1, 1))
    z = sd.conv2d(X, K, padding=padding) + per_channel(b)
    y = sd.relu((z - per_channel(mu)) / sd.sqrt(per_channel(var) + 1e-5) * per_channel(g) + beta.reshape((4, 1, 1)))
    program = sd.compile(y, [X, K, b, mu, var, g, beta])
    rng = np.random.default_rng(1)
    for n in (5, 3):
        values = [rng.standard_normal((n, 3, 8, 8)), rng.standard_normal((4, 3, 3, 3))]
        values += [rng.standard_normal(4), rng.standard_normal(4), rng.random(4) + 0.5, rng.standard_normal(4),
                   rng.standard_normal(4)]
        values = [v.astype(dtype) for v in values]
        want = sd.evaluate(y, dict(zip([X, K, b, mu, var, g, beta], values)))
        np.testing.assert_allclose(program(*values), want, **TOL[dtype])
    assert [k for k in _kernel_names(program) if "conv2d" in k] == ["conv2d_add_subtract"]
    assert program.stats["kernels"] == 2  # the per-channel sqrt(var + eps), then the convolution


def test_a_convolution_read_elsewhere_keeps_its_own_kernel():
    X, K, b = sd.tensor("X", ("N", 3, 8, 8)), sd.tensor("K", (4, 3, 3, 3)), sd.tensor("b", (4,))
    z = sd.conv2d(X, K, padding=1)
    outputs = [sd.relu(z + b.reshape((1, 4, 1, 1))), sd.sum(z)]
    program = sd.compile(outputs, [X, K, b])
    rng = np.random.default_rng(2)
    for n in (5, 3):
        values = [rng.standard_normal((n, 3, 8, 8)), rng.standard_normal((4, 3, 3, 3)), rng.standard_normal(4)]
        for got, want in zip(program(*values), sd.evaluate(outputs, dict(zip([X, K, b], values)))):
            np.testing.assert_allclose(got, want, rtol=1e-11, atol=1e-11)
    assert _kernel_names(program)[0] == "conv2d"
