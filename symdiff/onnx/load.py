"""``sd.onnx.load(path)``: an ONNX inference graph as symdiff expressions.

Graph inputs become leaves (``sd.tensor``: a ``dim_param`` becomes a symbolic dimension), and
float initializers become **named leaves with values** (``Imported.params``), not constants, so
``sd.grad`` with respect to a model's weights works and prints ∂L/∂W; integer initializers and
``Constant`` nodes are constants. Shape arithmetic (``Shape → Gather → Concat → Reshape``, as
``torch.onnx.export`` writes a flatten) is folded while loading. An op that symdiff does not have
(or an attribute it cannot follow) is one :class:`LoadError` naming the op type and the node; so
is a file that is not a readable ONNX model.

>>> import numpy as np
>>> import onnx
>>> from onnx import TensorProto, helper, numpy_helper
>>> import symdiff as sd
>>> W = numpy_helper.from_array(np.full((3, 2), 0.5, np.float32), "W")
>>> graph = helper.make_graph(
...     [helper.make_node("MatMul", ["X", "W"], ["Z"]), helper.make_node("Tanh", ["Z"], ["Y"])], "g",
...     [helper.make_tensor_value_info("X", TensorProto.FLOAT, ["m", 3])],
...     [helper.make_tensor_value_info("Y", TensorProto.FLOAT, ["m", 2])], initializer=[W])
>>> imported = from_model(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)]))
>>> print(sd.pretty(imported.outputs))
Y = tanh(X·W)
>>> (W_leaf,) = imported.params
>>> print(sd.pretty(sd.grad(sd.sum(imported.outputs[0]), [W_leaf])))
Y = tanh(X·W)
∂f/∂W = Xᵀ·(1 − Y²)
"""

from __future__ import annotations

import dataclasses
import keyword
import os

import numpy as np
import sympy

from ..node import Node, constant, tensor
from ..ops.registry import FUNCTIONS as F
from .export import _ONNX
from .load_ops import HANDLERS, ONNX_DTYPES, LoadError

MAX_BYTES = 2 ** 31  # protobuf's own limit; anything larger is not one ONNX file


@dataclasses.dataclass
class Imported:
    """What :func:`load` returns: ``outputs`` (expressions, named as the graph's outputs),
    ``inputs`` (the graph's input leaves) and ``params`` (``{leaf: array}``, the float initializers)."""

    outputs: list
    inputs: list
    params: dict

    def feed(self, **arrays) -> dict:
        """``{leaf: value}`` for :func:`symdiff.evaluate`: the params and the inputs given by name."""
        out = dict(self.params)
        by_name = {leaf.name: leaf for leaf in self.inputs}
        for key, value in arrays.items():
            if key not in by_name:
                raise KeyError(f"no input named {key!r}; the inputs are {sorted(by_name)}")
            out[by_name[key]] = value
        return out


def _identifier(text: str, taken: set) -> str:
    if isinstance(text, bytes):  # protobuf hands a string field with invalid UTF-8 over as bytes
        text = text.decode("utf-8", "replace")
    name = "".join(c if c.isalnum() or c == "_" else "_" for c in text) or "v"
    if not name.isidentifier() or keyword.iskeyword(name) or name.startswith("__"):
        name = f"v_{name}".replace("__", "_")
    base, k = name, 1
    while name in taken:
        name, k = f"{base}_{k}", k + 1
    taken.add(name)
    return name


def _protobuf_error():
    from google.protobuf.message import Error  # onnx's own dependency: DecodeError's base

    return Error


def load(path, float_dtype: str | None = None) -> Imported:
    """The graph of the ONNX model at ``path`` as symdiff expressions (see the module's doc).
    ``float_dtype="float64"`` reads every float tensor (inputs, weights, constants, casts) as
    float64: the model's function in double precision, for gradient checks against central
    differences."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"sd.onnx.load: no such file: {path}")
    if os.path.getsize(path) > MAX_BYTES:
        raise LoadError(f"{path}: {os.path.getsize(path):,} bytes, more than one ONNX protobuf can hold")
    with open(path, "rb") as f:
        data = f.read()
    try:
        model = _ONNX.onnx.load_model_from_string(data)
    except (_protobuf_error(), ValueError, RuntimeError) as e:  # protobuf's DecodeError: not a model
        raise LoadError(f"{path}: not a readable ONNX model ({type(e).__name__}: {e})") from None
    return from_model(model, where=path, float_dtype=float_dtype)


def from_model(model, where: str = "the model", float_dtype: str | None = None) -> Imported:
    """Like :func:`load`, for an ``onnx.ModelProto`` in memory."""
    try:
        _ONNX.checker.check_model(model)
    except (_ONNX.checker.ValidationError, ValueError, RuntimeError) as e:
        raise LoadError(f"{where}: not a valid ONNX model ({' '.join(str(e).split())[:500]})") from None
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 1)
    if float_dtype not in (None, "float32", "float64"):
        raise ValueError(f"sd.onnx.load: float_dtype must be 'float32' or 'float64', got {float_dtype!r}")
    return _Importer(model.graph, opset, where, float_dtype).run()


class _Importer:
    def __init__(self, graph, opset, where, float_dtype=None):
        self.graph, self.opset, self.where, self.float_dtype = graph, opset, where, float_dtype
        self.taken: set = set()
        self.values: dict = {}  # ONNX name -> Node
        self.static: dict = {}  # ONNX name -> numpy array known while loading (shapes, axes, int constants)
        self.dims: dict = {}

    def floats(self, dtype) -> np.dtype:
        """The numpy dtype a float tensor of ``dtype`` is read as."""
        if self.float_dtype is not None:
            return np.dtype(self.float_dtype)
        return np.dtype(np.float64) if np.dtype(dtype) == np.float64 else np.dtype(np.float32)

    def dtype(self, elem_type) -> str:
        name = ONNX_DTYPES[elem_type]
        return self.floats(name).name if name.startswith("float") else name

    # -- values ------------------------------------------------------------------------------
    def dim(self, d, owner, axis):
        if d.HasField("dim_value"):
            return int(d.dim_value)
        text = d.dim_param if d.HasField("dim_param") else f"{owner}_d{axis}"
        if text not in self.dims:
            self.dims[text] = _identifier(text, self.taken)
        return self.dims[text]

    def node(self, name) -> Node:
        if name in self.values:
            return self.values[name]
        if name in self.static:
            value = self.static[name]
            if value.dtype == object:
                if value.shape != ():
                    raise LoadError(f"{self.where}: {name} is a shape with symbolic sizes used as data")
                return constant(sympy.sympify(value.item()), "int64")
            return constant(value)
        raise LoadError(f"{self.where}: the value {name!r} is used before any node makes it")

    def known(self, name):
        """The value of ``name`` where it is known while loading (a shape, axes, a constant)."""
        if name in self.static:
            return self.static[name]
        node = self.values.get(name)
        if node is not None and node.is_constant and isinstance(node.attr("value"), (np.ndarray, int, float)):
            return np.asarray(node.attr("value"))
        return None

    def ints(self, name, what, node):
        value = self.known(name)
        if value is None or value.dtype == object and any(not isinstance(v, int) for v in value.ravel()):
            raise LoadError(f"{self.where}: node {node.name!r} ({node.op_type}): its {what} must be known "
                            "while loading (a constant), not computed at run time")
        return [int(v) for v in np.asarray(value).ravel()]

    # -- the walk ----------------------------------------------------------------------------
    def run(self) -> Imported:
        try:
            params, inputs = self.sources()
        except LoadError:
            raise
        except (ValueError, TypeError, IndexError, KeyError, ArithmeticError, MemoryError) as e:
            raise LoadError(f"{self.where}: a damaged input or initializer ({' '.join(str(e).split())[:300]})") from None
        return self.walk(params, inputs)

    def sources(self):
        """The graph's weights (float initializers: leaves with values) and inputs (leaves)."""
        g = self.graph
        params = {}
        inits = {t.name for t in g.initializer}
        for t in g.initializer:
            if t.data_location == 1:  # EXTERNAL: a path the file names; a hostile one could be any file
                raise LoadError(f"{self.where}: initializer {t.name!r} keeps its data in an external file, "
                                "which sd.onnx.load does not read")
            array = _ONNX.numpy_helper.to_array(t)
            if array.dtype.kind == "f":
                array = array.astype(self.floats(array.dtype))
                leaf = tensor(_identifier(t.name, self.taken), array.shape, array.dtype.name)
                params[leaf] = array
                self.values[t.name] = leaf
            elif array.dtype.kind in "iub":
                self.static[t.name] = array.astype(np.int64) if array.dtype.kind != "b" else array
            else:
                raise LoadError(f"{self.where}: initializer {t.name!r} has dtype {array.dtype}")
        inputs = []
        for vi in g.input:
            if vi.name in inits:
                continue
            tt = vi.type.tensor_type
            if tt.elem_type not in ONNX_DTYPES:
                raise LoadError(f"{self.where}: input {vi.name!r} has ONNX element type {tt.elem_type}, which "
                                "symdiff does not have")
            shape = tuple(self.dim(d, vi.name, k) for k, d in enumerate(tt.shape.dim))
            leaf = tensor(_identifier(vi.name, self.taken), shape, self.dtype(tt.elem_type))
            self.values[vi.name] = leaf
            inputs.append(leaf)
        return params, inputs

    def walk(self, params, inputs) -> Imported:
        g = self.graph
        for n in g.node:
            if n.domain not in ("", "ai.onnx"):
                raise LoadError(f"{self.where}: node {n.name!r} uses op {n.domain}.{n.op_type}, which symdiff "
                                "does not have")
            handler = HANDLERS.get(n.op_type)
            if handler is None:
                raise LoadError(f"{self.where}: node {n.name!r}: ONNX op {n.op_type} is not supported by "
                                f"sd.onnx.load (supported: {', '.join(sorted(HANDLERS))})")
            attrs = {a.name: _ONNX.helper.get_attribute_value(a) for a in n.attribute}
            try:
                result = handler(self, n, list(n.input), attrs)
            except LoadError:
                raise
            except (ValueError, TypeError, IndexError, KeyError, ArithmeticError) as e:
                raise LoadError(f"{self.where}: node {n.name!r} ({n.op_type}): {e}") from None
            results = result if isinstance(result, list) else [result]
            for out, value in zip(n.output, results):
                if not out:
                    continue
                if isinstance(value, (np.ndarray, np.generic, sympy.Basic, int)):  # folded shape arithmetic
                    array = np.asarray(value, dtype=object if isinstance(value, sympy.Basic) else None)
                    self.static[out] = array
                else:
                    self.values[out] = value
        outputs = []
        for vi in g.output:
            node = self.node(vi.name)
            if not node.is_leaf:
                F["name"](node, _identifier(vi.name, set()))
            outputs.append(node)
        return Imported(outputs, inputs, params)


__all__ = ["Imported", "LoadError", "from_model", "load"]
