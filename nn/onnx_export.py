"""ONNX export of ``symdiff.nn`` models: ``model.export_onnx(path, example_input_shape)`` and
``export_trainer(trainer, path)`` (``Trainer.export_onnx``).

The exported graph is the inference graph ``nn.Trainer.predict`` compiles: the model in eval
mode (Dropout off, BatchNorm with its running statistics), its parameters and buffers as
initializers holding their current values under the leaves' names (``W1``, ``b1``, ``mu1``, ...),
the batch a named dynamic axis (``m``) unless a size is given. Recurrent layers export as they
are built: a scan layer (the default) as an ONNX ``Scan`` whose body is the step, an
``unroll=True`` layer as its unrolled graph.

This module imports only the core (and ``symdiff.onnx``): modules and trainers are used through
their methods, so ``nn.module`` can call it without an import circle.

>>> import os, tempfile
>>> import numpy as np
>>> import onnxruntime as ort
>>> from symdiff import nn
>>> nn.init.manual_seed(0)
>>> model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Dropout(0.5), nn.Linear(8, 3))
>>> path = os.path.join(tempfile.mkdtemp(), "mlp.onnx")
>>> onnx_model = model.export_onnx(path, ("m", 4))
>>> [i.name for i in onnx_model.graph.initializer]
['W1', 'W2', 'b1', 'b2']
>>> X = np.random.default_rng(0).normal(size=(5, 4)).astype(np.float32)
>>> (Y,) = ort.InferenceSession(path).run(None, {"X": X})
>>> bool(np.allclose(Y, nn.Trainer(model, nn.SoftmaxLoss(), nn.optim.SGD(model.parameters(), lr=0.1),
...                                backend="numpy", progress=False).predict(X), rtol=1e-5, atol=1e-6))
True
"""

from __future__ import annotations

import symdiff as sd
import symdiff.onnx
from symdiff.graph import leaves as graph_leaves
from symdiff.names import name_of
from symdiff.node import Node


def _flat(out) -> list:
    """A model's outputs (an expression, or nested tuples of them: an LSTM's (y, (h, c))) as a list."""
    if isinstance(out, Node):
        return [out]
    if isinstance(out, (tuple, list)):
        return [o for part in out for o in _flat(part)]
    raise TypeError(f"export_onnx: the model returned {type(out).__name__}, not expressions")


def _input_leaves(example_input_shape, dtype, names):
    shapes_list = example_input_shape
    single = not (isinstance(shapes_list, list) and shapes_list and isinstance(shapes_list[0], (tuple, list)))
    if single:
        shapes_list = [tuple(example_input_shape)]
    dtypes_list = dtype if isinstance(dtype, (list, tuple)) else [dtype] * len(shapes_list)
    if names is None:
        names = ["X"] if single else [f"X{k + 1}" for k in range(len(shapes_list))]
    if len(names) != len(shapes_list) or len(dtypes_list) != len(shapes_list):
        raise ValueError(f"export_onnx: {len(shapes_list)} input shapes, {len(names)} names and "
                         f"{len(dtypes_list)} dtypes")
    leaves = []
    for name, shape, d in zip(names, shapes_list, dtypes_list):
        shape = tuple("m" if s is None else s for s in shape)
        leaves.append(sd.tensor(name, shape, d))
    return leaves, single


def inference_graph(model, example_input_shape, dtype=None, input_names=None, call_kwargs=None):
    """(outputs, input leaves, params {leaf: array}) of ``model`` in eval mode; ``call_kwargs``
    are passed to the model's call (a transformer block's ``causal=True``)."""
    states = list(model.named_states())
    if dtype is None:
        floats = [s.dtype for _, s in states if s.dtype.startswith("float")]
        dtype = floats[0] if floats else "float32"
    inputs, single = _input_leaves(example_input_shape, dtype, input_names)
    was = model.training
    model.train(False)
    try:
        out = model(*inputs, **(call_kwargs or {}))
    except sd.ShapeError as e:
        shown = [tuple(str(d) for d in leaf.shape) for leaf in inputs]
        raise ValueError(f"export_onnx: inputs of shape {shown[0] if single else shown} do not fit the model: "
                         f"{e}") from None
    finally:
        model.train(was)
    outputs = _flat(out)
    used = {id(leaf) for leaf in graph_leaves(outputs)}
    params = {s.leaf: s.data for _, s in states if id(s.leaf) in used}
    known = {id(leaf) for leaf in params} | {id(leaf) for leaf in inputs}
    stray = sorted({leaf.name for leaf in graph_leaves(outputs) if id(leaf) not in known})
    if stray:
        raise ValueError(f"export_onnx: the eval-mode graph reads {', '.join(stray)}, which are neither "
                         "inputs nor the model's parameters or buffers")
    return outputs, inputs, params


def export_module(model, path, example_input_shape, dtype=None, input_names=None, output_names=None,
                  call_kwargs=None):
    """Write ``model``'s inference graph to ``path`` as ONNX; returns the ``onnx.ModelProto``.

    ``example_input_shape`` is the input's shape with the batch as a name (``("m", 784)``) or
    None (a dynamic axis ``m``), or an int for a fixed size; a list of shapes for a model with
    several inputs. ``dtype`` defaults to the parameters'. Output names default to the outputs'
    symdiff names (``Z2``), else ``output0``, ... ."""
    outputs, inputs, params = inference_graph(model, example_input_shape, dtype, input_names, call_kwargs)
    if output_names is None:
        names = [name_of(o) if not o.is_leaf and name_of(o) else f"output{k}" for k, o in enumerate(outputs)]
        output_names = names if len(set(names)) == len(names) else [f"output{k}" for k in range(len(outputs))]
    return sd.onnx.export(outputs, inputs, path, params=params, output_names=output_names,
                          name=type(model).__name__)


def export_trainer(trainer, path, batch=None):
    """Export ``trainer.model`` for the features it was trained on (its signature): inputs
    ``X`` of shape (m, *features) in the training dtype; ``batch`` fixes the batch size."""
    signature = getattr(trainer, "_signature", None)
    if signature is None:
        raise ValueError("export_onnx: the trainer has not seen data yet (fit it, or load a checkpoint that has)")
    features, xdt = tuple(signature[0]), signature[1]
    return export_module(trainer.model, path, (batch if batch is not None else "m", *features), dtype=xdt)
