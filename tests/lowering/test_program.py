"""sd.compile(backend="cpu"): every op lowered and compared with the reference evaluator."""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from symdiff.lowering.compiler import cache
from symdiff.lowering.plan.schedule import LoweringError, schedule
from symdiff.lowering.render import cpu_unit, cuda_unit

import symdiff as sd
from symdiff.evaluate import bind_dims
from symdiff.testing import cases, random_graphs

TOL = {"float32": dict(rtol=2e-5, atol=2e-5), "float64": dict(rtol=1e-11, atol=1e-12)}


pytestmark = pytest.mark.usefixtures("module_program_cache")  # tests/conftest.py


def _concrete_case(case, k, dtype, rng):
    """The case's expression on fresh leaves with concrete shapes (one program holds many cases)."""
    leaves = []
    for i, spec in enumerate(case.inputs):
        d = spec.dtype if spec.dtype not in ("float32", "float64") else dtype
        leaves.append(sd.tensor(f"c{k}_a{i}", tuple(spec.values or spec.shape), d))
    values = case.sample(rng, dtype)
    return case.build(*leaves), dict(zip(leaves, values))


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_every_op_case_matches_the_reference_evaluator(dtype):
    rng = np.random.default_rng(7)
    all_cases = [c for c in cases() if "cpu" in c.lowered]
    exprs, env = [], {}
    for k, case in enumerate(all_cases):
        expr, values = _concrete_case(case, k, dtype, rng)
        exprs.append(expr)
        env.update(values)
    inputs = list(env)
    program = sd.compile(exprs, inputs, optimize=False)
    got = program(*[env[leaf] for leaf in inputs])
    want = sd.evaluate(exprs, env)
    ops_seen = {c.op for c in all_cases}
    assert {"matmul", "softmax_cross_entropy", "scatter_add", "take", "concatenate"} <= ops_seen
    for case, g, w in zip(all_cases, got, want):
        assert g.shape == w.shape and g.dtype == w.dtype, f"{case}: {g.shape} {g.dtype} vs {w.shape} {w.dtype}"
        np.testing.assert_allclose(g, w, **TOL[dtype], err_msg=str(case))


def test_symbolic_dims_specialize_per_shape():
    X = sd.tensor("X", ("m", "n"))
    prog = sd.compile([sd.softmax(X) @ X.T], [X])
    for shape in [(3, 4), (1, 1), (17, 33)]:
        x = np.random.default_rng(0).standard_normal(shape)
        np.testing.assert_allclose(prog(x)[0], sd.evaluate(sd.softmax(X) @ X.T, {X: x}), rtol=1e-12)
    assert len(prog._specs) == 3


@pytest.mark.parametrize("m,k,n", [(1, 1, 1), (7, 3, 5), (33, 17, 65), (127, 64, 3)])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_matmul_transposes_fold_into_gemm(m, k, n, dtype):
    A, B = sd.tensor("A", (k, m), dtype), sd.tensor("B", (n, k), dtype)
    C = sd.tensor("C", (m, n), dtype)
    exprs = [A.T @ B.T, sd.tanh(A.T @ B.T + C), (A.T @ B.T).T]
    prog = sd.compile(exprs, [A, B, C], optimize=False)
    rng = np.random.default_rng(1)
    a, b, c = (rng.standard_normal(s).astype(dtype) for s in [(k, m), (n, k), (m, n)])
    for got, want in zip(prog(a, b, c), sd.evaluate(exprs, {A: a, B: b, C: c})):
        np.testing.assert_allclose(got, want, rtol=1e-4 if dtype == "float32" else 1e-12, atol=1e-5)
    assert "symdiff::cpu::gemm<" in prog.source
    assert "copy" not in prog.explain().split(":")[0]  # no materialized transposes


def test_elementwise_chain_is_one_kernel():
    x = sd.tensor("x", (1000,), "float32")
    prog = sd.compile(sd.sigmoid(sd.exp(x) * 2.0 + 1.0) - x, [x], optimize=False)
    assert prog.stats["kernels"] == 1
    v = np.linspace(-3, 3, 1000, dtype=np.float32)
    np.testing.assert_allclose(prog(v), 1 / (1 + np.exp(-(np.exp(v) * 2 + 1))) - v, rtol=1e-6)


def test_softmax_regression_gradient_program():
    X, W = sd.tensor("X", ("m", 5)), sd.tensor("W", (5, 3))
    y = sd.tensor("y", ("m",), "int64")
    loss = sd.softmax_cross_entropy(X @ W, y)
    (gW,) = sd.grad(loss, [W])
    prog = sd.compile([loss, gW], [X, W, y])
    rng = np.random.default_rng(2)
    x, w, labels = rng.standard_normal((8, 5)), rng.standard_normal((5, 3)), rng.integers(0, 3, 8)
    got = prog(x, w, labels)
    want = sd.evaluate([loss, gW], {X: x, W: w, y: labels})
    for g, v in zip(got, want):
        np.testing.assert_allclose(g, v, rtol=1e-12, atol=1e-14)


def test_updates_write_into_the_callers_arrays():
    W, g = sd.tensor("W", (4, 3), "float32"), sd.tensor("g", (4, 3), "float32")
    prog = sd.compile([sd.sum(W * W)], [W, g], updates={W: W - 0.1 * g})
    w = np.ones((4, 3), np.float32)
    same = w
    out = prog(w, np.full((4, 3), 2.0, np.float32))
    assert float(out[0]) == 12.0  # outputs see the old W
    assert same is w and np.allclose(w, 0.8)
    with pytest.raises(TypeError, match="updated in place"):
        prog(np.ones((4, 3)), np.ones((4, 3), np.float32))  # float64 array for a float32 W
    with pytest.raises(TypeError, match="updated in place"):
        prog(np.ones((3, 4), np.float32).T, np.ones((4, 3), np.float32))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_sgd_on_a_matmul_gradient_accumulates_into_the_weights(dtype):
    X, W, G = sd.tensor("X", (9, 5), dtype), sd.tensor("W", (5, 3), dtype), sd.tensor("G", (9, 3), dtype)
    # the output reads W too: it must see the old value whatever the kernel order
    prog = sd.compile([X @ W], [X, W, G], updates={W: W - 0.25 * (X.T @ G)})
    # folded into one GEMM, writing W's buffer (in1); explain() names what it reads as you do
    explained = prog.explain()
    assert "in1[5,3] = 1·W + -0.25·Xᵀ·G" in explained and "inputs: in0 = X, in1 = W, in2 = G" in explained
    rng = np.random.default_rng(5)
    x, w, g = (rng.standard_normal(s).astype(dtype) for s in [(9, 5), (5, 3), (9, 3)])
    w_old = w.copy()
    (out,) = prog(x, w, g)
    tol = dict(rtol=1e-5, atol=1e-5) if dtype == "float32" else dict(rtol=1e-12)
    np.testing.assert_allclose(out, x @ w_old, **tol)
    np.testing.assert_allclose(w, w_old - 0.25 * x.T @ g, **tol)


def test_an_update_that_reads_transposed_weights_is_not_done_in_place():
    W = sd.tensor("W", (4, 4))
    prog = sd.compile([], [W], updates={W: W - 0.5 * W.T})
    w = np.arange(16.0).reshape(4, 4)
    expected = w - 0.5 * w.T
    prog(w)
    np.testing.assert_array_equal(w, expected)


def test_bad_calls_fail_before_native_code():
    X = sd.tensor("X", ("m", 3))
    prog = sd.compile([X.sum()], [X])
    with pytest.raises(TypeError, match="takes 1 arrays"):
        prog()
    with pytest.raises(sd.ShapeError, match="X expects shape"):
        prog(np.ones((2, 4)))
    with pytest.raises(TypeError, match="cannot be cast"):
        prog(np.ones((2, 3), np.complex128))


def test_bad_programs_are_rejected_at_compile_time():
    X, Y = sd.tensor("X", (2, 3)), sd.tensor("Y", (2, 3))
    with pytest.raises(ValueError, match="not one of the inputs"):
        sd.compile([X.sum()], [X], updates={Y: Y + 1})
    with pytest.raises(sd.ShapeError, match="update of X"):
        sd.compile([X.sum()], [X], updates={X: X.sum(axis=0)})
    with pytest.raises(LoweringError, match="not among the inputs"):
        sd.compile([(X + Y).sum()], [X])([[1, 2, 3], [4, 5, 6]])


def test_out_of_range_labels_are_an_error_not_garbage():
    Z, y = sd.tensor("Z", (3, 4)), sd.tensor("y", (3,), "int64")
    prog = sd.compile(sd.softmax_cross_entropy(Z, y), [Z, y])
    with pytest.raises(RuntimeError, match="label 9 .* out of range"):
        prog(np.zeros((3, 4)), np.array([0, 9, 1]))


def _code(source):
    """The source without its comment lines: what the compiler reads as code."""
    return [line for line in source.splitlines() if not line.lstrip().startswith("//")]


def test_generated_source_is_deterministic_and_user_names_are_only_in_comments():
    def build(name):
        X = sd.tensor(name, (8, 4))
        return sd.compile([sd.tanh(X @ X.T).sum()], [X]).source

    first, second = build("X"), build("X")
    assert first == second
    assert "// t0[8,8] = X·Xᵀ" in first.splitlines()  # each kernel's formula, in your names
    # names that would collide with generated names or C++ keywords are never code: only the
    # comments (what each kernel computes) change, and a name like a buffer's is quoted there
    for name in ("in0", "t0", "error", "buffers", "int", "system", "out0"):
        source = build(name)
        assert _code(source) == _code(first)
        changed = [line for line in source.splitlines() if line not in first.splitlines()]
        shown = f"'{name}'" if name in ("in0", "t0", "out0") else name
        assert changed and all(shown in line for line in changed), changed
    with pytest.raises(ValueError, match="not a valid identifier"):
        sd.tensor('x"); system("rm -rf /"); //', (8, 4))


def test_a_graph_compiled_before_skips_rewriting_and_rendering():
    X = sd.tensor("X", ("m", 4))
    expr = sd.softmax(sd.tanh(X) * 1.5)
    sd.compile(expr, [X])(np.ones((3, 4)))
    cache.forget_loaded()
    prog = sd.compile(expr, [X])
    out = prog(np.ones((3, 4)))
    spec = prog._last
    assert spec.unit is None and spec.build_info.get("graph_cache") and not prog._optimized
    np.testing.assert_allclose(out, np.full((3, 4), 0.25))
    assert "k_" in prog.source  # rendered on demand, and it is the program that was loaded
    from symdiff.lowering.compiler.cache import cache_key

    assert cache_key(prog.source) == spec.build_info["key"]


def test_cache_hit_skips_the_compiler():
    x = sd.tensor("x", (5,))
    prog = sd.compile(sd.exp(x) + 123.25, [x])
    prog(np.zeros(5))
    cache.forget_loaded()
    again = sd.compile(sd.exp(x) + 123.25, [x])
    again(np.zeros(5))
    assert again.stats["cache"] == "disk"


def test_corrupted_cache_entry_is_rebuilt(tmp_path, monkeypatch):
    monkeypatch.setenv("SYMDIFF_CACHE_DIR", str(tmp_path))
    cache.forget_loaded()
    x = sd.tensor("x", (3,))
    sd.compile(x * 3.5, [x])(np.ones(3))
    cache.forget_loaded()
    (lib,) = tmp_path.glob("*.so")
    # replace the file (a new inode) rather than truncating it in place: this process may still
    # have the library mapped, and shrinking a mapped file under it is a SIGBUS, not a cache bug
    damaged = tmp_path / "damaged"
    damaged.write_bytes(lib.read_bytes()[:100])
    damaged.replace(lib)
    with pytest.warns(RuntimeWarning, match="damaged"):
        prog = sd.compile(x * 3.5, [x])
        np.testing.assert_array_equal(prog(np.ones(3)), [3.5, 3.5, 3.5])
    (manifest,) = [p for p in tmp_path.glob("*.json") if not p.name.startswith("graph-")]
    manifest.write_text("{not json")
    cache.forget_loaded()
    with pytest.warns(RuntimeWarning, match="manifest is unreadable"):
        np.testing.assert_array_equal(sd.compile(x * 3.5, [x])(np.ones(3)), [3.5, 3.5, 3.5])
    cache.forget_loaded()


def _compile_in_child(cache_dir):
    import os

    os.environ["SYMDIFF_CACHE_DIR"] = cache_dir
    import numpy as np

    import symdiff as sd

    x = sd.tensor("x", (64,))
    prog = sd.compile(sd.sin(x) * 7.75, [x])
    value = prog(np.ones(64))
    return prog.stats["cache"], float(value[0])


def test_two_processes_compile_one_program_once(tmp_path):
    import multiprocessing

    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(2) as pool:
        results = pool.map(_compile_in_child, [str(tmp_path)] * 2)
    assert sorted(r[0] for r in results) == ["disk", "miss"]
    assert all(abs(r[1] - np.sin(1) * 7.75) < 1e-12 for r in results)
    assert len(list(tmp_path.glob("*.so"))) == 1


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(random_graphs())
def test_random_graphs_and_their_gradients_lower_correctly(graph):
    f, leaves = graph
    grads = sd.grad(f, leaves)
    rng = np.random.default_rng(3)
    env = {leaf: rng.uniform(-1, 1, leaf.shape) for leaf in leaves}
    prog = sd.compile([f, *grads], leaves)
    for got, want in zip(prog(*[env[leaf] for leaf in leaves]), sd.evaluate([f, *grads], env)):
        np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-10)


def test_numpy_backend_agrees():
    X = sd.tensor("X", ("m", 3))
    exprs = [sd.logsumexp(X, axis=1), sd.softmax(X)]
    x = np.random.default_rng(4).standard_normal((5, 3))
    for a, b in zip(sd.compile(exprs, [X])(x), sd.compile(exprs, [X], backend="numpy")(x)):
        np.testing.assert_allclose(a, b, rtol=1e-12)


def test_extreme_values_stay_finite():
    Z = sd.tensor("Z", (2, 3), "float32")
    prog = sd.compile([sd.softmax(Z), sd.log_softmax(Z), sd.logsumexp(Z, axis=1)], [Z])
    z = np.array([[1e4, -1e4, 0], [-1e4, -1e4, -1e4]], np.float32)
    for got in prog(z):
        assert np.isfinite(got).all()


def test_bind_dims_is_reused():
    # the fast path (a known shape signature) must still reject a wrong dtype
    X = sd.tensor("X", (2,), "float32")
    prog = sd.compile(X * 2.0, [X])
    prog(np.ones(2, np.float32))
    np.testing.assert_array_equal(prog(np.ones(2, np.float64)), [2.0, 2.0])  # safe cast, slow path
    assert bind_dims([X], {id(X): np.ones(2)}) == {}


def test_graph_cache_entries_depend_on_the_code_generator(monkeypatch):
    from symdiff.lowering.compiler import fingerprint

    a = sd.tensor("a", (3,))
    before = fingerprint.graph_fingerprint([sd.exp(a)], [a], [])
    monkeypatch.setattr(fingerprint, "_CODEGEN_DIGEST", "another code generator")
    assert fingerprint.graph_fingerprint([sd.exp(a)], [a], []) != before


def test_relu_and_exp_loops_are_vector_code():
    x = sd.tensor("x", (4096,), "float32")
    source = sd.compile([sd.relu(x), sd.exp(x)], [x], optimize=False).source
    assert "fmax" not in source and "expf(" not in source  # selects and symdiff_exp vectorize; libm calls do not
    v = np.linspace(-100, 100, 4096, dtype=np.float32)
    v[7] = np.nan
    relu, exp = sd.compile([sd.relu(x), sd.exp(x)], [x], optimize=False)(v)
    assert np.isnan(relu[7]) and np.isnan(exp[7])  # NaN propagates like numpy
    np.testing.assert_allclose(exp[np.arange(4096) != 7], np.exp(v[np.arange(4096) != 7]), rtol=2e-7,
                               atol=1e-44)  # subnormal results: a unit in the last place


def test_numpy_backend_updates_any_input_position():
    a, W, b = sd.tensor("a", (2,)), sd.tensor("W", (2,)), sd.tensor("b", (2,))
    prog = sd.compile([sd.sum(a)], [a, W, b], updates={W: W + b, b: b * 2.0}, backend="numpy")
    w, bb = np.ones(2), np.full(2, 3.0)
    prog(np.zeros(2), w, bb)
    np.testing.assert_array_equal(w, [4.0, 4.0])
    np.testing.assert_array_equal(bb, [6.0, 6.0])


def test_momentum_step_accumulates_into_the_velocity_in_place():
    X, G = sd.tensor("X", (6, 4)), sd.tensor("G", (6, 3))
    W, v = sd.tensor("W", (4, 3)), sd.tensor("v", (4, 3))
    v_new = 0.9 * v + X.T @ G
    prog = sd.compile([sd.sum(W)], [X, G, W, v], updates={v: v_new, W: W - 0.05 * v_new})
    text = prog.explain() if prog._last else ""
    rng = np.random.default_rng(8)
    x, g, w, vel = (rng.standard_normal(s) for s in [(6, 4), (6, 3), (4, 3), (4, 3)])
    w0, v0 = w.copy(), vel.copy()
    (total,) = prog(x, g, w, vel)
    assert "in3[4,3] = 0.9·v + 1·Xᵀ·G" in prog.explain() and "update:" not in prog.explain(), text
    np.testing.assert_allclose(total, w0.sum(), rtol=1e-12)
    np.testing.assert_allclose(vel, 0.9 * v0 + x.T @ g, rtol=1e-12)
    np.testing.assert_allclose(w, w0 - 0.05 * (0.9 * v0 + x.T @ g), rtol=1e-12)


def test_an_elementwise_kernel_writes_over_a_temporary_that_dies_there():
    # X@W1 is a GEMM temporary; relu(.) * 2 reads it only at the element it writes and is its last
    # reader, so its output takes the same bytes: the arena holds one 64x32 buffer, not two.
    X, W1, W2 = sd.tensor("X", (64, 16)), sd.tensor("W1", (16, 32)), sd.tensor("W2", (32, 8))
    out = (sd.relu(X @ W1) * 2.0) @ W2
    prog = sd.compile([out], [X, W1, W2], optimize=False)
    rng = np.random.default_rng(11)
    x, w1, w2 = rng.standard_normal((64, 16)), rng.standard_normal((16, 32)), rng.standard_normal((32, 8))
    (got,) = prog(x, w1, w2)
    np.testing.assert_allclose(got, (np.maximum(x @ w1, 0) * 2.0) @ w2, rtol=1e-12, atol=1e-12)
    memory = prog._unit().memory
    assert len(memory.inplace) == 1, prog.explain()
    assert memory.arena_bytes == 64 * 32 * 8 < memory.temp_bytes
    # the two aliased pointers lose __restrict; every other kernel keeps it on all of its pointers
    signatures = [line for line in prog.source.splitlines() if line.startswith("static int k_")]
    donor = memory.inplace[1]
    assert f"double* t1, const double* {donor})" in signatures[1]
    assert all(s.count("__restrict") == 3 for s in (signatures[0], signatures[2]))


def test_a_temporary_read_at_other_elements_is_never_overwritten():
    # t = X@W (square) read transposed by the same loop: writing in place would corrupt t before
    # its other elements are read, so the plan must not alias them.
    X, W = sd.tensor("X", (24, 24)), sd.tensor("W", (24, 24))
    t = X @ W
    out = (t + t.T) @ W
    prog = sd.compile([out], [X, W], optimize=False)
    rng = np.random.default_rng(12)
    x, w = rng.standard_normal((24, 24)), rng.standard_normal((24, 24))
    (got,) = prog(x, w)
    np.testing.assert_allclose(got, ((x @ w) + (x @ w).T) @ w, rtol=1e-12, atol=1e-12)
    assert prog._unit().memory.inplace == {}


GEMM_CALL = '#include "symdiff/cpu/gemm_call.hpp"\n'


def _calls_the_module_gemm(source):
    """A program calls the module's GEMM (compiled once, CPU dispatch at run time), not its own."""
    return GEMM_CALL in source and "gemm.hpp" not in source and "SYMDIFF_GEMM_NARROW_WIDTHS" not in source


def test_programs_built_for_different_gemm_widths_run_side_by_side():
    # Programs once compiled their own narrow GEMM kernels, and a kernel table shared between the
    # loaded programs crashed the second one; now they all call the module's GEMM through the
    # services table each gets at load time: programs of every width, loaded together, agree.
    rng = np.random.default_rng(13)
    results = []
    for n in (16, 3, 10, 3):
        X, W = sd.tensor(f"X{n}", (40, 7)), sd.tensor(f"W{n}", (7, n))
        prog = sd.compile([X @ W, X.T @ (X @ W)], [X, W])
        x, w = rng.standard_normal((40, 7)), rng.standard_normal((7, n))
        prog(x, w)  # specialize, so that the source can be read
        assert _calls_the_module_gemm(prog.source)
        results.append((prog, x, w))
    for prog, x, w in results + results[::-1]:
        xw, back = prog(x, w)
        np.testing.assert_allclose(xw, x @ w, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(back, x.T @ (x @ w), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("dtype,n,widths", [("float32", 100, "4"), ("float64", 100, "4"), ("float32", 30, "0"),
                                             ("float64", 17, "1"), ("float64", 10, "10")])
def test_program_compiles_the_narrow_kernels_for_a_column_remainder(dtype, n, widths):
    # gemm() computes the last n % lanes columns of a wider product with the narrow kernels when
    # that remainder is at most half a vector (``widths``: the narrow kernels this product uses);
    # the module's GEMM has them all
    X, W = sd.tensor("X", (40, 7), dtype=dtype), sd.tensor("W", (7, n), dtype=dtype)
    prog = sd.compile([X @ W, X.T @ (X @ W)], [X, W])
    rng = np.random.default_rng(n)
    x, w = rng.standard_normal((40, 7)).astype(dtype), rng.standard_normal((7, n)).astype(dtype)
    xw, back = prog(x, w)
    assert _calls_the_module_gemm(prog.source), widths
    tol = 1e-4 if dtype == "float32" else 1e-12
    np.testing.assert_allclose(xw, x.astype(np.float64) @ w, rtol=tol, atol=tol)
    np.testing.assert_allclose(back, x.T.astype(np.float64) @ (x @ w.astype(np.float64)), rtol=tol, atol=tol * 10)


@pytest.mark.parametrize("rows,few", [(1, 1), (3, 1), (9, 1), (8, 0), (64, 0)])
def test_program_compiles_the_few_row_kernels_only_when_a_product_needs_them(rows, few):
    # products with m <= 4 stream B (gemm_rows.hpp) and m % 8 == 1 ends on a one-row tile (``few``);
    # a product against a transposed B with m <= 12 rows takes the narrow kernels of width m: the
    # module's GEMM has every one of those paths, chosen when it runs
    X = sd.tensor("X", (rows, 20), "float32")
    W, V = sd.tensor("W", (20, 100), "float32"), sd.tensor("V", (30, 20), "float32")
    prog = sd.compile([X @ W, X @ V.T], [X, W, V])
    rng = np.random.default_rng(rows)
    x, w, v = (rng.standard_normal(s).astype(np.float32) for s in ((rows, 20), (20, 100), (30, 20)))
    xw, xv = prog(x, w, v)
    assert _calls_the_module_gemm(prog.source), few
    np.testing.assert_allclose(xw, x.astype(np.float64) @ w, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(xv, x.astype(np.float64) @ v.T, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_short_rows_softmax_family_every_width(dtype):
    # rows of up to 32 values go through blocks of 64 rows with one vector exp loop per block
    # (GCC 12 once miscompiled a version of it for 8 rows of 3): widths around the vector sizes,
    # block edges, and ±1e4 values, against numpy; one program holds every case
    rng = np.random.default_rng(17)
    exprs, args, cases = [], [], []
    for n in (1, 2, 3, 5, 7, 8, 10, 15, 16, 17, 31, 32, 33):
        for rows in (3, 8, 65, 130):
            Z, y = sd.tensor(f"Z{n}_{rows}", (rows, n), dtype), sd.tensor(f"y{n}_{rows}", (rows,), "int64")
            exprs += [sd.softmax(Z), sd.log_softmax(Z), sd.softmax_cross_entropy(Z, y)]
            z = (rng.standard_normal((rows, n)) * 3).astype(dtype)
            if rows >= 8 and n >= 2:
                z[5, 0], z[6, 1] = 1e4, -1e4
            labels = rng.integers(0, n, rows)
            args += [(Z, z), (y, labels)]
            cases.append((n, rows, z, labels))
    prog = sd.compile(exprs, [leaf for leaf, _ in args], optimize=False)
    outs = prog(*[value for _, value in args])
    for k, (n, rows, z, labels) in enumerate(cases):
        soft, logsoft, ce = outs[3 * k: 3 * k + 3]
        z64 = z.astype(np.float64)
        lse = z64.max(1, keepdims=True) + np.log(np.exp(z64 - z64.max(1, keepdims=True)).sum(1, keepdims=True))
        np.testing.assert_allclose(soft, np.exp(z64 - lse), **TOL[dtype], err_msg=f"softmax n={n} rows={rows}")
        np.testing.assert_allclose(logsoft, z64 - lse, **TOL[dtype], err_msg=f"log_softmax n={n} rows={rows}")
        want = np.mean(lse[:, 0] - z64[np.arange(rows), labels])
        np.testing.assert_allclose(ce, want, **TOL[dtype], err_msg=f"cross-entropy n={n} rows={rows}")


@pytest.mark.parametrize("backend", ["cpu", "cuda"])
def test_a_kernel_kind_without_a_renderer_is_a_lowering_error(backend):
    x = sd.tensor("x", (8,), "float32")
    sched = schedule([sd.exp(x)], [x])
    sched.kernels[0].kind = "conv"  # a kind the schedule could name before its renderers exist
    generate = {"cpu": cpu_unit.generate, "cuda": cuda_unit.generate}[backend]
    with pytest.raises(LoweringError, match=f"the {backend} backend has no renderer for kernel kind 'conv'"):
        generate(sched)
