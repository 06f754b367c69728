"""Dimensions known at run time: one compiled program for every batch size.

A graph's symbolic dimensions (``sd.tensor("X", ("m", 784))``) are resolved once, before
scheduling, by :func:`resolve`: either to ints (a program specialized to one signature) or to
:class:`RuntimeDim` values, polynomials in the program's run-time dimensions ``D0, D1, …``
(numbered in the order they first appear in the inputs' shapes, so a user's names never reach
the generated code). The entry point reads them from its ``dims`` argument.

A :class:`RuntimeDim` behaves like an int wherever the answer does not depend on its value:
arithmetic builds new polynomials, ``==`` compares them structurally, and an order comparison
is answered when it holds for every size ≥ 1 (``784·D0 > 1``). Anything that needs the value —
``int(d)``, ``range(d)``, ``D0 > 64`` — raises :class:`NeedsConstantDims`, and the program falls
back to specializing for the call's shapes. Formatted into C (``f"{d}"``) it prints as a
parenthesized ``int64_t`` expression.

>>> import sympy
>>> m = sympy.Symbol("m", integer=True, positive=True)
>>> runtime = runtime_symbols([(m, 784)])
>>> d = resolve_dim(m * 784, runtime)
>>> f"{d}", d * 2 == resolve_dim(1568 * m, runtime), d > 1
('(784*D0)', True, True)
>>> d > 100000
Traceback (most recent call last):
...
symdiff.lowering.plan.dims.NeedsConstantDims: the program needs to know whether 784*D0 > 100000
"""

from __future__ import annotations

import numbers

import sympy
from sympy.printing.c import ccode

from symdiff import shapes


class NeedsConstantDims(Exception):
    """A kernel needs the value of a run-time dimension: specialize the program instead."""


class round64(sympy.Function):  # a sympy function, printed in C by RuntimeDim
    """``x`` rounded up to a multiple of 64 (byte offsets in the arena)."""

    @classmethod
    def eval(cls, x):
        if x.is_Integer:
            return sympy.Integer((int(x) + 63) // 64 * 64)
        return None


class round256(sympy.Function):  # cudaMalloc's alignment (the CUDA program's device pool)
    """``x`` rounded up to a multiple of 256."""

    @classmethod
    def eval(cls, x):
        if x.is_Integer:
            return sympy.Integer((int(x) + 255) // 256 * 256)
        return None


def _symbol(k: int) -> sympy.Symbol:
    return sympy.Symbol(f"D{k}", integer=True, positive=True)


def runtime_symbols(shape_list) -> dict:
    """user symbol -> ``D<k>``, numbered by first appearance in ``shape_list`` (input shapes)."""
    out: dict = {}
    for shape in shape_list:
        for d in shape:
            if isinstance(d, sympy.Basic):
                for s in sorted(d.free_symbols, key=lambda s: s.name):
                    if s not in out:
                        out[s] = _symbol(len(out))
    return out


def _is_polynomial(expr) -> bool:
    """Sums of products of integers and run-time symbols, as int64 C arithmetic prints them."""
    if expr.is_Integer or expr.is_Symbol:
        return True
    if isinstance(expr, (sympy.Add, sympy.Mul)):
        return all(_is_polynomial(a) for a in expr.args)
    if isinstance(expr, sympy.Pow):
        return expr.exp.is_Integer and int(expr.exp) > 0 and _is_polynomial(expr.base)
    return False


def _c(expr) -> str:
    """C text of a dimension expression (int64_t arithmetic), deterministic."""
    if expr.is_Integer:
        return str(int(expr))
    if expr.is_Symbol:
        return expr.name
    if isinstance(expr, sympy.Add):
        return "(" + " + ".join(sorted(_c(a) for a in expr.args)) + ")"
    if isinstance(expr, sympy.Mul):
        return "(" + "*".join(sorted(_c(a) for a in expr.args)) + ")"
    if isinstance(expr, sympy.Pow):
        return "(" + "*".join([_c(expr.base)] * int(expr.exp)) + ")"
    if isinstance(expr, sympy.Max):
        args = sorted(_c(a) for a in expr.args)
        text = args[0]
        for a in args[1:]:
            text = f"std::max<int64_t>({text}, {a})"
        return text
    if isinstance(expr, round64):
        return f"((({_c(expr.args[0])}) + 63) / 64 * 64)"
    if isinstance(expr, round256):
        return f"((({_c(expr.args[0])}) + 255) / 256 * 256)"
    raise NeedsConstantDims(f"no C form for the dimension {expr}")


def _nonnegative_form(expr):
    """``expr`` with every ``D_k`` written ``1 + e_k`` (e_k ≥ 0): its coefficients, as a Poly."""
    syms = sorted(expr.free_symbols, key=lambda s: s.name)
    if not syms:
        return None
    shifted = {s: sympy.Symbol(f"e_{s.name}", nonnegative=True) + 1 for s in syms}
    return sympy.Poly(sympy.expand(expr.xreplace(shifted)), *[shifted[s] - 1 for s in syms])


def _always_positive(expr) -> bool:
    """Whether ``expr > 0`` for every run-time size ≥ 1 (a sufficient test: all coefficients of
    the shifted polynomial are ≥ 0 and its constant term is > 0)."""
    if expr.is_Integer:
        return int(expr) > 0
    if not _is_polynomial(expr):
        raise NeedsConstantDims(f"the program needs the sign of {expr}")
    poly = _nonnegative_form(expr)
    coeffs = poly.coeffs()
    const = poly.coeff_monomial(1)
    return all(c >= 0 for c in coeffs) and const > 0


class RuntimeDim:
    """A dimension (or size, stride, offset) known only when the program runs."""

    __slots__ = ("expr",)

    def __init__(self, expr):
        self.expr = sympy.expand(sympy.sympify(expr))

    @staticmethod
    def make(expr):
        """An int when ``expr`` is a number, else a RuntimeDim."""
        expr = sympy.expand(sympy.sympify(expr))
        return int(expr) if expr.is_Integer else RuntimeDim(expr)

    # -- arithmetic ---------------------------------------------------------------------------

    def __add__(self, other):
        return RuntimeDim.make(self.expr + _expr(other))

    __radd__ = __add__

    def __sub__(self, other):
        return RuntimeDim.make(self.expr - _expr(other))

    def __rsub__(self, other):
        return RuntimeDim.make(_expr(other) - self.expr)

    def __mul__(self, other):
        return RuntimeDim.make(self.expr * _expr(other))

    __rmul__ = __mul__

    def __neg__(self):
        return RuntimeDim.make(-self.expr)

    def __floordiv__(self, other):
        q = sympy.expand(self.expr / _expr(other))
        if not _is_polynomial(q):
            raise NeedsConstantDims(f"the program needs {self.expr} // {other}")
        return RuntimeDim.make(q)

    def __rfloordiv__(self, other):
        raise NeedsConstantDims(f"the program needs {other} // {self.expr}")

    def __mod__(self, other):
        raise NeedsConstantDims(f"the program needs {self.expr} % {other}")

    __rmod__ = __truediv__ = __rtruediv__ = __pow__ = __mod__

    # -- comparisons --------------------------------------------------------------------------

    def __eq__(self, other):
        if isinstance(other, (RuntimeDim, numbers.Integral, sympy.Basic)):
            return sympy.expand(self.expr - _expr(other)) == 0
        return NotImplemented

    def __ne__(self, other):
        eq = self.__eq__(other)
        return eq if eq is NotImplemented else not eq

    def __hash__(self):
        return hash(self.expr)

    def _decide(self, diff, text):
        if _always_positive(diff):
            return True
        if _always_positive(1 - diff):  # diff <= 0 everywhere
            return False
        raise NeedsConstantDims(f"the program needs to know whether {text}")

    def __gt__(self, other):
        return self._decide(self.expr - _expr(other), f"{self.expr} > {other}")

    def __ge__(self, other):
        return self._decide(self.expr - _expr(other) + 1, f"{self.expr} >= {other}")

    def __lt__(self, other):
        return self._decide(_expr(other) - self.expr, f"{self.expr} < {other}")

    def __le__(self, other):
        return self._decide(_expr(other) - self.expr + 1, f"{self.expr} <= {other}")

    def __bool__(self):
        return True  # sizes are ≥ 1 (a call with a zero dimension is specialized)

    def __int__(self):
        raise NeedsConstantDims(f"the program needs the value of {self.expr}")

    __index__ = __int__

    def __float__(self):
        raise NeedsConstantDims(f"the program needs the value of {self.expr}")

    # -- printing -----------------------------------------------------------------------------

    def __str__(self):
        text = _c(self.expr)
        return text if text.startswith("(") or text.isidentifier() else f"({text})"

    def __format__(self, spec):
        return format(str(self), spec)

    def __repr__(self):
        return f"RuntimeDim({self.expr})"


def _expr(value):
    if isinstance(value, RuntimeDim):
        return value.expr
    if isinstance(value, bool):
        raise TypeError("a dimension is not a bool")
    if isinstance(value, numbers.Integral):
        return sympy.Integer(int(value))
    if isinstance(value, sympy.Basic):
        return value
    raise TypeError(f"cannot combine a dimension with {value!r}")


def is_runtime(value) -> bool:
    return isinstance(value, RuntimeDim)


def resolve_dim(d, bindings: dict):
    """One graph dimension with ``bindings`` (user symbol -> int or ``D<k>`` symbol) applied."""
    if isinstance(d, numbers.Integral):
        return int(d)
    v = sympy.expand(sympy.sympify(d).xreplace(bindings))
    if v.is_Integer:
        return int(v)
    if not v.free_symbols or not all(s.name.startswith("D") and s in bindings.values() for s in v.free_symbols):
        raise shapes.ShapeError(f"dimension {d} is not determined by the inputs")
    if not _is_polynomial(v):
        raise NeedsConstantDims(f"the dimension {d} is not a product-sum of the inputs' dimensions")
    return RuntimeDim(v)


def resolve(shape, bindings: dict) -> tuple:
    """A graph shape with its symbols resolved: ints, or RuntimeDims where run-time."""
    return tuple(resolve_dim(d, bindings) for d in shape)


def numel(shape):
    n = 1
    for d in shape:
        n = n * d
    return n


def maximum(a, b):
    """The larger of two sizes (a C ``std::max`` when it depends on the run-time sizes)."""
    if not is_runtime(a) and not is_runtime(b):
        return max(a, b)
    try:
        return max(a, b)
    except NeedsConstantDims:
        return RuntimeDim(sympy.Max(_expr(a), _expr(b)))


def round_up64(n):
    if not is_runtime(n):
        return (n + 63) // 64 * 64
    return RuntimeDim(round64(n.expr))


def round_up256(n):
    if not is_runtime(n):
        return (n + 255) // 256 * 256
    return RuntimeDim(round256(n.expr))


def evaluate(value, values: dict) -> int:
    """The int a size takes for run-time dimension values (``D<k>`` symbol -> int)."""
    if not is_runtime(value):
        return int(value)
    v = value.expr.xreplace({s: sympy.Integer(values[s]) for s in value.expr.free_symbols})
    return int(v)


def coefficient_text(value) -> str:
    """A GEMM coefficient as C: ``-0.5`` (a float's repr), or a run-time expression."""
    if isinstance(value, sympy.Basic) and value.free_symbols:
        return c_scalar(value)
    return repr(float(value))


def c_scalar(value) -> str:
    """C (double) text of a scalar that depends on run-time dimensions (a mean's ``1/m``)."""
    as_double = {s: sympy.Symbol(f"double({s.name})") for s in value.free_symbols}
    return f"({ccode(sympy.sympify(value).xreplace(as_double))})"
