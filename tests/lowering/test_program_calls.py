"""Compiled programs called from many threads, arguments that share memory, and updates that
copy or do nothing (issue 13, items 1 and 3)."""

import threading

import numpy as np
import pytest

import symdiff as sd

BACKENDS = ["cpu", "numpy"]


pytestmark = pytest.mark.usefixtures("module_program_cache")  # tests/conftest.py


def _in_threads(count, work):
    """Run work(t) in ``count`` threads that start together; re-raise the first failure."""
    start, errors = threading.Barrier(count), []

    def run(t):
        try:
            start.wait()
            work(t)
        except BaseException as e:  # noqa: BLE001 - reported in the main thread
            errors.append(e)

    threads = [threading.Thread(target=run, args=(t,)) for t in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]


def test_many_threads_calling_one_program_get_their_own_results(threads):
    A, B = sd.tensor("A", (64, 64)), sd.tensor("B", (64, 64))
    T = sd.tanh(A @ B)
    prog = sd.compile([sd.sum(T * T, axis=1) + sd.sum(sd.exp(T), axis=0), T @ A], [A, B])
    rng = np.random.default_rng(0)
    inputs = [[(rng.normal(size=(64, 64)), rng.normal(size=(64, 64))) for _ in range(25)] for _ in range(4)]
    expected = [[prog(a, b) for a, b in mine] for mine in inputs]  # one thread: the reference
    mismatches = [0] * 4

    def work(t):
        for _ in range(4):  # 4 threads x 100 calls, every result compared
            for (a, b), want in zip(inputs[t], expected[t]):
                got = prog(a, b)
                mismatches[t] += not all(np.array_equal(g, w) for g, w in zip(got, want))

    _in_threads(4, work)
    assert mismatches == [0, 0, 0, 0]
    bound = prog._last.bound
    assert 1 <= bound.pooled_arenas <= 4 and bound.arena_bytes > 0  # an arena per call in flight, reused


@pytest.mark.parametrize("backend", BACKENDS)
def test_threads_updating_one_array_apply_every_step_in_turn(backend):
    # each call reads w (its output is sum(w) before the step) and adds 1 to it: run one after the
    # other, the 400 calls see w = 0, 1, ..., 399 exactly once each and leave w = 400
    w = sd.tensor("w", (96, 96))
    heavy = sd.sum(sd.tanh(w @ w))  # keeps each call long enough for calls to overlap
    prog = sd.compile([sd.sum(w), heavy], [w], updates={w: w + 1.0}, backend=backend)
    weights = np.zeros((96, 96))
    seen = []

    def work(t):
        for _ in range(100):
            total, _ = prog(weights)
            seen.append(float(total) / weights.size)

    _in_threads(4, work)
    np.testing.assert_array_equal(weights, np.full((96, 96), 400.0))
    assert sorted(seen) == [float(k) for k in range(400)]


def test_a_reader_waits_for_a_writer_of_the_same_array():
    # the step writes w in place, element by element, for the whole of its run: a read that
    # overlapped it would see part old, part new values (a sum that is not a multiple of the size)
    w = sd.tensor("w", (1024, 1024))
    step = sd.compile([sd.sum(w)], [w], updates={w: w + 1.0})
    read = sd.compile(sd.sum(w), [w])
    weights = np.zeros((1024, 1024))
    sums, finished = [], []

    def work(t):
        if t % 2:
            for _ in range(50):
                step(weights)
            finished.append(t)  # list.append is atomic
        else:
            # reads overlap the writers' whole run (and a few more, should the writers, which
            # the claims do not make wait in turn, have kept the readers out until the end)
            while (len(finished) < 2 or len(sums) < 20) and len(sums) < 5000:
                sums.append(float(read(weights)) / weights.size)

    _in_threads(4, work)
    assert weights[0, 0] == 100.0 and len(sums) >= 20
    assert all(s.is_integer() and 0 <= s <= 100 for s in sums), sorted(set(sums))[:5]


def _aliasing_program(backend, n=64):  # big enough for the update to be one GEMM into A (read as B)
    A, B = sd.tensor("A", (n, n)), sd.tensor("B", (n, n))
    return sd.compile([sd.sum(A)], [A, B], updates={A: A - 0.1 * (B @ B.T)}, backend=backend)


@pytest.mark.parametrize("backend", BACKENDS)
def test_an_updated_array_passed_again_as_another_input_is_read_before_the_call(backend):
    x = np.random.default_rng(1).normal(size=(64, 64))
    want = x - 0.1 * (x @ x.T)
    prog = _aliasing_program(backend)
    for _ in range(2):  # the second call takes the fast path of a known signature
        start = x.copy()
        total = prog(x, x)
        np.testing.assert_allclose(total, start.sum(), rtol=1e-12)
        np.testing.assert_allclose(x, want, rtol=1e-12, atol=1e-12)
        want = x - 0.1 * (x @ x.T)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("lag", [2, -2], ids=["other ahead", "other behind"])
def test_partly_overlapping_views_are_read_before_the_call(backend, lag):
    n = 1000
    a, b = sd.tensor("a", (n,)), sd.tensor("b", (n,))
    prog = sd.compile([sd.sum(a * b)], [a, b], updates={a: a + 2.0 * b}, backend=backend)
    storage = np.arange(n + 2.0)
    # the update is written in place, element by element: an "other" behind it reads new values
    target, other = (storage[:n], storage[2:]) if lag > 0 else (storage[2:], storage[:n])
    before_t, before_o = target.copy(), other.copy()
    total = prog(target, other)
    np.testing.assert_allclose(total, np.sum(before_t * before_o))
    np.testing.assert_array_equal(target, before_t + 2.0 * before_o)


@pytest.mark.parametrize("backend", BACKENDS)
def test_two_updated_arrays_sharing_memory_are_refused(backend):
    a, b = sd.tensor("a", (3,)), sd.tensor("b", (3,))
    prog = sd.compile([sd.sum(a)], [a, b], updates={a: a + 1.0, b: b * 2.0}, backend=backend)
    x = np.ones(3)
    with pytest.raises(ValueError, match="a and b are both updated in place.*share memory"):
        prog(x, x)
    np.testing.assert_array_equal(x, np.ones(3))  # refused before anything ran
    y = np.ones(3)
    prog(x, y)
    np.testing.assert_array_equal(x, [2, 2, 2])


@pytest.mark.parametrize("backend", BACKENDS)
def test_an_update_that_simplifies_to_its_own_value_writes_nothing(backend):
    A, B = sd.tensor("A", (3, 3)), sd.tensor("B", (3, 3))
    prog = sd.compile([sd.sum(A * B)], [A, B], updates={A: A - 0.0 * B}, backend=backend)  # lr = 0
    a = np.arange(9.0).reshape(3, 3)
    np.testing.assert_allclose(prog(a, np.ones((3, 3))), 36.0)
    np.testing.assert_array_equal(a, np.arange(9.0).reshape(3, 3))


@pytest.mark.parametrize("backend", BACKENDS)
def test_updates_to_other_inputs_and_their_views_are_copied_first(backend):
    A, B = sd.tensor("A", (3, 3)), sd.tensor("B", (3, 3))
    prog = sd.compile([sd.sum(A)], [A, B], updates={A: B.T, B: A}, backend=backend)  # a swap, one transposed
    a, b = np.ones((3, 3)), np.arange(9.0).reshape(3, 3)
    np.testing.assert_allclose(prog(a, b), 9.0)
    np.testing.assert_array_equal(a, np.arange(9.0).reshape(3, 3).T)
    np.testing.assert_array_equal(b, np.ones((3, 3)))


def test_threads_meeting_a_new_signature_compile_it_once(monkeypatch):
    x = sd.tensor("x", ("n",))
    prog = sd.compile([sd.sum(sd.exp(x) * 7.25)], [x])
    calls = []
    real = prog.specialize
    monkeypatch.setattr(prog, "specialize", lambda *a: calls.append(a) or real(*a))
    results = []
    _in_threads(4, lambda t: results.append(float(prog(np.zeros(37))[0])))
    assert results == [7.25 * 37] * 4 and len(calls) == 1
