"""How each registered op exports to ONNX: one rule per op, keyed by the :class:`Op` object.

A rule is ``rule(ctx, node, ins) -> value name``: ``ins`` are the ONNX value names of the node's
inputs, and ``ctx`` (a :class:`symdiff.onnx.export.Exporter`) emits ONNX nodes through
``onnx.helper`` (``ctx.op``), constants (``ctx.ints``, ``ctx.scalar``) and the int64 shape
tensors of symbolic dimensions (``ctx.shape_of``). This module itself needs no ``onnx``: the
table can be read (and the coverage test run) without building a model.

An op that cannot export has a ``NOT_EXPORTABLE`` entry with the reason; every registered op is
in exactly one of the two tables (the test of ``tests/onnx`` checks it, so a new op must choose).

>>> import symdiff as sd
>>> sd.OPS["matmul"] in RULES, sd.OPS["scan"] in RULES
(True, True)
>>> print(NOT_EXPORTABLE[sd.OPS["solve"]])
ONNX's standard opset has no linear solve (nor an LU factorization to build one)
"""

from __future__ import annotations

import math

import numpy as np
import sympy

from .. import shapes
from ..ops.registry import OPS

RULES: dict = {}  # Op -> rule(ctx, node, ins) -> ONNX value name
NOT_EXPORTABLE: dict = {}  # Op -> why it has no rule


def rule(*names):
    """Register the decorated function as the export rule of the ops ``names``."""

    def register(fn):
        for name in names:
            RULES[OPS[name]] = fn
        return fn

    return register


def _unary(op_type):
    return lambda ctx, node, ins: ctx.op(op_type, ins)


# -- elementwise ---------------------------------------------------------------------------------
_DIRECT = {
    "add": "Add", "subtract": "Sub", "multiply": "Mul", "divide": "Div", "power": "Pow", "maximum": "Max",
    "minimum": "Min", "negative": "Neg", "abs": "Abs", "reciprocal": "Reciprocal", "exp": "Exp", "log": "Log",
    "sqrt": "Sqrt", "sin": "Sin", "cos": "Cos", "tan": "Tan", "tanh": "Tanh", "sigmoid": "Sigmoid", "relu": "Relu",
    "sign": "Sign", "erf": "Erf", "less": "Less", "less_equal": "LessOrEqual", "greater": "Greater",
    "greater_equal": "GreaterOrEqual", "equal": "Equal", "where": "Where",
}
for _name, _type in _DIRECT.items():
    RULES[OPS[_name]] = _unary(_type)


@rule("square")
def _square(ctx, node, ins):
    return ctx.op("Mul", [ins[0], ins[0]])


@rule("not_equal")
def _not_equal(ctx, node, ins):
    return ctx.op("Not", [ctx.op("Equal", ins)])


def log1p(ctx, x, dtype):
    """log(1 + x) without losing a small x to the rounding of 1 + x: log(u)·x/(u − 1) with
    u = 1 + x (the rounding error of u cancels; Goldberg, 'What every computer scientist...'),
    and x itself where u rounds to 1."""
    one = ctx.scalar(1, dtype)
    u = ctx.op("Add", [x, one])
    um1 = ctx.op("Sub", [u, one])
    exact = ctx.op("Equal", [um1, ctx.scalar(0, dtype)])
    safe = ctx.op("Where", [exact, one, um1])
    ratio = ctx.op("Mul", [ctx.op("Log", [u]), ctx.op("Div", [x, safe])])
    return ctx.op("Where", [exact, x, ratio])


@rule("log1p")
def _log1p(ctx, node, ins):
    return log1p(ctx, ins[0], node.dtype)


@rule("softplus")
def _softplus(ctx, node, ins):  # max(x, 0) + log1p(exp(−|x|)): no overflow where softplus has none
    x = ins[0]
    tail = log1p(ctx, ctx.op("Exp", [ctx.op("Neg", [ctx.op("Abs", [x])])]), node.dtype)
    return ctx.op("Add", [ctx.op("Relu", [x]), tail])


# erfc(x) for x ≥ 0 as t·exp(−x² + P(t)), t = 1/(1 + x/2), P a polynomial of degree 9 (Numerical
# Recipes' erfcc, fractional error below 1.2e-7 everywhere): ONNX has Erf only, and 1 − erf(x) cancels
# (in float32 erfc(2) = 0.0047 keeps 4 digits); ONNX Runtime has no float64 Erf either.
_ERFCC = (-1.26551223, 1.00002368, 0.37409196, 0.09678418, -0.18628806, 0.27886807, -1.13520398, 1.48851587,
          -0.82215223, 0.17087277)


def erfc(ctx, x, dtype):
    z = ctx.op("Abs", [x])
    t = ctx.op("Reciprocal", [ctx.op("Add", [ctx.scalar(1, dtype), ctx.op("Mul", [z, ctx.scalar(0.5, dtype)])])])
    poly = ctx.scalar(_ERFCC[-1], dtype)
    for c in _ERFCC[-2::-1]:  # Horner
        poly = ctx.op("Add", [ctx.op("Mul", [poly, t]), ctx.scalar(c, dtype)])
    positive = ctx.op("Mul", [t, ctx.op("Exp", [ctx.op("Sub", [poly, ctx.op("Mul", [z, z])])])])
    negative = ctx.op("Sub", [ctx.scalar(2, dtype), positive])  # erfc(−z) = 2 − erfc(z)
    return ctx.op("Where", [ctx.op("Less", [x, ctx.scalar(0, dtype)]), negative, positive])


@rule("erfc")
def _erfc(ctx, node, ins):
    return erfc(ctx, ins[0], node.dtype)


@rule("gelu")
def _gelu(ctx, node, ins):  # x·Φ(x), Φ(x) = erfc(−x/√2)/2: no cancellation for x < 0 (as the op's form)
    d = node.dtype
    cdf = erfc(ctx, ctx.op("Mul", [ins[0], ctx.scalar(-math.sqrt(0.5), d)]), d)
    return ctx.op("Mul", [ctx.op("Mul", [ins[0], cdf]), ctx.scalar(0.5, d)])


@rule("astype")
def _astype(ctx, node, ins):
    return ctx.op("Cast", ins, to=ctx.onnx_dtype(node.dtype))


# -- movement ------------------------------------------------------------------------------------
@rule("broadcast_to")
def _broadcast_to(ctx, node, ins):  # an Expand only where a consumer needs it (ONNX broadcasts too)
    return ctx.broadcast(node, ins[0])


@rule("reshape")
def _reshape(ctx, node, ins):
    return ctx.op("Reshape", [ins[0], ctx.shape_of(node.shape)])


@rule("transpose")
def _transpose(ctx, node, ins):
    return ctx.op("Transpose", ins, perm=list(node.attr("axes")))


@rule("stop_gradient")
def _identity(ctx, node, ins):
    return ctx.op("Identity", ins)


INT64_MIN = -2**63


@rule("flip")
def _flip(ctx, node, ins):
    axes = list(node.attr("axis"))
    return ctx.op("Slice", [ins[0], ctx.ints([-1] * len(axes)), ctx.ints([INT64_MIN] * len(axes)),
                            ctx.ints(axes), ctx.ints([-1] * len(axes))])


def _dim(d):
    """A dimension as shapes keep it: an int, or a sympy expression."""
    d = sympy.sympify(d)
    return int(d) if d.is_Integer else d


def _bound(ctx, values):
    return ctx.shape_of(values)


@rule("getitem")
def _getitem(ctx, node, ins):
    """Slices on every sliced axis (an int index is the slice i:i+1), then a reshape drops the
    int axes and inserts the new ones."""
    starts, stops, axes, steps, axis = [], [], [], [], 0
    for entry in node.attr("index"):
        if entry[0] == "newaxis":
            continue
        d = node.inputs[0].shape[axis]
        if entry[0] == "int":
            start, stop, step = entry[1], entry[1] + 1, 1
        else:
            start, stop, step = entry[1:4]
            if isinstance(stop, int) and stop < 0 and step < 0:
                stop = INT64_MIN  # numpy's normalized "before the first element"
        if not (start == 0 and step == 1 and shapes.same_dim(stop, d)):
            starts.append(start), stops.append(stop), axes.append(axis), steps.append(step)
        axis += 1
    x = ins[0]
    if axes:
        x = ctx.op("Slice", [x, _bound(ctx, starts), _bound(ctx, stops), ctx.ints(axes), ctx.ints(steps)])
    return ctx.op("Reshape", [x, ctx.shape_of(node.shape)])


@rule("take")
def _take(ctx, node, ins):
    return ctx.op("Gather", ins, axis=node.attr("axis"))


@rule("concatenate")
def _concatenate(ctx, node, ins):
    return ctx.op("Concat", ins, axis=node.attr("axis"))


def spread_axis(ctx, x, shape, axis, start, step, total, dtype):
    """``x`` (of ``shape``) spread along ``axis`` into ``total`` slots, element i at
    start + i·step (step > 0), zeros elsewhere: the trick of interleaving zeros by a reshape
    of x with zeros appended on a new axis. Returns (value, new shape)."""
    n = shape[axis]
    if step > 1:
        expanded = shape[:axis + 1] + (1,) + shape[axis + 1:]
        x = ctx.op("Reshape", [x, ctx.shape_of(expanded)])
        pads = [0] * len(expanded) * 2
        pads[len(expanded) + axis + 1] = step - 1
        x = ctx.op("Pad", [x, ctx.ints(pads), ctx.scalar(0, dtype)])
        merged = shape[:axis] + (_dim(n * step),) + shape[axis + 1:]
        x = ctx.op("Reshape", [x, ctx.shape_of(merged)])
        span = _dim((n - 1) * step + 1)
        x = ctx.op("Slice", [x, ctx.ints([0]), ctx.shape_of((span,)), ctx.ints([axis])])
        used = span
    else:
        used = n
    # Pad's pads: the starts of every axis, then the ends; only this axis is padded
    before = [ctx.ints([0] * axis), ctx.shape_of((start,)), ctx.ints([0] * (len(shape) - axis - 1))]
    after = [ctx.ints([0] * axis), ctx.shape_of((_dim(total - start - used),)), ctx.ints([0] * (len(shape) - axis - 1))]
    pads = ctx.op("Concat", before + after, axis=0)
    x = ctx.op("Pad", [x, pads, ctx.scalar(0, dtype)])
    out_shape = shape[:axis] + (total,) + shape[axis + 1:]
    return x, out_shape


@rule("dilate")
def _dilate(ctx, node, ins):
    x, shape, step = ins[0], node.inputs[0].shape, node.attr("dilation") + 1
    for axis in node.attr("axes"):
        x, shape = spread_axis(ctx, x, shape, axis, 0, step, shapes.dim(shape[axis] * step), node.dtype)
    return ctx.op("Identity", [x])


@rule("slice_scatter")
def _slice_scatter(ctx, node, ins):
    """getitem's adjoint: new axes and int indices undone by a reshape, then each sliced axis
    spread into place (a reversed slice: flipped first, then spread from its last position)."""
    index, full = node.attr("index"), node.shape
    kept = []  # the input's shape with int axes back as size 1, newaxis dropped
    axis = 0
    for entry in index:
        if entry[0] == "newaxis":
            continue
        kept.append(1 if entry[0] == "int" else entry[4])
        axis += 1
    shape = tuple(kept)
    x = ctx.op("Reshape", [ins[0], ctx.shape_of(shape)])
    axis = 0
    for entry in index:
        if entry[0] == "newaxis":
            continue
        d = full[axis]
        if entry[0] == "int":
            start, step, count = entry[1], 1, 1
        else:
            start, _, step, count = entry[1:5]
        if step < 0:
            x = ctx.op("Slice", [x, ctx.ints([-1]), ctx.ints([INT64_MIN]), ctx.ints([axis]), ctx.ints([-1])])
            start, step = start + (count - 1) * step, -step
        if not (start == 0 and step == 1 and shapes.same_dim(count, d)):
            x, shape = spread_axis(ctx, x, shape, axis, start, step, d, node.dtype)
        else:
            shape = shape[:axis] + (d,) + shape[axis + 1:]
        axis += 1
    return ctx.op("Identity", [x])


@rule("scatter_add")
def _scatter_add(ctx, node, ins):
    """take's adjoint: ScatterElements with add into zeros; the index axes flattened to one."""
    a, idx = node.inputs
    axis, shape = node.attr("axis"), node.shape
    k = idx.ndim
    flat = a.shape[:axis] + (shapes.numel(idx.shape),) + a.shape[axis + k:]
    values = ctx.op("Reshape", [ins[0], ctx.shape_of(flat)])
    where = ctx.op("Reshape", [ins[1], ctx.shape_of((1,) * axis + (shapes.numel(idx.shape),)
                                                  + (1,) * (len(flat) - axis - 1))])
    where = ctx.op("Expand", [where, ctx.shape_of(flat)])
    zeros = ctx.op("Expand", [ctx.scalar(0, node.dtype), ctx.shape_of(shape)])
    return ctx.op("ScatterElements", [zeros, where, values], axis=axis, reduction="add")


@rule("pad")
def _pad(ctx, node, ins):
    widths = node.attr("pad_width")
    pads = ctx.shape_of(tuple(b for b, _ in widths) + tuple(a for _, a in widths))
    return ctx.op("Pad", [ins[0], pads, ctx.scalar(node.attr("value"), node.dtype)])


# -- nn ------------------------------------------------------------------------------------------
@rule("softmax")
def _softmax(ctx, node, ins):
    return ctx.op("Softmax", ins, axis=node.attr("axis"))


@rule("log_softmax")
def _log_softmax(ctx, node, ins):
    return ctx.op("LogSoftmax", ins, axis=node.attr("axis"))


def _iota(ctx, n):
    """0, 1, ..., n − 1 (int64; n may be symbolic)."""
    limit = ctx.op("Squeeze", [ctx.shape_of((n,)), ctx.ints([0])])
    return ctx.op("Range", [ctx.scalar(0, "int64"), limit, ctx.scalar(1, "int64")])


@rule("one_hot")
def _one_hot(ctx, node, ins):
    labels = ctx.op("Unsqueeze", [ins[0], ctx.ints([-1])])
    hit = ctx.op("Equal", [labels, _iota(ctx, node.attr("num_classes"))])
    return ctx.op("Cast", [hit], to=ctx.onnx_dtype(node.dtype))


@rule("eye")
def _eye(ctx, node, ins):
    n = node.attr("n")
    rows = ctx.op("Unsqueeze", [_iota(ctx, n), ctx.ints([1])])
    hit = ctx.op("Equal", [rows, _iota(ctx, n)])
    return ctx.op("Cast", [hit], to=ctx.onnx_dtype(node.dtype))


@rule("softmax_cross_entropy")
def _softmax_cross_entropy(ctx, node, ins):  # mean over the rows of −log_softmax(z)[label]
    logp = ctx.op("LogSoftmax", [ins[0]], axis=-1)
    picked = ctx.op("GatherElements", [logp, ctx.op("Unsqueeze", [ins[1], ctx.ints([-1])])], axis=-1)
    return ctx.op("Neg", [ctx.op("ReduceMean", [picked], keepdims=0)])


# -- reductions ----------------------------------------------------------------------------------
def _reduce(op_type):
    def export(ctx, node, ins):
        x = ins[0]
        if op_type == "ReduceSum" and node.inputs[0].dtype == "bool":
            x = ctx.op("Cast", [x], to=ctx.onnx_dtype("int64"))
        return ctx.op(op_type, [x, ctx.ints(list(node.attr("axis")))], keepdims=int(node.attr("keepdims")))

    return export


RULES[OPS["sum"]] = _reduce("ReduceSum")
RULES[OPS["max"]] = _reduce("ReduceMax")


@rule("logsumexp")
def _logsumexp(ctx, node, ins):  # max + log Σ exp(x − max): no overflow (ReduceLogSumExp may)
    axes = ctx.ints(list(node.attr("axis")))
    top = ctx.op("ReduceMax", [ins[0], axes], keepdims=1)
    top = ctx.op("Where", [ctx.op("IsInf", [top]), ctx.op("Sub", [top, top]), top])  # all −inf rows: 0, not NaN
    total = ctx.op("ReduceSum", [ctx.op("Exp", [ctx.op("Sub", [ins[0], top])]), axes], keepdims=1)
    out = ctx.op("Add", [ctx.op("Log", [total]), top])
    if not node.attr("keepdims"):
        out = ctx.op("Squeeze", [out, axes])
    return out


@rule("argmax")
def _argmax(ctx, node, ins):
    (axis,) = node.attr("axis")
    return ctx.op("ArgMax", ins, axis=axis, keepdims=int(node.attr("keepdims")))


# -- linear algebra, windows ---------------------------------------------------------------------
RULES[OPS["matmul"]] = _unary("MatMul")


@rule("conv2d")
def _conv2d(ctx, node, ins):
    (ph, pw), w = node.attr("padding"), node.inputs[1]
    return ctx.op("Conv", ins, kernel_shape=[int(w.shape[2]), int(w.shape[3])], strides=list(node.attr("stride")),
                  pads=[ph, pw, ph, pw], dilations=list(node.attr("dilation")), group=node.attr("groups"))


def _pool(op_type, **extra):
    def export(ctx, node, ins):
        (ph, pw) = node.attr("padding")
        x, batched = ins[0], node.inputs[0].ndim == 4
        if not batched:  # (C, H, W): ONNX pools take (N, C, H, W)
            x = ctx.op("Unsqueeze", [x, ctx.ints([0])])
        out = ctx.op(op_type, [x], kernel_shape=list(node.attr("kernel_size")), strides=list(node.attr("stride")),
                     pads=[ph, pw, ph, pw], **extra)
        return out if batched else ctx.op("Squeeze", [out, ctx.ints([0])])

    return export


RULES[OPS["max_pool2d"]] = _pool("MaxPool")
RULES[OPS["avg_pool2d"]] = _pool("AveragePool", count_include_pad=1)


def _argmax_indices(ctx, node, x):
    """Where each window of ``x`` (..., H, W) has its first maximum, as flat indices into ``x``:
    MaxPool's Indices output over x seen as (rest, 1, H, W) (pooling treats every leading
    position alike). ONNX Runtime's MaxPool keeps the first maximum in row-major window order,
    as symdiff's reference does; the ONNX specification leaves ties open."""
    shape = node.inputs[0].shape
    (ph, pw) = node.attr("padding")
    images = ctx.op("Reshape", [x, ctx.shape_of((shapes.dim(shapes.numel(shape[:-2])) if len(shape) > 2 else 1, 1)
                                                + tuple(shape[-2:]))])
    _, indices = ctx.op("MaxPool", [images], outputs=2, kernel_shape=list(node.attr("kernel_size")),
                        strides=list(node.attr("stride")), pads=[ph, pw, ph, pw])
    return ctx.op("Reshape", [indices, ctx.ints([-1])])


@rule("max_pool2d_gather")
def _max_pool2d_gather(ctx, node, ins):  # max_pool2d's JVP: the tangent at each window's argmax
    flat = ctx.op("Reshape", [ins[1], ctx.ints([-1])])
    picked = ctx.op("Gather", [flat, _argmax_indices(ctx, node, ins[0])], axis=0)
    return ctx.op("Reshape", [picked, ctx.shape_of(node.shape)])


@rule("max_pool2d_scatter")
def _max_pool2d_scatter(ctx, node, ins):  # max_pool2d's VJP: each window's cotangent added at its argmax
    x = node.inputs[0]
    zeros = ctx.op("Expand", [ctx.scalar(0, node.dtype), ctx.shape_of((shapes.dim(shapes.numel(x.shape)),))])
    updates = ctx.op("Reshape", [ins[1], ctx.ints([-1])])
    total = ctx.op("ScatterElements", [zeros, _argmax_indices(ctx, node, ins[0]), updates], axis=0,
                   reduction="add")
    return ctx.op("Reshape", [total, ctx.shape_of(node.shape)])


@rule("avg_pool2d_scatter")
def _avg_pool2d_scatter(ctx, node, ins):
    """avg_pool2d's adjoint: each window's cotangent spread evenly over it, a depthwise
    ConvTranspose with a kernel of 1/(kH·kW) (output_padding makes up the rows and columns the
    windows did not reach)."""
    (kh, kw), (sh, sw), (ph, pw) = (node.attr(k) for k in ("kernel_size", "stride", "padding"))
    ct = node.inputs[0]
    channels, (oh, ow), size = ct.shape[-3], ct.shape[-2:], node.attr("size")
    if not all(_is_int(d) for d in (channels, oh, ow, *size)):
        raise ctx.error(f"avg_pool2d_scatter needs concrete channels and sizes for ONNX's ConvTranspose, got "
                        f"{shapes.format_shape(ct.shape)} -> {shapes.format_shape(tuple(size))}")
    extra = [int(size[0]) - (sh * (int(oh) - 1) + kh - 2 * ph), int(size[1]) - (sw * (int(ow) - 1) + kw - 2 * pw)]
    weight = ctx.constant(np.full((int(channels), 1, kh, kw), 1.0 / (kh * kw), dtype=node.dtype))
    x, batched = ins[0], ct.ndim == 4
    if not batched:
        x = ctx.op("Unsqueeze", [x, ctx.ints([0])])
    out = ctx.op("ConvTranspose", [x, weight], kernel_shape=[kh, kw], strides=[sh, sw], pads=[ph, pw, ph, pw],
                 output_padding=extra, group=int(channels))
    return out if batched else ctx.op("Squeeze", [out, ctx.ints([0])])


def _is_int(d) -> bool:
    return isinstance(d, int) or (isinstance(d, sympy.Basic) and d.is_Integer)


# -- scan: an ONNX Scan whose body is the exported body graph ------------------------------------
@rule("scan")
def _scan(ctx, node, ins):
    return ctx.scan(node, ins)


@rule("scan_part")
def _scan_part(ctx, node, ins):
    return ctx.scan_part(node, ins)


@rule("scan_pack")
def _scan_pack(ctx, node, ins):
    lead = node.shape[:-1]
    flat = [ctx.op("Reshape", [v, ctx.shape_of(lead + (shapes.numel(p.shape[len(lead):]),))])
            for v, p in zip(ins, node.inputs)]
    return ctx.op("Concat", flat, axis=-1) if len(flat) > 1 else ctx.op("Identity", flat)


# -- matrices (symdiff.ops.matrix) ---------------------------------------------------------------
@rule("det")
def _det(ctx, node, ins):
    return ctx.op("Det", ins)


@rule("logdet")
def _logdet(ctx, node, ins):  # log|det A|: −inf where A is singular, as the op
    return ctx.op("Log", [ctx.op("Abs", [ctx.op("Det", ins)])])


@rule("slogdet_sign")
def _slogdet_sign(ctx, node, ins):
    return ctx.op("Sign", [ctx.op("Det", ins)])


def _eye_like(ctx, n, dtype):
    rows = ctx.op("Unsqueeze", [_iota(ctx, n), ctx.ints([1])])
    return ctx.op("Cast", [ctx.op("Equal", [rows, _iota(ctx, n)])], to=ctx.onnx_dtype(dtype))


@rule("diag_embed")
def _diag_embed(ctx, node, ins):  # v[..., None, :] ⊙ I: row i keeps v_i on the diagonal
    v = ctx.op("Unsqueeze", [ins[0], ctx.ints([-1])])
    return ctx.op("Mul", [v, _eye_like(ctx, node.shape[-1], node.dtype)])


@rule("diagonal")
def _diagonal(ctx, node, ins):
    """The k×k corner flattened to k² elements, read with step k + 1: exactly the diagonal."""
    a = node.inputs[0]
    k, lead = node.shape[-1], a.shape[:-2]
    x = ins[0]
    if not (shapes.same_dim(a.shape[-2], k) and shapes.same_dim(a.shape[-1], k)):
        x = ctx.op("Slice", [x, ctx.ints([0, 0]), ctx.shape_of((k, k)), ctx.ints([-2, -1])])
    flat = ctx.op("Reshape", [x, ctx.shape_of(lead + (_dim(k * k),))])
    return ctx.op("Slice", [flat, ctx.ints([0]), ctx.shape_of((_dim(k * k),)), ctx.ints([-1]),
                            ctx.shape_of((_dim(k + 1),))])


@rule("kron")
def _kron(ctx, node, ins):  # a[..., :, None, :, None] · b[..., None, :, None, :], then (m·p, n·q)
    a, b = node.inputs
    (m, n), (p, q) = a.shape[-2:], b.shape[-2:]
    a4 = ctx.op("Reshape", [ins[0], ctx.shape_of(a.shape[:-2] + (m, 1, n, 1))])
    b4 = ctx.op("Reshape", [ins[1], ctx.shape_of(b.shape[:-2] + (1, p, 1, q))])
    return ctx.op("Reshape", [ctx.op("Mul", [a4, b4]), ctx.shape_of(node.shape)])


@rule("norm")
def _norm(ctx, node, ins):
    x = ins[0]
    total = ctx.op("ReduceSum", [ctx.op("Mul", [x, x]), ctx.ints(list(range(node.inputs[0].ndim)))], keepdims=0)
    return ctx.op("Sqrt", [total])


NOT_EXPORTABLE[OPS["inv"]] = "ONNX's standard opset has no matrix inverse (nor an LU factorization to build one)"
NOT_EXPORTABLE[OPS["solve"]] = "ONNX's standard opset has no linear solve (nor an LU factorization to build one)"




def sympy_int(value) -> int | None:
    """``value`` as a Python int where it is a number, else None."""
    value = sympy.sympify(value)
    return int(value) if value.is_Integer else None


# symdiff.custom's ops: custom_vjp_call marks a composite (an identity in the forward graph);
# ops made by sd.elementwise have no rule derived from their sympy form yet (custom.elementwise
# adds the reason for those made after this module is imported)
USER_DEFINED_REASON = ("a user-defined elementwise op (sd.elementwise): no ONNX rule is derived from its "
                       "sympy form yet")
if "custom_vjp_call" in OPS:
    RULES[OPS["custom_vjp_call"]] = RULES[OPS["stop_gradient"]]
for _op in list(OPS.values()):
    if getattr(_op, "user_defined", False) and _op not in RULES:
        NOT_EXPORTABLE.setdefault(_op, USER_DEFINED_REASON)
