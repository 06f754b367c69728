"""Convolutions and pooling in generated CUDA programs: a LeNet-like training step (conv -> relu
-> max_pool -> grouped, strided conv -> relu -> avg_pool -> matmul -> cross-entropy, the gradient
of every weight and an SGD update of each) with a run-time batch, on a device (marked gpu) and
built by nvcc where it is installed. The same step runs on the CPU emulation in
test_conv_cuda_emulated.py."""

import numpy as np
import pytest
from symdiff.lowering import cuda_info
from symdiff.lowering.programs.cuda import CudaProgram
from test_cuda_program import TRAIN_TOL, _has_nvcc, assert_equals_the_evaluator

import symdiff as sd

pytestmark = [pytest.mark.skipif(not _has_nvcc(), reason="nvcc not found"),
              pytest.mark.usefixtures("module_program_cache")]

BATCHES = (5, 1, 16)  # one library for every batch size; 16 grows the device pool


def lenet_step(dtype):
    """(outputs, inputs, updates) of one SGD step on a batch of N 1×12×12 images."""
    X, y = sd.tensor("X", ("N", 1, 12, 12), dtype), sd.tensor("y", ("N",), "int64")
    K1, b1 = sd.tensor("K1", (4, 1, 3, 3), dtype), sd.tensor("b1", (4,), dtype)
    K2, b2 = sd.tensor("K2", (8, 2, 3, 3), dtype), sd.tensor("b2", (8,), dtype)
    W3, b3 = sd.tensor("W3", (32, 10), dtype), sd.tensor("b3", (10,), dtype)
    params = [K1, b1, K2, b2, W3, b3]
    h = sd.relu(sd.conv2d(X, K1, padding=1) + b1.reshape((1, 4, 1, 1)))  # N, 4, 12, 12
    h = sd.max_pool2d(h, 2)  # N, 4, 6, 6
    h = sd.relu(sd.conv2d(h, K2, stride=2, padding=1, groups=2) + b2.reshape((1, 8, 1, 1)))  # N, 8, 3, 3
    h = sd.avg_pool2d(h, 2, stride=1)  # N, 8, 2, 2
    loss = sd.softmax_cross_entropy(h.reshape((-1, 32)) @ W3 + b3, y)
    grads = sd.grad(loss, params)
    return [loss, *grads], [X, y, *params], {p: p - 0.1 * g for p, g in zip(params, grads)}


def sample(inputs, n, dtype, seed=0):
    """Arrays for the step's inputs at batch ``n``."""
    rng = np.random.default_rng(seed + n)
    arrays = [rng.standard_normal((n, 1, 12, 12)).astype(dtype), rng.integers(0, 10, n)]
    return arrays + [(0.5 * rng.standard_normal(p.shape)).astype(dtype) for p in inputs[2:]]


def check_against_the_reference(dtype, batches=BATCHES):
    prog = CudaProgram(*lenet_step(dtype))
    for n in batches:
        assert_equals_the_evaluator(prog, sample(prog.inputs, n, dtype), TRAIN_TOL[dtype], f"N={n}: ")
    assert prog.libraries == 1 and prog.specialized_because is None, prog.specialized_because
    return prog


def test_the_step_builds_with_nvcc():
    prog = CudaProgram(*lenet_step("float32"))
    spec = prog._current({"N": 8})  # the run-time-batch library, built by nvcc
    assert spec.build_info["cache"] in ("miss", "memory") and spec.dims
    kinds = [k.kind for k in prog._unit({"N": 8}).kernels]
    for kind in ("conv2d", "max_pool2d", "max_pool2d_scatter", "avg_pool2d", "avg_pool2d_scatter"):
        assert kind in kinds, kinds
    # the weight gradients (few outputs, sums over the batch) take a block per output
    assert prog._unit({"N": 8}).source.count("symdiff_block_reduce<double>(acc, double(0)") == 2


@pytest.mark.gpu
@pytest.mark.skipif(cuda_info()["device_count"] == 0, reason="no CUDA device")
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_the_step_on_the_device_equals_the_reference_evaluator(dtype):
    prog = check_against_the_reference(dtype, BATCHES + (64,))
    arrays = sample(prog.inputs, 64, dtype)
    first, again = prog(*[a.copy() for a in arrays]), prog(*[a.copy() for a in arrays])
    for g, h in zip(first, again):  # no atomics: the same bits on every run
        np.testing.assert_array_equal(g, h)
