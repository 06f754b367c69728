"""symdiff's native GEMM against numpy's BLAS, in the same process, interleaved.

    python bench/gemm.py            # squares 256..2048 and the MLP shapes, 1 and 2 threads, f32 + f64
    python bench/gemm.py --quick    # n=1024 float32, 2 threads; the last line is the ratio
    python bench/gemm.py --shapes mlp --threads 2   # a subset (squares, mlp or rows; any thread counts)

Each thread count runs in a fresh process with OMP_NUM_THREADS and OPENBLAS_NUM_THREADS set.
When OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE are set (they slow OpenBLAS about 2x on these
machines), a second process per thread count runs without them, and each ratio is taken
against the faster numpy, from the process where that numpy ran. Inside a process the two
implementations alternate (A B B A ...) over several rounds; a round's figure is the median
call; the table shows the best round and, in brackets, the worst, so noise stays visible. Before
each implementation's turn the script pauses 0.15 s, so the other library's threads have stopped
spinning, and makes one untimed call.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

import numpy as np

SQUARES = [(f"n={n}", n, n, n, False, False) for n in (256, 512, 1024, 2048)]
MLP = [  # (label, m, k, n, trans_a, trans_b): a 784-100-10 MLP on batches of 100, and a wide layer
    ("x@W1 100x784@784x100", 100, 784, 100, False, False),
    ("h@W2 100x100@100x10", 100, 100, 10, False, False),
    ("xT@dh 784x100T@100x100", 784, 100, 100, True, False),
    ("dh@W1T 100x100@784x100T", 100, 100, 784, False, True),
    ("hT@dy 100x100T@100x10", 100, 100, 10, True, False),
    ("256x1024@1024x1024", 256, 1024, 1024, False, False),
]
FEW_ROWS = [  # one sample through a layer, an RNN step at batch 1, a small batch's weight gradient
    ("x@W1 1x784@784x100", 1, 784, 100, False, False),
    ("x@W1T 1x784@100x784T", 1, 784, 100, False, True),
    ("x@W 1x1024@1024x1024", 1, 1024, 1024, False, False),
    ("x@W 4x784@784x256", 4, 784, 256, False, False),
    ("x@W1T 9x784@100x784T", 9, 784, 100, False, True),
    ("xT@dh 784x64T@64x256", 784, 64, 256, True, False),
]
GROUPS = {"all": SQUARES + MLP + FEW_ROWS, "squares": SQUARES, "mlp": MLP, "rows": FEW_ROWS}
OPENBLAS_SLOW = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")


def settle(fn, pause=0.15):
    """Let the thread pool of the implementation timed before go idle, then warm ``fn``'s.

    OpenBLAS's worker threads keep spinning for a while after a call (about 0.1 s) and libgomp's
    for a shorter while; timed right after, the other library's second thread shares a core
    with them and whole calls stall for a scheduler slice (8 ms seen at n = 512 for both)."""
    time.sleep(pause)
    fn()


def _time_rounds(fns, flops, rounds, budget):
    """Per implementation: GFLOP/s of each round's median call, alternating the order each round."""
    for fn in fns.values():  # warm-up: caches, thread pools, first-touch pages
        fn()
    t0 = time.perf_counter()
    fns["numpy"]()
    once = max(time.perf_counter() - t0, 1e-7)
    inner = max(1, int(2e-4 / once))  # time tiny calls in groups so the clock is not the measurement
    samples = max(3, min(50, int(budget / (once * inner * len(fns) * rounds))))
    figures = {name: [] for name in fns}
    names = list(fns)
    for r in range(rounds):
        for name in names if r % 2 == 0 else names[::-1]:
            fn, times = fns[name], []
            settle(fn)
            for _ in range(samples):
                t = time.perf_counter()
                for _ in range(inner):
                    fn()
                times.append((time.perf_counter() - t) / inner)
            figures[name].append(flops / statistics.median(times) / 1e9)
    return figures


def worker(args):
    from symdiff.lowering import gemm

    shapes = SQUARES[2:3] if args.quick else GROUPS[args.shapes]
    dtypes = [np.float32] if args.quick else [np.float32, np.float64]
    rng = np.random.default_rng(0)
    for dtype in dtypes:
        for label, m, k, n, ta, tb in shapes:
            a = rng.standard_normal((k, m) if ta else (m, k)).astype(dtype)
            b = rng.standard_normal((n, k) if tb else (k, n)).astype(dtype)
            opa, opb = (a.T if ta else a), (b.T if tb else b)
            c_ours, c_np = np.empty((m, n), dtype), np.empty((m, n), dtype)
            gemm.gemm(a, b, c_ours, trans_a=ta, trans_b=tb)
            np.matmul(opa, opb, out=c_np)
            scale = np.abs(opa).astype(np.float64) @ np.abs(opb).astype(np.float64)
            err = np.max(np.abs(c_ours - c_np) / (scale * (k + 2) * np.finfo(dtype).eps))
            assert err <= 2.0, f"{label}: results disagree with numpy ({err:.2f} x the error bound)"
            fns = {
                "ours": lambda: gemm.gemm(a, b, c_ours, trans_a=ta, trans_b=tb),
                "numpy": lambda: np.matmul(opa, opb, out=c_np),
            }
            budget = 0.6 if args.quick else (1.5 if 2 * m * n * k > 1e9 else 0.8)
            fig = _time_rounds(fns, 2.0 * m * n * k, args.rounds, budget)
            print(json.dumps({"label": label, "dtype": np.dtype(dtype).name, "ours": fig["ours"],
                              "numpy": fig["numpy"]}), flush=True)


def _run_worker(threads, drop_slow_env, args):
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), OPENBLAS_NUM_THREADS=str(threads),
               MKL_NUM_THREADS=str(threads))
    if drop_slow_env:
        for name in OPENBLAS_SLOW:
            env.pop(name, None)
    cmd = [sys.executable, __file__, "--worker", "--rounds", str(args.rounds), "--shapes", args.shapes]
    cmd += ["--quick"] if args.quick else []
    out = subprocess.run(cmd, env=env, check=True, capture_output=True, text=True).stdout
    return [json.loads(line) for line in out.splitlines() if line.startswith("{")]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="n=1024 float32 with 2 threads only")
    parser.add_argument("--rounds", type=int, default=None, help="interleaved rounds per shape (default 5, quick 3)")
    parser.add_argument("--threads", default=None, help="comma-separated thread counts (default 1,2; quick 2)")
    parser.add_argument("--shapes", choices=sorted(GROUPS), default="all",
                        help="which shapes (default all; --quick overrides)")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.rounds is None:
        args.rounds = 3 if args.quick else 5
    if args.worker:
        return worker(args)

    thread_counts = [int(t) for t in (args.threads or ("2" if args.quick else "1,2")).split(",")]
    envs = [False] + ([True] if any(name in os.environ for name in OPENBLAS_SLOW) else [])
    slow = {name: os.environ[name] for name in OPENBLAS_SLOW if name in os.environ}
    print(f"# loadavg {open('/proc/loadavg').read().split()[:3]}, numpy {np.__version__}, "
          f"OPENBLAS vars {slow or 'unset'}" + (" (also measured without them)" if len(envs) > 1 else ""))
    print(f"# GFLOP/s: best round [worst round] of {args.rounds}; ratio = ours / faster numpy, best [worst]")
    header = f"{'shape':26} {'dtype':7} {'thr':>3} {'ours':>15} {'numpy':>15}"
    header += f" {'numpy-unset':>15}" if len(envs) > 1 else ""
    print(header + f" {'ratio':>13}")
    last = None
    for threads in thread_counts:
        runs = [_run_worker(threads, drop, args) for drop in envs]
        for rows in zip(*runs):
            best_np = [max(r["numpy"]) for r in rows]
            pick = rows[best_np.index(max(best_np))]  # the process where numpy was faster
            ours, ref = pick["ours"], pick["numpy"]
            ratio, worst_ratio = max(ours) / max(ref), min(ours) / min(ref)
            cells = [f"{max(x):7.1f} [{min(x):5.1f}]" for x in [ours] + [r["numpy"] for r in rows]]
            print(f"{rows[0]['label']:26} {rows[0]['dtype']:7} {threads:>3} " + " ".join(f"{c:>15}" for c in cells)
                  + f" {ratio:6.2f} [{worst_ratio:4.2f}]", flush=True)
            if rows[0]["label"] == "n=1024" and rows[0]["dtype"] == "float32" and threads == 2:
                last = ratio
    if last is not None:
        print(f"gemm n=1024 threads=2: ratio {last:.2f}")


if __name__ == "__main__":
    main()
