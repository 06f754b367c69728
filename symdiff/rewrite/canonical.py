"""Canonical order of commutative arguments, by a deterministic structure key."""

from __future__ import annotations

import hashlib

import numpy as np

from ..graph import toposort
from ..node import Node, make
from ..ops.registry import ops_with
from .patterns import is_number
from .registry import rule

COMMUTATIVE = ops_with(commutative=True)  # add, multiply, maximum, minimum, equal, not_equal


def structure_key(node: Node) -> str:
    """A content hash of the subgraph under ``node``: equal for equal structure, stable across runs.

    The key is memoized on each node (a slot), not in a table: it lives exactly as long as its node.

    >>> import symdiff as sd
    >>> x = sd.symbols("x")
    >>> structure_key(sd.exp(x)) == structure_key(sd.exp(x)), structure_key(x) == structure_key(sd.exp(x))
    (True, False)
    """
    key = getattr(node, "_structure_key", None)
    if key is not None:
        return key
    for n in toposort([node]):
        if getattr(n, "_structure_key", None) is not None:
            continue
        h = hashlib.sha1(n.op.name.encode())
        for name, value in n._attrs:
            h.update(name.encode())
            h.update(value.tobytes() if isinstance(value, np.ndarray) else repr(value).encode())
        for i in n.inputs:
            h.update(i._structure_key.encode())
        object.__setattr__(n, "_structure_key", h.hexdigest())  # a memo, not a change of value
    return node._structure_key


def _order_key(node: Node):
    # constants first ("2*x"), then leaves by name, then everything else by structure
    return (0 if is_number(node) else 1 if node.is_leaf else 2, node.name or "", structure_key(node))


@rule(*COMMUTATIVE)
def canonical_order(node):
    """a ∘ b → b ∘ a for a commutative ∘ when b sorts first: numbers, then leaves by name."""
    if len(node.inputs) == 2:
        a, b = node.inputs
        if _order_key(b) < _order_key(a):
            return make(node.op, (b, a), **node.attrs)
    return None
