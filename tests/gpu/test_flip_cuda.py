"""sd.flip in generated CUDA programs: on a device (marked gpu), and built by nvcc where it is
installed. The same graph runs on the CPU emulation in test_flip_cuda_emulated.py."""

import numpy as np
import pytest
from symdiff.lowering import cuda_info
from symdiff.lowering.programs.cuda import CudaProgram
from test_cuda_program import TRAIN_TOL as TOL
from test_cuda_program import _has_nvcc, assert_equals_the_evaluator

import symdiff as sd

pytestmark = [pytest.mark.skipif(not _has_nvcc(), reason="nvcc not found"),
              pytest.mark.usefixtures("module_program_cache")]


def flip_graph(dtype):
    """A training step through flips (a matmul operand, a loss) and flips fused into loops,
    reductions and outputs: (outputs, inputs, updates, {leaf: value})."""
    X, W = sd.tensor("X", (33, 17), dtype), sd.tensor("W", (17, 5), dtype)
    y = sd.tensor("y", (33,), "int64")
    loss = sd.softmax_cross_entropy(sd.flip(X, 0) @ sd.flip(W, 1), y)
    (gW,) = sd.grad(loss, [W])
    outputs = [loss, gW, sd.exp(sd.flip(X)) * 2.0, sd.flip(X, 1), sd.sum(sd.flip(sd.tanh(X), 0), axis=0),
               sd.softmax(sd.flip(X, (0, 1)))]
    rng = np.random.default_rng(11)
    env = {X: rng.standard_normal((33, 17)).astype(dtype), W: rng.standard_normal((17, 5)).astype(dtype),
           y: rng.integers(0, 5, 33)}
    return outputs, [X, W, y], {W: W - 0.1 * gW}, env


def check_against_the_reference(dtype):
    outputs, inputs, updates, env = flip_graph(dtype)
    prog = CudaProgram(outputs, inputs, updates)
    assert_equals_the_evaluator(prog, [env[leaf].copy() for leaf in prog.inputs], TOL[dtype])
    return prog


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_the_source_reads_flips_by_index_arithmetic(dtype):
    outputs, inputs, updates, _ = flip_graph(dtype)
    source = CudaProgram(outputs, inputs, updates).translate({}).source
    assert "(32 - i0)" in source and "(16 - i1)" in source  # i -> d - 1 - i, in the threads' loops
    assert CudaProgram(*flip_graph(dtype)[:3]).translate({}).source == source


@pytest.mark.gpu
@pytest.mark.skipif(cuda_info()["device_count"] == 0, reason="no CUDA device")
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_flips_on_the_device_equal_the_reference_evaluator(dtype):
    check_against_the_reference(dtype)
