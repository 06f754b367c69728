"""Peak live memory of evaluating a graph, from a liveness pass over its topological schedule.

Each operation's result is allocated when it is computed and freed after its
last use; outputs live to the end. Views cost nothing (``broadcast_to``,
``reshape``, ``transpose``, basic slicing: numpy makes views, and lowering
folds them into index arithmetic); inputs are the caller's and not counted.

>>> import symdiff as sd
>>> X = sd.tensor("X", (100, 10))
>>> peak_bytes(sd.sum(sd.exp(X) * 2.0))
16000
"""

from __future__ import annotations

import sympy

from . import dtypes, shapes
from .graph import as_list, is_operation, toposort


def _nbytes(node, bindings):
    n = shapes.numel(node.shape)
    if not isinstance(n, int):
        n = sympy.sympify(n).xreplace(bindings)
    return n * dtypes.itemsize(node.dtype)


def _storage(node):
    """The node whose buffer ``node`` uses (itself, or what a view looks at)."""
    while node.op.view:
        node = node.inputs[0]
    return node


def peak_bytes(exprs, bindings=None):
    """Largest total of live intermediate buffers while evaluating ``exprs`` in toposort order.

    With symbolic dims and no ``bindings`` the result is a sympy expression when the
    peak is attained at one point regardless of sizes; give ``bindings`` ({dim: int}) for numbers.
    """
    bindings = bindings or {}
    outputs = as_list(exprs)
    order = toposort(outputs)
    owners = {id(n): _storage(n) for n in order}
    last_use = {}
    for step, n in enumerate(order):
        for i in n.inputs:
            last_use[id(owners[id(i)])] = step
    keep = {id(owners[id(o)]) for o in outputs}
    live, current, peak = {}, 0, 0
    for step, n in enumerate(order):
        owner = owners[id(n)]
        if owner is n and is_operation(n):
            size = _nbytes(n, bindings)
            live[id(n)] = size
            current = current + size
            peak = current if _greater(current, peak) else peak
        for i in n.inputs:
            o = owners[id(i)]
            if id(o) in live and last_use.get(id(o)) == step and id(o) not in keep:
                current = current - live.pop(id(o))
    return int(peak) if getattr(sympy.sympify(peak), "is_Integer", False) else peak


def _greater(a, b) -> bool:
    diff = sympy.sympify(a - b)
    if diff.is_number:
        return bool(diff > 0)
    return bool(diff.subs({s: 1000 for s in diff.free_symbols}) > 0)  # typical sizes decide
