"""Neural-network ops: softmax, log_softmax, one_hot, softmax_cross_entropy.

>>> import symdiff as sd
>>> Z, y = sd.tensor("Z", ("m", 10)), sd.tensor("y", ("m",), "int64")
>>> sd.softmax_cross_entropy(Z, y).shape
()
"""

from __future__ import annotations

import numpy as np
import sympy

from .. import dtypes, shapes
from ..node import Node, as_node, constant, make
from ..shapes import ShapeError, format_shape
from . import sympy_functions
from .elementwise import scalar_value
from .movement import reshape
from .registry import Op, Shown, function

# Below the reductions (logsumexp's derivative is softmax): the sums in these rules are x.sum(...).


def _axis_float_infer(name):
    def infer(inputs, attrs):
        (a,) = inputs
        if not dtypes.is_float(a.dtype):
            raise TypeError(f"{name}: needs a float input, got {a.dtype}")
        return a.shape, a.dtype

    return infer


def _logsumexp(a, axis, keepdims):
    """The numpy reference of logsumexp (reduce's op and the losses here evaluate with it)."""
    if a.size == 0:
        return np.log(np.sum(np.exp(a), axis=axis, keepdims=keepdims))
    m = np.max(a, axis=axis, keepdims=True)
    m = np.where(np.isfinite(m), m, 0).astype(a.dtype, copy=False)
    out = np.log(np.sum(np.exp(a - m), axis=axis, keepdims=True)) + m
    return out if keepdims else np.squeeze(out, axis=axis)


def _softmax(a, axis):
    e = np.exp(a - np.max(a, axis=axis, keepdims=True))
    return e / np.sum(e, axis=axis, keepdims=True)


def _log_softmax(a, axis):
    return a - _logsumexp(a, axis, True)


def _last_axis(node):
    return node.inputs[0].ndim - 1


# the axis is shown where it is not the last one
SOFTMAX = {"kernel": "softmax", "fuses_inputs": True, "print_attrs": (Shown("axis", default=_last_axis),),
           "flops": lambda node: 5 * shapes.numel(node.shape)}
softmax_op = Op("softmax", infer=_axis_float_infer("softmax"), **SOFTMAX,
                evaluate=lambda v, at, s, b: _softmax(v[0], at["axis"]))


def _softmax_rule(node, t, nb):
    axis = node.attr("axis") + nb
    return node * (t - _sum_keep(t * node, axis))


@softmax_op.defjvp
def _softmax_jvp(node, ts, nb):
    return _softmax_rule(node, ts[0], nb)


@softmax_op.defvjp
def _softmax_vjp(node, ct, nb, needed=None):
    return [_softmax_rule(node, ct, nb)]


@softmax_op.defsymbolic
def _softmax_symbolic(values, attrs, out_shape, bindings):
    return sympy_functions.along_axis(values[0], attrs["axis"], sympy_functions.softmax_lane)


log_softmax_op = Op("log_softmax", infer=_axis_float_infer("log_softmax"), **SOFTMAX,
                    evaluate=lambda v, at, s, b: _log_softmax(v[0], at["axis"]))


@log_softmax_op.defjvp
def _log_softmax_jvp(node, ts, nb):
    p = softmax(node.inputs[0], axis=node.attr("axis"))
    return ts[0] - _sum_keep(p * ts[0], node.attr("axis") + nb)


@log_softmax_op.defvjp
def _log_softmax_vjp(node, ct, nb, needed=None):
    p = softmax(node.inputs[0], axis=node.attr("axis"))
    return [ct - p * _sum_keep(ct, node.attr("axis") + nb)]


@log_softmax_op.defsymbolic
def _log_softmax_symbolic(values, attrs, out_shape, bindings):
    return sympy_functions.along_axis(values[0], attrs["axis"], sympy_functions.log_softmax_lane)


@function
def softmax(a, axis: int = -1) -> Node:
    """``exp(a) / sum(exp(a))`` along ``axis``, evaluated stably.

    >>> import symdiff as sd
    >>> v = sd.tensor("v", (2,))
    >>> sd.evaluate(sd.softmax(v), {v: [0.0, 0.0]}).tolist()
    [0.5, 0.5]
    """
    a = as_node(a)
    return make(softmax_op, (a,), axis=shapes.normalize_axis(axis, a.ndim, "softmax"))


@function
def log_softmax(a, axis: int = -1) -> Node:
    """``a - logsumexp(a)`` along ``axis``."""
    a = as_node(a)
    return make(log_softmax_op, (a,), axis=shapes.normalize_axis(axis, a.ndim, "log_softmax"))


def _check_labels(labels, num_classes, name):
    if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
        bad = labels[(labels < 0) | (labels >= num_classes)].flat[0]
        raise ValueError(f"{name}: label {bad} is out of range for {num_classes} classes")


def _one_hot_evaluate(values, attrs, out_shape, bindings):
    (labels,) = values
    k = out_shape[-1]
    _check_labels(labels, k, "one_hot")
    return (labels[..., None] == np.arange(k)).astype(attrs["dtype"])


def _one_hot_infer(inputs, attrs):
    (labels,) = inputs
    if labels.dtype != "int64":
        raise TypeError(f"one_hot: labels must be int64, got {labels.dtype}")
    return labels.shape + (attrs["num_classes"],), attrs["dtype"]


one_hot_op = Op("one_hot", infer=_one_hot_infer, evaluate=_one_hot_evaluate, differentiable=False,
                index_function=True, print_attrs=(Shown("num_classes", positional=True),))


@function
def one_hot(labels, num_classes, dtype: str = "float64") -> Node:
    """Rows of the identity picked by integer ``labels`` (shape ``labels.shape + (k,)``).

    >>> import symdiff as sd
    >>> y = sd.tensor("y", (2,), "int64")
    >>> sd.evaluate(sd.one_hot(y, 3), {y: [2, 0]}).tolist()
    [[0.0, 0.0, 1.0], [1.0, 0.0, 0.0]]
    """
    labels = as_node(labels)
    return make(one_hot_op, (labels,), num_classes=shapes.dim(num_classes), dtype=dtypes.check_dtype(dtype))


def _sce_infer(inputs, attrs):
    logits, labels = inputs
    if not dtypes.is_float(logits.dtype):
        raise TypeError(f"softmax_cross_entropy: logits must be float, got {logits.dtype}")
    if labels.dtype != "int64":
        raise TypeError(f"softmax_cross_entropy: labels must be int64, got {labels.dtype}")
    if logits.ndim < 1 or labels.ndim != logits.ndim - 1 or not all(
            map(shapes.same_dim, labels.shape, logits.shape[:-1])):
        raise ShapeError(f"softmax_cross_entropy: logits {format_shape(logits.shape)} need labels of "
                         f"shape {format_shape(logits.shape[:-1])}, got {format_shape(labels.shape)}")
    return (), logits.dtype


def _sce_evaluate(values, attrs, out_shape, bindings):
    logits, labels = values
    _check_labels(labels, logits.shape[-1], "softmax_cross_entropy")
    picked = np.take_along_axis(logits, labels[..., None], axis=-1)[..., 0]
    return np.mean(_logsumexp(logits, -1, False) - picked).astype(logits.dtype)


softmax_cross_entropy_op = Op(
    "softmax_cross_entropy", infer=_sce_infer, evaluate=_sce_evaluate, kernel="cross_entropy",
    fuses_inputs=True, flops=lambda node: 5 * shapes.numel(node.inputs[0].shape),
)


@softmax_cross_entropy_op.defjvp
def _sce_jvp(node, ts, nb):
    t = ts[0]
    if t is None:
        return None
    return (t * _sce_residual(node)).sum(axis=tuple(range(nb, t.ndim)))


@softmax_cross_entropy_op.defvjp
def _sce_vjp(node, ct, nb, needed=None):
    residual = _sce_residual(node)
    if nb == 0 and scalar_value(ct) == 1:
        return [residual, None]
    return [_lift(ct, nb, residual.ndim) * residual if nb or ct.shape != () else ct * residual, None]


@softmax_cross_entropy_op.defsymbolic
def _sce_symbolic(values, attrs, out_shape, bindings):
    logits, labels = values[0], np.vectorize(int, otypes=[np.int64])(values[1])
    k = logits.shape[-1]
    terms = [sympy_functions.logsumexp(*row) - row[int(label)]
             for row, label in zip(logits.reshape(-1, k), labels.reshape(-1))]
    return np.array(sympy.Add(*terms) / len(terms), dtype=object)


@function
def softmax_cross_entropy(logits, labels) -> Node:
    """Mean over the batch of ``logsumexp(z) - z[y]``: softmax regression's loss.

    >>> import symdiff as sd
    >>> Z, y = sd.tensor("Z", (1, 2)), sd.tensor("y", (1,), "int64")
    >>> round(float(sd.evaluate(sd.softmax_cross_entropy(Z, y), {Z: [[0.0, 0.0]], y: [1]})), 4)
    0.6931
    """
    return make(softmax_cross_entropy_op, (as_node(logits), as_node(labels)))


# -- helpers of the derivative rules -------------------------------------------------------
def _sum_keep(x, axis):
    return x.sum(axis=axis, keepdims=True)


def _sce_residual(node):
    """softmax(z) − onehot(y), divided by the batch size: d loss / d logits."""
    logits, labels = node.inputs
    count = shapes.numel(labels.shape)
    residual = softmax(logits, axis=-1) - one_hot(labels, logits.shape[-1], logits.dtype)
    return residual / constant(count, logits.dtype) if count != 1 else residual


def _lift(x, nb, ndim):
    return reshape(x, x.shape[:nb] + (1,) * ndim)
