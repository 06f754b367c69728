"""One compiled program for every batch size: graphs with symbolic dimensions compile once.

Every program here is checked against the numpy reference backend at several sizes, and the
number of libraries it built is counted (``program.builds``, and the libraries in the cache)."""

import hashlib
import json
import threading
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from symdiff.lowering.compiler import cache

import symdiff as sd
from symdiff.testing import random_graphs


@pytest.fixture(autouse=True)
def _private_cache(module_program_cache):
    yield


def _libraries():
    return sorted(cache.cache_dir().glob("*.so"))


def _mlp_step(lr=0.1, batch="m"):
    X, y = sd.tensor("X", (batch, 784), "float32"), sd.tensor("y", (batch,), "int64")
    W0, W1 = sd.tensor("W0", (784, 100), "float32"), sd.tensor("W1", (100, 10), "float32")
    loss = sd.softmax_cross_entropy(sd.relu(X @ W0) @ W1, y)
    g0, g1 = sd.grad(loss, [W0, W1])
    return [loss], [X, y, W0, W1], {W0: W0 - lr * g0, W1: W1 - lr * g1}


def _mlp_arrays(m, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.random((m, 784), dtype=np.float32), rng.integers(0, 10, m),
            (rng.standard_normal((784, 100)) * 0.05).astype(np.float32),
            (rng.standard_normal((100, 10)) * 0.1).astype(np.float32)]


def _check_against_numpy(outputs, inputs, updates, arrays_for, sizes, rtol=2e-5, atol=1e-6):
    program = sd.compile(outputs, inputs, updates=updates)
    reference = sd.compile(outputs, inputs, updates=updates, backend="numpy")
    for m in sizes:
        ours, theirs = arrays_for(m), arrays_for(m)
        got, want = program(*ours), reference(*theirs)
        for g, w in zip(got, want):
            np.testing.assert_allclose(g, w, rtol=rtol, atol=atol, err_msg=f"m={m}")
        for g, w in zip(ours, theirs):  # the updated arrays too
            np.testing.assert_allclose(g, w, rtol=rtol, atol=atol, err_msg=f"m={m} (updates)")
    return program


def test_one_program_serves_batch_sizes_100_37_and_1_with_one_build():
    program = _check_against_numpy(*_mlp_step(), _mlp_arrays, [100, 37, 1])
    assert program.builds == 1 and len(_libraries()) == 1
    assert program.stats["runtime_dims"] and program.specialized_because is None
    assert len(program.signatures) == 3 and program.libraries == 1  # three signatures, one library


def test_a_new_program_of_the_same_graph_loads_the_library_without_building():
    first = sd.compile(*_mlp_step())
    first(*_mlp_arrays(5))
    before = _libraries()
    cache.forget_loaded()
    again = sd.compile(*_mlp_step())
    for m in (3, 64):
        again(*_mlp_arrays(m))
    assert again.builds == 0 and _libraries() == before
    assert again.stats["cache"] == "disk" and again._last.build_info.get("graph_cache")


def test_the_run_time_source_is_deterministic_and_names_no_user_dimension():
    sources = []
    for _ in range(2):
        program = sd.compile(*_mlp_step(batch="rows_of_the_batch"))
        program(*_mlp_arrays(4))
        sources.append(program.source)
    assert sources[0] == sources[1]
    assert "D0" in sources[0] and "symdiff_program_arena_bytes" in sources[0]
    code = "\n".join(line.split("//")[0] for line in sources[0].splitlines())  # comments may quote the formula
    assert "rows_of_the_batch" not in code


def test_stats_and_explain_follow_the_latest_size():
    program = sd.compile(*_mlp_step())
    program(*_mlp_arrays(100))
    big = program.stats["arena_bytes"]
    program(*_mlp_arrays(2))
    small = program.stats["arena_bytes"]
    assert small < big and program.stats["flops"] < 1e6
    assert "t0[" in program.explain(m=8)


GRAPHS = {
    "bias, relu, mean over the batch": lambda X, m: sd.mean(sd.relu(X + 1.0), axis=0),
    "sum over the batch (a bias gradient)": lambda X, m: sd.sum(X * X, axis=0),
    "softmax rows": lambda X, m: sd.softmax(X, axis=1),
    "log_softmax rows": lambda X, m: sd.log_softmax(X, axis=1),
    "logsumexp rows": lambda X, m: sd.logsumexp(X, axis=1),
    "softmax over the batch axis": lambda X, m: sd.softmax(X, axis=0),
    "normalize by the batch statistics": lambda X, m: (X - sd.mean(X, axis=0)) / sd.sqrt(
        sd.mean((X - sd.mean(X, axis=0)) ** 2, axis=0) + 1e-5),
    "transpose products": lambda X, m: sd.transpose(X) @ X,
    "outer batch product": lambda X, m: X @ sd.transpose(X),
    "rows sliced": lambda X, m: sd.exp(X[1:]) if m > 1 else sd.exp(X),
    "columns sliced": lambda X, m: X[:, 1:3] * 2.0,
    "concatenated along features": lambda X, m: sd.concatenate([X, sd.tanh(X)], axis=1),
    "reshaped flat": lambda X, m: sd.sum(sd.reshape(X, (-1,)) ** 2),
    "max and argmax": lambda X, m: sd.max(X, axis=1) + sd.argmax(X, axis=1).astype("float64"),
}


@pytest.mark.parametrize("name", sorted(GRAPHS))
def test_graphs_with_a_batch_dimension_equal_the_reference_at_every_size(name):
    X = sd.tensor("X", ("m", 5), "float64")
    out = GRAPHS[name](X, 2)
    rng = np.random.default_rng(1)

    def arrays(m):
        return [np.random.default_rng(m).standard_normal((m, 5))]

    program = sd.compile([out], [X])
    reference = sd.compile([out], [X], backend="numpy")
    for m in (2, 7, 70, 300):
        a = arrays(m)
        np.testing.assert_allclose(program(*a)[0], reference(*a)[0], rtol=1e-10, atol=1e-12, err_msg=f"m={m}")
    assert program.builds == 1, program.specialized_because
    del rng


def test_gradients_of_a_bias_mlp_equal_the_reference_at_every_size():
    X, y = sd.tensor("X", ("m", 6), "float64"), sd.tensor("y", ("m",), "int64")
    W, b = sd.tensor("W", (6, 3), "float64"), sd.tensor("b", (3,), "float64")
    loss = sd.softmax_cross_entropy(sd.tanh(X @ W + b), y)
    gW, gb = sd.grad(loss, [W, b])

    def arrays(m):
        rng = np.random.default_rng(m)
        return [rng.standard_normal((m, 6)), rng.integers(0, 3, m), rng.standard_normal((6, 3)), rng.standard_normal(3)]

    program = _check_against_numpy([loss, gW, gb], [X, y, W, b], {}, arrays, [1, 3, 65, 129], rtol=1e-10)
    assert program.builds == 1


def test_two_run_time_dimensions():
    A, B = sd.tensor("A", ("m", "k"), "float64"), sd.tensor("B", ("k", 4), "float64")
    out = sd.sum(sd.exp(A @ B * 0.1), axis=1)
    program = sd.compile([out], [A, B])
    for m, k in [(3, 5), (1, 1), (40, 17)]:
        rng = np.random.default_rng(m * k)
        a, b = rng.standard_normal((m, k)), rng.standard_normal((k, 4))
        np.testing.assert_allclose(program(a, b)[0], np.exp(a @ b * 0.1).sum(axis=1), rtol=1e-12)
    assert program.builds == 1


def test_rows_of_run_time_length_take_the_header_kernels():
    x = sd.tensor("x", (4, "n"), "float64")
    program = sd.compile([sd.softmax(x, axis=1), sd.logsumexp(x, axis=1)], [x])
    for n in (3, 100):
        a = np.random.default_rng(n).standard_normal((4, n))
        s, lse = program(a)
        np.testing.assert_allclose(s, np.exp(a) / np.exp(a).sum(1, keepdims=True), rtol=1e-12)
        np.testing.assert_allclose(lse, np.log(np.exp(a).sum(1)), rtol=1e-12)
    assert program.libraries == 1 and "softmax_rows<double>" in program.source


def test_a_gather_from_a_table_of_run_time_length_checks_its_indices_against_it():
    W, i = sd.tensor("W", ("n", 3), "float64"), sd.tensor("i", (5,), "int64")
    program = sd.compile([sd.take(W, i, axis=0) * 2.0], [W, i])
    for n in (4, 7):
        a, idx = np.random.default_rng(n).standard_normal((n, 3)), np.arange(5) % n - 2  # negatives too
        np.testing.assert_allclose(program(a, idx)[0], a[idx] * 2.0)
    assert program.libraries == 1
    with pytest.raises(ValueError, match=r"index 4 at flat position 4 is out of range \[-4, 4\)"):
        program(np.zeros((4, 3)), np.array([0, 1, 2, 3, 4]))


def test_a_kernel_that_needs_a_size_specializes_and_says_why(monkeypatch):
    # every kernel of the CPU backend takes run-time sizes today; a renderer that needs one's value
    # (a future kernel sized when written) raises NeedsConstantDims, simulated here on products
    from symdiff.lowering.plan import dims

    def needs_value(self, other):
        raise dims.NeedsConstantDims(f"the program needs the value of {self.expr}")

    monkeypatch.setattr(dims.RuntimeDim, "__mul__", needs_value)
    monkeypatch.setattr(dims.RuntimeDim, "__rmul__", needs_value)
    X = sd.tensor("X", ("m", 3), "float64")
    program = sd.compile([sd.exp(X) * 3.0], [X])
    for m in (2, 5):
        a = np.full((m, 3), 0.25)
        np.testing.assert_allclose(program(a)[0], np.exp(a) * 3.0)
    assert program.specialized_because == "the program needs the value of D0"
    assert program.libraries == 2 and not program.stats["runtime_dims"]


def test_an_empty_batch_runs_a_specialized_program():
    program = sd.compile(*_mlp_step(lr=0.25))
    program(*_mlp_arrays(3))
    w = _mlp_arrays(0)
    program(*w)  # m = 0: the mean of nothing is nan (numpy says so too), the update is nan
    assert program.builds == 2


def test_threads_calling_with_different_batch_sizes_get_their_own_results():
    X = sd.tensor("X", ("m", 8), "float64")
    program = sd.compile([sd.sum(sd.exp(X) * 2.0, axis=1)], [X])
    program(np.zeros((1, 8)))
    errors = []

    def work(t):
        for i in range(60):
            m = 1 + (t * 7 + i) % 50
            a = np.full((m, 8), t * 0.01 + i * 1e-3)
            got = program(a)[0]
            if got.shape != (m,) or not np.allclose(got, np.exp(a).sum(1) * 2.0, rtol=1e-12):
                errors.append((t, i, m))

    threads = [threading.Thread(target=work, args=(t,)) for t in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert errors == [] and program.builds == 1


def test_a_tampered_run_time_graph_entry_is_rebuilt_with_a_warning():
    program = sd.compile(*_mlp_step(lr=0.375))
    program(*_mlp_arrays(3))
    key = hashlib.sha256(f"{program.fingerprint()}|runtime-dims".encode()).hexdigest()
    entry = cache.cache_dir() / f"graph-{key}.json"
    meta = json.loads(entry.read_text())
    meta["out_shapes"] = [["D1"]]
    meta["checksum"] = cache.checksum(meta)
    entry.write_text(json.dumps(meta))
    cache.forget_loaded()
    again = sd.compile(*_mlp_step(lr=0.375))
    with pytest.warns(RuntimeWarning, match="graph entry .* is damaged"):
        again(*_mlp_arrays(3))
    assert again.builds == 1  # from the library cache: the source is the same
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        cache.forget_loaded()
        sd.compile(*_mlp_step(lr=0.375))(*_mlp_arrays(2))


def test_wrong_dimensions_for_a_run_time_library_are_refused_before_it_runs():
    from symdiff.lowering.kernels.native import bound_program

    program = sd.compile(*_mlp_step())
    program(*_mlp_arrays(3))
    spec = program._last
    args = ([np.dtype("float32"), np.dtype("int64"), np.dtype("float32"), np.dtype("float32")],
            [list(s) for s in spec.signature], [False, False, True, True], [np.dtype("float32")], [[]])
    with pytest.raises(ValueError, match="arena is smaller"):
        bound_program(spec.native, *args, 64, [3])
    with pytest.raises(ValueError, match="none were given"):
        bound_program(spec.native, *args, spec.arena_bytes)
    with pytest.raises(ValueError, match=">= 1"):
        spec.native.arena_bytes([0])


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(random_graphs(rows="m"))
def test_random_graphs_with_a_batch_and_their_gradients_at_every_size(graph):
    f, leaves = graph
    grads = sd.grad(f, leaves)
    program = sd.compile([f, *grads], leaves)
    for m in (1, 3, 70):
        rng = np.random.default_rng(m)
        arrays = [rng.uniform(-1, 1, (m, 4)), rng.uniform(-1, 1, (m, 4)), rng.uniform(-1, 1, 4)]
        env = dict(zip(leaves, arrays))
        for got, want in zip(program(*arrays), sd.evaluate([f, *grads], env)):
            np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-10, err_msg=f"m={m}")
    assert program.libraries == 1, program.specialized_because


def test_many_batch_sizes_keep_a_bounded_number_of_bindings():
    X = sd.tensor("X", ("m", 3), "float64")
    program = sd.compile([sd.sum(sd.tanh(X), axis=1)], [X])
    for m in range(1, 150):
        a = np.full((m, 3), 0.5)
        np.testing.assert_allclose(program(a)[0], np.tanh(a).sum(1), rtol=1e-12)
    assert program.libraries == 1 and len(program.signatures) == program.RUNTIME_BINDINGS
    assert program(np.ones((1, 3)))[0].shape == (1,)  # an evicted size binds again


def _renamed(shape, k):
    return tuple(f"{d}_{k}" if isinstance(d, str) else d for d in shape)


@pytest.mark.parametrize("grow", [0, 3], ids=["the case's sizes", "three more along every symbolic axis"])
def test_every_symbolic_op_case_in_one_run_time_program(grow):
    import dataclasses

    from symdiff.testing import cases

    symbolic = [c for c in cases() if any(not isinstance(d, int) for i in c.inputs for d in i.shape)]
    assert len(symbolic) >= 30
    rng = np.random.default_rng(11)
    exprs, env = [], {}
    for k, case in enumerate(symbolic):
        specs = [dataclasses.replace(i, shape=_renamed(i.shape, k),
                                     values=tuple(v + grow if isinstance(d, str) else v
                                                  for d, v in zip(i.shape, i.values or i.shape)))
                 for i in case.inputs]
        renamed = dataclasses.replace(case, inputs=specs)
        leaves = [sd.tensor(f"c{k}_a{i}", spec.shape, spec.dtype) for i, spec in enumerate(specs)]
        exprs.append(case.build(*leaves))
        env.update(zip(leaves, renamed.sample(rng)))
    inputs = list(env)
    program = sd.compile(exprs, inputs, optimize=False)
    for case, got, want in zip(symbolic, program(*[env[leaf] for leaf in inputs]), sd.evaluate(exprs, env)):
        assert got.shape == want.shape and got.dtype == want.dtype, str(case)
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12, err_msg=str(case))
    assert program.stats["runtime_dims"] and program.specialized_because is None


def test_user_dimensions_named_like_run_time_ones():
    # a user's D1 becomes D0 in the code and m becomes D1: the renaming is simultaneous
    A, B = sd.tensor("A", ("D1", "m"), "float64"), sd.tensor("B", ("m", "D0"), "float64")
    program = sd.compile([sd.exp(A @ B * 0.1)], [A, B])
    for a, m, b in [(2, 3, 4), (5, 1, 2), (3, 7, 1)]:
        x, y = np.random.default_rng(a).standard_normal((a, m)), np.random.default_rng(b).standard_normal((m, b))
        np.testing.assert_allclose(program(x, y)[0], np.exp(x @ y * 0.1), rtol=1e-12)
    assert program.libraries == 1
    assert program.explain(D1=2, m=3, D0=4).splitlines()[0].endswith("t0[2,4] = A·B")
