"""Schedule: which nodes become kernels, in what order, reading which buffers.

A program is specialized for one set of concrete dimensions, so every shape here
is a tuple of ints. Nodes fall in three groups:

* **buffers** — inputs, array constants, and *materialized* nodes, each stored
  contiguously: matmuls, reductions, softmaxes, outputs, and elementwise nodes
  that several consumers read;
* **views** — movement ops (``broadcast_to``, ``transpose``, ``reshape``, basic
  ``getitem``) over a buffer: strides and an offset, never a copy;
* **fused** — elementwise nodes read by exactly one elementwise or reducing
  consumer, and index functions (``one_hot``, ``eye``, ``take``): computed inside
  the consumer's loop, so a chain of them is one pass over memory.

Each materialized node is one :class:`Kernel`. The order is the graph's
deterministic topological order.

>>> import symdiff as sd
>>> X, W = sd.tensor("X", (4, 3)), sd.tensor("W", (3, 2))
>>> s = schedule([sd.tanh(X @ W + 1.0)], [X, W])
>>> [(k.kind, k.node.op.name) for k in s.kernels]
[('gemm', 'matmul'), ('loop', 'tanh')]
"""

from __future__ import annotations

import dataclasses

import numpy as np
import sympy

from symdiff import dtypes, shapes
from symdiff.graph import toposort
from symdiff.node import Node

# What each op is to the schedule comes from its declaration (symdiff.ops.registry): op.kernel
# (the kernel kind that materializes it; None: a loop), op.view (strides, never a copy),
# op.fuses_inputs (elementwise producers fuse into its loops), op.index_function (no buffer to
# read), op.has_identity (a reduction of nothing has a value).


class LoweringError(ValueError):
    """A graph that cannot be lowered as asked (bad inputs, updates or arguments)."""


def _check_reduction_is_not_empty(node, shape):  # ops with has_identity=False: numpy raises, so do we
    into, out = np.prod(shape[id(node.inputs[0])], dtype=np.int64), np.prod(shape[id(node)], dtype=np.int64)
    if into == 0 and out > 0:
        raise LoweringError(f"{node.op.name}: the reduced axes {node.attr('axis')} of an array of shape "
                            f"{shape[id(node.inputs[0])]} are empty, and {node.op.name} of nothing has no value "
                            "(numpy raises too)")


@dataclasses.dataclass(eq=False)
class Buffer:
    """Contiguous storage: an input, an output, an array constant or an arena temporary."""

    name: str  # in0, out0, c0, t0: deterministic and never a user's name
    role: str  # "input" | "output" | "const" | "temp"
    dtype: str
    numel: int
    data: np.ndarray | None = None  # constants only
    offset: int = 0  # temps: byte offset in the arena (memory plan)

    @property
    def nbytes(self) -> int:
        return self.numel * dtypes.itemsize(self.dtype)


@dataclasses.dataclass(frozen=True, eq=False)
class View:
    """A strided view of a buffer (element strides)."""

    buffer: Buffer
    offset: int
    shape: tuple
    strides: tuple

    @staticmethod
    def contiguous(buffer: Buffer, shape: tuple) -> View:
        return View(buffer, 0, tuple(shape), contiguous_strides(shape))

    @property
    def is_contiguous(self) -> bool:
        return all(s == c for s, c, d in zip(self.strides, contiguous_strides(self.shape), self.shape) if d != 1)


@dataclasses.dataclass(eq=False)
class Kernel:
    """One materialized node: its loop (or kernel call) writes ``out``."""

    kind: str  # loop | reduce | softmax | cross_entropy | gemm | concatenate | slice_scatter | scatter_add
    node: Node
    out: View
    fused: list = dataclasses.field(default_factory=list)  # nodes computed inside, filled by the renderer
    name: str = ""  # filled by the renderer: k_<hash8>_<ops>
    copy: bool = False  # copy the node's value (already stored elsewhere) instead of computing it
    alpha: float = 1.0  # gemm: out = alpha * product + beta * out
    beta: float = 0.0


@dataclasses.dataclass(eq=False)
class Schedule:
    kernels: list
    inputs: list  # Buffer per program input, in order
    outputs: list  # Buffer per program output, in order
    temps: list
    consts: list
    shape: dict  # id(node) -> concrete shape
    views: dict  # id(node) -> View, for nodes that live in (or view) a buffer
    updates: list  # (input position, View of the new value)
    bindings: dict
    nodes: list  # deterministic topological order

    def shape_of(self, node: Node) -> tuple:
        return self.shape[id(node)]


def contiguous_strides(shape) -> tuple:
    strides, step = [], 1
    for d in reversed(shape):
        strides.append(step)
        step *= d
    return tuple(reversed(strides))


def _concrete(value, bindings) -> int:
    return int(value) if isinstance(value, (int, np.integer)) else int(sympy.sympify(value).xreplace(bindings))


def movement_view(node: Node, base: View, shape_of) -> View | None:
    """The view a movement op makes of ``base`` (its input's view), or None when not strided."""
    name, out_shape = node.op.name, shape_of(node)
    if name == "broadcast_to":
        lead = len(out_shape) - len(base.shape)
        strides = [0] * lead + [0 if (d == 1 and o != 1) else s
                                for d, s, o in zip(base.shape, base.strides, out_shape[lead:])]
        return View(base.buffer, base.offset, out_shape, tuple(strides))
    if name == "transpose":
        axes = node.attr("axes")
        return View(base.buffer, base.offset, out_shape, tuple(base.strides[a] for a in axes))
    if name == "reshape":
        if not base.is_contiguous:
            return None
        return View(base.buffer, base.offset, out_shape, contiguous_strides(out_shape))
    if name == "getitem":
        offset, strides, axis = base.offset, [], 0
        for entry in node.attr("index"):
            if entry[0] == "newaxis":
                strides.append(0)
                continue
            if entry[0] == "int":
                offset += _concrete(entry[1], node_bindings(shape_of)) * base.strides[axis]
            else:
                start, step = (_concrete(v, node_bindings(shape_of)) for v in (entry[1], entry[3]))
                offset += start * base.strides[axis]
                strides.append(base.strides[axis] * step)
            axis += 1
        strides += base.strides[axis:]
        return View(base.buffer, offset, out_shape, tuple(strides))
    return None


def node_bindings(shape_of) -> dict:
    return getattr(shape_of, "bindings", {})


class _ShapeOf:
    def __init__(self, shape, bindings):
        self.shape, self.bindings = shape, bindings

    def __call__(self, node):
        return self.shape[id(node)]


def _consumers(order):
    out = {id(n): [] for n in order}
    for n in order:
        for i in n.inputs:
            out[id(i)].append(n)
    return out


def _is_scalar_constant(node):
    return node.is_constant and node.shape == ()


def schedule(outputs, inputs, updates=None, bindings=None, fold=True) -> Schedule:
    """Decide kernels and buffers for ``outputs`` (and ``updates``) at concrete dims ``bindings``.

    ``fold`` lets updates write their input arrays in place where safe (plan.inplace)."""
    bindings = dict(bindings or {})
    updates = list((updates or {}).items()) if hasattr(updates, "items") else list(updates or [])
    input_pos = {id(leaf): k for k, leaf in enumerate(inputs)}
    roots = list(outputs) + [value for _, value in updates]
    order = toposort(roots)
    shape = {}
    for n in order:
        shape[id(n)] = shapes.substitute(n.shape, bindings)
    shape_of = _ShapeOf(shape, bindings)
    for leaf, value in updates:
        if id(leaf) not in input_pos:
            raise LoweringError(f"updates: {leaf} is not one of the program's inputs")
    for n in order:
        if n.is_leaf and not n.is_constant and id(n) not in input_pos:
            raise LoweringError(f"compile: the graph reads {n.name} (shape {shapes.format_shape(n.shape)}), "
                                "which is not among the inputs")

    consumers = _consumers(order)
    output_ids = {id(o) for o in outputs} | {id(v) for _, v in updates}
    views: dict = {}
    in_buffers = [Buffer(f"in{k}", "input", leaf.dtype, int(np.prod(shapes.substitute(leaf.shape, bindings),
                                                                      dtype=np.int64)))
                  for k, leaf in enumerate(inputs)]
    for k, leaf in enumerate(inputs):
        views[id(leaf)] = View.contiguous(in_buffers[k], shapes.substitute(leaf.shape, bindings))
    consts, temps, kernels = [], [], []

    def materialize(node, buffer=None):
        if buffer is None:
            buffer = Buffer(f"t{len(temps)}", "temp", node.dtype, int(np.prod(shape[id(node)], dtype=np.int64)))
            temps.append(buffer)
        view = View.contiguous(buffer, shape[id(node)])
        kind = node.op.kernel or "loop"
        kernels.append(Kernel(kind, node, view))
        views[id(node)] = view
        return view

    def fused_into_consumer(node) -> bool:
        users = consumers[id(node)]
        if id(node) in output_ids or len(users) != 1:
            return False
        user = users[0]
        return getattr(user.op, "kind", "") == "elementwise" or user.op.fuses_inputs

    gemm_copies = _gemm_operands_needing_copies(order, shape_of, views, input_pos)
    for n in order:
        name = n.op.name
        if n.is_leaf and not n.is_constant:
            continue
        if n.is_constant:
            if shape[id(n)] != ():
                buffer = Buffer(f"c{len(consts)}", "const", n.dtype, int(np.prod(shape[id(n)])),
                                data=np.ascontiguousarray(n.attr("value"), dtype=n.dtype))
                consts.append(buffer)
                views[id(n)] = View.contiguous(buffer, shape[id(n)])
            continue
        if id(n) in gemm_copies:
            materialize(n)
            continue
        if n.op.view:
            base = views.get(id(n.inputs[0]))
            view = movement_view(n, base, shape_of) if base is not None else None
            if view is not None:
                views[id(n)] = view
            continue
        if n.op.index_function:
            continue
        if getattr(n.op, "kind", "") == "elementwise" and fused_into_consumer(n):
            continue
        if not n.op.has_identity:
            _check_reduction_is_not_empty(n, shape)
        if getattr(n.op, "kind", "") == "elementwise" or n.op.kernel:
            materialize(n)
            continue
        raise LoweringError(f"compile: no lowering for op {name!r}")

    out_buffers = []
    for k, o in enumerate(outputs):
        own = next((kern for kern in kernels if kern.node is o), None)
        if own is not None and own.out.buffer.role == "temp":
            # the node's own kernel writes straight into the output: its temp becomes the output
            # (views of the node follow, since they hold the buffer object)
            buffer = own.out.buffer
            temps.remove(buffer)
            buffer.name, buffer.role = f"out{k}", "output"
        else:
            buffer = Buffer(f"out{k}", "output", o.dtype, int(np.prod(shape[id(o)], dtype=np.int64)))
            kernels.append(Kernel("loop", o, View.contiguous(buffer, shape[id(o)]), copy=True))
        out_buffers.append(buffer)
    update_views, updated = [], []
    for leaf, value in updates:
        if shapes.substitute(value.shape, bindings) != shape[id(leaf)] or value.dtype != leaf.dtype:
            raise LoweringError(f"updates: the new value of {leaf.name} has shape "
                                f"{shapes.format_shape(value.shape)} and dtype {value.dtype}; {leaf.name} has "
                                f"{shapes.format_shape(leaf.shape)} and {leaf.dtype}")
        if value is leaf:  # w ← w (an update that simplified away, lr = 0): nothing to write
            continue
        view = views.get(id(value))
        if view is not None and (not view.is_contiguous or view.buffer.role == "input"):
            # the value is stored elsewhere (an input, or a view of one): copy it out before any write
            buffer = Buffer(f"t{len(temps)}", "temp", value.dtype, int(np.prod(shape[id(value)], dtype=np.int64)))
            temps.append(buffer)
            view = View.contiguous(buffer, shape[id(value)])
            kernels.append(Kernel("loop", value, view, copy=True))
        elif view is None:
            view = materialize(value)
        update_views.append((input_pos[id(leaf)], view))
        updated.append(leaf)
    if fold:
        from .inplace import fold_updates

        update_views = fold_updates(kernels, update_views, updated, views, temps, consumers, bindings)
    # renumber temps densely (outputs and in-place updates may have taken some over)
    for k, t in enumerate(temps):
        t.name = f"t{k}"
    return Schedule(kernels, in_buffers, out_buffers, temps, consts, shape, views, update_views, bindings, order)


def _gemm_operands_needing_copies(order, shape_of, views, input_pos) -> set:
    """Matmul operands that are not a (batched) matrix with one unit stride get a contiguous copy.

    Decided before the main pass from the movement chains alone: an operand is fine when it is
    a leaf, a materialized node, or transposes/broadcasts/basic slices of one."""
    need = set()
    for n in order:
        if n.op.name != "matmul":
            continue
        for operand in n.inputs:
            if not _strided_chain(operand, shape_of):
                need.add(id(operand))
    return need


def _strided_chain(node, shape_of) -> bool:
    """Whether ``node`` will be a strided view with a unit stride in one of its last two axes."""
    chain = []
    while node.op.view:
        chain.append(node)
        node = node.inputs[0]
    if node.op.index_function or (node.is_constant and node.shape == ()):
        return False
    # anything else at the root is a buffer: an input, a constant array, or a node that is
    # materialized (an elementwise node read through a movement op or by the matmul is)
    base = View.contiguous(Buffer("probe", "temp", node.dtype, 0), shape_of(node))
    for m in reversed(chain):
        base = movement_view(m, base, shape_of)
        if base is None:
            return False
    if len(base.shape) == 1:
        return True
    return base.strides[-1] == 1 or base.strides[-2] == 1
