"""Pooling over the last two axes: ``max_pool2d``, ``avg_pool2d`` and a global average pool.

The window ops take PyTorch's arguments (``kernel_size``, ``stride`` defaulting to the kernel
size, ``padding``; an int or a pair) and any leading axes, (N, C, H, W) and (C, H, W) as
PyTorch, so the batched tangents of forward mode are only more leading axes. Their
derivatives are graph ops of this family, so grad-of-grad works:

- ``avg_pool2d`` is linear: its JVP is itself, its VJP ``avg_pool2d_scatter``, which spreads
  each output's cotangent over its window (divided by the window's size, padding counted, as
  PyTorch's default ``count_include_pad=True``); the two are each other's adjoints.
- ``max_pool2d`` takes each window's maximum. Its JVP is ``max_pool2d_gather(x, ẋ)``, the
  tangent read at each window's argmax; its VJP ``max_pool2d_scatter(x, c)``, the cotangent
  routed back to the argmax. The argmax is the first maximum in the window's row-major
  order, as PyTorch's; padding is -inf and never chosen. Both are linear in their second
  input and constant in the first (almost everywhere), and adjoint to each other, so the
  rules close.

>>> import symdiff as sd
>>> X = sd.tensor("X", ("N", 3, 28, 28))
>>> sd.max_pool2d(X, 2).shape, sd.avg_pool2d(X, 3, stride=1, padding=1).shape
((N, 3, 14, 14), (N, 3, 28, 28))
>>> C = sd.tensor("C", ("N", 3, 14, 14))
>>> (g,) = sd.grad(sd.sum(sd.max_pool2d(X, 2) * C), [X])
>>> print(g)
max_pool2d_scatter(X, C, kernel_size=(2, 2), stride=(2, 2))
"""

from __future__ import annotations

import numpy as np
import sympy

from .. import shapes
from ..node import Node, as_node, make
from ..shapes import ShapeError, format_shape
from .conv import pair, spatial_output, windows
from .movement import broadcast_to
from .registry import Op, Shown, function

# Above conv (it shares its argument forms and window arithmetic).

SHOWN = (Shown("kernel_size"), Shown("stride"), Shown("padding", default=(0, 0)))


def _window(attrs):
    return attrs["kernel_size"], attrs["stride"], attrs["padding"]


def _pooled_shape(what, shape, attrs):
    k, s, p = _window(attrs)
    return shape[:-2] + spatial_output(what, shape, k, s, p, (1, 1))


def _padded(v, padding, fill):
    (ph, pw) = padding
    if not (ph or pw):
        return v
    widths = ((0, 0),) * (v.ndim - 2) + ((ph, ph), (pw, pw))
    return np.pad(v, widths, constant_values=fill)


def _windows(v, attrs, out_hw, fill):
    """(..., OH, OW, kH·kW): the windows of ``v`` padded with ``fill``."""
    k, s, p = _window(attrs)
    win = windows(_padded(v, p, fill), k, s, (1, 1), out_hw)
    return win.reshape(win.shape[:-2] + (k[0] * k[1],))


def _spread(per_window, attrs, size):
    """The adjoint of reading windows: each window's (..., OH, OW, kH·kW) entries added back at
    the input positions they were read from; padding dropped."""
    (kh, kw), (sh, sw), (ph, pw) = _window(attrs)
    oh, ow = per_window.shape[-3:-1]
    lead = per_window.shape[:-3]
    out = np.zeros(lead + (size[0] + 2 * ph, size[1] + 2 * pw), dtype=per_window.dtype)
    for i in range(kh):
        for j in range(kw):
            out[..., i:i + sh * (oh - 1) + 1:sh, j:j + sw * (ow - 1) + 1:sw] += per_window[..., i * kw + j]
    return out[..., ph:ph + size[0], pw:pw + size[1]]


def _float_infer(what):
    def infer(inputs, attrs):
        x = inputs[0]
        return _pooled_shape(what, x.shape, attrs), x.dtype
    return infer


def _window_flops(node):
    k = node.attr("kernel_size")
    return shapes.numel(node.shape) * k[0] * k[1]


# -- max pooling ---------------------------------------------------------------------------
def _max_evaluate(values, attrs, out_shape, bindings):
    x = values[0]
    return _windows(x, attrs, out_shape[-2:], -np.inf).max(axis=-1)


def _argmax(x, attrs, out_hw):
    return _windows(x, attrs, out_hw, -np.inf).argmax(axis=-1)


max_pool2d_op = Op("max_pool2d", infer=_float_infer("max_pool2d"), evaluate=_max_evaluate, flops=_window_flops,
                   kernel="max_pool2d", print_attrs=SHOWN, pretty_attrs=True,
                   doc="the maximum of each kH×kW window of the last two axes (padding is -inf)")


@max_pool2d_op.defsymbolic
def _max_symbolic(values, attrs, out_shape, bindings):  # sympy's Max of each window
    win = _windows(values[0], attrs, out_shape[-2:], sympy.S.NegativeInfinity)
    out = np.empty(win.shape[:-1], dtype=object)
    for idx in np.ndindex(out.shape):
        out[idx] = sympy.Max(*win[idx])
    return out


def _gather_infer(inputs, attrs):
    x, t = inputs
    if x.shape != t.shape:
        raise ShapeError(f"max_pool2d_gather: the tangent {format_shape(t.shape)} must have the input's shape "
                         f"{format_shape(x.shape)}")
    return _pooled_shape("max_pool2d_gather", x.shape, attrs), t.dtype


def _gather_evaluate(values, attrs, out_shape, bindings):
    x, t = values
    at = _argmax(x, attrs, out_shape[-2:])
    return np.take_along_axis(_windows(t, attrs, out_shape[-2:], 0), at[..., None], axis=-1)[..., 0]


max_pool2d_gather_op = Op("max_pool2d_gather", infer=_gather_infer, evaluate=_gather_evaluate, kernel="max_pool2d",
                          print_attrs=SHOWN, pretty_attrs=True, symbolic=False,
                          doc="t at the argmax of each window of x (max_pool2d's JVP)")


def _scatter_infer(inputs, attrs):
    x, ct = inputs
    want = _pooled_shape("max_pool2d_scatter", x.shape, attrs)
    if not (len(want) == ct.ndim and all(shapes.same_dim(a, b) for a, b in zip(want, ct.shape))):
        raise ShapeError(f"max_pool2d_scatter: the cotangent {format_shape(ct.shape)} must have the pooled shape "
                         f"{format_shape(want)}")
    return x.shape, ct.dtype


def _scatter_evaluate(values, attrs, out_shape, bindings):
    x, ct = values
    at = _argmax(x, attrs, ct.shape[-2:])
    k = attrs["kernel_size"]
    per_window = np.where(np.arange(k[0] * k[1]) == at[..., None], ct[..., None], np.zeros((), ct.dtype))
    return _spread(per_window.astype(ct.dtype, copy=False), attrs, x.shape[-2:])


max_pool2d_scatter_op = Op("max_pool2d_scatter", infer=_scatter_infer, evaluate=_scatter_evaluate,
                           kernel="max_pool2d_scatter", print_attrs=SHOWN, pretty_attrs=True, symbolic=False,
                           doc="each window's cotangent added at the argmax of x (max_pool2d's VJP)")


def _route(node, t, nb, op):
    """Apply ``op`` (gather or scatter) with x broadcast over the tangent's ``nb`` leading axes."""
    x = node.inputs[0]
    if nb:
        x = broadcast_to(x, t.shape[:nb] + x.shape)
    return make(op, (x, t), kernel_size=node.attr("kernel_size"), stride=node.attr("stride"),
                padding=node.attr("padding"))


@max_pool2d_op.defjvp
def _max_jvp(node, ts, nb):
    return _route(node, ts[0], nb, max_pool2d_gather_op)


@max_pool2d_op.defvjp
def _max_vjp(node, ct, nb, needed=None):
    return [_route(node, ct, nb, max_pool2d_scatter_op)]


@max_pool2d_gather_op.defjvp
def _gather_jvp(node, ts, nb):  # linear in t, constant in x (almost everywhere)
    return None if ts[1] is None else _route(node, ts[1], nb, max_pool2d_gather_op)


@max_pool2d_gather_op.defvjp
def _gather_vjp(node, ct, nb, needed=None):
    return [None, _route(node, ct, nb, max_pool2d_scatter_op)]


@max_pool2d_scatter_op.defjvp
def _scatter_jvp(node, ts, nb):
    return None if ts[1] is None else _route(node, ts[1], nb, max_pool2d_scatter_op)


@max_pool2d_scatter_op.defvjp
def _scatter_vjp(node, ct, nb, needed=None):
    return [None, _route(node, ct, nb, max_pool2d_gather_op)]


# -- average pooling -----------------------------------------------------------------------
def _avg_evaluate(values, attrs, out_shape, bindings):
    x = values[0]
    k = attrs["kernel_size"]
    return (_windows(x, attrs, out_shape[-2:], 0).sum(axis=-1) / (k[0] * k[1])).astype(x.dtype, copy=False)


avg_pool2d_op = Op("avg_pool2d", infer=_float_infer("avg_pool2d"), evaluate=_avg_evaluate, flops=_window_flops,
                   kernel="avg_pool2d", print_attrs=SHOWN, pretty_attrs=True,
                   doc="the mean of each kH×kW window of the last two axes (padding counts as 0)")


def _avg_scatter_infer(inputs, attrs):
    (ct,) = inputs
    size = attrs["size"]
    want = ct.shape[:-2] + spatial_output("avg_pool2d_scatter", ct.shape[:-2] + tuple(size), *_window(attrs), (1, 1))
    if not all(shapes.same_dim(a, b) for a, b in zip(want, ct.shape)):
        raise ShapeError(f"avg_pool2d_scatter: the cotangent {format_shape(ct.shape)} is not the pooled shape "
                         f"{format_shape(want)} of an input of spatial size {format_shape(size)}")
    return ct.shape[:-2] + tuple(size), ct.dtype


def _avg_scatter_evaluate(values, attrs, out_shape, bindings):
    (ct,) = values
    k = attrs["kernel_size"]
    per_window = np.repeat((ct / (k[0] * k[1]))[..., None], k[0] * k[1], axis=-1).astype(ct.dtype, copy=False)
    return _spread(per_window, attrs, out_shape[-2:])


avg_pool2d_scatter_op = Op("avg_pool2d_scatter", infer=_avg_scatter_infer, evaluate=_avg_scatter_evaluate,
                           flops=lambda node: shapes.numel(node.inputs[0].shape) * node.attr("kernel_size")[0]
                           * node.attr("kernel_size")[1],
                           kernel="avg_pool2d_scatter", print_attrs=SHOWN + (Shown("size"),), pretty_attrs=True,
                           doc="each window's cotangent spread evenly over it (avg_pool2d's VJP)")


def _avg_attrs(node):
    return {k: node.attr(k) for k in ("kernel_size", "stride", "padding")}


@avg_pool2d_op.defjvp
def _avg_jvp(node, ts, nb):
    return make(avg_pool2d_op, (ts[0],), **_avg_attrs(node))


@avg_pool2d_op.defvjp
def _avg_vjp(node, ct, nb, needed=None):
    return [make(avg_pool2d_scatter_op, (ct,), size=tuple(node.inputs[0].shape[-2:]), **_avg_attrs(node))]


@avg_pool2d_scatter_op.defjvp
def _avg_scatter_jvp(node, ts, nb):
    return make(avg_pool2d_scatter_op, (ts[0],), size=node.attr("size"), **_avg_attrs(node))


@avg_pool2d_scatter_op.defvjp
def _avg_scatter_vjp(node, ct, nb, needed=None):
    return [make(avg_pool2d_op, (ct,), **_avg_attrs(node))]


# -- public functions ------------------------------------------------------------------------
def _pool_args(what, x, kernel_size, stride, padding):
    if x.ndim not in (3, 4):
        raise ShapeError(f"{what}: the input must be (N, C, H, W) or (C, H, W), got {format_shape(x.shape)}")
    if x.dtype not in ("float32", "float64"):
        raise TypeError(f"{what}: the input must be float32 or float64, got {x.dtype}")
    kernel = pair(kernel_size, what, "kernel_size", 1)
    stride = kernel if stride is None else pair(stride, what, "stride", 1)
    padding = pair(padding, what, "padding", 0)
    if any(2 * p > k for p, k in zip(padding, kernel)):
        raise ShapeError(f"{what}: padding {padding} must be at most half the kernel size {kernel} (as PyTorch's)")
    return {"kernel_size": kernel, "stride": stride, "padding": padding}


@function
def max_pool2d(x, kernel_size, stride=None, padding=0) -> Node:
    """The maximum of each window, as ``torch.nn.functional.max_pool2d(x, kernel_size, stride,
    padding)``: ``stride`` defaults to ``kernel_size``; padding reads as -inf.

    >>> import numpy as np
    >>> import symdiff as sd
    >>> X = sd.tensor("X", (1, 1, 4, 4))
    >>> print(sd.max_pool2d(X, 2))
    max_pool2d(X, kernel_size=(2, 2), stride=(2, 2))
    >>> sd.evaluate(sd.max_pool2d(X, 2), {X: np.arange(16.0).reshape(1, 1, 4, 4)})[0, 0].tolist()
    [[5.0, 7.0], [13.0, 15.0]]
    """
    x = as_node(x)
    return make(max_pool2d_op, (x,), **_pool_args("max_pool2d", x, kernel_size, stride, padding))


@function
def avg_pool2d(x, kernel_size, stride=None, padding=0) -> Node:
    """The mean of each window, as ``torch.nn.functional.avg_pool2d(x, kernel_size, stride,
    padding)`` with its default ``count_include_pad=True`` (padding counts as zeros).

    >>> import numpy as np
    >>> import symdiff as sd
    >>> X = sd.tensor("X", (1, 4, 4))
    >>> sd.evaluate(sd.avg_pool2d(X, 2), {X: np.arange(16.0).reshape(1, 4, 4)})[0].tolist()
    [[2.5, 4.5], [10.5, 12.5]]
    """
    x = as_node(x)
    return make(avg_pool2d_op, (x,), **_pool_args("avg_pool2d", x, kernel_size, stride, padding))


@function
def global_avg_pool2d(x) -> Node:
    """The mean over the last two axes, kept as size 1: (N, C, H, W) -> (N, C, 1, 1), as
    ``torch.nn.AdaptiveAvgPool2d(1)``.

    >>> import symdiff as sd
    >>> sd.global_avg_pool2d(sd.tensor("X", ("N", 8, 7, 7))).shape
    (N, 8, 1, 1)
    """
    x = as_node(x)
    if x.ndim not in (3, 4):
        raise ShapeError(f"global_avg_pool2d: the input must be (N, C, H, W) or (C, H, W), got {format_shape(x.shape)}")
    return x.mean(axis=(-2, -1), keepdims=True)
