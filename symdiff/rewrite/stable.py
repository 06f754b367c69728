"""Numerically better forms, one rule per identity: log(sigmoid x) = −softplus(−x), …

These change *how* a value is computed, never the value.

>>> import symdiff as sd
>>> v = sd.tensor("v", (3,))
>>> print(log_of_sigmoid(sd.log(sd.sigmoid(v))))
-softplus(-v)
"""

from __future__ import annotations

from ..node import constant
from ..ops import elementwise as ew
from ..ops.elementwise import apply, scalar_value
from ..ops.movement import broadcast_to, reshape
from ..ops.nn import log_softmax, log_softmax_op, one_hot_op, softmax_cross_entropy, softmax_op
from ..ops.reduce import sum_op
from .registry import rule


@rule(ew.log)
def log_of_sigmoid(node):
    """log(sigmoid x) → −softplus(−x)."""
    a = node.inputs[0]
    return -apply(ew.softplus, -a.inputs[0]) if a.op is ew.sigmoid else None


@rule(ew.log)
def log_of_softmax(node):
    """log(softmax x) → log_softmax(x)."""
    a = node.inputs[0]
    return log_softmax(a.inputs[0], axis=a.attr("axis")) if a.op is softmax_op else None


@rule(ew.log)
def log_of_one_plus(node):
    """log(1 + x) → log1p(x)."""
    a = node.inputs[0]
    if a.op is ew.add and scalar_value(a.inputs[0]) == 1:
        return apply(ew.log1p, a.inputs[1])
    return None


STABILIZE = (log_of_sigmoid, log_of_softmax, log_of_one_plus)


@rule(sum_op)
def sum_of_one_hot(node):
    """Σₖ onehot(y) → 1 over the class axis."""
    a = node.inputs[0]
    if a.op is one_hot_op and node.attr("axis") == (a.ndim - 1,):
        return broadcast_to(constant(1, node.dtype), node.shape)
    return None


@rule(sum_op)
def cross_entropy_by_hand(node):
    """Σ onehot(y) ⊙ log_softmax(z) → −N·CE(z, y) (N labels): a cross-entropy written out by
    hand becomes the fused op, whose gradient is softmax(z) − onehot(y)."""
    a = node.inputs[0]
    if a.op is not ew.multiply or len(node.attr("axis")) != a.ndim or a.ndim < 1:
        return None
    pair = {i.op: i for i in a.inputs}
    hot, logp = pair.get(one_hot_op), pair.get(log_softmax_op)
    if hot is not None and logp is not None and logp.attr("axis") == logp.ndim - 1 and \
            hot.inputs[0].shape == logp.shape[:-1]:
        count = hot.inputs[0].size
        loss = softmax_cross_entropy(logp.inputs[0], hot.inputs[0])
        result = -(constant(count, node.dtype) * loss) if count != 1 else -loss
        return reshape(result, node.shape) if node.shape != () else result
    return None


ONE_HOT = (sum_of_one_hot, cross_entropy_by_hand)
