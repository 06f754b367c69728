"""``sd.scan``: a loop whose body is one graph, run ``length`` times (JAX's ``lax.scan``).

An unrolled recurrence of T steps is a graph T times the size of one step: its printed
formulas are long, and its compiled program is T times the code (an unrolled 2-layer LSTM
step misses a 10 s compile from T = 16; ``bench/lstm_unrolled_compile.py``). ``scan`` keeps
the step as **one body graph** — ``step(carry, x_t) -> (carry, y_t)`` — and the loop as one
node, so the body is lowered once and the generated source does not grow with T.

>>> import symdiff as sd
>>> h0, xs, w = sd.tensor("h0", (2,)), sd.tensor("xs", (5, 2)), sd.symbols("w")
>>> h, hs = sd.scan(lambda h, x: (sd.tanh(w * h + x),) * 2, h0, xs, names="h")
>>> h.shape, hs.shape
((2,), (5, 2))
>>> print(sd.pretty(hs))
scan(h, xs_t ↦ tanh(w·h + xs_t); h = h₀, xs_t ∈ xs).y

The node's value packs every output — each carry's history (its value after each step) and
each per-step output, stacked along a leading T axis — into one flat array; the outputs users
see are views of it (:func:`scan_part`). Its derivatives are scans too, built from the body's
own rules, so they lower, print and differentiate again:

- **forward mode** runs the body and its JVP side by side: one scan carrying (h, ḣ);
- **reverse mode** (BPTT) runs the body's VJP backwards over the saved carry history: a
  reverse scan carrying the adjoint of the carry (h̄) and the running sums of the gradients
  of the weights the body reads (W̄ ← W̄ + ∂ℓ_t/∂W), its per-step outputs the gradients of xs.

The body's leaves are its placeholders: the carries, the current slices of ``xs`` and the
values it reads from outside (closed over, found by tracing: the weights).
"""

from __future__ import annotations

import hashlib

import numpy as np
import sympy

from . import dtypes, shapes
from .autodiff import DifferentiationError, jvp_graph, vjp_graph
from .graph import attr_text as _attr_text
from .graph import toposort
from .node import Node, as_node, make, tensor
from .ops.movement import concatenate, expand_dims, getitem, transpose, zeros
from .ops.registry import Op, function
from .shapes import ShapeError, format_shape

# -- the body ----------------------------------------------------------------------------------


class Body:
    """One step of a scan as a graph: placeholders (carries, per-step xs, consts read from
    outside) and outputs (the new carries, then the per-step ys). Immutable; two bodies are
    equal when they are the same nodes (which hash-consing makes of the same step built twice)."""

    __slots__ = ("_digest", "_order", "carries", "consts", "outputs", "xs")

    def __init__(self, carries, xs, consts, outputs):
        self.carries, self.xs, self.consts = tuple(carries), tuple(xs), tuple(consts)
        self.outputs = tuple(outputs)
        self._order = None
        self._digest = None
        placeholders = self.placeholders
        if len({id(p) for p in placeholders}) != len(placeholders):
            raise ValueError("scan: a body placeholder is used twice (two carries or xs of one name and shape?)")
        for p in placeholders:
            if not isinstance(p, Node) or not p.is_leaf:
                raise TypeError(f"scan: a body placeholder must be a leaf, got {p}")
        bound = {id(p) for p in placeholders}
        free = [n for n in self.order if n.is_leaf and id(n) not in bound]
        if free:
            raise ValueError("scan: the body reads " + ", ".join(sorted({str(n.name) for n in free}))
                             + ", which are not among its placeholders")
        for c, new in zip(self.carries, self.outputs):
            if not (len(new.shape) == len(c.shape) and all(map(shapes.same_dim, new.shape, c.shape))) \
                    or new.dtype != c.dtype:
                raise ShapeError(f"scan: the step returns a carry of shape {format_shape(new.shape)} and dtype "
                                 f"{new.dtype} for {c.name}, which has shape {format_shape(c.shape)} and dtype "
                                 f"{c.dtype}; a carry keeps its shape and dtype")

    @property
    def placeholders(self) -> tuple:
        return self.carries + self.xs + self.consts

    @property
    def new_carries(self) -> tuple:
        return self.outputs[:len(self.carries)]

    @property
    def ys(self) -> tuple:
        return self.outputs[len(self.carries):]

    @property
    def order(self) -> list:
        """The body's nodes in topological order (placeholders among them)."""
        if self._order is None:
            self._order = toposort(list(self.outputs))
        return self._order

    @property
    def digest(self) -> str:
        """SHA-256 of the body's structure: ops, attributes, shapes and dtypes, placeholders by
        position (their names do not change what the body computes)."""
        if self._digest is None:
            where = {id(p): k for k, p in enumerate(self.placeholders)}
            order = toposort(list(self.outputs) + list(self.placeholders))
            index = {id(n): k for k, n in enumerate(order)}
            h = hashlib.sha256(f"body {len(self.carries)} {len(self.xs)} {len(self.consts)}\n".encode())
            for n in order:
                if id(n) in where:
                    line = f"p{where[id(n)]}:{n.shape}:{n.dtype}"
                else:
                    attrs = ";".join(f"{k}={_attr_text(v)}" for k, v in n._attrs if k != "name")
                    line = f"{n.op.name}({','.join(str(index[id(i)]) for i in n.inputs)})[{attrs}]:{n.shape}:{n.dtype}"
                h.update(line.encode() + b"\n")
            h.update(("out " + ",".join(str(index[id(o)]) for o in self.outputs)).encode())
            self._digest = h.hexdigest()
        return self._digest

    def __eq__(self, other):
        return isinstance(other, Body) and all(
            len(a) == len(b) and all(x is y for x, y in zip(a, b))
            for a, b in ((self.carries, other.carries), (self.xs, other.xs), (self.consts, other.consts),
                         (self.outputs, other.outputs)))

    def __hash__(self):
        return hash(tuple(id(n) for n in self.placeholders + self.outputs))

    def __repr__(self):
        return f"Body({self.digest})"


def run_body(body: Body, values: list, bindings: dict, symbolic: bool = False) -> list:
    """The body's outputs for placeholder ``values``: numpy arrays, or (``symbolic``) object
    arrays of sympy expressions, as :mod:`symdiff.symbolic` scalarizes a graph."""
    env = {id(p): v for p, v in zip(body.placeholders, values)}
    if symbolic:
        from .symbolic import _scalarize_node
    for n in body.order:
        if id(n) in env:
            continue
        ins = [env[id(i)] for i in n.inputs]
        if symbolic:
            env[id(n)] = _scalarize_node(n, ins, bindings, {})
            continue
        value = np.asarray(n.op.evaluate(ins, n.attrs, shapes.substitute(n.shape, bindings), bindings))
        env[id(n)] = value.astype(n.dtype) if value.dtype.name != n.dtype else value
    return [env[id(o)] for o in body.outputs]


# -- the layout of the packed value ------------------------------------------------------------


def layout_of(body: Body, length, history) -> tuple:
    """The shapes of the packed outputs: each carry's history (T, ...) (or its final value
    where ``history`` is False), then each y stacked (T, ...)."""
    parts = [((length,) + c.shape) if keep else c.shape for c, keep in zip(body.carries, history)]
    return tuple(parts + [(length,) + y.shape for y in body.ys])


def _offsets(layout, bindings=None) -> list:
    out, at = [], 0
    for part in layout:
        out.append(at)
        at = at + shapes.numel(shapes.substitute(part, bindings) if bindings else part)
    return out + [at]


def _total(layout):
    t = _offsets(layout)[-1]
    return t if isinstance(t, int) else shapes.dim(t)


# -- scan_part: one output, a view of the packed value -------------------------------------------


def _part_infer(inputs, attrs):
    (x,) = inputs
    layout, k = attrs["layout"], attrs["index"]
    if not x.shape or not shapes.same_dim(x.shape[-1], _total(layout)):
        raise ShapeError(f"scan_part: expected a packed array whose last axis has {_total(layout)} elements, "
                         f"got shape {format_shape(x.shape)}")
    return x.shape[:-1] + tuple(layout[k]), x.dtype


def _part_evaluate(values, attrs, out_shape, bindings):
    (x,) = values
    layout, k = attrs["layout"], attrs["index"]
    off = _offsets(layout, bindings)
    lead = x.shape[:-1]
    return x[..., int(off[k]):int(off[k + 1])].reshape(lead + tuple(out_shape[len(lead):]))


scan_part_op = Op("scan_part", infer=_part_infer, evaluate=_part_evaluate, view=True,
                  doc="output `index` of a scan: a contiguous block of its packed value, reshaped")


def scan_part(packed, layout, index) -> Node:
    """Output ``index`` of a packed scan value (or of a packed tangent/cotangent)."""
    if packed.op is scan_pack_op and tuple(packed.attr("layout")) == tuple(layout):
        return packed.inputs[index]
    return make(scan_part_op, (packed,), layout=tuple(layout), index=index)


@scan_part_op.defjvp
def _part_jvp(node, ts, nb):
    return scan_part(ts[0], node.attr("layout"), node.attr("index"))


@scan_part_op.defvjp
def _part_vjp(node, ct, nb, needed=None):
    layout, k = node.attr("layout"), node.attr("index")
    lead = ct.shape[:len(ct.shape) - len(layout[k])]
    parts = [ct if i == k else zeros(lead + tuple(p), ct.dtype) for i, p in enumerate(layout)]
    return [make(scan_pack_op, parts, layout=tuple(layout))]


# -- scan_pack: the packed value from its parts (the cotangents and tangents of a scan) --------


def _pack_infer(inputs, attrs):
    layout = attrs["layout"]
    if len(inputs) != len(layout):
        raise ShapeError(f"scan_pack: {len(layout)} parts expected, got {len(inputs)}")
    lead = inputs[0].shape[:len(inputs[0].shape) - len(layout[0])]
    for part, want in zip(inputs, layout):
        full = lead + tuple(want)
        if len(part.shape) != len(full) or not all(map(shapes.same_dim, part.shape, full)):
            raise ShapeError(f"scan_pack: a part has shape {format_shape(part.shape)}, expected {format_shape(full)}")
    return lead + (_total(layout),), dtypes.promote(*[p.dtype for p in inputs])


def _pack_evaluate(values, attrs, out_shape, bindings):
    lead = tuple(out_shape[:-1])
    return np.concatenate([np.reshape(v, lead + (-1,)) for v in values], axis=-1)


scan_pack_op = Op("scan_pack", infer=_pack_infer, evaluate=_pack_evaluate,
                  doc="the packed value of a scan from its parts (how its tangents and cotangents travel)")


def is_zeros(node) -> bool:
    """A zero tensor made by :func:`~symdiff.ops.movement.zeros` (a broadcast 0)."""
    while node.op.name == "broadcast_to":
        node = node.inputs[0]
    return node.is_constant and not isinstance(node.attr("value"), sympy.Basic) \
        and np.all(np.asarray(node.attr("value")) == 0)


def _add_packs(a, b):
    """Two cotangents of one scan, summed part by part (zeros skipped): the accumulation
    :func:`symdiff.autodiff.vjp_graph` uses for ops whose cotangents are packs."""
    if tuple(a.attr("layout")) != tuple(b.attr("layout")):
        return a + b
    parts = [y if is_zeros(x) else x if is_zeros(y) else x + y for x, y in zip(a.inputs, b.inputs)]
    return make(scan_pack_op, parts, layout=a.attr("layout"))


scan_pack_op.add_cotangents = _add_packs


@scan_pack_op.defjvp
def _pack_jvp(node, ts, nb):
    lead = next(t for t in ts if t is not None).shape[:nb]
    parts = [t if t is not None else zeros(lead + p.shape, p.dtype) for t, p in zip(ts, node.inputs)]
    return make(scan_pack_op, parts, layout=node.attr("layout"))


@scan_pack_op.defvjp
def _pack_vjp(node, ct, nb, needed=None):
    return [scan_part(ct, node.attr("layout"), k) for k in range(len(node.inputs))]


def unpack(ct, layout) -> list:
    """The parts of a packed cotangent or tangent, None where a part is zero."""
    if ct.op is scan_pack_op and tuple(ct.attr("layout")) == tuple(layout):
        return [None if is_zeros(p) else p for p in ct.inputs]
    return [scan_part(ct, layout, k) for k in range(len(layout))]


# -- the scan op ---------------------------------------------------------------------------------


def _groups(node_or_inputs, body):
    inputs = node_or_inputs.inputs if isinstance(node_or_inputs, Node) else node_or_inputs
    nc, nx = len(body.carries), len(body.xs)
    return list(inputs[:nc]), list(inputs[nc:nc + nx]), list(inputs[nc + nx:])


def _same_shape(a, b) -> bool:
    return len(a) == len(b) and all(map(shapes.same_dim, a, b))


def _scan_infer(inputs, attrs):
    body, length, history = attrs["body"], attrs["length"], attrs["history"]
    if len(inputs) != len(body.placeholders):
        raise ShapeError(f"scan: {len(body.placeholders)} inputs expected, got {len(inputs)}")
    init, xs, consts = _groups(inputs, body)
    for value, p in zip(init, body.carries):
        if not _same_shape(value.shape, p.shape) or value.dtype != p.dtype:
            raise ShapeError(f"scan: the initial {p.name} has shape {format_shape(value.shape)} and dtype "
                             f"{value.dtype}; the step takes shape {format_shape(p.shape)} and dtype {p.dtype}")
    for value, p in zip(xs, body.xs):
        if not _same_shape(value.shape, (length,) + p.shape) or value.dtype != p.dtype:
            raise ShapeError(f"scan: a sequence of shape {format_shape(value.shape)} ({value.dtype}) is scanned "
                             f"by a step taking {p.name} of shape {format_shape(p.shape)} ({p.dtype}); the sequence "
                             f"must be {format_shape((length,) + p.shape)}: the steps along its first axis")
    for value, p in zip(consts, body.consts):
        if not _same_shape(value.shape, p.shape) or value.dtype != p.dtype:
            raise ShapeError(f"scan: {p.name} is given shape {format_shape(value.shape)} ({value.dtype}), "
                             f"the body reads {format_shape(p.shape)} ({p.dtype})")
    kinds = sorted({o.dtype for o in body.outputs})
    if len(kinds) != 1 or not dtypes.is_float(kinds[0]):
        raise ShapeError("scan: the carries and per-step outputs must all have one float dtype, got "
                         + ", ".join(kinds or ["none"]))
    return (_total(layout_of(body, length, history)),), kinds[0]


def _scan_loop(values, attrs, bindings, symbolic):
    body, reverse, history = attrs["body"], attrs["reverse"], attrs["history"]
    length = int(shapes.substitute((attrs["length"],), bindings)[0])
    init, xs, consts = _groups(values, body)
    carry = list(init)
    hist = [[] for _ in body.carries]
    ys = [[] for _ in body.ys]
    steps = range(length - 1, -1, -1) if reverse else range(length)
    for t in steps:
        outs = run_body(body, carry + [x[t] for x in xs] + consts, bindings, symbolic)
        carry = outs[:len(carry)]
        for h, c in zip(hist, carry):
            h.append(c)
        for y, v in zip(ys, outs[len(carry):]):
            y.append(v)
    if reverse:
        hist, ys = [h[::-1] for h in hist], [y[::-1] for y in ys]
    kind = object if symbolic else np.dtype(body.outputs[0].dtype)
    parts = []
    for k, (p, keep) in enumerate(zip(body.carries, history)):
        shape = shapes.substitute(p.shape, bindings)
        if keep:
            parts.append(np.stack(hist[k]) if hist[k] else np.zeros((0,) + shape, kind))
        else:
            parts.append(np.asarray(carry[k]))
    for j, y in enumerate(body.ys):
        parts.append(np.stack(ys[j]) if ys[j] else np.zeros((0,) + shapes.substitute(y.shape, bindings), kind))
    return np.concatenate([np.reshape(np.asarray(p, dtype=kind), (-1,)) for p in parts]) if parts \
        else np.zeros((0,), kind)


def _scan_evaluate(values, attrs, out_shape, bindings):
    return _scan_loop(values, attrs, bindings, symbolic=False)


def _scan_flops(node):
    body = node.attr("body")
    bound = {id(p) for p in body.placeholders}
    per_step = sum((n.op.flops(n) for n in body.order if id(n) not in bound and not n.is_leaf), sympy.Integer(0))
    return node.attr("length") * per_step


scan_op = Op("scan", infer=_scan_infer, evaluate=_scan_evaluate, flops=_scan_flops, kernel="scan",
             doc="a loop of `length` steps of one body graph: carries threaded through, xs sliced, ys stacked")


@scan_op.defsymbolic
def _scan_symbolic(values, attrs, out_shape, bindings):
    return _scan_loop(values, attrs, bindings, symbolic=True)


def _make_scan(body, init, xs, consts, length, reverse, history) -> Node:
    return make(scan_op, tuple(init) + tuple(xs) + tuple(consts), body=body, length=length, reverse=bool(reverse),
                history=tuple(bool(h) for h in history))


def parts_of(node) -> list:
    """The outputs of a scan node, unpacked: carry histories (or finals), then the ys."""
    layout = layout_of(node.attr("body"), node.attr("length"), node.attr("history"))
    return [scan_part(node, layout, k) for k in range(len(layout))]


def _time_first(t, nb):
    """(lead.., T, ...) -> (T, lead.., ...)."""
    if not nb:
        return t
    return transpose(t, (nb,) + tuple(range(nb)) + tuple(range(nb + 1, len(t.shape))))


def _lead_first(t, nb):
    """(T, lead.., ...) -> (lead.., T, ...)."""
    if not nb:
        return t
    return transpose(t, tuple(range(1, nb + 1)) + (0,) + tuple(range(nb + 1, len(t.shape))))


def _placeholder(name, shape, dtype) -> Node:
    return tensor(name, shape, dtype)


def _taken(body) -> set:
    return {n.name for n in body.order if n.is_leaf} | {p.name for p in body.placeholders}


def _fresh(name, mark, taken: set) -> str:
    """``name`` with a mark (h -> h̄), numbered where a leaf of the body already has that name (a
    derivative of a derivative): the placeholders of one body must be distinct leaves."""
    out, k = f"{name}{mark}", 1
    while out in taken:
        out, k = f"{name}{mark}{k}", k + 1
    taken.add(out)
    return out


@scan_op.defjvp
def _scan_jvp(node, ts, nb):
    body, length = node.attr("body"), node.attr("length")
    reverse, history = node.attr("reverse"), node.attr("history")
    init, xs, consts = _groups(node, body)
    t_init, t_xs, t_consts = _groups(ts, body)
    lead = next(t for t in ts if t is not None).shape[:nb]
    dot, taken = "\u0307", _taken(body)  # ḣ
    c_dot = [_placeholder(_fresh(c.name, dot, taken), lead + c.shape, c.dtype) for c in body.carries]
    x_with = [j for j, t in enumerate(t_xs) if t is not None and dtypes.is_float(body.xs[j].dtype)]
    k_with = [i for i, t in enumerate(t_consts) if t is not None and dtypes.is_float(body.consts[i].dtype)]
    x_dot = [_placeholder(_fresh(body.xs[j].name, dot, taken), lead + body.xs[j].shape, body.xs[j].dtype) for j in x_with]
    k_dot = [_placeholder(_fresh(body.consts[i].name, dot, taken), lead + body.consts[i].shape, body.consts[i].dtype)
             for i in k_with]
    wrt = list(body.carries) + [body.xs[j] for j in x_with] + [body.consts[i] for i in k_with]
    tangents = jvp_graph(list(body.outputs), wrt, c_dot + x_dot + k_dot, nb)
    nc = len(body.carries)
    tbody = Body(list(body.carries) + c_dot, list(body.xs) + x_dot, list(body.consts) + k_dot,
                 list(body.new_carries) + tangents[:nc] + list(body.ys) + tangents[nc:])
    t0 = [t if t is not None else zeros(lead + c.shape, c.dtype) for t, c in zip(t_init, body.carries)]
    tx = [_time_first(t_xs[j], nb) for j in x_with]
    tk = [t_consts[i] for i in k_with]
    both = _make_scan(tbody, init + t0, xs + tx, consts + tk, length, reverse, tuple(history) * 2)
    parts = parts_of(both)
    ny = len(body.ys)
    carry_t = parts[nc:2 * nc]
    ys_t = parts[2 * nc + ny:]
    out = [_lead_first(p, nb) if keep else p for p, keep in zip(carry_t, history)] + [_lead_first(p, nb) for p in ys_t]
    return make(scan_pack_op, out, layout=layout_of(body, length, history))


def _previous(hist, init, length, reverse):
    """The carry each step starts from: init, then the history shifted by one step."""
    first = expand_dims(init, 0)
    if isinstance(length, int) and length == 1:
        return first
    if reverse:
        return concatenate([getitem(hist, slice(1, None)), first], axis=0)
    return concatenate([first, getitem(hist, slice(0, -1))], axis=0)


@scan_op.defvjp
def _scan_vjp(node, ct, nb, needed=None):
    body, length = node.attr("body"), node.attr("length")
    reverse, history = node.attr("reverse"), node.attr("history")
    init, xs, consts = _groups(node, body)
    needed = needed or (True,) * len(node.inputs)
    _, need_x, need_k = _groups(list(needed), body)
    nc = len(body.carries)
    layout = layout_of(body, length, history)
    cts = unpack(ct, layout)
    lead = ct.shape[:nb]
    if not all(history):  # the steps need every carry's history: recompute it (one more forward pass)
        node = _make_scan(body, init, xs, consts, length, reverse, (True,) * nc)
    hists = parts_of(node)[:nc]
    prev = [_previous(h, c0, length, reverse) for h, c0 in zip(hists, init)]
    bar, taken = "\u0304", _taken(body)  # h̄
    lam = [_placeholder(_fresh(c.name, bar, taken), lead + c.shape, c.dtype) for c in body.carries]
    g_hist = {k: _placeholder(_fresh(c.name, bar + "_t", taken), lead + c.shape, c.dtype)
              for k, c in enumerate(body.carries) if history[k] and cts[k] is not None}
    g_ys = {j: _placeholder(_fresh("y" if len(body.ys) == 1 else f"y{j}", bar, taken), lead + y.shape, y.dtype) for j, y in enumerate(body.ys)
            if cts[nc + j] is not None}
    x_need = [j for j, x in enumerate(body.xs) if need_x[j] and dtypes.is_float(x.dtype)]
    k_need = [i for i, k in enumerate(body.consts) if need_k[i] and dtypes.is_float(k.dtype)]
    acc = [_placeholder(_fresh(body.consts[i].name, bar, taken), lead + body.consts[i].shape, body.consts[i].dtype)
           for i in k_need]
    outs, out_cts = [], []
    for k, new in enumerate(body.new_carries):
        outs.append(new)
        out_cts.append(lam[k] + g_hist[k] if k in g_hist else lam[k])
    for j, y in enumerate(body.ys):
        if j in g_ys:
            outs.append(y)
            out_cts.append(g_ys[j])
    wrt = list(body.carries) + [body.xs[j] for j in x_need] + [body.consts[i] for i in k_need]
    grads = vjp_graph(outs, out_cts, wrt, nb)
    d_carry, d_x, d_k = grads[:nc], grads[nc:nc + len(x_need)], grads[nc + len(x_need):]
    rbody = Body(lam + acc, list(body.carries) + list(body.xs) + [g_hist[k] for k in sorted(g_hist)]
                 + [g_ys[j] for j in sorted(g_ys)], list(body.consts),
                 d_carry + [a + d for a, d in zip(acc, d_k)] + d_x)
    lam0 = [cts[k] if (not history[k] and cts[k] is not None) else zeros(lead + c.shape, c.dtype)
            for k, c in enumerate(body.carries)]
    acc0 = [zeros(a.shape, a.dtype) for a in acc]
    seq = prev + list(xs) + [_time_first(cts[k], nb) for k in sorted(g_hist)] \
        + [_time_first(cts[nc + j], nb) for j in sorted(g_ys)]
    back = _make_scan(rbody, lam0 + acc0, seq, consts, length, not reverse,
                      (False,) * (nc + len(acc)))
    parts = parts_of(back)
    d_init = parts[:nc]
    d_consts = dict(zip(k_need, parts[nc:nc + len(acc)]))
    d_xs = dict(zip(x_need, (_lead_first(p, nb) for p in parts[nc + len(acc):])))
    return (d_init + [d_xs.get(j) for j in range(len(xs))] + [d_consts.get(i) for i in range(len(consts))])


# -- the public function -------------------------------------------------------------------------


def _as_tuple(value, what):
    if value is None:
        return (), "none"
    if isinstance(value, (tuple, list)):
        return tuple(as_node(v) for v in value), "tuple"
    return (as_node(value),), "one"


def _shaped(values, kind):
    return None if kind == "none" else values[0] if kind == "one" else tuple(values)


def _placeholder_names(names, count, default):
    if names is None:
        return [default if count == 1 else f"{default}{k}" for k in range(count)]
    names = (names,) if isinstance(names, str) else tuple(names)
    if len(names) != count:
        raise ValueError(f"scan: {count} carry names expected, got {len(names)}: {names}")
    return list(names)


@function
def scan(step, init, xs=None, length=None, reverse: bool = False, names=None):
    """Run ``step(carry, x_t) -> (carry, y_t)`` over the first axis of ``xs`` (or ``length``
    times), as ``jax.lax.scan``: returns ``(final carry, ys stacked along a new first axis)``.

    ``init`` and ``xs`` are expressions or tuples of them (the step receives and returns the
    same structure; ``y_t`` may be None, an expression or a tuple); ``reverse`` runs from the last
    step to the first; ``names`` names the carries in printed formulas (default ``carry``).
    The step is traced once, on placeholders; the values it reads from outside (weights) become
    the scan's inputs, so derivatives with respect to them work.

    >>> import symdiff as sd
    >>> xs = sd.tensor("xs", (4,))
    >>> total, partial = sd.scan(lambda s, x: (s + x, s + x), sd.constant(0.0), xs, names="s")
    >>> sd.evaluate([total, partial], {xs: [1.0, 2.0, 3.0, 4.0]})
    [array(10.), array([ 1.,  3.,  6., 10.])]
    """
    if not callable(step):
        raise TypeError(f"scan: step must be a function (carry, x) -> (carry, y), got {type(step).__name__}")
    carries, carry_kind = _as_tuple(init, "init")
    if not carries:
        raise ValueError("scan: init must give at least one carry")
    seqs, x_kind = _as_tuple(xs, "xs")
    for s in seqs:
        if not s.shape:
            raise ShapeError(f"scan: xs must have a leading steps axis, got a scalar {s}")
    if length is None:
        if not seqs:
            raise ValueError("scan: give xs or length")
        length = seqs[0].shape[0]
    length = length if isinstance(length, int) else shapes.dim(length)
    if isinstance(length, int) and length < 0:
        raise ValueError(f"scan: length must be non-negative, got {length}")
    for s in seqs:
        if not shapes.same_dim(s.shape[0], length):
            raise ShapeError(f"scan: every sequence in xs must have {length} steps along its first axis, got "
                             + ", ".join(format_shape(q.shape) for q in seqs))
    c_names = _placeholder_names(names, len(carries), "carry")
    c_hold = [_placeholder(n, c.shape, c.dtype) for n, c in zip(c_names, carries)]
    x_hold = [_placeholder(f"{s.name}_t" if s.is_leaf else ("x_t" if len(seqs) == 1 else f"x{j}_t"),
                           s.shape[1:], s.dtype) for j, s in enumerate(seqs)]
    result = step(_shaped(c_hold, carry_kind), _shaped(x_hold, x_kind))
    if not isinstance(result, (tuple, list)) or len(result) != 2:
        raise TypeError("scan: step must return a pair (new carry, y)")
    new, ys = result
    new_nodes, new_kind = _as_tuple(new, "carry")
    if len(new_nodes) != len(carries) or (carry_kind == "one") != (new_kind == "one"):
        raise TypeError(f"scan: step must return a carry of the structure of init ({len(carries)} "
                        f"{'expression' if carry_kind == 'one' else 'expressions'}), got {len(new_nodes)}")
    y_nodes, y_kind = _as_tuple(ys, "y")
    y_nodes = tuple(y if y.dtype == new_nodes[0].dtype or not dtypes.is_float(y.dtype) else y.astype(new_nodes[0].dtype)
                    for y in y_nodes)
    bound = {id(p) for p in c_hold + x_hold}
    outputs = list(new_nodes) + list(y_nodes)
    free = sorted((n for n in toposort(outputs) if n.is_leaf and id(n) not in bound), key=lambda n: str(n.name))
    body = Body(c_hold, x_hold, free, outputs)
    node = _make_scan(body, carries, seqs, free, length, reverse, (True,) * len(carries))
    parts = parts_of(node)
    last = 0 if reverse else -1
    if isinstance(length, int) and length == 0:
        finals = list(carries)
    else:
        finals = [getitem(h, last) for h in parts[:len(carries)]]
    return _shaped(finals, carry_kind), _shaped(parts[len(carries):], y_kind)


__all__ = ["Body", "DifferentiationError", "layout_of", "parts_of", "run_body", "scan", "scan_part"]
