"""What makes a :class:`~symdiff.node.Node` an expression in Python: operators, methods, printing.

``x + y``, ``X @ W``, ``X.T``, ``X[1:]``, ``X.sum(axis=0)``, ``print(X)``: each builds a node of
an op family or runs a printer, and every family and printer imports :mod:`symdiff.node`. So
these methods cannot live in ``node.py``; they are written here, above both, and installed on
``Node`` when this module is imported (the way ``jax.numpy`` installs the methods of
``jax.Array``). ``import symdiff`` imports it right after the op families, before anything
else can hold an expression. The core's imports then go one way only (checked by
``tests/test_import_cycles.py``)::

    dtypes, shapes  <  ops.registry, ops.sources  <  node  <  op families  <  graph, names,
    printing, evaluate, ...  <  expr, autodiff, rewrite, compare, compile  <  symdiff

Within the op families the order is ``movement < elementwise < nn < reduce < linalg <
from_sympy``: a family imports those before it. Where a rule needs an op of a family after it
(the adjoint of ``broadcast_to`` is a sum; concatenating promotes dtypes), it calls these
methods (``ct.sum(...)``, ``a.astype(...)``), as every rule already does for arithmetic.

>>> import symdiff as sd
>>> X = sd.tensor("X", ("m", "n"))
>>> print((X.T @ X)[0].sum(), X.T.shape)
sum((transpose(X) @ X)[0, :]) (n, m)
"""

from __future__ import annotations

import html
from types import FunctionType

from . import shapes
from .graph import count_ops
from .node import Node
from .ops.elementwise import (
    abs_,
    add,
    apply,
    astype,
    divide,
    equal,
    greater,
    greater_equal,
    less,
    less_equal,
    multiply,
    negative,
    not_equal,
    power,
    subtract,
)
from .ops.linalg import matmul
from .ops.movement import getitem, reshape, transpose
from .ops.reduce import max_, mean, sum_
from .pretty import latex
from .printing import to_str
from .results import note_of


class _ExprMethods:
    """The body of ``Node``'s Python face; copied onto :class:`Node` below, never instantiated."""

    @property
    def T(self):
        return transpose(self)

    # -- Python operators build graph nodes -------------------------------------------------
    def __add__(self, other):
        return apply(add, self, other)

    def __radd__(self, other):
        return apply(add, other, self)

    def __sub__(self, other):
        return apply(subtract, self, other)

    def __rsub__(self, other):
        return apply(subtract, other, self)

    def __mul__(self, other):
        return apply(multiply, self, other)

    def __rmul__(self, other):
        return apply(multiply, other, self)

    def __truediv__(self, other):
        return apply(divide, self, other)

    def __rtruediv__(self, other):
        return apply(divide, other, self)

    def __pow__(self, other):
        return apply(power, self, other)

    def __rpow__(self, other):
        return apply(power, other, self)

    def __matmul__(self, other):
        return matmul(self, other)

    def __rmatmul__(self, other):
        return matmul(other, self)

    def __neg__(self):
        return apply(negative, self)

    def __pos__(self):
        return self

    def __abs__(self):
        return apply(abs_, self)

    def __lt__(self, other):
        return apply(less, self, other)

    def __le__(self, other):
        return apply(less_equal, self, other)

    def __gt__(self, other):
        return apply(greater, self, other)

    def __ge__(self, other):
        return apply(greater_equal, self, other)

    def __eq__(self, other):  # builds a node, as in numpy; identity is `is` (Node keeps object's hash)
        return apply(equal, self, other)

    def __ne__(self, other):
        return apply(not_equal, self, other)

    def __getitem__(self, index):
        return getitem(self, index)

    def __iter__(self):
        # without this, Python iterates X[0], X[1], ... until an IndexError: forever when the
        # first dimension is symbolic. Like a numpy array: along the first axis, if it is known.
        if not self.shape:
            raise TypeError("iteration over a 0-d expression")
        if not isinstance(self.shape[0], int):
            raise TypeError(f"cannot iterate over an expression whose first dimension {self.shape[0]} is "
                            "symbolic; index it (X[i]) or give the dimension a size")
        return (self[i] for i in range(self.shape[0]))

    def sum(self, axis=None, keepdims=False):
        return sum_(self, axis=axis, keepdims=keepdims)

    def mean(self, axis=None, keepdims=False):
        return mean(self, axis=axis, keepdims=keepdims)

    def max(self, axis=None, keepdims=False):
        return max_(self, axis=axis, keepdims=keepdims)

    def reshape(self, *shape):
        if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
            shape = shape[0]
        return reshape(self, shape)

    def transpose(self, *axes):
        if len(axes) == 1 and isinstance(axes[0], (tuple, list)):
            axes = axes[0]
        return transpose(self, axes or None)

    def astype(self, dtype):
        return astype(self, dtype)

    # -- printing ---------------------------------------------------------------------------
    def __str__(self):
        return to_str([self])

    def _repr_latex_(self):
        return f"$\\displaystyle {latex(self)}$"

    def _repr_html_(self):
        """Jupyter: the formula (LaTeX, for MathJax) over a small table of shape, dtype and size."""
        rows = [("shape", shapes.format_shape(self.shape)), ("dtype", self.dtype), ("op", self.op.name),
                ("operations", str(count_ops(self)))]
        note = note_of(self)
        if note:
            rows.append(("note", note))
        cells = "".join(f"<tr><th style='text-align:left'>{html.escape(k)}</th><td style='text-align:left'>"
                        f"{html.escape(v)}</td></tr>" for k, v in rows)
        return f"<div>$${html.escape(latex(self))}$$<table>{cells}</table></div>"

    def __repr__(self):
        text = to_str([self])
        dims = ", ".join(str(d) for d in self.shape)
        return f"Expr({text}, shape=({dims}{',' if self.ndim == 1 else ''}), dtype={self.dtype})"


for _name, _member in vars(_ExprMethods).items():
    _function = _member.fget if isinstance(_member, property) else _member
    if isinstance(_function, FunctionType):
        _function.__qualname__ = f"Node.{_name}"
        setattr(Node, _name, _member)
