"""sd.pad and sd.dilate lowered: a guarded read (the input at the mapped index, else the fill
value) computed inside whichever loop reads them, on the cpu backend (checked against the numpy
backend) and in the generated CUDA source. No kernel and no buffer of their own, except the
contiguous copy a matmul operand or an output needs anyway."""

import numpy as np
import pytest
from symdiff.lowering.plan.schedule import schedule
from symdiff.lowering.render import cpu_unit, cuda_unit

import symdiff as sd

pytestmark = pytest.mark.usefixtures("module_program_cache")  # tests/conftest.py
TOL = {"float32": {"rtol": 2e-5, "atol": 2e-5}, "float64": {"rtol": 1e-12, "atol": 1e-12}}


def _graphs(dtype):
    X, W = sd.tensor("X", ("m", 5), dtype), sd.tensor("W", (7, 3), dtype)
    exprs = [
        sd.pad(X, ((1, 2), (0, 1)), value=0.5),                   # an output: copied out through the guard
        sd.exp(sd.pad(X, 1)) * 2.0,                                # fused into an elementwise loop
        sd.pad(X, ((0, 0), (1, 1))) @ W,                           # a matmul operand: one contiguous copy
        sd.sum(sd.dilate(sd.tanh(X), 1, 0), axis=0),               # read by a reduction
        sd.softmax(sd.pad(X, ((0, 0), (2, 0)), value=-1.0)),       # read by a row kernel
        sd.pad(sd.dilate(sd.flip(X, 1), 2, (0, 1)), 1),            # a pad of a dilate of a view
        sd.dilate(X, 1, 1)[:, ::2] - X,                            # undilated again: X - X
        sd.pad(X @ W[:5], ((1, 0), (0, 2))).T,                     # over a materialized node, then a view
        sd.dilate(sd.pad(X, ((0, 1), (0, 0))), 3, 0),              # a dilate of a pad
    ]
    return exprs, [X, W]


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_pads_and_dilates_everywhere_equal_the_numpy_backend(dtype):
    exprs, inputs = _graphs(dtype)
    prog = sd.compile(exprs, inputs)
    reference = sd.compile(exprs, inputs, backend="numpy")
    rng = np.random.default_rng(3)
    for m in (4, 1, 7):
        x, w = rng.standard_normal((m, 5)).astype(dtype), rng.standard_normal((7, 3)).astype(dtype)
        got, want = prog(x, w), reference(x, w)
        for k, (g, v) in enumerate(zip(got, want)):
            assert g.shape == v.shape and g.dtype == v.dtype, f"m={m} output {k}"
            np.testing.assert_allclose(g, v, **TOL[dtype], err_msg=f"m={m} output {k}: {exprs[k]}")


def test_a_run_time_batch_builds_one_library():
    X = sd.tensor("X", ("m", 5))
    y = sd.pad(sd.dilate(X, 1, (0, 1)), ((1, 1), (2, 0)), value=3.0) * 2.0
    prog = sd.compile(y, [X])
    rng = np.random.default_rng(0)
    for m in (1, 3, 8, 2):
        x = rng.standard_normal((m, 5))
        want = np.pad(sd.evaluate(sd.dilate(X, 1, (0, 1)), {X: x}), ((1, 1), (2, 0)), constant_values=3.0) * 2.0
        np.testing.assert_array_equal(prog(x), want)
    assert prog.libraries == 1


def test_a_pad_fused_into_its_consumer_is_no_kernel_of_its_own():
    x = sd.tensor("x", (1000,), "float32")
    prog = sd.compile(sd.exp(sd.pad(x, (3, 2), value=1.0)) * 2.0, [x], optimize=False)
    assert prog.stats["kernels"] == 1
    assert "(fused: pad, exp" in prog.explain()
    assert "if ((i0 >= 3) && ((i0 - 3) < 1000)) {" in prog.source  # the read is inside the guard
    v = np.linspace(-3, 3, 1000, dtype=np.float32)
    np.testing.assert_allclose(prog(v), np.exp(np.pad(v, (3, 2), constant_values=1.0)) * 2, rtol=1e-5)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_a_training_step_through_pad_and_dilate(dtype):
    # a strided "convolution" written as dilate -> pad -> matmul, with its gradient program
    X, W, Y = sd.tensor("X", (3, 4), dtype), sd.tensor("W", (10, 2), dtype), sd.tensor("Y", (6, 2), dtype)
    Z = sd.pad(sd.dilate(X, 1, 0), ((0, 0), (3, 3)))  # (6, 10)
    loss = sd.mean((sd.tanh(Z @ W) - Y) ** 2)
    gX, gW = sd.grad(loss, [X, W])
    step = sd.compile([loss, gX, gW], [X, W, Y], updates={W: W - 0.1 * gW})
    rng = np.random.default_rng(5)
    x, w, y = (rng.standard_normal(s).astype(dtype) for s in [(3, 4), (10, 2), (6, 2)])
    want = sd.evaluate([loss, gX, gW], {X: x, W: w, Y: y})
    w_new = w - np.asarray(0.1, dtype) * want[2]
    for g, v in zip(step(x, w, y), want):
        np.testing.assert_allclose(g, v, **TOL[dtype])
    np.testing.assert_allclose(w, w_new, **TOL[dtype])


def test_int_and_bool_pads():
    i, b = sd.tensor("i", (4,), "int64"), sd.tensor("b", (2, 2), "bool")
    prog = sd.compile([sd.pad(i, (1, 2), value=-9) * 2, sd.dilate(b, 1, 1)], [i, b])
    got_i, got_b = prog(np.array([1, 2, 3, 4]), np.array([[True, False], [True, True]]))
    assert got_i.tolist() == [-18, 2, 4, 6, 8, -18, -18]
    assert got_b.tolist() == [[True, False, False, False], [True, False, True, False]]


def test_generated_sources_guard_the_read_and_are_deterministic():
    def sources():
        X = sd.tensor("X", (4, 3))
        y = sd.tanh(sd.pad(X, ((1, 0), (0, 2)), value=0.5)) + sd.dilate(sd.pad(X, ((0, 1), (0, 0))), 1, 1)[:, :5]
        s = [schedule([y], [X]) for _ in range(2)]
        return cpu_unit.generate(s[0]).source, cuda_unit.generate(s[1]).source

    cpu, cuda = sources()
    for source in (cpu, cuda):  # the same statements inside a CUDA thread
        assert "double v0 = 0.5;" in source  # the fill value, unless the guard holds
        assert "if ((i0 >= 1) && (i1 < 3)) {" in source and "in0[(i0 - 1) * 3 + i1]" in source  # i -> i - before
        assert "if (((0 + i1) % 2 == 0)) {" in source and "((0 + i1) / 2)" in source  # i -> i / (dilation + 1)
    assert sources() == (cpu, cuda)
