"""Shapes whose dimensions are ints or sympy expressions.

A dimension is a non-negative ``int`` or a sympy expression in positive integer
symbols (``sd.tensor("X", ("m", "n"))`` has dims ``m`` and ``n``). Broadcasting
follows numpy, decided with sympy arithmetic: two dims agree when they are
provably equal; a dim of 1 stretches.

>>> broadcast_shapes("add", (dim("m"), 1), (3,))
(m, 3)
"""

from __future__ import annotations

import functools
import operator

import sympy

Dim = "int | sympy.Expr"


class ShapeError(ValueError):
    """Shapes that do not fit together; the message names the op and the shapes."""


def dim(d):
    """Normalize one dimension: ints stay ints, names become positive integer symbols."""
    if isinstance(d, bool):
        raise TypeError(f"a dimension must be an int or a symbol name, not {d!r}")
    if isinstance(d, int):
        if d < 0:
            raise ShapeError(f"dimensions must be non-negative, got {d}")
        return d
    if isinstance(d, str):
        if not d.isidentifier():
            raise ShapeError(f"dimension name {d!r} is not a valid identifier")
        return sympy.Symbol(d, integer=True, positive=True)
    if isinstance(d, sympy.Basic):
        d = sympy.sympify(d)
        if d.is_Integer:
            return dim(int(d))
        if not d.free_symbols:
            raise ShapeError(f"dimension {d} is not an integer")
        return d
    if hasattr(d, "__index__"):
        return dim(int(d.__index__()))
    raise TypeError(f"a dimension must be an int or a symbol name, not {d!r}")


def shape(s) -> tuple:
    """Normalize a shape given as a tuple/list of dims (or a single int)."""
    if isinstance(s, (int, str, sympy.Basic)):
        s = (s,)
    return tuple(dim(d) for d in s)


def same_dim(a, b) -> bool:
    if a == b:
        return True
    if isinstance(a, int) and isinstance(b, int):
        return False
    return sympy.expand(sympy.sympify(a) - sympy.sympify(b)) == 0


def is_one(d) -> bool:
    return d == 1


def numel(s):
    """Number of elements: an int, or a sympy expression for symbolic shapes."""
    n = functools.reduce(operator.mul, s, 1)
    return int(n) if isinstance(n, int) or getattr(n, "is_Integer", False) else n


def format_shape(s) -> str:
    return "(" + ", ".join(str(d) for d in s) + ("," if len(s) == 1 else "") + ")"


def broadcast_shapes(op: str, *shapes) -> tuple:
    """numpy broadcasting of ``shapes``; raises ShapeError naming ``op`` and the shapes."""
    ndim = max((len(s) for s in shapes), default=0)
    padded = [(1,) * (ndim - len(s)) + tuple(s) for s in shapes]
    out = []
    for axis_dims in zip(*padded):
        result = 1
        for d in axis_dims:
            if is_one(d):
                continue
            if is_one(result):
                result = d
            elif not same_dim(result, d):
                listed = " and ".join(format_shape(s) for s in shapes)
                raise ShapeError(f"{op}: shapes {listed} cannot be broadcast together")
        out.append(result)
    return tuple(out)


def normalize_axis(axis: int, ndim: int, op: str) -> int:
    if hasattr(axis, "__index__") and not isinstance(axis, bool):
        axis = int(axis.__index__())
    if not isinstance(axis, int) or isinstance(axis, bool):
        raise TypeError(f"{op}: axis must be an int, got {axis!r}")
    if not -ndim <= axis < ndim:
        raise ShapeError(f"{op}: axis {axis} is out of range for an array of {ndim} dimensions")
    return axis % ndim


def normalize_axes(axis, ndim: int, op: str) -> tuple:
    """``None`` means all axes; an int or a sequence of ints; result sorted, unique."""
    if axis is None:
        return tuple(range(ndim))
    if isinstance(axis, int) and not isinstance(axis, bool):
        axis = (axis,)
    axes = tuple(sorted(normalize_axis(a, ndim, op) for a in axis))
    if len(set(axes)) != len(axes):
        raise ShapeError(f"{op}: repeated axis in {tuple(axis)}")
    return axes


def substitute(s, bindings: dict) -> tuple:
    """Concrete shape from symbolic ``s`` given symbol values."""
    out = []
    for d in s:
        if isinstance(d, int):
            out.append(d)
            continue
        v = sympy.sympify(d.xreplace(bindings))
        if not v.is_Integer:
            raise ShapeError(f"dimension {d} is not determined by the inputs")
        out.append(int(v))
    return tuple(out)
