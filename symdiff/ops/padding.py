"""Padding ops: pad and dilate, the structural ops of convolutions.

Both make a bigger array than their input: the input's elements at mapped positions, and a
fill value elsewhere. They move elements without arithmetic (FLOPs 0) and shapes may be
symbolic. Both are linear in the input, so each JVP is the same op on the tangent (filled with
0), and each VJP reads the cotangent back at the input's positions: a basic slice, one
``getitem`` view. The lowering computes them inside the consumer's loop, as a guarded read
(:meth:`symdiff.lowering.render.writer.KernelWriter._compute`), never as a buffer of their own.

>>> import symdiff as sd
>>> X = sd.tensor("X", ("m", 3))
>>> sd.pad(X, ((0, 0), (1, 2))).shape
(m, 6)
>>> sd.dilate(X, 1, 0).shape
(2*m, 3)
"""

from __future__ import annotations

import numpy as np
import sympy

from .. import shapes
from ..node import Node, as_node, make
from ..shapes import ShapeError, format_shape
from .movement import full_slice, getitem_op
from .registry import Op, Shown, function

# Above movement (its VJPs are getitem views), below elementwise: it imports no other family.



def _shown(value, limit=200) -> str:
    """``repr(value)``, cut to ``limit`` characters (an error message names what was given)."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + f"… ({len(text)} characters)"

def _filled(shape, value, dtype):
    """An array of ``shape`` holding ``value``; on object arrays (symbolic mode) a sympy number."""
    if dtype == object:
        return np.full(shape, sympy.sympify(value), dtype=object)
    return np.full(shape, value, dtype=dtype)


def _lead_slices(x, nb):
    return tuple(full_slice(d) for d in x.shape[:nb])


# -- pad -----------------------------------------------------------------------------------
def _pad_infer(inputs, attrs):
    (a,) = inputs
    out = tuple(shapes.dim(d + before + after) for d, (before, after) in zip(a.shape, attrs["pad_width"]))
    return out, a.dtype


def _pad_evaluate(values, attrs, out_shape, bindings):
    v = values[0]
    out = _filled(out_shape, attrs["value"], v.dtype)
    out[tuple(slice(before, before + d) for d, (before, _) in zip(v.shape, attrs["pad_width"]))] = v
    return out


# lowering: x[i - before] where before <= i < before + d, else value (a guarded read, no buffer)
pad_op = Op("pad", infer=_pad_infer, evaluate=_pad_evaluate, index_function=True,
            print_attrs=(Shown("pad_width"), Shown("value", default=0)),
            doc="the input with constant padding: numpy.pad(x, pad_width, constant_values=value)")


@pad_op.defjvp
def _pad_jvp(node, ts, nb):
    return make(pad_op, (ts[0],), pad_width=((0, 0),) * nb + node.attr("pad_width"), value=_zero(node.dtype))


@pad_op.defvjp
def _pad_vjp(node, ct, nb, needed=None):  # the interior of the cotangent
    interior = tuple(("slice", before, before + d, 1, d)
                     for d, (before, _) in zip(node.inputs[0].shape, node.attr("pad_width")))
    return [make(getitem_op, (ct,), index=_lead_slices(ct, nb) + interior)]


def _zero(dtype):
    return False if dtype == "bool" else 0 if dtype == "int64" else 0.0


def _is_int(v) -> bool:
    return isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_))


def _pad_widths(pad_width, a) -> tuple:
    """numpy's forms of ``pad_width`` (an int, a (before, after) pair, a per-axis sequence of
    pairs: what broadcasts to (ndim, 2)) as one (before, after) pair of ints per axis."""
    try:
        widths = np.asarray(pad_width, dtype=object)
    except ValueError:  # ragged nesting
        widths = None
    if widths is None or widths.ndim > 2 or any(isinstance(w, (tuple, list, np.ndarray)) for w in widths.flat):
        raise ShapeError(f"pad: pad_width {_shown(pad_width)} is not an int, a (before, after) pair or one pair per axis "
                         f"of an array of shape {format_shape(a.shape)}")
    if not all(_is_int(w) for w in widths.flat):
        raise TypeError(f"pad: pad widths must be ints, got {_shown(pad_width)}")
    try:
        widths = np.broadcast_to(widths, (a.ndim, 2))
    except ValueError:
        raise ShapeError(f"pad: pad_width {_shown(pad_width)} does not fit an array of shape {format_shape(a.shape)}: "
                         f"give an int, a (before, after) pair or {a.ndim} pairs") from None
    if any(w < 0 for w in widths.flat):
        raise ShapeError(f"pad: pad widths must be non-negative, got {_shown(pad_width)} for an array of shape "
                         f"{format_shape(a.shape)}")
    return tuple((int(before), int(after)) for before, after in widths)


def _fill_value(value, dtype):
    if isinstance(value, (Node, sympy.Basic)) or not isinstance(value, (int, float, np.number, bool, np.bool_)):
        raise TypeError(f"pad: value must be a number (constant padding), got {value!r}")
    if dtype == "bool":
        if value not in (0, 1):
            raise TypeError(f"pad: cannot pad a bool array with {value!r}")
        return bool(value)
    if dtype == "int64":
        if float(value) != int(value):
            raise TypeError(f"pad: cannot pad an int64 array with {value!r}")
        return int(value)
    return float(value)


@function
def pad(x, pad_width, value=0) -> Node:
    """``x`` padded with the constant ``value``, as ``numpy.pad(x, pad_width,
    constant_values=value)``: ``pad_width`` is an int (every side of every axis), a
    ``(before, after)`` pair (every axis) or one pair per axis. Along an axis of size ``d`` the
    output has ``d + before + after`` elements, symbolic ``d`` too.

    >>> import symdiff as sd
    >>> X = sd.tensor("X", ("m", 3))
    >>> print(sd.pad(X, ((0, 0), (1, 1)), value=-1.5))
    pad(X, pad_width=((0, 0), (1, 1)), value=-1.5)
    >>> sd.pad(X, 1).shape
    (m + 2, 5)
    >>> sd.pad(X, (1, -1))
    Traceback (most recent call last):
    ...
    symdiff.shapes.ShapeError: pad: pad widths must be non-negative, got (1, -1) for an array of shape (m, 3)
    """
    x = as_node(x)
    widths = _pad_widths(pad_width, x)
    fill = _fill_value(value, x.dtype)
    if all(w == (0, 0) for w in widths):
        return x
    return make(pad_op, (x,), pad_width=widths, value=fill)


# -- dilate --------------------------------------------------------------------------------
def _dilate_infer(inputs, attrs):
    (a,), step = inputs, attrs["dilation"] + 1
    return tuple(shapes.dim(d * step) if k in attrs["axes"] else d for k, d in enumerate(a.shape)), a.dtype


def _dilate_evaluate(values, attrs, out_shape, bindings):
    v, step = values[0], attrs["dilation"] + 1
    out = _filled(out_shape, 0, v.dtype)
    out[tuple(slice(None, None, step) if k in attrs["axes"] else slice(None) for k in range(v.ndim))] = v
    return out


# lowering: x[i / (dilation + 1)] where i % (dilation + 1) == 0, else 0 (a guarded read, no buffer)
dilate_op = Op("dilate", infer=_dilate_infer, evaluate=_dilate_evaluate, index_function=True,
               print_attrs=(Shown("dilation"), Shown("axes")),
               doc="dilation zeros after every element along axes (needle's dilate)")


@dilate_op.defjvp
def _dilate_jvp(node, ts, nb):
    return make(dilate_op, (ts[0],), dilation=node.attr("dilation"), axes=tuple(a + nb for a in node.attr("axes")))


@dilate_op.defvjp
def _dilate_vjp(node, ct, nb, needed=None):  # needle's undilate: every (dilation + 1)-th element
    step, axes = node.attr("dilation") + 1, node.attr("axes")
    index = tuple(("slice", 0, n, step, d) if k in axes else full_slice(d)
                  for k, (d, n) in enumerate(zip(node.inputs[0].shape, node.shape)))
    return [make(getitem_op, (ct,), index=_lead_slices(ct, nb) + index)]


@function
def dilate(x, dilation, axes) -> Node:
    """``x`` with ``dilation`` zeros inserted after each element along each axis in ``axes``
    (an int or a tuple of ints; negative axes count from the end). This is the dilate of the
    CMU dlsys course's needle, ``needle.ops.dilate(a, axes, dilation)`` (there the axes come
    first): an axis of size ``d`` becomes ``d * (dilation + 1)``, the input's elements at
    ``0, dilation + 1, 2 * (dilation + 1), ...``, zeros after the last one too.

    >>> import symdiff as sd
    >>> v = sd.tensor("v", (2,))
    >>> print(sd.dilate(v, 2, 0))
    dilate(v, dilation=2, axes=0)
    >>> sd.evaluate(sd.dilate(v, 2, 0), {v: [1.0, 2.0]}).tolist()
    [1.0, 0.0, 0.0, 2.0, 0.0, 0.0]
    """
    x = as_node(x)
    if not _is_int(dilation):
        raise TypeError(f"dilate: dilation must be an int, got {dilation!r} (the signature is dilate(x, dilation, "
                        "axes); needle's is dilate(a, axes, dilation))")
    if dilation < 0:
        raise ShapeError(f"dilate: dilation must be non-negative, got {dilation}")
    listed = tuple(axes) if isinstance(axes, (tuple, list)) else (axes,)
    for k in listed:
        if not _is_int(k):
            raise TypeError(f"dilate: axes must be an int or a tuple of ints, got {axes!r}")
        if not -x.ndim <= k < x.ndim:
            raise ShapeError(f"dilate: axis {k} is out of range for an array of shape {format_shape(x.shape)}")
    axes = shapes.normalize_axes(listed, x.ndim, "dilate")  # sorted; a repeated axis is refused
    if dilation == 0 or not axes:
        return x
    return make(dilate_op, (x,), dilation=int(dilation), axes=axes)
