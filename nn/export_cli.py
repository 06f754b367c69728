"""``symdiff export CHECKPOINT --model KIND -o model.onnx``: a trained checkpoint as ONNX.

The checkpoint is read the way ``nn.Trainer.load`` reads it (the model rebuilt from its saved
description, the weights loaded), and the model's inference graph is written by
:func:`symdiff.nn.onnx_export.export_module`: images models take ``X`` (batch, *features) in the
training dtype, character language models ``ids`` (T, batch) int64 (T dynamic for the LSTM, the
training sequence length for the transformer, whose learned positions need it; ``--seq-len``
sets it). ``--model`` names what the
checkpoint must hold (``auto``, the default, takes what it holds); the batch is a dynamic axis
``m`` unless ``--batch N`` fixes it. Every mistake (a missing or damaged checkpoint, a model that
is not the one named) is one line ``symdiff export: error: ...`` and exit status 2.

>>> main(["nowhere.npz", "-o", "out.onnx"])
2
"""

from __future__ import annotations

import argparse
import sys

from . import checkpoint
from .cli import CNNS, LANGUAGE_MODELS, saved_settings
from .language_model import CharLSTM, CharTransformer, LanguageModelTrainer
from .onnx_export import export_module
from .trainer import Trainer

IMAGE_MODELS = ("softmax", "mlp", *CNNS)
LM_KINDS = {CharLSTM: "lstm", CharTransformer: "transformer"}


class UsageError(ValueError):
    """A command line that names the wrong model or options that do not apply."""


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, as every other mistake (argparse's default adds the usage)
        print(f"symdiff export: error: {message}", file=sys.stderr)
        raise SystemExit(2)


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="symdiff export", description="write a trained checkpoint's model as ONNX")
    p.add_argument("checkpoint", help="a checkpoint written by symdiff train --checkpoint (or Trainer.save)")
    p.add_argument("--model", default="auto", choices=["auto", *IMAGE_MODELS, *LANGUAGE_MODELS],
                   help="the model the checkpoint must hold (auto: whatever it holds)")
    p.add_argument("-o", "--output", required=True, help="the .onnx file to write (atomically)")
    p.add_argument("--batch", type=int, help="a fixed batch size (default: a dynamic axis)")
    p.add_argument("--seq-len", type=int, help="language models: a fixed sequence length (default: dynamic)")
    return p


def _load(path):
    """(model, kind, input shape, input dtype, input name) from the checkpoint at ``path``."""
    arrays = checkpoint.read(path)
    meta = checkpoint.meta_of(path, arrays)
    if meta.get("kind") == LanguageModelTrainer.KIND:
        trainer, _ = LanguageModelTrainer.load(path, backend="numpy")
        kind = LM_KINDS.get(type(trainer.model), type(trainer.model).__name__)
        # a transformer's learned positions need a concrete length: the one it was trained on
        length = trainer.seq_len if isinstance(trainer.model, CharTransformer) else "T"
        return trainer.model, kind, (length, "m"), "int64", "ids"
    trainer = Trainer.load(path, backend="numpy", progress=False)
    if trainer._signature is None:
        raise checkpoint.CheckpointError(f"{path}: the checkpoint does not say what features the model takes "
                                         "(it was saved before training)")
    features, xdt = tuple(trainer._signature[0]), trainer._signature[1]
    return trainer.model, saved_settings(trainer)["model"], ("m", *features), xdt, "X"


def run(args) -> int:
    if args.batch is not None and args.batch < 1:
        raise UsageError(f"--batch must be a positive size, got {args.batch}")
    if args.seq_len is not None and args.seq_len < 1:
        raise UsageError(f"--seq-len must be a positive length, got {args.seq_len}")
    checkpoint.check_output_path(args.output, "-o")
    model, kind, shape, dtype, name = _load(args.checkpoint)
    if args.model != "auto" and args.model != kind:
        raise UsageError(f"{args.checkpoint} holds a {kind} model, not --model {args.model}")
    if args.seq_len is not None and name != "ids":
        raise UsageError("--seq-len applies to the language models (lstm, transformer)")
    if name == "ids":
        shape = (args.seq_len or shape[0], args.batch or "m")
    elif args.batch is not None:
        shape = (args.batch, *shape[1:])
    proto = export_module(model, args.output, shape, dtype=dtype, input_names=[name])
    graph = proto.graph
    shown = ", ".join(f"{o.name} {_shape(o)}" for o in graph.output)
    print(f"{args.output}: {kind} model, input {graph.input[0].name} {_shape(graph.input[0])} -> {shown}, "
          f"{len(graph.initializer)} weight arrays, opset {proto.opset_import[0].version}")
    return 0


def _shape(value) -> str:
    dims = [d.dim_param or str(d.dim_value) for d in value.type.tensor_type.shape.dim]
    return "(" + ", ".join(dims) + ")"


def main(argv=None) -> int:
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as e:  # --help (0) or a usage error already printed on one line (2)
        return e.code if isinstance(e.code, int) else 2
    try:
        return run(args)
    except (ValueError, TypeError, KeyError, OSError, MemoryError) as e:
        text = str(e.args[0]) if isinstance(e, KeyError) and e.args else str(e)
        print(f"symdiff export: error: {' '.join(text.splitlines()) or type(e).__name__}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
