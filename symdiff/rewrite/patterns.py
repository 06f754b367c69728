"""Shapes that several rules look for: a scalar in disguise, a division by a scalar, a number factor."""

from __future__ import annotations

from ..node import Node
from ..ops import elementwise as ew
from ..ops.elementwise import scalar_value
from ..ops.movement import broadcast_to, broadcast_to_op, reshape, reshape_op


def is_number(node: Node) -> bool:
    """Whether ``node`` is a (broadcast) numeric scalar constant."""
    return scalar_value(node) is not None


def peel(node):
    """The node under broadcasts/reshapes of a one-element value (a scalar in disguise)."""
    while node.op in (broadcast_to_op, reshape_op) and node.inputs[0].size == 1:
        node = node.inputs[0]
    return node


def spread_like(scalar_node, like):
    """``scalar_node`` broadcast to ``like``'s shape."""
    return broadcast_to(reshape(scalar_node, ()) if scalar_node.shape != () else scalar_node, like.shape)


def _through_reshape(split):
    """Let ``split`` also see through a reshape: reshape(x / c) splits as (reshape(x), c)."""

    def wrapped(node):
        if node.op is reshape_op:
            inner = wrapped(node.inputs[0])
            return (reshape(inner[0], node.shape), inner[1]) if inner else None
        return split(node)

    wrapped.__name__ = split.__name__
    wrapped.__doc__ = split.__doc__
    return wrapped


@_through_reshape
def scalar_divisor(node):
    """(numerator, divisor) if ``node`` divides by a broadcast scalar, else None."""
    if node.op is not ew.divide:
        return None
    d = node.inputs[1]
    while d.op is broadcast_to_op:
        d = d.inputs[0]
    return (node.inputs[0], d) if d.shape == () else None


@_through_reshape
def constant_factor(node):
    """(rest, c) if ``node`` is a number c times ``rest``, else None."""
    if node.op is not ew.multiply:
        return None
    a, b = node.inputs
    if scalar_value(a) is not None and scalar_value(b) is None:
        return b, a
    if scalar_value(b) is not None and scalar_value(a) is None:
        return a, b
    return None
