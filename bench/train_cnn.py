"""Per-step time of a compiled CNN training step against PyTorch CPU, issue 15.

    /tmp/bench-venv/bin/python bench/train_cnn.py [--models lenet,resnet9] [--batches 64,128]
        [--threads 1,2] [--steps 30] [--rounds 5] [--no-compile] [--layers]

Run with the package built (``make test`` once) and torch==2.13.0 (bench extras) in the
virtualenv that runs this script; symdiff is imported from the tree (an editable install).
For each model (``nn.LeNet5(batchnorm=True)``, ``nn.ResNet9()``), batch size and thread count,
in a fresh process with ``OMP_NUM_THREADS`` set and ``torch.set_num_threads``:

1. the symdiff model's weights are copied into an equal PyTorch model (same layers, PyTorch's
   parameter layouts), and both take 3 steps of SGD (lr 0.05, momentum 0.9) on the same
   batches; their losses must agree (float32, rtol 2e-3) before anything is timed;
2. per-step time (forward, gradients, the optimizer update, BatchNorm statistics: one call of
   our compiled step; ``zero_grad, forward, backward, step`` for PyTorch eager, and the same
   with ``torch.compile(model)``), the median of each round's steps, rounds alternating the
   order of the implementations; best [worst] round;
3. peak memory of a step: our arena bytes plus the step's inputs and outputs, against
   PyTorch's growth of the process's peak RSS over its steps (PyTorch CPU keeps no allocator
   statistics) -- indicative only.

``--layers`` adds the per-layer table: every convolution of the model at its shape, forward,
input gradient and weight gradient, each compiled alone (ours) against ``F.conv2d`` and
``torch.nn.grad.conv2d_input`` / ``conv2d_weight`` (PyTorch's oneDNN or native kernels).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time

import numpy as np

LR, MOMENTUM = 0.05, 0.9


def _model(name):
    from symdiff import nn

    if name == "lenet":
        return nn.LeNet5(batchnorm=True)
    if name == "resnet9":
        return nn.ResNet9()
    raise SystemExit(f"unknown model {name!r}: lenet or resnet9")


# -- PyTorch twin -------------------------------------------------------------------------------


def torch_twin(module):
    """A PyTorch module computing what our ``module`` does, with its weights."""
    import torch

    from symdiff import nn

    tn = torch.nn
    if isinstance(module, nn.Sequential):
        return tn.Sequential(*[torch_twin(m) for m in module.layers])
    if isinstance(module, nn.Residual):
        inner = torch_twin(module.fn)

        class Residual(tn.Module):
            def __init__(self):
                super().__init__()
                self.fn = inner

            def forward(self, x):
                return self.fn(x) + x

        return Residual()
    if isinstance(module, nn.Conv2d):
        w = module.weight.data
        conv = tn.Conv2d(w.shape[1] * module.groups, w.shape[0], tuple(w.shape[2:]), stride=module.stride,
                         padding=module.padding, dilation=module.dilation, groups=module.groups,
                         bias=module.bias is not None)
        with torch.no_grad():
            conv.weight.copy_(torch.from_numpy(np.array(w)))
            if module.bias is not None:
                conv.bias.copy_(torch.from_numpy(np.array(module.bias.data)))
        return conv
    if isinstance(module, nn.BatchNorm2d):
        bn = tn.BatchNorm2d(module.num_features, eps=module.eps, momentum=module.momentum)
        with torch.no_grad():
            bn.weight.copy_(torch.from_numpy(np.array(module.weight.data)))
            bn.bias.copy_(torch.from_numpy(np.array(module.bias.data)))
        return bn
    if isinstance(module, nn.Linear):
        w = np.array(module.weight.data)  # ours is (in, out), PyTorch's (out, in)
        lin = tn.Linear(w.shape[0], w.shape[1], bias=module.bias is not None)
        with torch.no_grad():
            lin.weight.copy_(torch.from_numpy(w.T.copy()))
            if module.bias is not None:
                lin.bias.copy_(torch.from_numpy(np.array(module.bias.data)))
        return lin
    if isinstance(module, nn.ReLU):
        return tn.ReLU()
    if isinstance(module, nn.MaxPool2d):
        return tn.MaxPool2d(module.kernel_size, module.stride, module.padding)
    if isinstance(module, nn.AvgPool2d):
        return tn.AvgPool2d(module.kernel_size, module.stride, module.padding)
    if isinstance(module, nn.Flatten):
        return tn.Flatten()
    raise SystemExit(f"no PyTorch twin for {type(module).__name__}")


def conv_shapes(module, x_shape):
    """(x shape, conv module) of every convolution, by running the PyTorch twin with hooks."""
    import torch

    twin, found = torch_twin(module), []
    for m in twin.modules():
        if isinstance(m, torch.nn.Conv2d):
            m.register_forward_hook(lambda mod, inp, out: found.append((tuple(inp[0].shape), mod)))
    twin.eval()
    with torch.no_grad():
        twin(torch.zeros(x_shape))
    return found


# -- one process: one model, batch and thread count ---------------------------------------------


def batches(n, batch, seed=1):
    rng = np.random.default_rng(seed)
    X = rng.random((n, batch, 1, 28, 28), dtype=np.float32)
    y = rng.integers(0, 10, (n, batch)).astype(np.int64)
    return X, y


def ours(model, steps_X, steps_y):
    import symdiff as sd
    from symdiff import nn

    trainer = nn.Trainer(model, nn.SoftmaxLoss(), nn.optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM),
                         progress=False)
    trainer._check_batch(steps_X[0], steps_y[0], "bench")
    outputs, inputs, updates, masks = trainer.step_graph()
    begun = time.perf_counter()
    program = sd.compile(outputs, inputs, updates=updates)
    compile_s = time.perf_counter() - begun

    def step(X, y):
        trainer.optimizer.begin_step()
        args = [X, y, *(s.data for s in trainer._states), *trainer.optimizer.arguments()]
        return float(program(*args)[0])

    return step, program, compile_s


def torch_step(model, compiled=False):
    import torch

    twin = torch_twin(model)
    twin.train()
    opt = torch.optim.SGD(twin.parameters(), lr=LR, momentum=MOMENTUM)
    loss_fn = torch.nn.CrossEntropyLoss()
    forward = torch.compile(twin) if compiled else twin

    def step(X, y):
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(forward(torch.from_numpy(X)), torch.from_numpy(y))
        loss.backward()
        opt.step()
        return float(loss)

    return step


def timed(step, X, y, steps):
    times = []
    for k in range(steps):
        t0 = time.perf_counter()
        step(X[k % len(X)], y[k % len(y)])
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def worker(args):
    import torch

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    import symdiff as sd  # noqa: F401

    model = _model(args.model)
    X, y = batches(8, args.batch)
    result = {"model": args.model, "batch": args.batch, "threads": args.threads}
    # same weights, same first steps: losses agree before timing (fresh copies of the model)
    ours_step, program, compile_s = ours(_model_copy(model), X, y)
    eager = torch_step(_model_copy(model))
    ours_losses = [ours_step(X[k], y[k]) for k in range(3)]
    torch_losses = [eager(X[k], y[k]) for k in range(3)]
    result["losses"] = {"ours": ours_losses, "torch": torch_losses}
    if not np.allclose(ours_losses, torch_losses, rtol=2e-3):
        result["error"] = "losses differ"
        return result
    result["compile_s"] = compile_s
    impls = {"ours": ours_step, "eager": eager}
    if not args.no_compile:
        comp = torch_step(_model_copy(model), compiled=True)
        t0 = time.perf_counter()
        for k in range(3):
            comp(X[k], y[k])
        result["torch_compile_s"] = time.perf_counter() - t0
        impls["compile"] = comp
    for f in impls.values():  # warm
        timed(f, X, y, 3)
    rounds = {k: [] for k in impls}
    order = list(impls)
    for r in range(args.rounds):
        for name in (order if r % 2 == 0 else order[::-1]):
            time.sleep(0.1)
            rounds[name].append(timed(impls[name], X, y, args.steps))
    result["step_s"] = {k: (min(v), max(v)) for k, v in rounds.items()}
    result["arena_bytes"] = program.stats["arena_bytes"]
    result["peak_bytes"] = program.stats["peak_bytes"]
    if args.layers:
        result["layers"] = layer_table(model, args)
    return result


def _model_copy(model):
    import copy

    return copy.deepcopy(model)


def layer_table(model, args):
    import torch
    import torch.nn.functional as F

    import symdiff as sd

    rows = []
    for x_shape, conv in conv_shapes(model, (args.batch, 1, 28, 28)):
        w_shape = tuple(conv.weight.shape)
        kw = dict(stride=conv.stride, padding=conv.padding, dilation=conv.dilation, groups=conv.groups)
        rng = np.random.default_rng(0)
        x = rng.standard_normal(x_shape).astype(np.float32)
        w = rng.standard_normal(w_shape).astype(np.float32)
        Xs, Ws = sd.tensor("X", x_shape, "float32"), sd.tensor("W", w_shape, "float32")
        Y = sd.conv2d(Xs, Ws, **kw)
        c = rng.standard_normal(tuple(int(d) for d in Y.shape)).astype(np.float32)
        Cs = sd.tensor("C", Y.shape, "float32")
        dx, dw = sd.vjp(Y, [Xs, Ws], Cs)
        progs = {"forward": (sd.compile([Y], [Xs, Ws]), (x, w)),
                 "input grad": (sd.compile([dx], [Cs, Ws]), (c, w)),
                 "weight grad": (sd.compile([dw], [Xs, Cs]), (x, c))}
        tx, tw, tc = (torch.from_numpy(a) for a in (x, w, c))
        refs = {"forward": lambda: F.conv2d(tx, tw, **kw),
                "input grad": lambda: torch.nn.grad.conv2d_input(x_shape, tw, tc, **kw),
                "weight grad": lambda: torch.nn.grad.conv2d_weight(tx, w_shape, tc, **kw)}
        for part, (prog, inputs) in progs.items():
            got = prog(*inputs)[0] if isinstance(prog(*inputs), (list, tuple)) else prog(*inputs)
            want = refs[part]().numpy()
            ok = bool(np.allclose(got, want, rtol=1e-3, atol=1e-3 * float(np.abs(want).max())))
            mine = _best(lambda: prog(*inputs))
            theirs = _best(refs[part])
            rows.append({"x": x_shape, "w": w_shape, "kw": {k: list(v) if isinstance(v, tuple) else v
                                                           for k, v in kw.items()},
                         "part": part, "ours_s": mine, "torch_s": theirs, "equal": ok})
    return rows


def _best(f, rounds=5, calls=10):
    for _ in range(3):
        f()
    best = float("inf")
    for _ in range(rounds):
        t0 = time.perf_counter()
        for _ in range(calls):
            f()
        best = min(best, (time.perf_counter() - t0) / calls)
    return best


def peak_rss_growth(kind, model, batch, threads):
    """Growth of the peak RSS over steps of one implementation, in a process of its own."""
    env = dict(os.environ, OMP_NUM_THREADS=str(threads))
    cmd = [sys.executable, __file__, "--rss", kind, "--models", model, "--batches", str(batch),
           "--threads", str(threads)]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)
    return int(out.stdout.strip().splitlines()[-1])


def rss_worker(args):
    import torch

    torch.set_num_threads(args.threads)
    model = _model(args.model)
    X, y = batches(4, args.batch)
    step = ours(model, X, y)[0] if args.rss == "ours" else torch_step(model)
    step(X[0], y[0])  # the first call compiles (ours) or allocates (PyTorch): growth is counted after it
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    for k in range(10):
        step(X[k % 4], y[k % 4])
    print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) * 1024)


def compile_worker(args):
    """sd.compile of the model's training step to its first result, in this process."""
    import symdiff.lowering  # noqa: F401  (imported before the clock starts, as a user's process has it)

    import symdiff as sd

    model = _model(args.model)
    X, y = batches(1, args.batch)
    begun = time.perf_counter()
    step, program, _ = ours(model, X, y)
    step(X[0], y[0])
    print(json.dumps({"seconds": time.perf_counter() - begun, "cache": program.stats["cache"],
                      "kernels": program.stats["kernels"], "source_bytes": len(program.source)}))
    del sd


def compile_times(model, batch):
    """Cold (an empty program cache) and warm (the cache it filled, a new process) compile times."""
    import tempfile

    with tempfile.TemporaryDirectory() as cache:
        env = dict(os.environ, SYMDIFF_CACHE_DIR=cache)
        cmd = [sys.executable, __file__, "--compile-worker", "--models", model, "--batches", str(batch)]
        runs = [json.loads(subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)
                           .stdout.strip().splitlines()[-1]) for _ in range(2)]
    return runs


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--models", default="lenet,resnet9")
    p.add_argument("--batches", default="64,128")
    p.add_argument("--threads", default="1,2")
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--no-compile", action="store_true", help="skip torch.compile")
    p.add_argument("--layers", action="store_true", help="the per-layer table")
    p.add_argument("--memory", action="store_true", help="peak RSS growth of ours and PyTorch eager over 10 steps")
    p.add_argument("--compile-time", action="store_true", help="cold and warm compile time of each model's step")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--compile-worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--rss", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.compile_worker:
        args.model, args.batch = args.models, int(args.batches)
        compile_worker(args)
        return
    if args.compile_time:
        for model in args.models.split(","):
            batch = int(args.batches.split(",")[0])
            cold, warm = compile_times(model, batch)
            print(f"# {model} step, batch {batch}: cold {cold['seconds']:.2f} s (cache {cold['cache']}, "
                  f"{cold['kernels']} kernels, {cold['source_bytes']:,} bytes of C++), warm {warm['seconds']:.3f} s "
                  f"(cache {warm['cache']}); loadavg {os.getloadavg()[0]:.2f}")
        return
    if args.worker or args.rss:
        args.model, args.batch, args.threads = args.models, int(args.batches), int(args.threads)
        if args.rss:
            rss_worker(args)
        else:
            print(json.dumps(worker(args)))
        return
    lscpu = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
    model_line = next((ln.split(":", 1)[1].strip() for ln in lscpu.splitlines() if ln.startswith("Model name")), "?")
    print(f"# {model_line}; loadavg {os.getloadavg()}; per-step median ms, best [worst] of {args.rounds} rounds")
    print(f"{'model':8} {'batch':>5} {'thr':>3} {'ours':>15} {'eager':>15} {'compile':>15} {'vs eager':>9} "
          f"{'vs compile':>10} {'arena MB':>8}")
    layer_rows = []
    for model in args.models.split(","):
        for batch in (int(b) for b in args.batches.split(",")):
            for threads in (int(t) for t in args.threads.split(",")):
                env = dict(os.environ, OMP_NUM_THREADS=str(threads))
                cmd = [sys.executable, __file__, "--worker", "--models", model, "--batches", str(batch),
                       "--threads", str(threads), "--steps", str(args.steps), "--rounds", str(args.rounds)]
                cmd += ["--no-compile"] * args.no_compile + ["--layers"] * (args.layers and threads == 1)
                out = subprocess.run(cmd, env=env, capture_output=True, text=True)
                if out.returncode:
                    print(f"{model:8} {batch:5} {threads:3} failed: {out.stderr.strip().splitlines()[-1:]}")
                    continue
                r = json.loads(out.stdout.strip().splitlines()[-1])
                if "error" in r:
                    print(f"{model:8} {batch:5} {threads:3} {r['error']}: {r['losses']}")
                    continue
                s = r["step_s"]
                cell = lambda k: (f"{s[k][0] * 1e3:6.2f} [{s[k][1] * 1e3:6.2f}]" if k in s else "-")  # noqa: E731
                ratio = lambda k: (f"{s[k][0] / s['ours'][0]:.2f}" if k in s else "-")  # noqa: E731
                print(f"{model:8} {batch:5} {threads:3} {cell('ours'):>15} {cell('eager'):>15} {cell('compile'):>15} "
                      f"{ratio('eager'):>9} {ratio('compile'):>10} {r['arena_bytes'] / 2**20:8.1f}", flush=True)
                layer_rows += [(model, batch, row) for row in r.get("layers", [])]
                if args.memory:
                    grow = {kind: peak_rss_growth(kind, model, batch, threads) for kind in ("ours", "torch")}
                    print(f"{'':8} {'':5} {'':3} memory: arena {r['arena_bytes'] / 2**20:.1f} MB, peak RSS growth "
                          f"over 10 steps: ours {grow['ours'] / 2**20:.1f} MB, PyTorch eager {grow['torch'] / 2**20:.1f} MB")
    if layer_rows:
        print("\n# per layer, 1 thread: best of 5 rounds of 10 calls, ms; ratio = PyTorch / ours")
        print(f"{'model':8} {'batch':>5} {'x':>18} {'w':>16} {'part':>12} {'ours':>8} {'torch':>8} {'ratio':>6} equal")
        for model, batch, row in layer_rows:
            print(f"{model:8} {batch:5} {tuple(row['x'])!s:>18} {tuple(row['w'])!s:>16} {row['part']:>12} "
                  f"{row['ours_s'] * 1e3:8.3f} {row['torch_s'] * 1e3:8.3f} {row['torch_s'] / row['ours_s']:6.2f} "
                  f"{row['equal']}")


if __name__ == "__main__":
    main()
