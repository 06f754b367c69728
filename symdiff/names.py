"""Names for nodes, kept beside the graph (nodes are immutable and shared).

``sd.name(expr, "Z1")`` gives an intermediate value a name that printers use
(Z₁ = X·W₁); ``grad`` records which derivative each result is, so a printer can
say ∂L/∂W. Entries are weak: they vanish with their nodes.

Equal derivatives are one node (∂(x+y)/∂x and ∂(x+y)/∂y are both the constant
1), so a node cannot say which derivative it is: a list of results carries its
labels per position (:class:`Labelled`, made by :func:`label_derivatives`).

>>> import symdiff as sd
>>> X, W = sd.tensor("X", (2, 3)), sd.tensor("W", (3, 4))
>>> Z = sd.name(X @ W, "Z1")
>>> name_of(Z)
'Z1'
"""

from __future__ import annotations

import weakref

from .node import Node, check_name
from .ops.registry import function


class IdentityWeakMap:
    """node -> value by identity, dropped when the node dies (nodes' == builds graph nodes,
    so weakref.WeakKeyDictionary, which compares keys with ==, cannot hold them)."""

    def __init__(self):
        self._data = {}

    def __setitem__(self, node, value):
        key = id(node)
        self._data[key] = (weakref.ref(node, lambda _, key=key: self._data.pop(key, None)), value)

    def get(self, node, default=None):
        entry = self._data.get(id(node))
        return entry[1] if entry is not None and entry[0]() is node else default

    def __contains__(self, node):
        entry = self._data.get(id(node))
        return entry is not None and entry[0]() is node

    def __getitem__(self, node):
        if node not in self:
            raise KeyError(node)
        return self._data[id(node)][1]


_names = IdentityWeakMap()
_derivatives = IdentityWeakMap()


@function
def name(expr: Node, text: str) -> Node:
    """Name ``expr`` for printing (returns ``expr``). Names must be identifiers."""
    if not isinstance(expr, Node):
        raise TypeError("name() takes an expression")
    _names[expr] = check_name(text)
    return expr


def name_of(node: Node):
    if node.is_leaf:
        return node.name
    return _names.get(node)


def mark_derivative(result: Node, of: Node, wrt: Node):
    """Record that ``result`` is ∂``of``/∂``wrt`` (kept through optimize)."""
    _derivatives[result] = (weakref.ref(of), wrt.name, name_of(of))  # the name now, in case `of` dies


def derivative_label(node: Node):
    """(name of the function or None, name of the variable) if ``node`` is a recorded derivative."""
    entry = _derivatives.get(node)
    if entry is None:
        return None
    of = entry[0]()
    return (name_of(of) if of is not None and name_of(of) else entry[2]), entry[1]


class Labelled(list):
    """A list of expressions with a label per position: ``(of, wrt_name)`` reads ∂of/∂wrt, None none.

    >>> import symdiff as sd
    >>> x, y = sd.symbols("x y")
    >>> f = x + y
    >>> print(sd.pretty(label_derivatives(sd.grad(f, [x, y]), f, [x, y])))
    ∂f/∂x = 1
    ∂f/∂y = 1
    """

    def __init__(self, exprs, labels):
        super().__init__(exprs)
        labels = tuple(labels)
        if len(labels) != len(self):
            raise ValueError(f"{len(labels)} labels for {len(self)} expressions")
        self.labels = labels


def label_derivatives(results, of: Node, wrt) -> Labelled:
    """``results[i]`` labelled as ∂``of``/∂``wrt[i]``: the label belongs to the position, not the node."""
    wrt = [wrt] if isinstance(wrt, Node) else list(wrt)
    return Labelled(results, [(of, w.name) for w in wrt])


def relabel(like, exprs):
    """``exprs`` (a list made from the list ``like``, position by position) with ``like``'s labels."""
    return Labelled(exprs, like.labels) if isinstance(like, Labelled) else exprs


def position_label(exprs, i):
    """(name of the function or None, name of the variable) that position ``i`` of ``exprs`` has, if any."""
    labels = getattr(exprs, "labels", None)
    if labels is None or labels[i] is None:
        return None
    of, wrt_name = labels[i]
    return name_of(of), wrt_name


def carry_labels(old: Node, new: Node):
    if old is new:
        return
    if old in _derivatives:
        _derivatives[new] = _derivatives[old]
    if old in _names and new not in _names:
        _names[new] = _names[old]
