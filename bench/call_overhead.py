"""What one call of a compiled program costs, alone and from several threads, against numpy.

    .venv/bin/python bench/call_overhead.py [--rounds 7]

Three programs: a 4-element update step (the call's fixed cost: argument checks, an arena lease,
the claims on its arrays, the GIL released and taken back), the issue-13 64x64 program (tanh of a
product, two reductions, a second product) and a 784-100 layer's forward pass on 100 rows. Each is
timed as our program and as the same numpy expression, interleaved, in one process; then the
64x64 program from 1, 2 and 4 Python threads at once, each thread on its own arrays (calls/s).
OMP_NUM_THREADS applies to our programs; numpy's BLAS follows its own setting.
"""

from __future__ import annotations

import argparse
import threading
import time

import numpy as np

import symdiff as sd


def _programs():
    x, w = sd.tensor("x", (4,)), sd.tensor("w", (4,))
    step = sd.compile([sd.sum(x * w)], [x, w], updates={w: w - 0.1 * x})
    A, B = sd.tensor("A", (64, 64)), sd.tensor("B", (64, 64))
    T = sd.tanh(A @ B)
    issue = sd.compile([sd.sum(T * T, axis=1) + sd.sum(sd.exp(T), axis=0), T @ A], [A, B])
    X, W = sd.tensor("X", (100, 784), "float32"), sd.tensor("W", (784, 100), "float32")
    layer = sd.compile(sd.maximum(X @ W, 0.0), [X, W])
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(64, 64)), rng.normal(size=(64, 64))
    xs, ws = rng.normal(size=(100, 784)).astype(np.float32), rng.normal(size=(784, 100)).astype(np.float32)
    v, u = np.ones(4), np.zeros(4)

    def numpy_step():
        total = float(v @ u)
        u[...] -= 0.1 * v
        return total

    def numpy_issue():
        t = np.tanh(a @ b)
        return (t * t).sum(axis=1) + np.exp(t).sum(axis=0), t @ a

    return {
        "update step, 4 elements": (lambda: step(v, u), numpy_step),
        "tanh(A·B) 64x64, 2 sums, a product": (lambda: issue(a, b), numpy_issue),
        "relu(X·W) 100x784x100 float32": (lambda: layer(xs, ws), lambda: np.maximum(xs @ ws, 0)),
    }, issue, (a, b)


def _per_call(fn, seconds=0.05) -> float:
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        fn()
        n += 1
    start = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - start) / n


def _threaded(prog, arrays, threads, seconds=0.5) -> float:
    copies = [[a.copy() for a in arrays] for _ in range(threads)]
    counts = [0] * threads
    stop = threading.Event()

    def run(t):
        while not stop.is_set():
            prog(*copies[t])
            counts[t] += 1

    workers = [threading.Thread(target=run, args=(t,)) for t in range(threads)]
    for w in workers:
        w.start()
    time.sleep(seconds)
    stop.set()
    for w in workers:
        w.join()
    return sum(counts) / seconds


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=7)
    args = p.parse_args(argv)
    cases, issue, arrays = _programs()
    print(f"{'program':<38} {'symdiff µs':>11} {'numpy µs':>9}  ratio (best round, worst round)")
    for name, (ours, ref) in cases.items():
        ours(), ref()
        rounds = [(_per_call(ours), _per_call(ref)) for _ in range(args.rounds)]
        best = min(rounds, key=lambda r: r[0] / r[1])
        worst = max(rounds, key=lambda r: r[0] / r[1])
        print(f"{name:<38} {best[0] * 1e6:>11.2f} {best[1] * 1e6:>9.2f}  numpy/symdiff {best[1] / best[0]:.2f}, "
              f"{worst[1] / worst[0]:.2f}")
    base = None
    for threads in (1, 2, 4):
        rate = max(_threaded(issue, arrays, threads) for _ in range(3))
        base = base or rate
        print(f"64x64 program from {threads} Python thread(s): {rate:,.0f} calls/s ({rate / base:.2f}x one thread)")


if __name__ == "__main__":
    main()
