"""Build graph nodes from a sympy scalar expression (elementwise derivatives, symbolic mode).

Each sympy symbol maps to a node; numbers become weak constants of the dtype of
``like``. Subtraction and division are recovered from sympy's sums of negated
terms and negative powers, so ``1 - t**2`` becomes ``subtract(1, square(t))``.
The stable functions of :mod:`.sympy_functions` become the graph's stable ops
(sigmoid, softplus, logsumexp, softmax), never their exp/log forms.

The elementwise part is :func:`.elementwise.scalar_graph` (elementwise derivatives need it, and
this module is above that family); this one adds logsumexp and softmax of vectors.

>>> import sympy, symdiff as sd
>>> x = sd.symbols("x")
>>> s = sympy.Symbol("s", real=True)
>>> print(to_graph(1 - s**2, {s: sd.tanh(x)}))
1 - square(tanh(x))
>>> print(to_graph(sympy_functions.sigmoid(s), {s: x}))
sigmoid(x)
"""

from __future__ import annotations

from ..node import Node
from . import sympy_functions
from .elementwise import UnsupportedSympy, scalar_graph
from .movement import stack
from .nn import softmax
from .reduce import logsumexp

__all__ = ["UnsupportedSympy", "to_graph"]


def _elements_of(nodes):
    """The node whose last axis ``nodes`` are, in order (``Z[1]`` for ``Z[1, 0], Z[1, 1], …``), or None."""
    base = nodes[0].inputs[0] if nodes[0].op.name == "getitem" else None
    if base is None or base.shape[-1] != len(nodes):
        return None
    indices = [n.attr("index") for n in nodes if n.op.name == "getitem" and n.inputs[0] is base]
    if len(indices) != len(nodes) or any(len(i) != base.ndim or any(e[0] != "int" for e in i) for i in indices):
        return None
    lead = indices[0][:-1]
    if any(i[:-1] != lead for i in indices) or [i[-1][1] for i in indices] != list(range(len(nodes))):
        return None
    return base[tuple(e[1] for e in lead)] if lead else base


def _vector(nodes):
    """The stable functions' arguments as one vector: the row they came from, if they are one."""
    row = _elements_of(nodes)
    return row if row is not None else stack(nodes)


def _vectors(x, conv):
    """The stable functions of vectors as their graph ops; None for any other expression."""
    if isinstance(x, sympy_functions.logsumexp):
        return logsumexp(_vector([conv(a) for a in x.args]))
    if isinstance(x, sympy_functions.softmax):
        return softmax(_vector([conv(a) for a in x.components]))[x.index]
    return None


def to_graph(expr, mapping: dict, like: Node | None = None, memo: dict | None = None) -> Node:
    """The graph of sympy ``expr`` with symbols replaced by ``mapping``'s nodes.

    ``memo`` (sympy expression -> node) may be shared by calls over expressions with common
    parts, such as the derivatives of one function: each part is then built once.
    """
    return scalar_graph(expr, mapping, like, memo, extra=_vectors)
