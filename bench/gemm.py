"""symdiff's native GEMM against numpy's BLAS, in the same process, interleaved.

    python bench/gemm.py            # squares 256..2048 and the MLP shapes, 1 and 2 threads, f32 + f64
    python bench/gemm.py --quick    # n=1024 float32, 2 threads; the last line is the ratio
    python bench/gemm.py --shapes mlp --threads 2   # a subset (squares, mlp, rows or w3; any thread counts)
    python bench/gemm.py --isa avx2 --shapes squares  # our AVX2 kernels against OpenBLAS's AVX2 ones

The kernels that ran (family and register tile per dtype, and OpenBLAS's core) are printed in the
header and per row. ``--isa`` (default ``$SYMDIFF_GEMM_ISA``, else the CPU's best) pins our
kernel family through SYMDIFF_GEMM_ISA. Pinning avx2 on an AVX-512 CPU is a proxy for an AVX2-only
machine (Zen 3): the OpenBLAS reference is then pinned to its AVX2 kernels too
(OPENBLAS_CORETYPE=Haswell, unless the variable is already set) and is not also measured unset.

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
W3 = [  # the products of bench/train_step.py's W3 step: a 784-1024-1024-10 MLP on batches of 256
    ("x@W1 256x784@784x1024", 256, 784, 1024, False, False),
    ("h@W2 256x1024@1024x1024", 256, 1024, 1024, False, False),
    ("h@W3 256x1024@1024x10", 256, 1024, 10, False, False),
    ("hT@dz 1024x256T@256x10", 1024, 256, 10, True, False),
    ("dz@W3T 256x10@1024x10T", 256, 10, 1024, False, True),
    ("hT@dh 1024x256T@256x1024", 1024, 256, 1024, True, False),
    ("dh@W2T 256x1024@1024x1024T", 256, 1024, 1024, False, True),
    ("xT@dh 784x256T@256x1024", 784, 256, 1024, True, False),
]
GROUPS = {"all": SQUARES + MLP + FEW_ROWS, "squares": SQUARES, "mlp": MLP, "rows": FEW_ROWS, "w3": W3}
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


def openblas_core():
    """The core OpenBLAS runs in this process ("Haswell", "SkylakeX", ...), or "?" without threadpoolctl."""
    try:
        import threadpoolctl
    except ImportError:
        return "?"
    cores = [i.get("architecture", "?") for i in threadpoolctl.threadpool_info() if i["internal_api"] == "openblas"]
    return ",".join(cores) or "?"


def worker(args):
    from symdiff.lowering import gemm

    print(json.dumps({"kernel": gemm.gemm_kernel(), "openblas": openblas_core()}), flush=True)
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
            fns = {  # timed right here, but bound explicitly all the same
                "ours": lambda a=a, b=b, c=c_ours, ta=ta, tb=tb: gemm.gemm(a, b, c, trans_a=ta, trans_b=tb),
                "numpy": lambda a=opa, b=opb, c=c_np: np.matmul(a, b, out=c),
            }
            budget = 0.6 if args.quick else (1.5 if 2 * m * n * k > 1e9 else 0.8)
            fig = _time_rounds(fns, 2.0 * m * n * k, args.rounds, budget)
            print(json.dumps({"label": label, "dtype": np.dtype(dtype).name, "ours": fig["ours"],
                              "numpy": fig["numpy"], "isa": gemm.current_gemm_isa(),
                              "tile": gemm.gemm_kernel()[np.dtype(dtype).name]}), flush=True)


def _run_worker(threads, drop_slow_env, args, base_env):
    env = dict(base_env, OMP_NUM_THREADS=str(threads), OPENBLAS_NUM_THREADS=str(threads),
               MKL_NUM_THREADS=str(threads))
    if drop_slow_env:
        for name in OPENBLAS_SLOW:
            env.pop(name, None)
    cmd = [sys.executable, __file__, "--worker", "--rounds", str(args.rounds), "--shapes", args.shapes]
    cmd += ["--quick"] if args.quick else []
    out = subprocess.run(cmd, env=env, check=True, capture_output=True, text=True).stdout
    lines = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    return lines[0], lines[1:]


def _cpu_has_avx512():
    with open("/proc/cpuinfo") as f:
        return "avx512f" in f.read()


def worker_env(isa):
    """The environment of the workers, and whether this run is the AVX2-on-AVX-512 proxy."""
    env = dict(os.environ)
    if isa and isa != "auto":
        env["SYMDIFF_GEMM_ISA"] = isa
    proxy = env.get("SYMDIFF_GEMM_ISA") == "avx2" and _cpu_has_avx512()
    if proxy:
        env.setdefault("OPENBLAS_CORETYPE", "Haswell")  # OpenBLAS's AVX2 (Haswell/Zen) kernels
    return env, proxy


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="n=1024 float32 with 2 threads only")
    parser.add_argument("--rounds", type=int, default=None, help="interleaved rounds per shape (default 5, quick 3)")
    parser.add_argument("--threads", default=None, help="comma-separated thread counts (default 1,2; quick 2)")
    parser.add_argument("--shapes", choices=sorted(GROUPS), default="all",
                        help="which shapes (default all; --quick overrides)")
    parser.add_argument("--isa", choices=["auto", "avx512", "avx2", "scalar"], default=None,
                        help="pin our kernels (SYMDIFF_GEMM_ISA; default: that variable, else the CPU's best)")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.rounds is None:
        args.rounds = 3 if args.quick else 5
    if args.worker:
        return worker(args)

    thread_counts = [int(t) for t in (args.threads or ("2" if args.quick else "1,2")).split(",")]
    env, proxy = worker_env(args.isa)
    slow = {name: env[name] for name in OPENBLAS_SLOW if name in env}
    # In the proxy the pinned OpenBLAS core is the reference: unset, it would run AVX-512 kernels.
    envs = [False] + ([True] if slow and not proxy else [])
    with open("/proc/loadavg") as f:
        load = f.read().split()[:3]
    print(f"# loadavg {load}, numpy {np.__version__}, "
          f"OPENBLAS vars {slow or 'unset'}" + (" (also measured without them)" if len(envs) > 1 else ""))
    print(f"# GFLOP/s: best round [worst round] of {args.rounds}; ratio = ours / faster numpy, best [worst]")
    last = None
    for n_run, threads in enumerate(thread_counts):
        runs = [_run_worker(threads, drop, args, env) for drop in envs]
        if n_run == 0:
            kernel, core = runs[0][0]["kernel"], runs[0][0]["openblas"]
            print(f"# ours: {kernel['isa']} kernels (this CPU's best: {kernel['cpu_isa']}), register tile float32 "
                  f"{kernel['float32']}, float64 {kernel['float64']}; numpy's OpenBLAS core: {core}"
                  + ("; AVX2 proxy: our AVX2 path and OpenBLAS's AVX2 kernels on an AVX-512 CPU" if proxy else ""))
            header = f"{'shape':28} {'dtype':7} {'thr':>3} {'kernel':>11} {'ours':>15} {'numpy':>15}"
            header += f" {'numpy-unset':>15}" if len(envs) > 1 else ""
            print(header + f" {'ratio':>13}")
        for rows in zip(*(rows for _, rows in runs)):
            best_np = [max(r["numpy"]) for r in rows]
            pick = rows[best_np.index(max(best_np))]  # the process where numpy was faster
            ours, ref = pick["ours"], pick["numpy"]
            ratio, worst_ratio = max(ours) / max(ref), min(ours) / min(ref)
            cells = [f"{max(x):7.1f} [{min(x):5.1f}]" for x in [ours] + [r["numpy"] for r in rows]]
            tile = pick["tile"]
            print(f"{rows[0]['label']:28} {rows[0]['dtype']:7} {threads:>3} {pick['isa'] + ' ' + tile:>11} "
                  + " ".join(f"{c:>15}" for c in cells)
                  + f" {ratio:6.2f} [{worst_ratio:4.2f}]", flush=True)
            if rows[0]["label"] == "n=1024" and rows[0]["dtype"] == "float32" and threads == 2:
                last = ratio
    if last is not None:
        print(f"gemm n=1024 threads=2: ratio {last:.2f}")


if __name__ == "__main__":
    main()
