"""Walking graphs: deterministic topological order, operation counts, costs.

>>> import symdiff as sd
>>> x, y = sd.symbols("x y")
>>> f = sd.sin(x * y) + x * y
>>> [n.op.name for n in toposort([f])]
['leaf', 'leaf', 'multiply', 'sin', 'add']
>>> count_ops(f)
3
"""

from __future__ import annotations

import hashlib

import numpy as np
import sympy

from .node import Node, as_node


def as_list(exprs) -> list:
    """One expression or a sequence of them, as a flat list of nodes; nested lists (a
    Hessian's rows) are read row by row.

    >>> import symdiff as sd
    >>> x, y = sd.symbols("x y")
    >>> as_list([[x, y], [y, 2.0]])[3].dtype
    'float64'
    """
    if isinstance(exprs, Node):
        return [exprs]
    if isinstance(exprs, (list, tuple)):
        flat = []
        for e in exprs:
            flat.extend(as_list(e) if isinstance(e, (list, tuple)) else [as_node(e)])
        return flat
    raise TypeError(f"expected an expression or a list of expressions, got {type(exprs).__name__}")


def is_nested(exprs) -> bool:
    """Whether ``exprs`` is a list holding lists (a Hessian's rows)."""
    return isinstance(exprs, (list, tuple)) and any(isinstance(e, (list, tuple)) for e in exprs)


def unflatten(like, flat: list):
    """``flat`` (made from ``as_list(like)``, in order) in the nesting of ``like``: lists of lists.

    >>> import symdiff as sd
    >>> x, y = sd.symbols("x y")
    >>> unflatten([[x], [x, y]], [y, x, x]) == [[y], [x, x]]
    True
    """
    items = iter(flat)

    def rebuild(e):
        return [rebuild(i) for i in e] if isinstance(e, (list, tuple)) else next(items)

    return rebuild(like)


def toposort(outputs, stop=()) -> list:
    """Nodes reachable from ``outputs``, inputs before users, in a deterministic order.

    Depth-first from the outputs in order, each node's inputs in order (iterative,
    so deep graphs do not hit the recursion limit); the nodes whose ids are in ``stop`` are
    listed but not entered (the printer's atoms: a program's buffers).
    """
    order, done = [], set()
    for root in as_list(outputs):
        if id(root) in done:
            continue
        stack = [(root, 0)]
        on_stack = {id(root)}
        while stack:
            node, i = stack[-1]
            inputs = () if id(node) in stop else node.inputs
            if i < len(inputs):
                stack[-1] = (node, i + 1)
                child = inputs[i]
                if id(child) not in done and id(child) not in on_stack:
                    stack.append((child, 0))
                    on_stack.add(id(child))
            else:
                stack.pop()
                done.add(id(node))
                order.append(node)
    return order


def is_operation(node: Node) -> bool:
    """Whether ``node`` computes something: not a leaf, not a constant, and not a constant
    broadcast to a shape (a free view: kernels read the scalar)."""
    if node.is_leaf or node.is_constant:
        return False
    return not (node.op.name == "broadcast_to" and node.inputs[0].is_constant)


def count_ops(exprs) -> int:
    """Distinct operation nodes needed for ``exprs`` (a shared node counts once; leaves,
    constants and broadcasts of constants are free)."""
    return sum(1 for n in toposort(exprs) if is_operation(n))


def tree_size(exprs) -> int:
    """Operation count if nothing were shared (the expression-tree size), exactly."""
    sizes = {}
    for n in toposort(exprs):
        sizes[id(n)] = (1 if is_operation(n) else 0) + sum(sizes[id(i)] for i in n.inputs)
    return sum(sizes[id(n)] for n in as_list(exprs))


def users(order) -> dict:
    """How many times each node (by id) is used as an input within ``order``."""
    counts = {id(n): 0 for n in order}
    for n in order:
        for i in n.inputs:
            counts[id(i)] += 1
    return counts


def leaves(exprs) -> list:
    """The leaves ``exprs`` depend on, in topological order."""
    return [n for n in toposort(exprs) if n.is_leaf]


def cost(exprs) -> dict:
    """FLOPs and bytes of evaluating ``exprs`` once, as sympy expressions in the dims.

    >>> import symdiff as sd
    >>> X = sd.tensor("X", ("m", "n"))
    >>> cost(sd.exp(X))["flops"]
    m*n
    """
    flops, nbytes = sympy.Integer(0), sympy.Integer(0)
    for n in toposort(exprs):
        if is_operation(n):
            flops += n.op.flops(n)
            nbytes += n.op.bytes(n)
    return {"flops": sympy.expand(flops), "bytes": sympy.expand(nbytes)}


def attr_text(value) -> str:
    """An attribute as stable text for a structural hash: arrays by content, floats exactly."""
    if isinstance(value, np.ndarray):
        return f"array({value.dtype},{value.shape},{hashlib.sha256(value.tobytes()).hexdigest()})"
    if isinstance(value, (tuple, list)):
        return "(" + ",".join(attr_text(v) for v in value) + ")"
    if isinstance(value, float):
        return value.hex()
    return f"{type(value).__name__}:{value}"
