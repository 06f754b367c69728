"""sd.flip lowered: a view read by index arithmetic (i -> d - 1 - i) in whichever loop reads it,
on the cpu backend and in the generated CUDA source. No kernel of its own, except the contiguous
copy a matmul operand or an output needs anyway."""

import numpy as np
import pytest
from symdiff.lowering.plan.schedule import schedule
from symdiff.lowering.render import cpu_unit, cuda_unit

import symdiff as sd

pytestmark = pytest.mark.usefixtures("module_program_cache")  # tests/conftest.py
TOL = {"float32": {"rtol": 2e-5, "atol": 2e-5}, "float64": {"rtol": 1e-12, "atol": 1e-12}}


def _flips(dtype):
    X, W = sd.tensor("X", ("m", 5), dtype), sd.tensor("W", (5, 3), dtype)
    exprs = [
        sd.flip(X, 0),                              # an output: copied out through the index map
        sd.exp(sd.flip(X)) * 2.0,                   # fused into an elementwise loop
        sd.flip(X, 1) @ W, sd.flip(X, 0) @ W,       # a matmul operand: one contiguous copy
        sd.flip(X @ W, 0),                          # over a materialized node
        sd.sum(sd.flip(sd.exp(X), 0), axis=0),      # read by a reduction
        sd.softmax(sd.flip(X, 1)),                  # read by a row kernel
        sd.flip(X).T, sd.flip(X, 0)[1:, ::-1],      # other views over it
        sd.flip(sd.flip(X, 0), 1),                  # a flip of a flip
    ]
    return exprs, [X, W]


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_flips_everywhere_equal_the_reference_evaluator(dtype):
    exprs, inputs = _flips(dtype)
    prog = sd.compile(exprs, inputs)
    rng = np.random.default_rng(3)
    for m in (4, 1, 7):  # a symbolic dimension: one specialization per size
        x, w = rng.standard_normal((m, 5)).astype(dtype), rng.standard_normal((5, 3)).astype(dtype)
        got = prog(x, w)
        want = sd.evaluate(exprs, dict(zip(inputs, (x, w))))
        for k, (g, v) in enumerate(zip(got, want)):
            assert g.shape == v.shape and g.dtype == v.dtype, f"output {k}"
            np.testing.assert_allclose(g, v, **TOL[dtype], err_msg=f"output {k}: {exprs[k]}")


def test_a_flip_fused_into_its_consumer_is_no_kernel_of_its_own():
    x = sd.tensor("x", (1000,), "float32")
    prog = sd.compile(sd.exp(sd.flip(x)) * 2.0 - x, [x], optimize=False)
    assert prog.stats["kernels"] == 1
    assert "(fused: flip, exp" in prog.explain()
    assert "in0[(999 - i0)]" in prog.source
    v = np.linspace(-3, 3, 1000, dtype=np.float32)
    np.testing.assert_allclose(prog(v), np.exp(v[::-1]) * 2 - v, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_a_training_step_through_flip(dtype):
    X, W, Y = sd.tensor("X", (6, 4), dtype), sd.tensor("W", (4, 3), dtype), sd.tensor("Y", (6, 3), dtype)
    loss = sd.mean((sd.flip(X, 0) @ sd.flip(W, 1) - Y) ** 2)
    (gW,) = sd.grad(loss, [W])
    step = sd.compile([loss, gW], [X, W, Y], updates={W: W - 0.1 * gW})
    rng = np.random.default_rng(5)
    x, w, y = (rng.standard_normal(s).astype(dtype) for s in [(6, 4), (4, 3), (6, 3)])
    want_loss, want_g = sd.evaluate([loss, gW], {X: x, W: w, Y: y})
    w_new = w - np.asarray(0.1, dtype) * want_g
    got_loss, got_g = step(x, w, y)
    np.testing.assert_allclose(got_loss, want_loss, **TOL[dtype])
    np.testing.assert_allclose(got_g, want_g, **TOL[dtype])
    np.testing.assert_allclose(w, w_new, **TOL[dtype])  # the update wrote into the caller's array


def test_generated_sources_read_the_reversed_index_and_are_deterministic():
    def sources():
        X = sd.tensor("X", (4, 3))
        s = [schedule([sd.tanh(sd.flip(X, 0)) + X], [X]) for _ in range(2)]
        return cpu_unit.generate(s[0]).source, cuda_unit.generate(s[1]).source

    cpu, cuda = sources()
    assert "in0[(3 - i0) * 3 + i1]" in cpu
    assert "in0[(3 - i0) * 3 + i1]" in cuda  # the same index arithmetic inside a CUDA thread
    assert sources() == (cpu, cuda)
