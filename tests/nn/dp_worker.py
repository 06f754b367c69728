"""A data-parallel training run for tests/nn/test_distributed.py, launched by it (under
``mpiexec -n 2`` or as one plain process).

    python dp_worker.py OUT --epochs 5 --batch 32 [--distributed] [--resume CKPT] [--checkpoint CKPT]
        [--batchnorm] [--optimizer adam] [--seed-by-rank]
        [--fail-at STEP --fail-rank R --fail-how raise|kill]

Trains a small MLP on the first ``--rows`` of scikit-learn's digits with a global batch of
``--batch`` rows, then writes every state array (and the history's batch losses) to
``OUT.rank<R>.npz``.
"""

import argparse
import os
import signal
import sys

import numpy as np

from symdiff import nn


class FailingLoader:
    """The loader, but rank ``rank`` fails as it fetches global step ``at`` (counted from 1)."""

    def __init__(self, loader, at, rank, how, my_rank):
        self.loader, self.at, self.rank, self.how, self.my_rank = loader, at, rank, how, my_rank
        self.step = 0

    def __len__(self):
        return len(self.loader)

    def set_epoch(self, epoch):
        self.loader.set_epoch(epoch)

    def __iter__(self):
        for batch in self.loader:
            self.step += 1
            if self.my_rank == self.rank and self.step == self.at:
                if self.how == "kill":
                    os.kill(os.getpid(), signal.SIGKILL)
                raise RuntimeError(f"injected failure on rank {self.rank} at step {self.at}")
            yield batch


def build(args, distributed):
    seed = args.seed
    if args.seed_by_rank:  # a mistake on purpose: each rank initializes differently
        from mpi4py import MPI

        seed += MPI.COMM_WORLD.Get_rank()
    nn.init.manual_seed(seed)
    layers = [nn.Linear(64, args.hidden)]
    if args.batchnorm:
        layers.append(nn.BatchNorm1d(args.hidden))
    layers += [nn.ReLU(), nn.Dropout(0.1), nn.Linear(args.hidden, 10)]
    model = nn.Sequential(*layers)
    if args.optimizer == "adam":
        opt = nn.optim.Adam(model.parameters(), lr=0.01)
    else:
        opt = nn.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    return nn.Trainer(model, nn.SoftmaxLoss(), opt, backend=args.backend, seed=args.seed, progress=False,
                      distributed=distributed)


def main(argv=None):
    p = argparse.ArgumentParser()
    p.add_argument("out")
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--rows", type=int, default=320)
    p.add_argument("--hidden", type=int, default=32)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--backend", default="cpu")
    p.add_argument("--optimizer", default="sgd")
    p.add_argument("--distributed", action="store_true")
    p.add_argument("--batchnorm", action="store_true")
    p.add_argument("--seed-by-rank", action="store_true")
    p.add_argument("--checkpoint")
    p.add_argument("--resume")
    p.add_argument("--fail-at", type=int)
    p.add_argument("--fail-rank", type=int, default=1)
    p.add_argument("--fail-how", default="raise")
    args = p.parse_args(argv)

    X, y = nn.data.load_digits()
    dataset = nn.data.ArrayDataset(X[:args.rows], y[:args.rows])
    loader = nn.data.DataLoader(dataset, batch_size=args.batch, shuffle=True, seed=args.seed)
    if args.resume:
        trainer = nn.Trainer.load(args.resume, progress=False, distributed=args.distributed)
    else:
        trainer = build(args, args.distributed)
    rank = trainer.distributed.rank if trainer.distributed else 0
    if args.fail_at:
        loader = FailingLoader(loader, args.fail_at, args.fail_rank, args.fail_how, rank)
    trainer.fit(loader, epochs=args.epochs, checkpoint_path=args.checkpoint)
    arrays = {f"model/{k}": v for k, v in trainer.model.state_dict().items()}
    arrays.update({f"optimizer/{k}": v for k, v in trainer.optimizer.state_dict().items()})
    arrays["batch_loss"] = np.array(trainer.history["batch_loss"])
    np.savez(f"{args.out}.rank{rank}.npz", **arrays)
    if trainer.distributed:
        d = trainer.distributed
        print(f"rank {rank} of {d.size}: {d.steps} steps, allreduce {d.allreduce_seconds:.4f} s, "
              f"compute {d.compute_seconds:.4f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
