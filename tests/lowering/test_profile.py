"""SYMDIFF_PROFILE=1: a compiled program times each kernel; program.profile() reads the totals."""

import numpy as np
import pytest

import symdiff as sd


def _graph():
    X, W = sd.tensor("X", (64, 32), "float32"), sd.tensor("W", (32, 16), "float32")
    f = sd.sum(sd.exp(X @ W))
    return [f, sd.grad(f, [W])[0]], [X, W]


def _args():
    rng = np.random.default_rng(0)
    return (rng.random((64, 32), dtype=np.float32) / 10, rng.random((32, 16), dtype=np.float32) / 10)


def test_a_profiled_program_times_each_kernel_and_keeps_its_results(monkeypatch):
    outputs, inputs = _graph()
    plain = sd.compile(outputs, inputs)
    want = plain(*_args())
    with pytest.raises(RuntimeError, match="SYMDIFF_PROFILE=1"):
        plain.profile()
    assert "steady_clock" not in plain.source  # no timers unless asked for

    monkeypatch.setenv("SYMDIFF_PROFILE", "1")
    timed = sd.compile(outputs, inputs)
    got = timed(*_args())
    for a, b in zip(got, want):
        np.testing.assert_array_equal(a, b)
    first = timed.profile()
    kinds = sorted(r["kind"] for r in first)
    assert kinds.count("gemm") == 2 and "reduce" in kinds and "loop" in kinds
    assert len(first) == timed.stats["kernels"]
    assert all(r["seconds"] >= 0 for r in first) and sum(r["seconds"] for r in first) > 0
    assert sum(r["share"] for r in first) == pytest.approx(1.0)
    assert [r["seconds"] for r in first] == sorted((r["seconds"] for r in first), reverse=True)
    for _ in range(5):
        timed(*_args())
    later = {r["kernel"]: r["seconds"] for r in timed.profile()}
    assert all(later[r["kernel"]] >= r["seconds"] for r in first)  # totals only grow
    assert sum(later.values()) > sum(r["seconds"] for r in first)
