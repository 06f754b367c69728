"""sd.compile(backend="cuda"): generated CUDA programs.

On every machine with nvcc: each graph's program is generated and built (through the program
cache, which runs ``toolchain.compile_shared(source, "cuda", ...)``), sources are byte-identical
for the same graph, and calling a program without a device is a clear RuntimeError. Marked gpu
(skipped without a device): results equal the reference evaluator and updates are written back.
nvcc is slow, so each graph is one program (every registry op case in one per dtype).
"""

import re
from pathlib import Path

import numpy as np
import pytest
from symdiff.lowering import cuda_info
from symdiff.lowering.compiler import toolchain
from symdiff.lowering.programs.cuda import CudaProgram

import symdiff as sd
from symdiff.testing import cases

INFO = cuda_info()
needs_device = pytest.mark.skipif(INFO["device_count"] == 0, reason="no CUDA device")
TOL = {"float32": {"rtol": 2e-5, "atol": 2e-5}, "float64": {"rtol": 1e-11, "atol": 1e-12}}
# the training graphs are optimized (sums reassociated): a little looser
TRAIN_TOL = {"float32": {"rtol": 1e-4, "atol": 1e-5}, "float64": {"rtol": 1e-10, "atol": 1e-12}}


def _has_nvcc() -> bool:
    try:
        toolchain.nvcc()
        return True
    except toolchain.CompilerNotFound:
        return False


pytestmark = [pytest.mark.skipif(not _has_nvcc(), reason="nvcc not found"),
              pytest.mark.usefixtures("module_program_cache")]




# Each builder makes fresh leaves: (outputs, inputs, updates, {leaf: value}, dtype).


def assert_equals_the_evaluator(prog, arrays, tol, label=""):
    """Call ``prog`` on ``arrays`` (updated ones are written in place) and compare its outputs and
    updated arrays with the reference evaluator at the values from before the call."""
    old = {id(leaf): a.copy() for leaf, a in zip(prog.inputs, arrays)}
    got = prog(*arrays)
    want = sd.evaluate(prog.outputs + [v for _, v in prog.updates], {leaf: old[id(leaf)] for leaf in prog.inputs})
    for k, (g, w) in enumerate(zip(got, want)):
        assert g.shape == w.shape and g.dtype == w.dtype, f"{label}output {k}: {g.shape} {g.dtype}, {w.shape} {w.dtype}"
        np.testing.assert_allclose(g, w, **tol, err_msg=f"{label}output {k}")
    position = {id(leaf): k for k, leaf in enumerate(prog.inputs)}
    for (leaf, _), w in zip(prog.updates, want[len(prog.outputs):]):
        np.testing.assert_allclose(arrays[position[id(leaf)]], w, **tol, err_msg=f"{label}update of {leaf.name}")


def every_op(dtype):
    rng = np.random.default_rng(7)
    exprs, env = [], {}
    for k, case in enumerate(c for c in cases() if "cuda" in c.lowered):
        leaves = [sd.tensor(f"c{k}_a{i}", tuple(spec.values or spec.shape),
                            spec.dtype if spec.dtype not in ("float32", "float64") else dtype)
                  for i, spec in enumerate(case.inputs)]
        exprs.append(case.build(*leaves))
        env.update(zip(leaves, case.sample(rng, dtype)))
    return exprs, list(env), {}, env, dtype


def softmax_regression_sgd(dtype="float64"):
    X, W = sd.tensor("X", (64, 20), dtype), sd.tensor("W", (20, 7), dtype)
    y = sd.tensor("y", (64,), "int64")
    loss = sd.softmax_cross_entropy(X @ W, y)
    (gW,) = sd.grad(loss, [W])
    rng = np.random.default_rng(2)
    env = {X: rng.standard_normal((64, 20)).astype(dtype), W: rng.standard_normal((20, 7)).astype(dtype),
           y: rng.integers(0, 7, 64)}
    return [loss, gW], [X, W, y], {W: W - 0.1 * gW}, env, dtype


def mlp_step(dtype="float32"):
    X, y = sd.tensor("X", (128, 40), dtype), sd.tensor("y", (128,), "int64")
    W1, b1 = sd.tensor("W1", (40, 300), dtype), sd.tensor("b1", (300,), dtype)
    W2, b2 = sd.tensor("W2", (300, 10), dtype), sd.tensor("b2", (10,), dtype)
    params = [W1, b1, W2, b2]
    loss = sd.softmax_cross_entropy(sd.relu(X @ W1 + b1) @ W2 + b2, y)
    grads = sd.grad(loss, params)
    rng = np.random.default_rng(3)
    env = {X: rng.standard_normal((128, 40)).astype(dtype), y: rng.integers(0, 10, 128)}
    env.update({p: (0.2 * rng.standard_normal(p.shape)).astype(dtype) for p in params})
    return [loss], [X, y, *params], {p: p - 0.05 * g for p, g in zip(params, grads)}, env, dtype


GRAPHS = {"every_op_float64": lambda: every_op("float64"), "every_op_float32": lambda: every_op("float32"),
          "softmax_regression_sgd": softmax_regression_sgd, "mlp_step": mlp_step}


_BUILT: dict = {}


def _built(name):
    """(graph name, program built for its shapes, {leaf: value}, dtype); nvcc runs once per graph."""
    if name not in _BUILT:
        outputs, inputs, updates, env, dtype = GRAPHS[name]()
        optimize = not name.startswith("every_op")  # as tests/lowering: each op as declared
        prog = CudaProgram(outputs, inputs, updates, optimize=optimize)
        prog._current()  # specialize: translate, compile with nvcc, load
        _BUILT[name] = (name, prog, env, dtype)
    return _BUILT[name]


@pytest.fixture(scope="module", params=sorted(GRAPHS))
def built(request):
    return _built(request.param)


def test_generated_programs_compile_with_nvcc(built):
    _, prog, _, _ = built
    (spec,) = prog._specs.values()
    assert spec.build_info["cache"] in ("miss", "memory")  # built in this session's private cache
    assert Path(spec.build_info["path"]).is_file()
    source = prog.source
    assert "symdiff_program_abi" in source and '"symdiff-abi-1"' in source
    for kernel in prog._unit().kernels:
        assert re.fullmatch(r"k_[0-9a-f]{8}_\w+", kernel.name), kernel.name
        # a CUDA kernel of that name, unless the library's GEMM does the work
        assert f"{kernel.name}_kernel(" in source or kernel.kind == "gemm", kernel.name
    for fn in re.findall(r"__global__ void (?:__launch_bounds__\(\d+\) )?(\w+)\(", source):
        assert fn.endswith("_kernel") and fn.startswith("k_"), fn


@pytest.mark.parametrize("graph", sorted(GRAPHS))
def test_sources_are_deterministic(graph):
    def source():
        outputs, inputs, updates, _, _ = GRAPHS[graph]()
        return CudaProgram(outputs, inputs, updates, optimize=not graph.startswith("every_op")).translate({}).source

    first = source()
    assert source() == first
    assert "__global__" in first


def test_user_names_are_only_in_comments():
    def source(name):
        X = sd.tensor(name, (8, 4))
        return CudaProgram([sd.softmax(sd.tanh(X @ X.T)).sum()], [X]).translate({}).source

    def code(text):  # what nvcc reads as code
        return [line for line in text.splitlines() if not line.lstrip().startswith("//")]

    first = source("X")
    assert "// t0[8,8] = X·Xᵀ" in [line.strip() for line in first.splitlines()]  # each kernel's, in your names
    for name in ("in0", "t0", "error", "buffers", "symdiff_pool", "out0"):
        text = source(name)
        assert code(text) == code(first)
        changed = [line for line in text.splitlines() if line not in first.splitlines()]
        assert changed and all(name in line for line in changed), changed


@pytest.mark.skipif(INFO["device_count"] > 0 or not INFO["built"],
                    reason="needs a machine without a CUDA device (and a module that can tell)")
def test_calling_without_a_device_is_a_clear_error():
    _, prog, env, _ = _built("softmax_regression_sgd")
    arrays = [env[leaf] for leaf in prog.inputs]
    w_before = arrays[1].copy()
    with pytest.raises(RuntimeError, match="no CUDA device"):
        prog(*arrays)
    np.testing.assert_array_equal(arrays[1], w_before)  # nothing was written back


def test_the_cuda_backend_is_registered():
    x = sd.tensor("x", (4,))
    assert isinstance(sd.compile(sd.exp(x), [x], backend="cuda"), CudaProgram)


# -- on a device ---------------------------------------------------------------------------------


@pytest.mark.gpu
@needs_device
def test_results_equal_the_reference_evaluator(built):
    name, prog, env, dtype = built
    arrays = [env[leaf].copy() for leaf in prog.inputs]
    old = {id(leaf): a.copy() for leaf, a in zip(prog.inputs, arrays)}
    got = prog(*arrays)
    ref_env = {leaf: old[id(leaf)] for leaf in prog.inputs}
    want = sd.evaluate(prog.outputs + [v for _, v in prog.updates], ref_env)
    tol = (TOL if name.startswith("every_op") else TRAIN_TOL)[dtype]
    for k, (g, w) in enumerate(zip(got, want)):
        assert g.shape == w.shape and g.dtype == w.dtype, f"output {k}"
        np.testing.assert_allclose(g, w, **tol, err_msg=f"{name}: output {k}")
    position = {id(leaf): k for k, leaf in enumerate(prog.inputs)}
    for (leaf, _), w in zip(prog.updates, want[len(prog.outputs):]):  # written into the caller's arrays
        np.testing.assert_allclose(arrays[position[id(leaf)]], w, **tol, err_msg=f"update of {leaf.name}")
    again = prog(*[old[id(leaf)].copy() for leaf in prog.inputs])
    for g, h in zip(got, again):  # the device buffers are reused; the reductions' order is fixed
        np.testing.assert_array_equal(g, h)


@pytest.mark.gpu
@needs_device
def test_out_of_range_labels_are_an_error_on_the_device():
    _, prog, env, _ = _built("softmax_regression_sgd")
    arrays = [env[leaf].copy() for leaf in prog.inputs]
    arrays[2][[5, 9]] = [99, -3]
    with pytest.raises(RuntimeError, match="label 99 at flat position 5 is out of range"):
        prog(*arrays)
