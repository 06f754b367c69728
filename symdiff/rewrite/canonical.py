"""Canonical order of commutative arguments, by a deterministic key that reads structure only.

The key of a node depends on its ops, its attributes and its leaves' names, dtypes and ranks,
never on what its dimensions are called (``A`` of shape (n, n) and of shape (k, k) sort alike)
nor on how a sum was parenthesized: a sum of several terms is flattened and its terms sorted,
so ``(a + b) + c`` and ``a + (c + b)`` are one node. Numbers sort first (``2x``), then scalars spread
over tensors (``λ·W``), then leaves by name, then scaled terms (``0.9·v + g``), then other compound
terms, the shallower first (``A·X + Aᵀ·X``, ``A + Aᵀ``).

>>> import symdiff as sd
>>> a, b, c = sd.symbols("a b c")
>>> from symdiff.rewrite import optimize
>>> optimize((c + a) + b) is optimize(a + (b + c))
True
"""

from __future__ import annotations

import hashlib

import sympy

from ..graph import attr_text
from ..node import Node, make
from ..ops import elementwise as ew
from ..ops.registry import ops_with
from .patterns import is_number, peel
from .registry import rule

COMMUTATIVE = ops_with(commutative=True)  # add, multiply, maximum, minimum, equal, not_equal
MAX_TERMS = 64  # a longer sum keeps its parenthesization: sorting it costs more than it reads better


def _dim_free(value):
    """An attribute with every symbolic dimension written alike: renaming ``n`` changes nothing."""
    if isinstance(value, tuple):
        return tuple(_dim_free(v) for v in value)
    if isinstance(value, sympy.Basic) and value.free_symbols:
        return "dim"
    return value


class _Key:
    """What the memo slot of a node holds: its height and two digests (with and without
    dimension names)."""

    __slots__ = ("full", "height", "plain")

    def __init__(self, height, plain, full):
        self.height, self.plain, self.full = height, plain, full


def _key(node: Node) -> _Key:
    key = getattr(node, "_structure_key", None)
    if key is not None:
        return key
    for n in _unkeyed(node):
        plain, full = hashlib.sha1(n.op.name.encode()), hashlib.sha1(n.op.name.encode())
        for name, value in n._attrs:
            if name == "shape" and n.is_leaf:
                plain.update(f"rank{len(value)}".encode())
            else:
                plain.update(f"{name}={attr_text(_dim_free(value))}".encode())
            full.update(f"{name}={attr_text(value)}".encode())
        height = 0
        for i in n.inputs:
            k = i._structure_key
            plain.update(k.plain.encode())
            full.update(k.full.encode())
            height = max(height, k.height + 1)
        object.__setattr__(n, "_structure_key", _Key(height, plain.hexdigest(), full.hexdigest()))
    return node._structure_key


def _unkeyed(root):
    """The nodes under ``root`` without a key yet, inputs first; keyed nodes are not entered."""
    order, seen, stack = [], {id(root)}, [(root, 0)]
    while stack:
        node, i = stack[-1]
        if i < len(node.inputs):
            stack[-1] = (node, i + 1)
            child = node.inputs[i]
            if id(child) not in seen and getattr(child, "_structure_key", None) is None:
                seen.add(id(child))
                stack.append((child, 0))
        else:
            stack.pop()
            order.append(node)
    return order


def structure_key(node: Node) -> str:
    """A content hash of the subgraph under ``node``: equal for equal structure, stable across runs.

    The key is memoized on each node (a slot), not in a table: it lives exactly as long as its node.

    >>> import symdiff as sd
    >>> x = sd.symbols("x")
    >>> structure_key(sd.exp(x)) == structure_key(sd.exp(x)), structure_key(x) == structure_key(sd.exp(x))
    (True, False)
    """
    return _key(node).full


def order_key(node: Node):
    """How commutative operands sort: numbers, then leaves by name, then the rest, shallower
    first, by structure (dimension names only break a tie of otherwise equal structure).

    >>> import symdiff as sd
    >>> A, B = sd.tensor("A", ("n", "n")), sd.tensor("B", ("k", "k"))
    >>> order_key(A) < order_key(A.T), order_key(A.T)[2:4] == order_key(B.T)[2:4]
    (True, True)
    """
    if is_number(node):
        kind = 0
    elif node.shape != () and peel(node).shape == ():  # a scalar spread over a tensor: λ·W, as numbers
        kind, node = 1, peel(node)
    elif node.is_leaf:
        kind = 2
    else:  # a scaled term before the others: 0.9·v + g, λ·W + Xᵀ·G
        kind = 3 if node.op is ew.multiply and any(peel(i).shape == () for i in node.inputs) else 4
    key = _key(node)
    return kind, node.name or "", key.height, node.op.name, key.plain, key.full


def _terms(node, out, shape):
    if node.op is ew.add and node.shape == shape and len(out) < MAX_TERMS and \
            all(i.shape == shape for i in node.inputs):
        for i in node.inputs:
            _terms(i, out, shape)
    else:
        out.append(node)
    return out


@rule(*COMMUTATIVE)
def canonical_order(node):
    """a ∘ b → b ∘ a for a commutative ∘ when b sorts first; a sum of several terms is
    flattened and rebuilt with its terms in order, (t₁ + t₂) + t₃."""
    if len(node.inputs) != 2:
        return None
    if node.op is ew.add:
        terms = _terms(node, [], node.shape)
        if len(terms) > 2:
            terms.sort(key=order_key)
            rebuilt = terms[0]
            for t in terms[1:]:
                rebuilt = make(ew.add, (rebuilt, t))
            return rebuilt if rebuilt is not node else None
    a, b = node.inputs
    if order_key(b) < order_key(a):
        return make(node.op, (b, a), **node.attrs)
    return None
