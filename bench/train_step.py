"""Per-step time of a compiled training step (forward + gradients + SGD update), issue 6.

    PYTHONPATH=. /tmp/bench-venv/bin/python bench/train_step.py [--quick] [--workloads W1,W2,W3]

Run with the package built (``make test`` once) and the references in a separate virtualenv
(bench extras: jax, pytensor, torch==2.13.0); whatever is missing is skipped. Workloads:
W1 softmax regression 784→10, batch 100; W2 MLP 784→100→10 (ReLU, no bias), batch 100;
W3 MLP 784→1024→1024→10 with biases, batch 256. Every implementation starts from the same
weights and takes the same steps on the same batches; their losses are compared before any
timing. Per-step times are the median of a round, rounds alternate the order of the
implementations; an epoch is 60,000 samples. Compile times (cold: empty cache; warm: a new
program object over the populated cache; both from sd.compile to a ready program, in a fresh
process that has imported symdiff.lowering) are reported apart. Each thread setting runs in its
own process, numpy with and without OPENBLAS_CORETYPE/OPENBLAS_L2_SIZE. The header names the
GEMM kernels ours ran (``SYMDIFF_GEMM_ISA`` pins them); XLA_FLAGS from the environment are kept
(``--xla_cpu_max_isa=AVX2`` pins XLA's code generation to AVX2, for the AVX2 proxy).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

EPOCH = 60000
LR = 0.1
WORKLOADS = {
    "W1": dict(layers=[784, 10], batch=100, bias=False),
    "W2": dict(layers=[784, 100, 10], batch=100, bias=False),
    "W3": dict(layers=[784, 1024, 1024, 10], batch=256, bias=True),
}


def init_params(spec, seed=0):
    rng = np.random.default_rng(seed)
    params = []
    for fan_in, fan_out in zip(spec["layers"][:-1], spec["layers"][1:]):
        params.append((rng.standard_normal((fan_in, fan_out)) * np.sqrt(2.0 / fan_in)).astype(np.float32))
        if spec["bias"]:
            params.append(np.zeros(fan_out, np.float32))
    return params


def data(batch, steps, seed=1):
    """A fixed random stand-in with MNIST's shapes (step time does not depend on the values)."""
    rng = np.random.default_rng(seed)
    X = rng.random((batch * steps, 784), dtype=np.float32)
    y = rng.integers(0, 10, batch * steps).astype(np.int64)
    return X, y


# -- ours ---------------------------------------------------------------------------------------


def ours(spec, params):
    import symdiff as sd

    b = spec["batch"]
    X, y = sd.tensor("X", (b, 784), "float32"), sd.tensor("y", (b,), "int64")
    leaves, h = [], X
    n_layers = len(spec["layers"]) - 1
    for i, (fi, fo) in enumerate(zip(spec["layers"][:-1], spec["layers"][1:])):
        W = sd.tensor(f"W{i}", (fi, fo), "float32")
        leaves.append(W)
        h = h @ W
        if spec["bias"]:
            c = sd.tensor(f"b{i}", (fo,), "float32")
            leaves.append(c)
            h = h + c
        if i < n_layers - 1:
            h = sd.relu(h)
    loss = sd.softmax_cross_entropy(h, y)
    grads = sd.grad(loss, leaves)
    updates = {p: p - LR * g for p, g in zip(leaves, grads)}
    t0 = time.perf_counter()
    prog = sd.compile([loss], [X, y, *leaves], updates=updates)
    state = [p.copy() for p in params]

    def step(xb, yb):
        return float(prog(xb, yb, *state)[0])

    return step, prog, t0


# -- references ----------------------------------------------------------------------------------


def numpy_ref(spec, params):
    state = [p.copy() for p in params]
    n = len(spec["layers"]) - 1
    per = 2 if spec["bias"] else 1

    def step(xb, yb):
        acts, h = [xb], xb
        for i in range(n):
            h = h @ state[per * i]
            if spec["bias"]:
                h += state[per * i + 1]
            if i < n - 1:
                np.maximum(h, 0, out=h)
            acts.append(h)
        z = acts[-1]
        m = z.max(axis=1, keepdims=True)
        e = np.exp(z - m)
        s = e.sum(axis=1, keepdims=True)
        loss = float(np.mean(np.log(s[:, 0]) + m[:, 0] - z[np.arange(len(yb)), yb]))
        g = e / s
        g[np.arange(len(yb)), yb] -= 1
        g /= len(yb)
        for i in reversed(range(n)):
            a = acts[i]
            gW = a.T @ g
            if spec["bias"]:
                gb = g.sum(axis=0)
            if i > 0:
                g = (g @ state[per * i].T) * (acts[i] > 0)
            state[per * i] -= LR * gW
            if spec["bias"]:
                state[per * i + 1] -= LR * gb
        return loss

    return step


def torch_ref(spec, params, compiled=False):
    import torch

    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "2")))
    state = [torch.tensor(p, requires_grad=True) for p in params]
    n = len(spec["layers"]) - 1
    per = 2 if spec["bias"] else 1

    def forward(xb, yb):
        h = xb
        for i in range(n):
            h = h @ state[per * i]
            if spec["bias"]:
                h = h + state[per * i + 1]
            if i < n - 1:
                h = torch.relu(h)
        return torch.nn.functional.cross_entropy(h, yb)

    def train(xb, yb):
        loss = forward(xb, yb)
        grads = torch.autograd.grad(loss, state)
        with torch.no_grad():
            for p, g in zip(state, grads):
                p -= LR * g
        return loss.detach()

    fn = torch.compile(train) if compiled else train

    def step(xb, yb):
        return float(fn(torch.from_numpy(xb), torch.from_numpy(yb)))

    return step


def jax_ref(spec, params):
    import jax
    import jax.numpy as jnp

    n = len(spec["layers"]) - 1
    per = 2 if spec["bias"] else 1

    def loss_fn(state, xb, yb):
        h = xb
        for i in range(n):
            h = h @ state[per * i]
            if spec["bias"]:
                h = h + state[per * i + 1]
            if i < n - 1:
                h = jax.nn.relu(h)
        lse = jax.nn.logsumexp(h, axis=1)
        return jnp.mean(lse - jnp.take_along_axis(h, yb[:, None], axis=1)[:, 0])

    @jax.jit
    def train(state, xb, yb):
        loss, grads = jax.value_and_grad(loss_fn)(state, xb, yb)
        return loss, [p - LR * g for p, g in zip(state, grads)]

    holder = [[jnp.asarray(p) for p in params]]

    def step(xb, yb):
        loss, holder[0] = train(holder[0], xb, yb)
        return float(loss)

    return step


def pytensor_ref(spec, params):
    import pytensor
    import pytensor.tensor as pt

    n = len(spec["layers"]) - 1
    per = 2 if spec["bias"] else 1
    shared = [pytensor.shared(p.copy()) for p in params]
    xb, yb = pt.matrix("x", dtype="float32"), pt.vector("y", dtype="int64")
    h = xb
    for i in range(n):
        h = h @ shared[per * i]
        if spec["bias"]:
            h = h + shared[per * i + 1]
        if i < n - 1:
            h = pt.maximum(h, 0)
    m = h.max(axis=1, keepdims=True)
    lse = pt.log(pt.exp(h - m).sum(axis=1)) + m[:, 0]
    loss = pt.mean(lse - h[pt.arange(yb.shape[0]), yb])
    grads = pytensor.grad(loss, shared)
    fn = pytensor.function([xb, yb], loss, updates=[(p, p - np.float32(LR) * g) for p, g in zip(shared, grads)])
    return lambda a, b: float(fn(a, b))


REFERENCES = {"numpy": numpy_ref, "torch": torch_ref, "torch.compile": lambda s, p: torch_ref(s, p, True),
              "jax.jit": jax_ref, "pytensor": pytensor_ref}


def worker(args):
    results = []
    for name in args.workloads.split(","):
        spec = WORKLOADS[name]
        params = init_params(spec)
        steps_check = 5
        X, y = data(spec["batch"], 64)
        batches = [(X[i * spec["batch"]:(i + 1) * spec["batch"]], y[i * spec["batch"]:(i + 1) * spec["batch"]])
                   for i in range(64)]
        impls, compile_info = {}, {}
        step, prog, t0 = ours(spec, params)
        step(*batches[0])
        compile_info["cold_or_cached_s"] = time.perf_counter() - t0
        compile_info["cache"] = prog.stats["cache"]
        impls["symdiff"] = step
        for ref, make in REFERENCES.items():
            if args.only and ref not in args.only.split(","):
                continue
            if ref != "numpy" and os.environ.get("SYMDIFF_BENCH_NUMPY_ONLY"):
                continue
            try:
                impls[ref] = make(spec, params)
            except ImportError:
                continue
        # agreement: the same losses over the first steps from the same weights
        fresh = {}
        step_fresh, _, _ = ours(spec, params)
        fresh["symdiff"] = [step_fresh(*batches[i]) for i in range(steps_check)]
        for ref in impls:
            if ref == "symdiff":
                continue
            f = REFERENCES[ref](spec, params)
            fresh[ref] = [f(*batches[i]) for i in range(steps_check)]
        for ref, losses in fresh.items():
            if not np.allclose(losses, fresh["symdiff"], rtol=2e-3, atol=2e-4):
                raise SystemExit(f"{name}: {ref} losses {losses} disagree with symdiff {fresh['symdiff']}")
        per_step = {k: [] for k in impls}
        names = list(impls)
        for r in range(args.rounds):
            for k in names if r % 2 == 0 else names[::-1]:
                fn, times = impls[k], []
                time.sleep(0.15)  # the previous library's threads stop spinning (OpenBLAS: ~0.1 s)
                fn(*batches[-1])  # and this one's wake up
                for i in range(args.steps):
                    xb, yb = batches[i % len(batches)]
                    t = time.perf_counter()
                    fn(xb, yb)
                    times.append(time.perf_counter() - t)
                per_step[k].append(statistics.median(times))
        from symdiff.lowering import gemm

        results.append({"workload": name, "per_step": per_step, "compile": compile_info,
                        "batch": spec["batch"], "gemm_kernel": gemm.gemm_kernel()})
    print(json.dumps(results))


def measure_compile(workload):
    """Cold (empty cache) and warm (new program object, populated disk cache) compile seconds:
    from ``sd.compile`` to the end of the first call, less one steady-state step (the first call
    runs a step too). ``symdiff.lowering`` is imported first: importing a module is a cost of the
    process, not of a program (and with PYTHONDONTWRITEBYTECODE=1, set on these machines, every
    process recompiles its Python sources: about 40 ms for symdiff.lowering)."""
    code = ("import sys, time; sys.argv=['x']; import bench.train_step as b; import numpy as np;"
            "import symdiff.lowering;"
            f"spec=b.WORKLOADS['{workload}']; p=b.init_params(spec); X,y=b.data(spec['batch'],1);"
            "s,prog,t0=b.ours(spec,p); s(X,y); first=time.perf_counter()-t0; steps=[]\n"
            "for _ in range(5): a=time.perf_counter(); s(X,y); steps.append(time.perf_counter()-a)\n"
            "print(first-min(steps))")
    with tempfile.TemporaryDirectory() as cache:
        env = dict(os.environ, SYMDIFF_CACHE_DIR=cache)
        cold = float(subprocess.run([sys.executable, "-c", code], env=env, check=True, capture_output=True,
                                    text=True).stdout.split()[-1])
        warm = float(subprocess.run([sys.executable, "-c", code], env=env, check=True, capture_output=True,
                                    text=True).stdout.split()[-1])
    return cold, warm


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workloads", default="W1,W2,W3")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--only", default="", help="comma-separated references to run (default: all found)")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.quick:
        args.rounds, args.steps = 3, 20
    if args.worker:
        return worker(args)
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), OPENBLAS_NUM_THREADS=str(args.threads),
               MKL_NUM_THREADS=str(args.threads),
               XLA_FLAGS=" ".join(["--xla_cpu_multi_thread_eigen=true", os.environ.get("XLA_FLAGS", "")]).strip(),
               PYTHONPATH=os.pathsep.join([os.getcwd(), os.environ.get("PYTHONPATH", "")]))
    cmd = [sys.executable, __file__, "--worker", "--workloads", args.workloads, "--rounds", str(args.rounds),
           "--steps", str(args.steps), "--only", args.only]
    slow = {k: os.environ[k] for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE") if k in os.environ}
    runs = [json.loads(subprocess.run(cmd, env=env, check=True, capture_output=True, text=True).stdout)]
    if slow:
        unset = {k: v for k, v in env.items() if k not in slow}
        unset["SYMDIFF_BENCH_NUMPY_ONLY"] = "1"
        runs.append(json.loads(subprocess.run(cmd, env=unset, check=True, capture_output=True, text=True).stdout))
    print(f"# loadavg {open('/proc/loadavg').read().split()[:3]}, threads {args.threads}, "
          f"OPENBLAS vars {slow or 'unset'}; epoch = {EPOCH} samples; per-step: best [worst] round median")
    kernel = runs[0][0]["gemm_kernel"]
    print(f"# symdiff GEMM: {kernel['isa']} kernels (CPU best {kernel['cpu_isa']}), tiles float32 {kernel['float32']}"
          f", float64 {kernel['float64']}; SYMDIFF_CXXFLAGS {os.environ.get('SYMDIFF_CXXFLAGS', 'unset')!r}; "
          f"XLA_FLAGS {env['XLA_FLAGS']!r}")
    print("| workload | implementation | epoch s (best) | epoch s (worst) | symdiff speed-up (best) |")
    print("|---|---|---|---|---|")
    for k, res in enumerate(runs[0]):
        steps = EPOCH / res["batch"]
        rows = dict(res["per_step"])
        if len(runs) > 1:
            rows["numpy (OPENBLAS vars unset)"] = runs[1][k]["per_step"]["numpy"]
        ours_best = min(rows["symdiff"]) * steps
        for name, times in rows.items():
            best, worst = min(times) * steps, max(times) * steps
            print(f"| {res['workload']} | {name} | {best:.4f} | {worst:.4f} | {best / ours_best:.2f}× |")
    print()
    print("| workload | cold compile s | warm compile s |")
    print("|---|---|---|")
    for name in args.workloads.split(","):
        cold, warm = measure_compile(name)
        print(f"| {name} | {cold:.2f} | {warm * 1000:.1f} ms |")


if __name__ == "__main__":
    main()
