"""How :func:`symdiff.onnx.load` reads each ONNX op: one handler per op type (``HANDLERS``).

A handler is ``handler(imp, node, ins, attrs)``: ``imp`` is the importer (``imp.node(name)`` is
an input as an expression, ``imp.known(name)`` its value where it is known while loading, as
shapes and axes are), ``node`` the ONNX ``NodeProto``, ``ins`` its input names, ``attrs`` its
attributes as Python values. It returns an expression, or a numpy array for a value folded
while loading (shape arithmetic).

>>> "Gemm" in HANDLERS, "Scan" in HANDLERS
(True, False)
"""

from __future__ import annotations

import numpy as np
import sympy

from .. import shapes
from ..node import as_node, constant
from ..ops.registry import FUNCTIONS as F
from .export import _ONNX

ONNX_DTYPES = {1: "float32", 11: "float64", 7: "int64", 6: "int64", 9: "bool", 10: "float32"}  # int32, fp16 widened


class LoadError(ValueError):
    """An ONNX file symdiff cannot import: unreadable, or an op it does not have."""


HANDLERS: dict = {}


def handles(*types):
    def register(fn):
        for t in types:
            HANDLERS[t] = fn
        return fn
    return register


_UNARY = {"Neg": "negative", "Abs": "abs", "Exp": "exp", "Log": "log", "Sqrt": "sqrt", "Sin": "sin", "Cos": "cos",
          "Tan": "tan", "Tanh": "tanh", "Sigmoid": "sigmoid", "Relu": "relu", "Erf": "erf", "Sign": "sign",
          "Reciprocal": "reciprocal", "Softplus": "softplus", "Gelu": "gelu"}


@handles(*_UNARY)
def _unary(imp, n, ins, attrs):
    if n.op_type == "Gelu" and attrs.get("approximate", b"none") not in (b"none", "none"):
        raise LoadError(f"{imp.where}: node {n.name!r} (Gelu): approximate={attrs['approximate']!r} is not "
                        "supported (symdiff's gelu is the exact one)")
    return F[_UNARY[n.op_type]](imp.node(ins[0]))


_BINARY = {"Add": np.add, "Sub": np.subtract, "Mul": np.multiply}


@handles("Add", "Sub", "Mul", "Div", "Pow")
def _binary(imp, n, ins, attrs):
    a, b = imp.known(ins[0]), imp.known(ins[1])
    if a is not None and b is not None and n.op_type in _BINARY and (a.dtype == object or b.dtype == object
                                                                      or a.dtype.kind == "i"):
        return _BINARY[n.op_type](a, b)  # shape arithmetic
    x, y = imp.node(ins[0]), imp.node(ins[1])
    if n.op_type == "Div" and x.dtype == "int64" and y.dtype == "int64":
        raise LoadError(f"{imp.where}: node {n.name!r} (Div): integer division of computed values is not supported")
    return {"Add": lambda: x + y, "Sub": lambda: x - y, "Mul": lambda: x * y, "Div": lambda: x / y,
            "Pow": lambda: x ** y}[n.op_type]()


@handles("Max", "Min")
def _extremum(imp, n, ins, attrs):
    fn = F["maximum" if n.op_type == "Max" else "minimum"]
    out = imp.node(ins[0])
    for i in ins[1:]:
        out = fn(out, imp.node(i))
    return out


_COMPARE = {"Equal": "equal", "Less": "less", "Greater": "greater", "LessOrEqual": "less_equal",
            "GreaterOrEqual": "greater_equal"}


@handles(*_COMPARE)
def _compare(imp, n, ins, attrs):
    return F[_COMPARE[n.op_type]](imp.node(ins[0]), imp.node(ins[1]))


@handles("Det")
def _det(imp, n, ins, attrs):
    return F["det"](imp.node(ins[0]))


@handles("IsInf")
def _isinf(imp, n, ins, attrs):
    x = imp.node(ins[0])
    pos, neg = attrs.get("detect_positive", 1), attrs.get("detect_negative", 1)
    if pos and neg:
        return F["equal"](F["abs"](x), float("inf"))
    if pos or neg:
        return F["equal"](x, float("inf") if pos else float("-inf"))
    return F["broadcast_to"](constant(False), x.shape)


@handles("GatherElements")
def _gather_elements(imp, n, ins, attrs):
    """out[..., j, ...] = data[..., idx[..., j, ...], ...] along ``axis``, as a sum of data against
    the one-hot rows of the indices (its gradient reaches data)."""
    x, idx = imp.node(ins[0]), imp.node(ins[1])
    axis = attrs.get("axis", 0) % x.ndim
    if not isinstance(x.shape[axis], int):
        raise LoadError(f"{imp.where}: node {n.name!r} (GatherElements): the gathered axis must have a known size")
    last = tuple(a for a in range(x.ndim) if a != axis) + (axis,)
    xt, it = F["transpose"](x, last), F["transpose"](F["astype"](idx, "int64"), last)
    k = x.shape[axis]
    it = F["where"](it < 0, it + k, it)
    picked = F["sum"](F["one_hot"](it, k, x.dtype) * F["expand_dims"](xt, -2), axis=-1)
    return F["transpose"](picked, tuple(int(i) for i in np.argsort(last)))


@handles("Where")
def _where(imp, n, ins, attrs):
    return F["where"](imp.node(ins[0]), imp.node(ins[1]), imp.node(ins[2]))


@handles("Not")
def _not(imp, n, ins, attrs):
    return F["equal"](imp.node(ins[0]), False)


@handles("Identity", "Dropout")
def _identity(imp, n, ins, attrs):
    if n.op_type == "Dropout" and len(n.output) > 1 and n.output[1]:
        raise LoadError(f"{imp.where}: node {n.name!r} (Dropout): its mask output is a training-mode value")
    known = imp.known(ins[0]) if ins[0] in imp.static else None
    return known if known is not None else imp.node(ins[0])


@handles("Constant")
def _constant(imp, n, ins, attrs):
    if "value" not in attrs:
        for key in ("value_float", "value_int", "value_floats", "value_ints"):
            if key in attrs:
                v = np.asarray(attrs[key], dtype=imp.floats(np.float32) if "float" in key else np.int64)
                return v if v.dtype.kind == "i" else constant(v)
        raise LoadError(f"{imp.where}: node {n.name!r} (Constant): attributes {sorted(attrs)} are not supported")
    array = _ONNX.numpy_helper.to_array(attrs["value"])
    if array.dtype.kind in "iub":
        return array.astype(np.int64) if array.dtype.kind != "b" else array
    return constant(array.astype(imp.floats(array.dtype)))


@handles("Cast")
def _cast(imp, n, ins, attrs):
    to = imp.dtype(attrs["to"]) if attrs["to"] in ONNX_DTYPES else None
    if to is None:
        raise LoadError(f"{imp.where}: node {n.name!r} (Cast): ONNX element type {attrs['to']} is not supported")
    known = imp.static.get(ins[0])
    if known is not None and to == "int64":
        return known
    return F["astype"](imp.node(ins[0]), to)


@handles("Shape")
def _shape(imp, n, ins, attrs):
    dims = imp.node(ins[0]).shape
    start, end = attrs.get("start", 0), attrs.get("end", len(dims))
    out = np.empty(len(dims[start:end]), dtype=object)
    out[:] = [d if isinstance(d, int) else sympy.sympify(d) for d in dims[start:end]]
    return out


def _axes(imp, n, ins, attrs, position=1):
    if len(ins) > position and ins[position]:
        return imp.ints(ins[position], "axes", n)
    return list(attrs["axes"]) if "axes" in attrs else None


@handles("Gather")
def _gather(imp, n, ins, attrs):
    axis = attrs.get("axis", 0)
    data, idx = imp.known(ins[0]), imp.known(ins[1])
    if data is not None and idx is not None and ins[0] in imp.static:
        return np.take(data, idx.astype(np.int64), axis=axis)
    x = imp.node(ins[0])
    indices = imp.node(ins[1])
    if indices.dtype != "int64":
        indices = F["astype"](indices, "int64")
    return F["take"](x, indices, axis=axis)


@handles("Unsqueeze", "Squeeze")
def _squeeze(imp, n, ins, attrs):
    axes = _axes(imp, n, ins, attrs)
    known = imp.static.get(ins[0])
    if known is not None:
        return np.expand_dims(known, tuple(axes)) if n.op_type == "Unsqueeze" else np.squeeze(
            known, tuple(axes) if axes else None)
    x = imp.node(ins[0])
    if n.op_type == "Squeeze":
        return F["squeeze"](x, None if not axes else tuple(axes))
    out_ndim = x.ndim + len(axes)
    axes = sorted(a % out_ndim for a in axes)
    shape = list(x.shape)
    for a in axes:
        shape.insert(a, 1)
    return F["reshape"](x, tuple(shape))


@handles("Concat")
def _concat(imp, n, ins, attrs):
    known = [imp.static.get(i) for i in ins]
    if all(k is not None for k in known):
        return np.concatenate([k.astype(object) if any(v.dtype == object for v in known) else k for k in known],
                              axis=attrs["axis"])
    return F["concatenate"]([imp.node(i) for i in ins], axis=attrs["axis"])


def _dims_of(values):
    return tuple(int(v) if isinstance(v, (int, np.integer)) or (isinstance(v, sympy.Basic) and v.is_Integer)
                 else v for v in values)


@handles("Reshape")
def _reshape(imp, n, ins, attrs):
    x = imp.node(ins[0])
    target = imp.known(ins[1])
    if target is None:
        raise LoadError(f"{imp.where}: node {n.name!r} (Reshape): the shape must be known while loading")
    target = list(_dims_of(target.ravel()))
    if not attrs.get("allowzero", 0):
        target = [x.shape[k] if isinstance(d, int) and d == 0 else d for k, d in enumerate(target)]
    return F["reshape"](x, tuple(target))


@handles("Flatten")
def _flatten(imp, n, ins, attrs):
    x = imp.node(ins[0])
    axis = attrs.get("axis", 1) % (x.ndim + 1) if x.ndim else 0
    return F["reshape"](x, (shapes.dim(shapes.numel(x.shape[:axis])), shapes.dim(shapes.numel(x.shape[axis:]))))


@handles("Expand")
def _expand(imp, n, ins, attrs):
    x = imp.node(ins[0])
    target = _dims_of(imp.ints(ins[1], "shape", n) if ins[1] not in imp.static or imp.static[ins[1]].dtype != object
                      else imp.static[ins[1]].ravel())
    return F["broadcast_to"](x, shapes.broadcast_shapes("Expand", x.shape, target))


@handles("Transpose")
def _transpose(imp, n, ins, attrs):
    return F["transpose"](imp.node(ins[0]), attrs.get("perm"))


@handles("MatMul")
def _matmul(imp, n, ins, attrs):
    return imp.node(ins[0]) @ imp.node(ins[1])


@handles("Gemm")
def _gemm(imp, n, ins, attrs):
    a, b = imp.node(ins[0]), imp.node(ins[1])
    a = a.T if attrs.get("transA", 0) else a
    b = b.T if attrs.get("transB", 0) else b
    out = a @ b
    if attrs.get("alpha", 1.0) != 1.0:
        out = out * attrs["alpha"]
    if len(ins) > 2 and ins[2]:
        c = imp.node(ins[2])
        out = out + (c * attrs["beta"] if attrs.get("beta", 1.0) != 1.0 else c)
    return out


@handles("Softmax", "LogSoftmax")
def _softmax(imp, n, ins, attrs):
    x = imp.node(ins[0])
    axis = attrs.get("axis", -1 if imp.opset >= 13 else 1)
    if imp.opset < 13 and axis % max(x.ndim, 1) != x.ndim - 1:
        raise LoadError(f"{imp.where}: node {n.name!r} ({n.op_type}): opset {imp.opset}'s softmax over the "
                        f"flattened axes from {axis} on is not supported")
    return F["softmax" if n.op_type == "Softmax" else "log_softmax"](x, axis=axis)


_REDUCE = {"ReduceSum": "sum", "ReduceMean": "mean", "ReduceMax": "max", "ReduceMin": "min",
           "ReduceLogSumExp": "logsumexp"}


@handles(*_REDUCE)
def _reduce(imp, n, ins, attrs):
    x = imp.node(ins[0])
    uses_input = n.op_type == "ReduceSum" and imp.opset >= 13 or imp.opset >= 18
    axes = _axes(imp, n, ins, attrs) if uses_input else attrs.get("axes")
    if not axes:
        if attrs.get("noop_with_empty_axes", 0):
            return x
        axes = None
    return F[_REDUCE[n.op_type]](x, axis=None if axes is None else tuple(axes),
                                 keepdims=bool(attrs.get("keepdims", 1)))


@handles("ArgMax")
def _argmax(imp, n, ins, attrs):
    if attrs.get("select_last_index", 0):
        raise LoadError(f"{imp.where}: node {n.name!r} (ArgMax): select_last_index=1 is not supported")
    return F["argmax"](imp.node(ins[0]), axis=attrs.get("axis", 0), keepdims=bool(attrs.get("keepdims", 1)))


def _symmetric(imp, n, attrs, ndim=2):
    if attrs.get("auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET"):
        raise LoadError(f"{imp.where}: node {n.name!r} ({n.op_type}): auto_pad={attrs['auto_pad']!r} is not supported")
    pads = list(attrs.get("pads", [0] * 2 * ndim))
    if pads[:ndim] != pads[ndim:]:
        raise LoadError(f"{imp.where}: node {n.name!r} ({n.op_type}): asymmetric pads {pads} are not supported")
    return tuple(pads[:ndim])


@handles("Conv")
def _conv(imp, n, ins, attrs):
    x, w = imp.node(ins[0]), imp.node(ins[1])
    if x.ndim != 4:
        raise LoadError(f"{imp.where}: node {n.name!r} (Conv): only 2-D convolutions are supported, got input "
                        f"{shapes.format_shape(x.shape)}")
    out = F["conv2d"](x, w, stride=tuple(attrs.get("strides", (1, 1))), padding=_symmetric(imp, n, attrs),
                      dilation=tuple(attrs.get("dilations", (1, 1))), groups=attrs.get("group", 1))
    if len(ins) > 2 and ins[2]:
        out = out + F["reshape"](imp.node(ins[2]), (1, -1, 1, 1))
    return out


@handles("MaxPool", "AveragePool")
def _pool(imp, n, ins, attrs):
    x = imp.node(ins[0])
    if len(n.output) > 1 and n.output[1]:
        raise LoadError(f"{imp.where}: node {n.name!r} (MaxPool): the Indices output is not supported")
    if attrs.get("ceil_mode", 0) or any(d != 1 for d in attrs.get("dilations", (1, 1))):
        raise LoadError(f"{imp.where}: node {n.name!r} ({n.op_type}): ceil_mode and dilations are not supported")
    padding = _symmetric(imp, n, attrs)
    kernel = tuple(attrs["kernel_shape"])
    stride = tuple(attrs.get("strides", (1, 1)))
    if n.op_type == "MaxPool":
        return F["max_pool2d"](x, kernel, stride=stride, padding=padding)
    if any(padding) and not attrs.get("count_include_pad", 0):
        raise LoadError(f"{imp.where}: node {n.name!r} (AveragePool): padding with count_include_pad=0 is not "
                        "supported (symdiff's avg_pool2d counts the padding, as PyTorch's default)")
    return F["avg_pool2d"](x, kernel, stride=stride, padding=padding)


@handles("GlobalAveragePool")
def _global_average(imp, n, ins, attrs):
    x = imp.node(ins[0])
    return F["mean"](x, axis=tuple(range(2, x.ndim)), keepdims=True)


@handles("BatchNormalization")
def _batchnorm(imp, n, ins, attrs):
    if attrs.get("training_mode", 0) or len([o for o in n.output if o]) > 1:
        raise LoadError(f"{imp.where}: node {n.name!r} (BatchNormalization): training mode is not supported")
    x, scale, bias, mean, var = (imp.node(i) for i in ins[:5])
    shape = (1, -1) + (1,) * (x.ndim - 2)
    r = lambda v: F["reshape"](v, shape)
    return r(scale) * (x - r(mean)) / F["sqrt"](r(var) + attrs.get("epsilon", 1e-5)) + r(bias)


@handles("LayerNormalization")
def _layernorm(imp, n, ins, attrs):
    if len([o for o in n.output if o]) > 1:
        raise LoadError(f"{imp.where}: node {n.name!r} (LayerNormalization): only the normalized output is supported")
    x = imp.node(ins[0])
    axis = attrs.get("axis", -1) % x.ndim
    axes = tuple(range(axis, x.ndim))
    mean = F["mean"](x, axis=axes, keepdims=True)
    var = F["mean"](F["square"](x - mean), axis=axes, keepdims=True)
    out = (x - mean) / F["sqrt"](var + attrs.get("epsilon", 1e-5)) * imp.node(ins[1])
    return out + imp.node(ins[2]) if len(ins) > 2 and ins[2] else out


@handles("Clip")
def _clip(imp, n, ins, attrs):
    x = imp.node(ins[0])
    lo = imp.node(ins[1]) if len(ins) > 1 and ins[1] else attrs.get("min")
    hi = imp.node(ins[2]) if len(ins) > 2 and ins[2] else attrs.get("max")
    return x if lo is None and hi is None else F["clip"](x, lo, hi)


@handles("Slice")
def _slice(imp, n, ins, attrs):
    x = imp.node(ins[0]) if ins[0] not in imp.static else None
    known = imp.static.get(ins[0])
    if imp.opset >= 10:
        starts, ends = imp.ints(ins[1], "starts", n), imp.ints(ins[2], "ends", n)
        axes = imp.ints(ins[3], "axes", n) if len(ins) > 3 and ins[3] else list(range(len(starts)))
        steps = imp.ints(ins[4], "steps", n) if len(ins) > 4 and ins[4] else [1] * len(starts)
    else:
        starts, ends = attrs["starts"], attrs["ends"]
        axes, steps = attrs.get("axes", list(range(len(starts)))), [1] * len(starts)
    ndim = known.ndim if known is not None else x.ndim
    index = [slice(None)] * ndim
    for s, e, a, st in zip(starts, ends, axes, steps):
        big = 2 ** 62
        index[a % ndim] = slice(s if abs(s) < big else None, e if abs(e) < big else None, st)
    if known is not None:
        return known[tuple(index)]
    return x[tuple(index)]


@handles("Pad")
def _pad(imp, n, ins, attrs):
    mode = attrs.get("mode", b"constant")
    if mode not in (b"constant", "constant"):
        raise LoadError(f"{imp.where}: node {n.name!r} (Pad): mode {mode!r} is not supported (constant only)")
    x = imp.node(ins[0])
    pads = imp.ints(ins[1], "pads", n) if len(ins) > 1 and ins[1] else list(attrs["pads"])
    if len(ins) > 3 and ins[3]:
        raise LoadError(f"{imp.where}: node {n.name!r} (Pad): the axes input is not supported")
    value = 0.0
    if len(ins) > 2 and ins[2]:
        v = imp.known(ins[2])
        if v is None:
            raise LoadError(f"{imp.where}: node {n.name!r} (Pad): the fill value must be a constant")
        value = float(np.asarray(v).ravel()[0])
    k = len(pads) // 2
    if min(pads) < 0:
        raise LoadError(f"{imp.where}: node {n.name!r} (Pad): negative pads {pads} are not supported")
    return F["pad"](x, tuple((pads[i], pads[i + k]) for i in range(k)), value=value)


@handles("ConstantOfShape")
def _constant_of_shape(imp, n, ins, attrs):
    dims = _dims_of(imp.static[ins[0]].ravel()) if ins[0] in imp.static else None
    if dims is None:
        raise LoadError(f"{imp.where}: node {n.name!r} (ConstantOfShape): the shape must be known while loading")
    value = _ONNX.numpy_helper.to_array(attrs["value"]).ravel() if "value" in attrs else np.zeros(1, np.float32)
    if all(isinstance(d, int) for d in dims) and value.dtype.kind in "iub":
        return np.full(dims, value[0], dtype=np.int64)
    return F["broadcast_to"](as_node(constant(value.reshape(()).astype(
        imp.floats(value.dtype) if value.dtype.kind == "f" else value.dtype))), dims)


@handles("Range")
def _range(imp, n, ins, attrs):
    start, limit, delta = (imp.known(i) for i in ins)
    if any(v is None or v.dtype == object for v in (start, limit, delta)):
        raise LoadError(f"{imp.where}: node {n.name!r} (Range): its bounds must be known while loading")
    values = np.arange(start.item(), limit.item(), delta.item())
    return values.astype(np.int64) if values.dtype.kind == "i" else constant(values.astype(imp.floats(np.float32)))


@handles("Sum", "Mean")
def _sum(imp, n, ins, attrs):
    out = imp.node(ins[0])
    for i in ins[1:]:
        out = out + imp.node(i)
    return out * (1.0 / len(ins)) if n.op_type == "Mean" else out
