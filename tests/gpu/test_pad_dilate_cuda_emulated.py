"""sd.pad and sd.dilate in generated CUDA programs on the CPU emulation (tests/gpu/cuda_emulator,
see test_cuda_emulated.py): the guarded reads inside the threads' loops, at fixed sizes and with a
run-time batch. Runs on every machine with g++ and nvcc."""

import numpy as np
import pytest
from test_cuda_emulated import CXX, emulated_programs  # noqa: F401  (the fixture: builds on the emulation)
from test_cuda_program import TRAIN_TOL, assert_equals_the_evaluator

import symdiff as sd

pytestmark = pytest.mark.skipif(CXX is None, reason="the emulation needs a C++ compiler")


def pad_dilate_graph(dtype, rows):
    """A training step through dilate -> pad -> matmul, and pads fused into loops, a reduction
    and an output: (outputs, inputs, updates)."""
    X, W = sd.tensor("X", (rows, 4), dtype), sd.tensor("W", (10, 3), dtype)
    Z = sd.pad(sd.dilate(X, 1, 1), ((1, 0), (1, 1)), value=0.25)  # (rows + 1, 10)
    loss = sd.sum(sd.tanh(Z @ W) ** 2)
    gX, gW = sd.grad(loss, [X, W])
    outputs = [loss, gX, gW, sd.exp(sd.pad(X, 1)) * 2.0, sd.sum(sd.dilate(X, 2, 0), axis=0), Z]
    return outputs, [X, W], {W: W - 0.1 * gW}


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_pads_and_dilates_equal_the_reference_evaluator_on_the_emulation(emulated_programs, dtype):  # noqa: F811
    from symdiff.lowering.programs.cuda import CudaProgram

    prog = CudaProgram(*pad_dilate_graph(dtype, "m"))
    for m in (5, 1, 12):  # a run-time batch: one program for every size
        rng = np.random.default_rng(m)
        arrays = [rng.standard_normal((m, 4)).astype(dtype), rng.standard_normal((10, 3)).astype(dtype)]
        assert_equals_the_evaluator(prog, arrays, TRAIN_TOL[dtype], f"m={m}: ")
