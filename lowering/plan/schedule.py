"""Schedule: which nodes become kernels, in what order, reading which buffers.

Shapes are resolved once, here (:mod:`.dims`): each dimension is an int, or a
:class:`~.dims.RuntimeDim` when the program is compiled for every size of it. Nodes fall in
three groups:

* **buffers** — inputs, array constants, and *materialized* nodes, each stored
  contiguously: matmuls, reductions, softmaxes, outputs, and elementwise nodes
  that several consumers read;
* **views** — movement ops (``broadcast_to``, ``transpose``, ``reshape``, basic
  ``getitem``) over a buffer: strides and an offset, never a copy;
* **fused** — elementwise nodes read by exactly one elementwise or reducing
  consumer, and index functions (``one_hot``, ``eye``, ``take``): computed inside
  the consumer's loop, so a chain of them is one pass over memory;
* **epilogues** (cpu only) — a conv2d's chain of elementwise consumers (bias, inference
  BatchNorm, relu) whose other operands are per-channel values, scalars or arrays of its shape:
  computed in the convolution's output pass, the conv output never stored
  (:meth:`_Scheduler.epilogue_chain`).

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

from . import dims, indexing
from .dims import numel as _numel

# What each op is to the schedule comes from its declaration (symdiff.ops.registry): op.kernel
# (the kernel kind that materializes it; None: a loop), op.view (strides, never a copy),
# op.fuses_inputs (elementwise producers fuse into its loops), op.index_function (no buffer to
# read), op.has_identity (a reduction of nothing has a value).


EPILOGUE_KINDS = {"conv2d"}  # kernel kinds whose renderers compute a chain of elementwise consumers


class LoweringError(ValueError):
    """A graph that cannot be lowered as asked (bad inputs, updates or arguments)."""


def _check_reduction_is_not_empty(node, shape):  # ops with has_identity=False: numpy raises, so do we
    into, out = _numel(shape[id(node.inputs[0])]), _numel(shape[id(node)])
    if into == 0 and out != 0:
        raise LoweringError(f"{node.op.name}: the reduced axes {node.attr('axis')} of an array of shape "
                            f"{shape[id(node.inputs[0])]} are empty, and {node.op.name} of nothing has no value "
                            "(numpy raises too)")


@dataclasses.dataclass(eq=False)
class Buffer:
    """Contiguous storage: an input, an output, an array constant or an arena temporary."""

    name: str  # in0, out0, c0, t0: deterministic and never a user's name
    role: str  # "input" | "output" | "const" | "temp"
    dtype: str
    numel: int  # or a dims.RuntimeDim
    data: np.ndarray | None = None  # constants only
    offset: int = 0  # temps: byte offset in the arena (memory plan), an int or a RuntimeDim

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
    reads_dims: bool = False  # filled by the renderer: the kernel takes the run-time dimensions
    alpha: float = 1.0  # gemm: out = alpha * product + beta * out
    beta: float = 0.0
    scratch: dict = dataclasses.field(default_factory=dict)  # renderer's key -> a temp this kernel alone uses
    # elementwise consumers of node computed in the kernel's output pass, in order: out holds
    # the last one's value (node itself is never stored); see _Scheduler.epilogue_chain
    epilogue: list = dataclasses.field(default_factory=list)


@dataclasses.dataclass(eq=False)
class Schedule:
    kernels: list
    inputs: list  # Buffer per program input, in order
    outputs: list  # Buffer per program output, in order
    temps: list
    consts: list
    shape: dict  # id(node) -> resolved shape (ints and RuntimeDims)
    views: dict  # id(node) -> View, for nodes that live in (or view) a buffer
    updates: list  # (input position, View of the new value)
    bindings: dict  # graph symbol -> int, or -> run-time symbol D<k>
    nodes: list  # deterministic topological order
    update_leaves: list = dataclasses.field(default_factory=list)  # the leaf of each entry of updates

    @property
    def runtime(self) -> list:
        """The run-time dimension symbols (D0, D1, …) in the order of the entry's ``dims``."""
        return sorted((v for v in self.bindings.values() if isinstance(v, sympy.Symbol)),
                      key=lambda s: int(s.name[1:]))

    def shape_of(self, node: Node) -> tuple:
        return self.shape[id(node)]


def contiguous_strides(shape) -> tuple:
    strides, step = [], 1
    for d in reversed(shape):
        strides.append(step)
        step *= d
    return tuple(reversed(strides))


def movement_view(node: Node, base: View, shape_of) -> View | None:
    """The view a movement op makes of ``base`` (its input's view), or None when not strided."""
    name, out_shape = node.op.name, shape_of(node)
    if name == "stop_gradient":  # the value itself: only differentiation tells it apart
        return base
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
    if name == "scan_part":  # one output of a scan: a contiguous block of its packed value
        if not base.is_contiguous:
            return None
        bindings = node_bindings(shape_of)
        start = 0
        for part in node.attr("layout")[:node.attr("index")]:
            start = start + dims.numel(dims.resolve(part, bindings))
        lead = len(base.shape) - 1
        return View(base.buffer, base.offset + start, out_shape,
                    tuple(base.strides[:lead]) + contiguous_strides(out_shape[lead:]))
    if name == "getitem":
        offset, strides = indexing.view_strides(node.attr("index"), node_bindings(shape_of), base.offset,
                                                base.strides)
        return View(base.buffer, offset, out_shape, strides)
    return None


def node_bindings(shape_of) -> dict:
    return getattr(shape_of, "bindings", {})


class _ShapeOf:
    def __init__(self, shape, bindings):
        self.shape, self.bindings = shape, bindings

    def __call__(self, node):
        return self.shape[id(node)]


def consumers_of(order) -> dict:
    """id(node) -> the nodes of ``order`` that read it."""
    out = {id(n): [] for n in order}
    for n in order:
        for i in n.inputs:
            out[id(i)].append(n)
    return out


def schedule(outputs, inputs, updates=None, bindings=None, epilogues=False) -> Schedule:
    """Decide kernels and buffers for ``outputs`` (and ``updates``) with ``bindings`` (graph
    dimension symbol -> int, or -> a run-time symbol of :func:`.dims.runtime_symbols`).

    Each update computes its new value into a temporary that the program copies into the
    input's array at the end; :func:`.inplace.fold` then removes what copies it can.

    ``epilogues``: a kernel of a kind in ``EPILOGUE_KINDS`` (conv2d) absorbs the chain of
    elementwise consumers of its output (a backend whose renderer computes them in its output
    pass asks for it: the cpu one)."""
    updates = list((updates or {}).items()) if hasattr(updates, "items") else list(updates or [])
    s = _Scheduler(list(outputs), list(inputs), updates, dict(bindings or {}), epilogues)
    gemm_copies = _gemm_operands_needing_copies(s.order, s.shape_of, s.views, s.input_pos)
    for n in s.order:
        s.place(n, copy_for_gemm=id(n) in gemm_copies)
    out_buffers = [s.output_buffer(k, o) for k, o in enumerate(outputs)]
    for leaf, value in updates:
        s.update(leaf, value)
    renumber_temps(s.temps)
    return Schedule(s.kernels, s.in_buffers, out_buffers, s.temps, s.consts, s.shape, s.views, s.update_views,
                    s.bindings, s.order, s.updated)


def renumber_temps(temps):
    """Name temporaries densely (outputs and in-place updates may have taken some over)."""
    for k, t in enumerate(temps):
        t.name = f"t{k}"


class _Scheduler:
    """The state of one :func:`schedule` call: shapes resolved once, then one decision per node."""

    def __init__(self, outputs, inputs, updates, bindings, epilogues=False):
        self.bindings = bindings
        self.input_pos = {id(leaf): k for k, leaf in enumerate(inputs)}
        self.order = toposort(list(outputs) + [value for _, value in updates])
        self.shape = {id(n): dims.resolve(n.shape, bindings) for n in self.order}
        self.shape_of = _ShapeOf(self.shape, bindings)
        for leaf, _ in updates:
            if id(leaf) not in self.input_pos:
                raise LoweringError(f"updates: {leaf} is not one of the program's inputs")
        for n in self.order:
            if n.is_leaf and not n.is_constant and id(n) not in self.input_pos:
                raise LoweringError(f"compile: the graph reads {n.name} (shape {shapes.format_shape(n.shape)}), "
                                    "which is not among the inputs")
        self.consumers = consumers_of(self.order)
        self.output_ids = {id(o) for o in outputs} | {id(v) for _, v in updates}
        self.views: dict = {}
        self.in_buffers = []
        for k, leaf in enumerate(inputs):
            leaf_shape = self.shape[id(leaf)] if id(leaf) in self.shape else dims.resolve(leaf.shape, bindings)
            self.in_buffers.append(Buffer(f"in{k}", "input", leaf.dtype, _numel(leaf_shape)))
            self.views[id(leaf)] = View.contiguous(self.in_buffers[k], leaf_shape)
        self.consts, self.temps, self.kernels = [], [], []
        self.update_views, self.updated = [], []
        self.absorbed, self.chain_end = set(), {}  # ids of a chain's conv and inner nodes; id(last) -> (conv, chain)
        for n in self.order if epilogues else ():
            chain = self.epilogue_chain(n) if n.op.kernel in EPILOGUE_KINDS else []
            if chain:
                self.absorbed |= {id(n)} | {id(c) for c in chain[:-1]}
                self.chain_end[id(chain[-1])] = (n, chain)

    def epilogue_chain(self, n) -> list:
        """The elementwise nodes after ``n`` that its kernel computes in its output pass: each
        the only consumer of the one before (which no output needs), of ``n``'s shape and dtype,
        its other operands per-channel values or scalars (read through broadcasts) or arrays of
        ``n``'s shape. The kernel runs where the last one is, after every operand's kernel."""
        chain, cur, shape = [], n, self.shape[id(n)]
        while id(cur) not in self.output_ids and len(self.consumers[id(cur)]) == 1:
            u = self.consumers[id(cur)][0]
            if (getattr(u.op, "kind", "") != "elementwise" or self.shape[id(u)] != shape or u.dtype != n.dtype
                    or not all(self._epilogue_operand(i, shape) for i in u.inputs if i is not cur)):
                break
            chain.append(u)
            cur = u
        return chain

    def _epilogue_operand(self, node, shape) -> bool:
        while node.op.view:
            node = node.inputs[0]
        root = self.shape[id(node)]
        return root == shape or (len(shape) >= 2 and not dims.is_runtime(shape[1])
                                 and _numel(root) in (1, shape[1]) and all(d == 1 for d in root if d != shape[1]))

    def materialize(self, node) -> View:
        buffer = self.temp(node)
        view = View.contiguous(buffer, self.shape[id(node)])
        self.kernels.append(Kernel(node.op.kernel or "loop", node, view))
        self.views[id(node)] = view
        return view

    def temp(self, node) -> Buffer:
        buffer = Buffer(f"t{len(self.temps)}", "temp", node.dtype, _numel(self.shape[id(node)]))
        self.temps.append(buffer)
        return buffer

    def fused_into_consumer(self, node) -> bool:
        users = self.consumers[id(node)]
        if id(node) in self.output_ids or len(users) != 1:
            return False
        return getattr(users[0].op, "kind", "") == "elementwise" or users[0].op.fuses_inputs

    def place(self, n, copy_for_gemm=False):
        """Decide what ``n`` is: nothing (a leaf, a fused or index-function node), a constant
        buffer, a view of its input's buffer, or a kernel writing a buffer of its own."""
        shape = self.shape[id(n)]
        if n.is_leaf and not n.is_constant or id(n) in self.absorbed:
            return
        if id(n) in self.chain_end:
            conv, chain = self.chain_end[id(n)]
            view = View.contiguous(self.temp(n), shape)
            self.kernels.append(Kernel(conv.op.kernel, conv, view, epilogue=chain))
            self.views[id(n)] = view
            return
        if n.is_constant:
            if shape != ():
                buffer = Buffer(f"c{len(self.consts)}", "const", n.dtype, int(_numel(shape)),
                                data=np.ascontiguousarray(n.attr("value"), dtype=n.dtype))
                self.consts.append(buffer)
                self.views[id(n)] = View.contiguous(buffer, shape)
            return
        if copy_for_gemm:
            self.materialize(n)
            return
        elementwise = getattr(n.op, "kind", "") == "elementwise"
        if n.op.view:
            base = self.views.get(id(n.inputs[0]))
            view = movement_view(n, base, self.shape_of) if base is not None else None
            if view is not None:
                self.views[id(n)] = view
            return
        if n.op.index_function or (elementwise and self.fused_into_consumer(n)):
            return
        if not n.op.has_identity:
            _check_reduction_is_not_empty(n, self.shape)
        if elementwise or n.op.kernel:
            self.materialize(n)
            return
        raise LoweringError(f"compile: no lowering for op {n.op.name!r}")

    def output_buffer(self, k, o) -> Buffer:
        own = next((kern for kern in self.kernels if (kern.epilogue[-1] if kern.epilogue else kern.node) is o), None)
        if own is not None and own.out.buffer.role == "temp":
            # the node's own kernel writes straight into the output: its temp becomes the output
            # (views of the node follow, since they hold the buffer object)
            buffer = own.out.buffer
            self.temps.remove(buffer)
            buffer.name, buffer.role = f"out{k}", "output"
            return buffer
        buffer = Buffer(f"out{k}", "output", o.dtype, _numel(self.shape[id(o)]))
        self.kernels.append(Kernel("loop", o, View.contiguous(buffer, self.shape[id(o)]), copy=True))
        return buffer

    def update(self, leaf, value):
        if dims.resolve(value.shape, self.bindings) != self.shape[id(leaf)] or value.dtype != leaf.dtype:
            raise LoweringError(f"updates: the new value of {leaf.name} has shape "
                                f"{shapes.format_shape(value.shape)} and dtype {value.dtype}; {leaf.name} has "
                                f"{shapes.format_shape(leaf.shape)} and {leaf.dtype}")
        if value is leaf:  # w ← w (an update that simplified away, lr = 0): nothing to write
            return
        view = self.views.get(id(value))
        if view is not None and (not view.is_contiguous or view.buffer.role == "input"):
            # the value is stored elsewhere (an input, or a view of one): copy it out before any write
            view = View.contiguous(self.temp(value), self.shape[id(value)])
            self.kernels.append(Kernel("loop", value, view, copy=True))
        elif view is None:
            view = self.materialize(value)
        self.update_views.append((self.input_pos[id(leaf)], view))
        self.updated.append(leaf)


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
