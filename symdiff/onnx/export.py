"""``sd.onnx.export(outputs, inputs, path)``: a symdiff graph as an ONNX model.

The graph is walked in topological order (:func:`symdiff.graph.toposort`) and each node is
given to its op's rule (:mod:`symdiff.onnx.rules`), which emits ``onnx.helper`` nodes. The
model is checked (``onnx.checker.check_model(full_check=True)``, which runs shape inference)
before it is written, atomically (a temporary file beside ``path``, renamed over it).

- ``inputs`` are graph inputs; ``params`` (``{leaf: array}``) become initializers carrying
  those values under the leaves' names (a model's trained weights); a leaf that is neither is an
  error that names it.
- A symbolic dimension (``m``) becomes a named dynamic axis (``dim_param``); where an op needs
  its value (a reshape, a broadcast) it is read from the shape of an input that has it.
- ONNX node names are the symdiff names of the nodes (``sd.name``: ``Z1``, ``A1``, the names the
  printed formulas use) and ``<op>_<k>`` for the others; a rule that needs several ONNX nodes
  names them ``<name>``, ``<name>.1``, ... . The same graph gives a byte-identical file.
- ``sd.scan`` becomes an ONNX ``Scan`` whose body graph is the exported scan body (a carry
  whose history is used is also a per-step output of the body).

>>> import os, tempfile
>>> import numpy as np
>>> import onnx
>>> import symdiff as sd
>>> X, W = sd.tensor("X", ("m", 3), "float32"), sd.tensor("W", (3, 2), "float32")
>>> Z = sd.name(sd.tanh(X @ W), "Z")
>>> path = os.path.join(tempfile.mkdtemp(), "z.onnx")
>>> model = export(Z, [X], path, params={W: np.ones((3, 2), np.float32)})
>>> [n.op_type for n in model.graph.node], [n.name for n in model.graph.node]
(['MatMul', 'Tanh'], ['matmul_1', 'Z'])
>>> model.graph.input[0].type.tensor_type.shape.dim[0].dim_param
'm'
>>> [i.name for i in onnx.load(path).graph.initializer]
['W']
"""

from __future__ import annotations

import importlib
import os

import numpy as np
import sympy

from .. import shapes
from ..graph import as_list, toposort
from ..names import name_of
from ..node import Node
from .rules import NOT_EXPORTABLE, RULES

OPSET = 18  # Reduce* take their axes as an input from 18 on
DTYPES = {"float32": 1, "float64": 11, "int64": 7, "bool": 9}  # onnx.TensorProto.FLOAT, DOUBLE, INT64, BOOL


class _Lazy:
    """The onnx package's modules, imported on first use: ``import symdiff`` does not load onnx
    (nor need it installed); exporting does."""

    MODULES = ("onnx", "helper", "numpy_helper", "checker", "shape_inference")

    def __getattr__(self, name):
        if name not in self.MODULES:
            raise AttributeError(name)
        module = importlib.import_module("onnx" if name == "onnx" else f"onnx.{name}")
        setattr(self, name, module)
        return module


_ONNX = _Lazy()


class ExportError(ValueError):
    """The graph cannot be written as ONNX: an op without a rule, a leaf without a value, ..."""


def _dims(shape):
    return [int(d) if isinstance(d, int) else str(d) for d in shape]


def value_info(name, node_or_dtype, shape=None):
    dtype = node_or_dtype.dtype if isinstance(node_or_dtype, Node) else node_or_dtype
    shape = node_or_dtype.shape if shape is None else shape
    return _ONNX.helper.make_tensor_value_info(name, DTYPES[dtype], _dims(shape))


class Packed:
    """The value of a scan node: its parts (carry histories or finals, then ys), each an ONNX
    value; packed into one flat array only where something reads the packed value itself."""

    def __init__(self, node, parts):
        self.node, self.parts, self.flat = node, parts, None


class Broadcast:
    """A ``broadcast_to`` not yet emitted: an elementwise consumer whose other operand has the
    full shape reads ``value`` itself (ONNX's multidirectional broadcasting is numpy's), others
    get an ``Expand``."""

    def __init__(self, node, value, label):
        self.node, self.value, self.label, self.expanded = node, value, label, None


class Exporter:
    """The state of one export: the ONNX nodes so far, value names, and the sources of the
    symbolic dimensions. Rules call :meth:`op`, :meth:`ints`, :meth:`scalar`, :meth:`shape_of`."""

    def __init__(self, inputs):
        self.graph_nodes: list = []  # the main graph's nodes
        self.nodes = self.graph_nodes  # where op() appends (a scan body while it is built)
        self.used: set = set()
        self.counter = 0  # operation nodes so far: <op>_<k> names the k-th
        self.dim_count = 0
        self.label = "graph"
        self.step = 0
        self.consts: dict = {}  # (dtype, shape, bytes) -> value name: each constant once
        self.dim_values: dict = {}  # sympy dim -> int64 (1,) value name
        self.dim_sources: dict = {}  # sympy symbol -> (input name, axis)
        for leaf in inputs:
            for axis, d in enumerate(leaf.shape):
                if isinstance(d, sympy.Symbol) and d not in self.dim_sources:
                    self.dim_sources[d] = (leaf.name, axis)

    # -- names -------------------------------------------------------------------------------
    def fresh(self, base: str) -> str:
        name, k = base, 1
        while name in self.used:
            name, k = f"{base}.{k}", k + 1
        self.used.add(name)
        return name

    def reserve(self, name: str) -> str:
        if name in self.used:
            raise ExportError(f"two inputs or weights are named {name!r}: ONNX needs distinct names")
        self.used.add(name)
        return name

    # -- what rules call ---------------------------------------------------------------------
    def op(self, op_type, inputs, outputs: int = 1, **attrs):
        """Emit one ONNX node; its output value name(s)."""
        name = self.fresh(self.label if self.step == 0 else f"{self.label}.{self.step}")
        self.step += 1
        outs = [name if k == 0 else self.fresh(f"{name}:{k}") for k in range(outputs)]
        self.nodes.append(_ONNX.helper.make_node(op_type, list(inputs), outs, name=name, **attrs))
        return outs[0] if outputs == 1 else outs

    def error(self, message: str) -> ExportError:
        return ExportError(f"{self.label}: {message}")

    def onnx_dtype(self, dtype: str) -> int:
        return DTYPES[dtype]

    def constant(self, array: np.ndarray) -> str:
        """A Constant node in the main graph, each distinct value once."""
        key = (array.dtype.str, array.shape, array.tobytes())
        if key not in self.consts:
            name = self.fresh(f"const_{len(self.consts)}")
            tensor = _ONNX.numpy_helper.from_array(np.array(array, order="C"), name)
            self.graph_nodes.append(_ONNX.helper.make_node("Constant", [], [name], name=name, value=tensor))
            self.consts[key] = name
        return self.consts[key]

    def ints(self, values) -> str:
        return self.constant(np.asarray([int(v) for v in values], dtype=np.int64).reshape(len(values)))

    def scalar(self, value, dtype: str) -> str:
        if isinstance(value, sympy.Basic) and not value.is_Number:  # a dimension: computed, then cast
            value = self.dim(value)
            squeezed = self._main("Squeeze", [value, self.ints([0])])
            return squeezed if dtype == "int64" else self._main("Cast", [squeezed], to=DTYPES[dtype])
        return self.constant(np.asarray(value, dtype=dtype))

    def shape_of(self, dims) -> str:
        """An int64 1-D tensor of ``dims`` (ints or sympy expressions in the dimensions)."""
        dims = tuple(dims)
        if all(_is_int(d) for d in dims):
            return self.ints([int(d) for d in dims])
        parts, run = [], []
        for d in dims:
            if _is_int(d):
                run.append(int(d))
                continue
            if run:
                parts.append(self.ints(run))
                run = []
            parts.append(self.dim(d))
        if run:
            parts.append(self.ints(run))
        return parts[0] if len(parts) == 1 else self._main("Concat", parts, axis=0)

    def dim(self, expr) -> str:
        """An int64 (1,) tensor holding the value of a dimension expression (m, 2·m, m − 1,
        floor((H − 1)/2) + 1), computed from the shapes of the inputs, in the main graph."""
        expr = sympy.sympify(expr)
        if expr in self.dim_values:
            return self.dim_values[expr]
        if expr.is_Integer:
            value = self.ints([int(expr)])
        elif expr.is_Symbol:
            if expr not in self.dim_sources:
                raise ExportError(f"the dimension {expr} is used but no input has it: give an input of that shape")
            source, axis = self.dim_sources[expr]
            value = self._main("Shape", [source], start=axis, end=axis + 1)
        elif expr.is_Add:
            terms = [self.dim(t) for t in sorted(expr.args, key=sympy.default_sort_key)]
            value = terms[0]
            for t in terms[1:]:
                value = self._main("Add", [value, t])
        elif expr.is_Mul:
            coeff, rest = expr.as_coeff_Mul()
            if coeff.is_Rational and coeff.q != 1:  # (p/q)·rest: an exact division
                value = self._main("Div", [self._main("Mul", [self.dim(rest), self.ints([coeff.p])]),
                                           self.ints([coeff.q])])
            else:
                factors = [self.dim(f) for f in sorted(expr.args, key=sympy.default_sort_key)]
                value = factors[0]
                for f in factors[1:]:
                    value = self._main("Mul", [value, f])
        elif isinstance(expr, (sympy.floor, sympy.ceiling)):
            num, den = sympy.fraction(sympy.together(expr.args[0]))
            if not (den.is_Integer and den > 0):
                raise ExportError(f"cannot compute the dimension {expr} in ONNX")
            top = num + (den - 1 if isinstance(expr, sympy.ceiling) else 0)
            value = self._main("Div", [self.dim(sympy.expand(top)), self.ints([int(den)])])
        else:
            raise ExportError(f"cannot compute the dimension {expr} in ONNX")
        self.dim_values[expr] = value
        return value

    def _main(self, op_type, inputs, **attrs) -> str:
        """A node in the main graph (dimension arithmetic a scan body reads from outer scope)."""
        name = self.fresh(f"dim_{self.dim_count}")
        self.dim_count += 1
        self.graph_nodes.append(_ONNX.helper.make_node(op_type, list(inputs), [name], name=name, **attrs))
        return name

    # -- the walk ----------------------------------------------------------------------------
    def run(self, order, values: dict) -> dict:
        """Emit every node of ``order`` whose value is not in ``values`` (id -> value name)."""
        for node in order:
            if id(node) in values:
                continue
            if node.is_leaf:
                raise ExportError(f"leaf {node.name} {shapes.format_shape(node.shape)} is neither an input nor "
                                  "a parameter: list it in inputs= or give its value in params=")
            if node.is_constant:
                values[id(node)] = self.scalar(node.attr("value"), node.dtype) if not isinstance(
                    node.attr("value"), np.ndarray) else self.constant(node.attr("value"))
                continue
            rule = RULES.get(node.op)
            if rule is None:
                why = NOT_EXPORTABLE.get(node.op, "no export rule")
                raise ExportError(f"op {node.op.name} ({node}) cannot be exported to ONNX: {why}")
            ins = self.inputs_of(node, [values[id(i)] for i in node.inputs])
            self.counter += 1
            self.label = name_of(node) or f"{node.op.name}_{self.counter}"
            self.step = 0
            values[id(node)] = rule(self, node, ins)
        return values

    def inputs_of(self, node, raw):
        if node.op.name == "scan_part":
            return raw
        full = [not isinstance(v, Broadcast) and len(i.shape) == len(node.shape)
                and all(map(shapes.same_dim, i.shape, node.shape)) for v, i in zip(raw, node.inputs)]
        implicit = node.op.kind == "elementwise" and len(raw) > 1 and any(full)
        return [v.value if implicit and isinstance(v, Broadcast) else self.unpacked(v) for v in raw]

    def broadcast(self, node, value):
        return Broadcast(node, value, self.label)

    def unpacked(self, value):
        if isinstance(value, Broadcast):
            if value.expanded is None:
                saved = self.label, self.step
                self.label, self.step = value.label, 0
                value.expanded = self.op("Expand", [self.unpacked(value.value), self.shape_of(value.node.shape)])
                self.label, self.step = saved
            return value.expanded
        if not isinstance(value, Packed):
            return value
        if value.flat is None:
            saved = self.label, self.step
            self.label, self.step = f"{self.label}_packed", 0
            flat = [self.op("Reshape", [p, self.ints([-1])]) for p in value.parts]
            value.flat = self.op("Concat", flat, axis=0) if len(flat) > 1 else flat[0]
            self.label, self.step = saved
        return value.flat

    # -- scan --------------------------------------------------------------------------------
    def scan(self, node, ins):
        from ..scan import layout_of

        body, history = node.attr("body"), node.attr("history")
        nc, nx = len(body.carries), len(body.xs)
        label = self.label
        values = {}
        body_inputs = []
        for p in body.carries + body.xs:
            name = self.fresh(f"{label}/{p.name}")
            values[id(p)] = name
            body_inputs.append(value_info(name, p))
        for p, outer in zip(body.consts, ins[nc + nx:]):
            values[id(p)] = outer  # read from the outer scope
        saved_nodes, self.nodes = self.nodes, []
        try:
            self.run(body.order, values)
            body_nodes, body_outputs = self.nodes, []
            extra = []  # per-step copies of the carries whose history is used
            for k, out in enumerate(body.outputs):
                name = self.fresh(f"{label}/out{k}")
                body_nodes.append(_ONNX.helper.make_node("Identity", [self.unpacked(values[id(out)])], [name], name=name))
                body_outputs.append(value_info(name, out))
                if k < nc and history[k]:
                    hist = self.fresh(f"{label}/history{k}")
                    body_nodes.append(_ONNX.helper.make_node("Identity", [name], [hist], name=hist))
                    extra.append(value_info(hist, out))
        finally:
            self.nodes = saved_nodes
        outputs = body_outputs[:nc] + extra + body_outputs[nc:]
        graph = _ONNX.helper.make_graph(body_nodes, f"{label}_body", body_inputs, outputs)
        direction = 1 if node.attr("reverse") else 0
        n_out = len(outputs) - nc
        self.label, self.step = label, 0
        names = self.op("Scan", ins[:nc + nx], outputs=len(outputs), body=graph, num_scan_inputs=nx,
                        scan_input_directions=[direction] * nx, scan_output_directions=[direction] * n_out)
        names = [names] if isinstance(names, str) else names
        finals, stacked = names[:nc], names[nc:]
        parts, h = [], 0
        for k in range(nc):
            if history[k]:
                parts.append(stacked[h])
                h += 1
            else:
                parts.append(finals[k])
        parts += stacked[h:]
        assert len(parts) == len(layout_of(body, node.attr("length"), history))
        return Packed(node, parts)

    def scan_part(self, node, ins):
        (packed,) = ins
        layout, k = node.attr("layout"), node.attr("index")
        if isinstance(packed, Packed) and packed.node.ndim == 1:
            return self.op("Identity", [packed.parts[k]])
        lead = node.shape[:len(node.shape) - len(layout[k])]
        start = sum((shapes.numel(p) for p in layout[:k]), 0)
        stop = start + shapes.numel(layout[k])
        x = self.unpacked(packed)
        x = self.op("Slice", [x, self.shape_of((start,)), self.shape_of((stop,)), self.ints([-1])])
        return self.op("Reshape", [x, self.shape_of(lead + tuple(layout[k]))])


def _is_int(d) -> bool:
    return isinstance(d, int) or (isinstance(d, sympy.Basic) and d.is_Integer)


def to_model(outputs, inputs, params: dict | None = None, output_names=None, name: str = "symdiff",
             check: bool = True):
    """The ONNX model (an ``onnx.ModelProto``) of ``outputs`` (see :func:`export`), checked, not written."""
    outputs = as_list(outputs)
    inputs = list(inputs)
    params = dict(params or {})
    for leaf in inputs + list(params):
        if not isinstance(leaf, Node) or not leaf.is_leaf:
            raise TypeError(f"onnx.export: inputs and params must be leaves (sd.tensor), got {leaf}")
    both = {id(i) for i in inputs} & {id(p) for p in params}
    if both:
        raise ExportError("onnx.export: " + ", ".join(i.name for i in inputs if id(i) in both)
                          + " is both an input and a parameter")
    ex = Exporter(inputs)
    values, graph_inputs, initializers = {}, [], []
    for leaf in inputs:
        values[id(leaf)] = ex.reserve(leaf.name)
        graph_inputs.append(value_info(leaf.name, leaf))
    for leaf in sorted(params, key=lambda p: p.name):
        array = np.asarray(params[leaf])
        want = shapes.substitute(leaf.shape, {}) if all(_is_int(d) for d in leaf.shape) else None
        if want is None:
            raise ExportError(f"parameter {leaf.name} has symbolic shape {shapes.format_shape(leaf.shape)}: "
                              "an initializer needs concrete sizes")
        if tuple(array.shape) != tuple(want) or array.dtype.name != leaf.dtype:
            raise ExportError(f"parameter {leaf.name} is {shapes.format_shape(leaf.shape)} {leaf.dtype}, "
                              f"its value is {array.shape} {array.dtype}")
        values[id(leaf)] = ex.reserve(leaf.name)
        initializers.append(_ONNX.numpy_helper.from_array(np.array(array, order="C"), leaf.name))
    names = list(output_names) if output_names is not None else [
        name_of(o) if not o.is_leaf and name_of(o) else f"output{k}" for k, o in enumerate(outputs)]
    if len(names) != len(outputs) or len(set(names)) != len(names):
        raise ExportError(f"onnx.export: {len(outputs)} outputs need {len(outputs)} distinct names, got {names}")
    # an output keeps its node's name where they agree (Z1 is the value of the node Z1); other
    # output names are reserved so that no node takes them, and an Identity gives them
    sources = {id(leaf) for leaf in inputs + list(params)}
    for o, n in zip(outputs, names):
        if n in ex.used and not (id(o) in sources and values[id(o)] == n):
            raise ExportError(f"onnx.export: the output name {n!r} is also an input's or a parameter's")
        if id(o) in sources or (name_of(o) or None) != n:
            ex.used.add(n)
    ex.run(toposort(outputs), values)
    graph_outputs, done = [], set()
    for o, n in zip(outputs, names):
        source = ex.unpacked(values[id(o)])
        if source != n or id(o) in sources or source in done:
            ex.graph_nodes.append(_ONNX.helper.make_node("Identity", [source], [n], name=f"{n}/output"))
        done.add(n)
        graph_outputs.append(value_info(n, o))
    graph = _ONNX.helper.make_graph(ex.graph_nodes, name, graph_inputs, graph_outputs, initializer=initializers)
    model = _ONNX.helper.make_model(graph, opset_imports=[_ONNX.helper.make_opsetid("", OPSET)], producer_name="symdiff",
                              ir_version=9)
    if check:
        _ONNX.checker.check_model(model, full_check=True)
    return model


def export(outputs, inputs, path, params: dict | None = None, output_names=None, name: str = "symdiff"):
    """Write ``outputs`` (expressions of the leaves ``inputs`` and ``params``) as an ONNX model to
    ``path``, checked by ``onnx.checker`` with shape inference; returns the ``ModelProto``.

    ``params`` maps leaves to their values (initializers); ``output_names`` defaults to the
    outputs' symdiff names (``sd.name``), else ``output0``, ``output1``, ... ."""
    model = to_model(outputs, inputs, params, output_names, name)
    data = model.SerializeToString(deterministic=True)
    write_atomically(path, data)
    return model


def write_atomically(path, data: bytes) -> None:
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    if os.path.isdir(path):
        raise IsADirectoryError(f"onnx.export: {path} is a directory, not a file name")
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"onnx.export: {path}: the folder {folder} does not exist")
    tmp = os.path.join(folder, f".{os.path.basename(path)}.tmp-{os.getpid()}")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
