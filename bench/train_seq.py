"""Per-step time of compiled sequence-model training steps against PyTorch CPU, issue 16.

    /tmp/bench-venv/bin/python bench/train_seq.py [--workloads lstm,transformer] [--threads 1,2]
        [--steps 10] [--rounds 3] [--no-compile]

Run with the package built (``make test`` once) and torch==2.13.0 (bench extras) in the
virtualenv that runs this script; symdiff is imported from the tree (an editable install).
Each workload and thread count runs in a fresh process with ``OMP_NUM_THREADS`` set and
``torch.set_num_threads``:

- ``lstm``: the character LSTM's whole training step (embedding 64, 2 layers of hidden 256,
  decoder over 96 characters, softmax cross-entropy, SGD) on (T, B) = (64, 32) windows: ours is
  :class:`~symdiff.nn.language_model.LanguageModelTrainer`'s compiled program (one ``sd.scan`` per
  layer), PyTorch's is ``nn.Embedding`` + ``nn.LSTM`` (oneDNN/MKL kernels) + ``nn.Linear`` +
  ``CrossEntropyLoss``, ``zero_grad, forward, backward, step``;
- ``transformer``: one pre-norm GELU block (d = 128, 4 heads, feed-forward 512, causal mask, no
  dropout) on (T, B, d) = (128, 32, 128), loss mean(Y ⊙ C) for a fixed C, SGD: ours compiled
  against ``nn.TransformerEncoderLayer`` eager and under ``torch.compile``.

Both start from the same weights, and their losses of the first 3 steps must agree (float32,
rtol 2e-3) before anything is timed. Times are the median step of each round, rounds
alternating the order of the implementations; best [worst] round. Then our step is compiled
again with ``SYMDIFF_PROFILE=1`` and the time per kernel kind (gemm, loop, reduce, scan, ...)
is printed: where the time goes.
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

LR = 0.1
VOCAB, EMBED, HIDDEN, LAYERS, T_LSTM, B_LSTM = 96, 64, 256, 2, 64, 32
D, HEADS, FF, T_TF, B_TF = 128, 4, 512, 128, 32


# -- our steps ------------------------------------------------------------------------------------


def ours_lstm():
    from symdiff.nn.language_model import CharLSTM, LanguageModelTrainer

    from symdiff import nn

    nn.init.manual_seed(0)
    model = CharLSTM(VOCAB, embed=EMBED, hidden=HIDDEN, num_layers=LAYERS)
    lm = LanguageModelTrainer(model, nn.optim.SGD(model.parameters(), lr=LR), T_LSTM, B_LSTM)

    def build(fresh=False):
        began = time.perf_counter()
        if fresh:
            lm._programs.clear()
        program, _ = lm._program("train", T_LSTM, B_LSTM)
        return program, time.perf_counter() - began

    def step(program, x, y):
        lm.optimizer.begin_step()
        return float(program(x, y, *lm._zero_state(B_LSTM), *(s.data for s in lm._states),
                             *lm.optimizer.arguments())[0])

    return model, lm, build, step


def ours_transformer(C):
    import symdiff as sd
    from symdiff import nn

    nn.init.manual_seed(0)
    layer = nn.TransformerEncoderLayer(D, HEADS, dim_feedforward=FF, dropout=0.0, activation="gelu",
                                       norm_first=True)
    layer.name_leaves()
    optimizer = nn.optim.SGD(layer.parameters(), lr=LR)
    X = sd.tensor("X", (T_TF, B_TF, D), "float32")
    loss = sd.mean(layer(X, causal=True) * sd.constant(C))
    params = [p.leaf for _, p in layer.named_parameters()]
    updates = optimizer.updates(sd.grad(loss, params))

    def build(fresh=False):
        began = time.perf_counter()
        program = sd.compile([loss], [X, *params, *optimizer.leaves()], updates=updates)
        return program, time.perf_counter() - began

    def step(program, x, _y=None):
        optimizer.begin_step()
        return float(program(x, *(p.data for _, p in layer.named_parameters()), *optimizer.arguments())[0])

    return layer, optimizer, build, step


# -- PyTorch twins ------------------------------------------------------------------------------


def torch_lstm(model, compiled=False):
    import torch

    tn = torch.nn

    class Twin(tn.Module):
        def __init__(self):
            super().__init__()
            self.embedding = tn.Embedding(VOCAB, EMBED)
            self.lstm = tn.LSTM(EMBED, HIDDEN, LAYERS)
            self.decoder = tn.Linear(HIDDEN, VOCAB)

        def forward(self, ids):
            return self.decoder(self.lstm(self.embedding(ids))[0])

    twin = Twin()
    ours = {n: np.array(p.data) for n, p in model.named_parameters()}
    ours["decoder.weight"] = ours["decoder.weight"].T.copy()  # ours is (in, out), PyTorch's (out, in)
    with torch.no_grad():
        for name, value in twin.state_dict().items():
            value.copy_(torch.from_numpy(ours[name]))
    return _torch_step(twin, lambda out, y: torch.nn.functional.cross_entropy(out.reshape(-1, VOCAB),
                                                                               y.reshape(-1)), compiled)


def torch_transformer(layer, C, compiled=False):
    import torch

    twin = torch.nn.TransformerEncoderLayer(D, HEADS, dim_feedforward=FF, dropout=0.0, activation="gelu",
                                            norm_first=True)
    with torch.no_grad():
        state = twin.state_dict()
        for name, p in layer.named_parameters():
            state[name].copy_(torch.from_numpy(np.array(p.data)))
    mask = torch.nn.Transformer.generate_square_subsequent_mask(T_TF)
    c = torch.from_numpy(C)

    class Causal(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.layer = twin

        def forward(self, x):
            return self.layer(x, src_mask=mask, is_causal=True)

    return _torch_step(Causal(), lambda out, _y: (out * c).mean(), compiled)


def _torch_step(module, loss_fn, compiled):
    import torch

    module.train()
    opt = torch.optim.SGD(module.parameters(), lr=LR)
    forward = torch.compile(module) if compiled else module

    def step(x, y=None):
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(forward(torch.from_numpy(x)), None if y is None else torch.from_numpy(y))
        loss.backward()
        opt.step()
        return float(loss)

    return step


# -- one process ----------------------------------------------------------------------------------


def timed(step, batches, steps):
    times = []
    for k in range(steps):
        x, y = batches[k % len(batches)]
        t0 = time.perf_counter()
        step(x, y)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def kernel_kinds(build, step, batches, steps):
    """Seconds per kernel kind over ``steps`` calls of the step compiled with profiling on."""
    os.environ["SYMDIFF_PROFILE"] = "1"  # read when the program is made
    try:
        program, _ = build(fresh=True)
    finally:
        del os.environ["SYMDIFF_PROFILE"]
    for k in range(steps):
        step(program, *batches[k % len(batches)])
    kinds: dict = {}
    for row in program.profile():
        kinds.setdefault(row["kind"], [0.0, 0])
        kinds[row["kind"]][0] += row["seconds"] / steps
        kinds[row["kind"]][1] += 1
    return dict(sorted(kinds.items(), key=lambda kv: -kv[1][0]))


def worker(args):
    import copy

    import torch

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    rng = np.random.default_rng(1)
    result = {"workload": args.workload, "threads": args.threads}
    if args.workload == "lstm":
        model, _, build, step = ours_lstm()
        batches = [(rng.integers(1, VOCAB, (T_LSTM, B_LSTM)).astype(np.int64),
                    rng.integers(1, VOCAB, (T_LSTM, B_LSTM)).astype(np.int64)) for _ in range(4)]
        twins = {"eager": lambda: torch_lstm(copy.deepcopy(model))}
        if not args.no_compile:
            twins["compile"] = lambda: torch_lstm(copy.deepcopy(model), compiled=True)
    else:
        C = rng.standard_normal((T_TF, B_TF, D)).astype(np.float32)
        model, _, build, step = ours_transformer(C)
        batches = [(rng.standard_normal((T_TF, B_TF, D)).astype(np.float32), None) for _ in range(4)]
        twins = {"eager": lambda: torch_transformer(copy.deepcopy(model), C)}
        if not args.no_compile:
            twins["compile"] = lambda: torch_transformer(copy.deepcopy(model), C, compiled=True)
    impls = {name: make() for name, make in twins.items()}  # twins copy the initial weights
    program, _ = build()

    def ours(x, y):
        return step(program, x, y)

    t0 = time.perf_counter()  # the first call compiles (or loads from the cache)
    losses = {"ours": [ours(*batches[0])]}
    result["compile_s"] = time.perf_counter() - t0
    losses["ours"] += [ours(*batches[k]) for k in (1, 2)]
    for name, f in impls.items():
        t0 = time.perf_counter()
        losses[name] = [f(*batches[k]) for k in range(3)]
        result[f"{name}_first_steps_s"] = time.perf_counter() - t0
    result["losses"] = losses
    if not all(np.allclose(losses["ours"], v, rtol=2e-3) for v in losses.values()):
        result["error"] = "losses differ"
        return result
    impls = {"ours": ours, **impls}
    rounds = {k: [] for k in impls}
    for r in range(args.rounds):
        for name in (list(impls) if r % 2 == 0 else list(impls)[::-1]):
            time.sleep(0.1)
            rounds[name].append(timed(impls[name], batches, args.steps))
    result["step_s"] = {k: (min(v), max(v)) for k, v in rounds.items()}
    result["kinds"] = kernel_kinds(build, step, batches, args.steps)
    return result


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--workloads", default="lstm,transformer")
    p.add_argument("--threads", default="1,2")
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--no-compile", action="store_true", help="skip torch.compile")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        args.workload, args.threads = args.workloads, int(args.threads)
        print(json.dumps(worker(args)))
        return
    lscpu = subprocess.run(["lscpu"], check=False, capture_output=True, text=True).stdout
    model_line = next((ln.split(":", 1)[1].strip() for ln in lscpu.splitlines() if ln.startswith("Model name")), "?")
    print(f"# {model_line}; loadavg {os.getloadavg()[0]:.2f}; per-step median ms, best [worst] of {args.rounds} "
          f"rounds of {args.steps} steps")
    print(f"{'workload':11} {'thr':>3} {'ours':>17} {'eager':>17} {'compile':>17} {'vs eager':>8} {'vs compile':>10} "
          f"{'our 1st call s':>14}")
    for workload in args.workloads.split(","):
        for threads in (int(t) for t in args.threads.split(",")):
            env = dict(os.environ, OMP_NUM_THREADS=str(threads))
            cmd = [sys.executable, __file__, "--worker", "--workloads", workload, "--threads", str(threads),
                   "--steps", str(args.steps), "--rounds", str(args.rounds)] + ["--no-compile"] * args.no_compile
            out = subprocess.run(cmd, check=False, env=env, capture_output=True, text=True)
            if out.returncode:
                print(f"{workload:11} {threads:3} failed: {out.stderr.strip().splitlines()[-3:]}")
                continue
            r = json.loads(out.stdout.strip().splitlines()[-1])
            if "error" in r:
                print(f"{workload:11} {threads:3} {r['error']}: {r['losses']}")
                continue
            s = r["step_s"]
            cells = {k: f"{v[0] * 1e3:7.1f} [{v[1] * 1e3:7.1f}]" for k, v in s.items()}
            ratios = {k: f"{v[0] / s['ours'][0]:.2f}" for k, v in s.items()}
            print(f"{workload:11} {threads:3} {cells['ours']:>17} {cells.get('eager', '-'):>17} "
                  f"{cells.get('compile', '-'):>17} {ratios.get('eager', '-'):>8} {ratios.get('compile', '-'):>10} "
                  f"{r['compile_s']:14.1f}", flush=True)
            total = sum(v[0] for v in r["kinds"].values())
            print(f"{'':15} ours per kernel kind (ms/step, kernels): " + ", ".join(
                f"{k} {v[0] * 1e3:.1f} ({v[0] / total:.0%}, {v[1]})" for k, v in r["kinds"].items()), flush=True)


if __name__ == "__main__":
    main()
