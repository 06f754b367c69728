"""Reductions over axes: sum, max, logsumexp, argmax (and mean, min built from them).

``axis`` is None (all axes), an int or a tuple, as in numpy; ``keepdims`` keeps
reduced axes with size 1.

>>> import symdiff as sd
>>> X = sd.tensor("X", ("m", "n"))
>>> sd.sum(X, axis=0).shape, sd.mean(X, axis=1, keepdims=True).shape
((n,), (m, 1))
"""

from __future__ import annotations

import numpy as np
import sympy

from .. import dtypes, shapes
from ..node import Node, as_node, constant, make
from . import sympy_functions
from .elementwise import apply, astype, exp
from .movement import broadcast_to, reshape
from .nn import _logsumexp, softmax  # above nn: logsumexp's derivative is softmax
from .registry import Op, Shown, function


def _reduced_shape(shape, axes, keepdims):
    if keepdims:
        return tuple(1 if i in axes else d for i, d in enumerate(shape))
    return tuple(d for i, d in enumerate(shape) if i not in axes)


def _reduce_infer(dtype_rule):
    def infer(inputs, attrs):
        (a,) = inputs
        return _reduced_shape(a.shape, attrs["axis"], attrs["keepdims"]), dtype_rule(a.dtype)

    return infer


def _sum_dtype(d):
    return d if dtypes.is_float(d) else "int64"


def _float_only(name):
    def rule(d):
        if not dtypes.is_float(d):
            raise TypeError(f"{name}: needs a float input, got {d}")
        return d

    return rule


def _in_elements(node):
    return shapes.numel(node.inputs[0].shape)


def _all_axes(node):
    return tuple(range(node.inputs[0].ndim))


# axis is shown where it is not all axes, keepdims where it is True
SHOWN = (Shown("axis", default=_all_axes), Shown("keepdims", default=False))
REDUCTION = {"kernel": "reduce", "fuses_inputs": True, "flops": _in_elements, "print_attrs": SHOWN}

sum_op = Op("sum", infer=_reduce_infer(_sum_dtype), **REDUCTION,
            evaluate=lambda v, at, s, b: np.sum(v[0], axis=at["axis"], keepdims=at["keepdims"],
                                                 dtype=np.int64 if v[0].dtype.kind in "biu" else None))


@sum_op.defjvp
def _sum_jvp(node, ts, nb):
    return sum_(ts[0], axis=_shift(node, nb), keepdims=node.attr("keepdims"))


@sum_op.defvjp
def _sum_vjp(node, ct, nb, needed=None):
    return [_spread(node, ct, nb)]


@sum_op.defsymbolic
def _sum_symbolic(values, attrs, out_shape, bindings):
    return sympy_functions.reduce_objects(values[0], attrs["axis"], attrs["keepdims"], sympy.Add)


max_op = Op("max", infer=_reduce_infer(lambda d: d), **REDUCTION, has_identity=False,
            evaluate=lambda v, at, s, b: np.max(v[0], axis=at["axis"], keepdims=at["keepdims"]))


def _weighted_reduction_rules(op, weights):
    """JVP and VJP of a reduction whose derivative is a weighted sum of its inputs (``weights``:
    where the max is, for max; the softmax, for logsumexp)."""

    @op.defjvp
    def _jvp(node, ts, nb):
        return sum_(ts[0] * weights(node), axis=_shift(node, nb), keepdims=node.attr("keepdims"))

    @op.defvjp
    def _vjp(node, ct, nb, needed=None):
        return [_spread(node, ct, nb) * weights(node)]


_weighted_reduction_rules(max_op, lambda node: _max_weights(node))


@max_op.defsymbolic
def _max_symbolic(values, attrs, out_shape, bindings):
    return sympy_functions.reduce_objects(values[0], attrs["axis"], attrs["keepdims"], sympy.Max)


logsumexp_op = Op("logsumexp", infer=_reduce_infer(_float_only("logsumexp")), **{
                  **REDUCTION, "flops": lambda node: 4 * _in_elements(node)},
                  evaluate=lambda v, at, s, b: _logsumexp(v[0], at["axis"], at["keepdims"]))


_weighted_reduction_rules(logsumexp_op, lambda node: _lse_weights(node))


@logsumexp_op.defsymbolic
def _logsumexp_symbolic(values, attrs, out_shape, bindings):
    return sympy_functions.reduce_objects(values[0], attrs["axis"], attrs["keepdims"],
                                          sympy_functions.logsumexp)


# argmax of sympy expressions has no symbolic form; its axis always shows
argmax_op = Op("argmax", infer=_reduce_infer(lambda d: "int64"), **{
               **REDUCTION, "print_attrs": ("axis", SHOWN[1])}, has_identity=False,
               differentiable=False, symbolic=False,
               evaluate=lambda v, at, s, b: _argmax(v[0], at["axis"], at["keepdims"]))


def _argmax(a, axis, keepdims):
    (axis,) = axis
    return np.argmax(a, axis=axis, keepdims=keepdims).astype(np.int64)


def _reduce(op, a, axis, keepdims, name):
    a = as_node(a)
    axes = shapes.normalize_axes(axis, a.ndim, name)
    if not axes and op is not argmax_op:
        return a
    if not isinstance(keepdims, bool):
        raise TypeError(f"{name}: keepdims must be True or False, got {keepdims!r}")
    return make(op, (a,), axis=axes, keepdims=keepdims)


@function
def sum_(a, axis=None, keepdims=False) -> Node:
    """Sum over ``axis`` (all axes when None).

    >>> import symdiff as sd
    >>> X = sd.tensor("X", (2, 3))
    >>> sd.evaluate(sd.sum(X, axis=1), {X: [[1, 2, 3], [4, 5, 6]]}).tolist()
    [6.0, 15.0]
    """
    return _reduce(sum_op, a, axis, keepdims, "sum")


@function
def max_(a, axis=None, keepdims=False) -> Node:
    """Maximum over ``axis`` (numpy's ``max``)."""
    return _reduce(max_op, a, axis, keepdims, "max")


@function
def min_(a, axis=None, keepdims=False) -> Node:
    """Minimum over ``axis``, as ``-max(-a)``."""
    a = as_node(a)
    return -max_(-a, axis=axis, keepdims=keepdims)


@function
def logsumexp(a, axis=None, keepdims=False) -> Node:
    """``log(sum(exp(a)))`` over ``axis``, evaluated stably.

    >>> import symdiff as sd
    >>> v = sd.tensor("v", (2,))
    >>> round(float(sd.evaluate(sd.logsumexp(v), {v: [1000.0, 1000.0]})), 4)
    1000.6931
    """
    return _reduce(logsumexp_op, a, axis, keepdims, "logsumexp")


@function
def var(a, axis=None, keepdims=False, ddof=0) -> Node:
    """Variance over ``axis``, numpy's ``var``: the mean squared deviation from the mean,
    divided by ``count − ddof`` instead of ``count`` (``ddof=1``: the unbiased estimate).

    >>> import symdiff as sd
    >>> v = sd.tensor("v", (4,))
    >>> float(sd.evaluate(sd.var(v), {v: [1.0, 2.0, 3.0, 4.0]})), float(sd.evaluate(sd.var(v, ddof=1), {v: [1.0, 2.0, 3.0, 4.0]}))
    (1.25, 1.6666666666666667)
    """
    a = as_node(a)
    axes = shapes.normalize_axes(axis, a.ndim, "var")
    if not isinstance(ddof, (int, np.integer)) or isinstance(ddof, bool) or ddof < 0:
        raise ValueError(f"var: ddof must be a non-negative int, got {ddof!r}")
    centered = a - mean(a, axis=axes, keepdims=True)
    if not ddof:
        return mean(centered * centered, axis=axes, keepdims=keepdims)
    count = shapes.numel([a.shape[i] for i in axes])
    if isinstance(count, int) and count <= ddof:
        raise ValueError(f"var: ddof={ddof} needs more than {ddof} elements, got {count}")
    total = sum_(centered * centered, axis=axes, keepdims=keepdims)
    return total / constant(count - ddof, total.dtype)  # numpy's sum / (n − ddof), rounded as numpy's


@function
def std(a, axis=None, keepdims=False, ddof=0) -> Node:
    """Standard deviation over ``axis``: ``sqrt(var(a, axis, keepdims, ddof))``, numpy's ``std``."""
    return var(a, axis=axis, keepdims=keepdims, ddof=ddof) ** 0.5


@function
def mean(a, axis=None, keepdims=False) -> Node:
    """Mean over ``axis``: the sum divided by the (possibly symbolic) count.

    >>> import symdiff as sd
    >>> print(sd.mean(sd.tensor("v", ("n",))))
    sum(v) / n
    """
    a = as_node(a)
    axes = shapes.normalize_axes(axis, a.ndim, "mean")
    count = shapes.numel([a.shape[i] for i in axes])
    total = sum_(a, axis=axes, keepdims=keepdims)
    if not dtypes.is_float(total.dtype):
        total = astype(total, "float64")
    return total / constant(count, total.dtype) if count != 1 else total


@function
def argmax(a, axis=-1, keepdims=False) -> Node:
    """Index of the maximum along one ``axis`` (int64; no derivative).

    >>> import symdiff as sd
    >>> v = sd.tensor("v", (3,))
    >>> int(sd.evaluate(sd.argmax(v), {v: [0.1, 3.0, -1.0]}))
    1
    """
    a = as_node(a)
    if axis is None or isinstance(axis, (tuple, list)):
        raise TypeError("argmax: axis must be a single int")
    return _reduce(argmax_op, a, axis, keepdims, "argmax")


# -- derivatives ---------------------------------------------------------------------------
def _keep(node, x, nb):
    """``x`` (lead + reduced shape) reshaped to lead + the keepdims shape, ready to broadcast."""
    a = node.inputs[0]
    return reshape(x, x.shape[:nb] + _reduced_shape(a.shape, node.attr("axis"), True))


def _spread(node, ct, nb):
    return broadcast_to(_keep(node, ct, nb), ct.shape[:nb] + node.inputs[0].shape)


def _shift(node, nb):
    return tuple(a + nb for a in node.attr("axis"))


def _max_weights(node):
    """1 at the maxima, shared equally among ties (the subgradient convention)."""
    a = node.inputs[0]
    mask = astype(a == _keep(node, node, 0), a.dtype)
    return mask / sum_(mask, axis=node.attr("axis"), keepdims=True)


def _lse_weights(node):
    a = node.inputs[0]
    if len(node.attr("axis")) == 1:
        return softmax(a, axis=node.attr("axis")[0])
    return apply(exp, a - _keep(node, node, 0))
