"""Data-parallel throughput: the MLP 784→256→10 on MNIST, one process against 1 and 2 MPI ranks.

    .venv/bin/python bench/train_dp.py [--mnist ../shared/data/mnist] [--epochs 3] [--batch 256]
        [--ranks 1,2] [--mpiexec-args "-hostfile hosts"]

Each configuration runs in its own processes with OMP_NUM_THREADS=1 (one core per rank), on the
same global batch (``--batch`` rows, split across the ranks): strong scaling, so the ideal for
2 ranks is 2x the samples/s of 1. Rows:

* ``fused``: one process, ``nn.Trainer`` without ``distributed``: the one compiled program that
  does forward, backward and update (the baseline);
* ``N rank(s)``: ``mpiexec -n N`` with ``distributed=True``: gradient program, one in-place
  ``Allreduce`` of one flat buffer, update program.

The first epoch compiles and is not timed; then ``--epochs`` epochs are timed between barriers
with ``MPI.Wtime``. Time in Allreduce is measured around the call on each rank (the slowest
rank's is shown; it includes waiting for the other rank to arrive: load imbalance shows here).
On a cluster the same script runs unchanged with ``--mpiexec-args "-hostfile hosts"`` and larger
``--ranks`` (docs/distributed.md).
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

HIDDEN, LR, MOMENTUM = 256, 0.05, 0.9
MNIST = Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist"


def worker(args) -> None:
    """One run (under mpiexec or not): prints one JSON line from rank 0."""
    from symdiff.nn import data

    from symdiff import nn

    X, y = data.load_mnist(*data.find_mnist_idx(args.mnist, "t10k"))
    nn.init.manual_seed(0)
    model = nn.Sequential(nn.Linear(784, HIDDEN), nn.ReLU(), nn.Linear(HIDDEN, 10))
    opt = nn.optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM)
    trainer = nn.Trainer(model, nn.SoftmaxLoss(), opt, progress=False, distributed=args.distributed)
    loader = data.DataLoader(data.ArrayDataset(X, y), batch_size=args.batch, shuffle=True, seed=0, drop_last=True)
    trainer.fit(loader, epochs=1)  # compiles
    d = trainer.distributed
    if d is not None:
        from mpi4py import MPI

        d.comm.Barrier()
        d.allreduce_seconds = d.compute_seconds = 0.0
        begun = MPI.Wtime()
    else:
        begun = time.perf_counter()
    trainer.fit(loader, epochs=args.epochs)
    if d is not None:
        d.comm.Barrier()
        seconds = MPI.Wtime() - begun
        allreduce = max(d.comm.allgather(d.allreduce_seconds))
        ranks, rank = d.size, d.rank
    else:
        seconds, allreduce, ranks, rank = time.perf_counter() - begun, 0.0, 0, 0
    steps = args.epochs * len(loader)
    if rank == 0:
        print(json.dumps({"ranks": ranks, "seconds": seconds, "samples_per_second": steps * args.batch / seconds,
                          "allreduce_seconds": allreduce, "steps": steps,
                          "loss": trainer.history["loss"][-1], "accuracy": trainer.history["accuracy"][-1]}))


def launch(args, ranks: int | None) -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    own = [sys.executable, __file__, "--worker", "--mnist", str(args.mnist), "--epochs", str(args.epochs),
           "--batch", str(args.batch)]
    if ranks is None:
        command = own
    else:
        mpiexec = str(Path(sys.executable).with_name("mpiexec"))
        command = [mpiexec, "-n", str(ranks), *shlex.split(args.mpiexec_args), *own, "--distributed"]
    result = subprocess.run(command, check=False, env=env, capture_output=True, text=True, timeout=600)
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{result.stdout}{result.stderr}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--mnist", type=Path, default=MNIST, help="folder with t10k-images/labels IDX files")
    p.add_argument("--epochs", type=int, default=3, help="timed epochs (after one untimed)")
    p.add_argument("--batch", type=int, default=256, help="global batch")
    p.add_argument("--ranks", default="1,2", help="comma list of rank counts")
    p.add_argument("--mpiexec-args", default="", help="passed to mpiexec, e.g. \"-hostfile hosts\"")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--distributed", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        worker(args)
        return 0
    rows = [("fused, 1 process", launch(args, None))]
    rows += [(f"{n} rank{'s' if n > 1 else ''}", launch(args, n)) for n in map(int, args.ranks.split(","))]
    base = next((r for name, r in rows if r["ranks"] == 1), rows[0][1])["samples_per_second"]
    print(f"MLP 784-{HIDDEN}-10, SGD momentum, MNIST t10k (10,000 images), global batch {args.batch}, "
          f"{rows[0][1]['steps']} timed steps, OMP_NUM_THREADS=1 per process\n")
    print("| run | samples/s | speedup vs 1 rank | time in Allreduce | share of the time | final loss |")
    print("|---|---|---|---|---|---|")
    for name, r in rows:
        print(f"| {name} | {r['samples_per_second']:,.0f} | {r['samples_per_second'] / base:.2f}x | "
              f"{r['allreduce_seconds']:.3f} s | {r['allreduce_seconds'] / r['seconds']:.1%} | {r['loss']:.4f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
