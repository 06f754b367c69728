"""Movement compositions collapse, one rule per identity: transpose∘transpose, reshape∘reshape, …

>>> import symdiff as sd
>>> X = sd.tensor("X", (2, 3))
>>> reshape_of_reshape(sd.reshape(sd.reshape(X, (6,)), (3, 2))) is sd.reshape(X, (3, 2))
True
"""

from __future__ import annotations

from ..node import constant
from ..ops import elementwise as ew
from ..ops.movement import broadcast_to, broadcast_to_op, reshape, reshape_op, transpose, transpose_op
from ..ops.reduce import sum_op
from .registry import rule

FLOATS = ("float32", "float64")


@rule(transpose_op)
def transpose_of_unit_axes(node):
    """transpose(x) → reshape(x) when only size-1 axes move: the data order is unchanged."""
    a = node.inputs[0]
    moved = [axis for axis in node.attr("axes") if a.shape[axis] != 1]
    return reshape(a, node.shape) if moved == sorted(moved) else None


@rule(transpose_op)
def transpose_of_transpose(node):
    """transpose(transpose(x, p), q) → transpose(x, p∘q)."""
    a = node.inputs[0]
    if a.op is not transpose_op:
        return None
    inner, outer = a.attr("axes"), node.attr("axes")
    return transpose(a.inputs[0], tuple(inner[i] for i in outer))


@rule(reshape_op)
def reshape_of_reshape(node):
    """reshape(reshape(x)) → reshape(x)."""
    a = node.inputs[0]
    return reshape(a.inputs[0], node.shape) if a.op is reshape_op else None


@rule(broadcast_to_op)
def broadcast_of_broadcast(node):
    """broadcast_to(broadcast_to(x)) → broadcast_to(x)."""
    a = node.inputs[0]
    return broadcast_to(a.inputs[0], node.shape) if a.op is broadcast_to_op else None


@rule(ew.astype_)
def cast_through_float64(node):
    """astype(astype(x, float64), d) → astype(x, d) for floating x and d: float64 holds every float."""
    a = node.inputs[0]
    if a.op is ew.astype_ and a.inputs[0].dtype in FLOATS and node.dtype in FLOATS and a.dtype == "float64":
        return ew.astype(a.inputs[0], node.dtype)
    return None


MOVEMENT = (transpose_of_unit_axes, transpose_of_transpose, reshape_of_reshape, broadcast_of_broadcast,
            cast_through_float64)


@rule(sum_op)
def sum_of_broadcast(node):
    """Σ over axes of a broadcast scalar is a scale: sum(broadcast_to(c, S)) = c · |S_axes|."""
    b = node.inputs[0]
    if b.op is not broadcast_to_op:
        return None
    source = b.inputs[0]
    if source.shape != ():
        return None
    count = 1
    for axis in node.attr("axis"):
        count = count * b.shape[axis]
    scaled = source * constant(count, source.dtype) if count != 1 else source
    return broadcast_to(scaled, node.shape)
