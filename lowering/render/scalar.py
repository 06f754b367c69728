"""Scalar bodies of fused kernels, printed from each elementwise op's sympy form.

An elementwise op is declared once, by its sympy scalar form; the C++ expression
of a fused loop body is that form with the op's parameters replaced by the C
variables holding the inputs, printed by sympy's C99 printer (float32 functions
such as ``expf`` for float32), with small integer powers as multiplications and
a few forms replaced by their numerically stable equivalents.

>>> import sympy
>>> from symdiff.ops.registry import OPS
>>> print(c_expression(OPS["sigmoid"], ["v0"], "float32"))
1.0F/(1 + symdiff_exp(-v0))
>>> print(c_expression(OPS["square"], ["v1"], "float64"))
(v1*v1)
"""

from __future__ import annotations

import math

import sympy
from sympy.codegen.ast import float32, real
from sympy.printing.c import C99CodePrinter

C_TYPE = {"float32": "float", "float64": "double", "int64": "int64_t", "bool": "bool"}



class ScalarPrinter(C99CodePrinter):
    """C99 printing with integer powers unrolled, compact selects and integer max/min/abs."""

    def __init__(self, dtype: str):
        settings = {"type_aliases": {real: float32}} if dtype == "float32" else {}
        super().__init__(settings)
        self.dtype = dtype

    def _print_Pow(self, expr):
        base, exp = expr.args
        if exp.is_Integer and 2 <= int(exp) <= 4:
            b = self.parenthesize(base, 100)
            return "(" + "*".join([b] * int(exp)) + ")"
        if self.dtype == "int64" and exp.is_Integer and int(exp) >= 0:
            return f"symdiff_ipow({self._print(base)}, {int(exp)})"
        return super()._print_Pow(expr)

    def _print_Piecewise(self, expr):
        (value, cond), (other, _) = expr.args
        return f"(({self._print(cond)}) ? ({self._print(value)}) : ({self._print(other)}))"

    def _minmax(self, expr, cmp):
        args = [self._print(a) for a in expr.args]
        if self.dtype in ("float32", "float64") and len(expr.args) == 2:
            # a select, not fmax: it vectorizes (with -fno-trapping-math). A NaN operand wins,
            # as in numpy's maximum/minimum, when the other operand is a constant (relu).
            (a, b), ea = args, expr.args[0]
            if ea.is_Number:
                a, b = b, a
            worse = "<" if cmp == ">" else ">"
            return f"(({a}) {worse} ({b}) ? ({b}) : ({a}))"
        out = args[0]
        for a in args[1:]:
            out = f"(({out}) {cmp} ({a}) ? ({out}) : ({a}))"
        return out

    def _print_Max(self, expr):
        return self._minmax(expr, ">") or super()._print_Max(expr)

    def _print_Min(self, expr):
        return self._minmax(expr, "<") or super()._print_Min(expr)

    def _print_Abs(self, expr):
        if self.dtype in ("float32", "float64"):
            return super()._print_Abs(expr)
        a = self._print(expr.args[0])
        return f"(({a}) < 0 ? -({a}) : ({a}))"

    def _print_exp(self, expr):
        if self.dtype in ("float32", "float64"):
            return f"symdiff_exp({self._print(expr.args[0])})"  # vectorizable (cpu/vmath.hpp)
        return super()._print_Function(expr)

    def _print_tanh(self, expr):
        if self.dtype in ("float32", "float64"):
            return f"symdiff_tanh({self._print(expr.args[0])})"  # vectorizable (cpu/vmath.hpp): libm's is 6x slower
        return super()._print_Function(expr)

    def _print_normal_cdf(self, expr):  # Φ(x) = erfc(−x/√2)/2: no cancellation below −6
        return f"(0.5 * erfc(-({self._print(expr.args[0])}) * M_SQRT1_2))"

    def _print_Infinity(self, expr):
        return "INFINITY"

    def _print_NegativeInfinity(self, expr):
        return "-INFINITY"

    def _print_NaN(self, expr):
        return "NAN"

    def _print_ComplexInfinity(self, expr):
        # 1/n at n = 0 (a mean over an empty axis): IEEE's 1/0, so the mean is 0·inf = NaN, as numpy's
        return "INFINITY"


_PRINTERS: dict = {}


def printer(dtype: str) -> ScalarPrinter:
    if dtype not in _PRINTERS:
        _PRINTERS[dtype] = ScalarPrinter(dtype)
    return _PRINTERS[dtype]


def literal(value, dtype: str) -> str:
    """A C literal of ``dtype`` for a Python number."""
    if dtype == "bool":
        return "true" if value else "false"
    if dtype == "int64":
        return f"INT64_C({int(value)})"
    v = float(value)
    if math.isnan(v):
        return "NAN"
    if math.isinf(v):
        return "INFINITY" if v > 0 else "-INFINITY"
    text = repr(v)
    return text + ("f" if dtype == "float32" else "")


def as_sympy(arg, dtype: str):
    """A C variable name or a Python number as the sympy atom substituted into a scalar form."""
    if isinstance(arg, str):
        return sympy.Symbol(arg, real=True) if dtype != "bool" else sympy.Symbol(arg)
    if isinstance(arg, bool):
        return sympy.true if arg else sympy.false
    if dtype == "int64" or (isinstance(arg, int) and dtype == "bool"):
        return sympy.Integer(int(arg))
    return sympy.Float(float(arg), 17)


def c_expression(op, args, dtype: str):
    """``op``'s scalar form applied to ``args`` (C variable names or numbers), printed for ``dtype``
    (the dtype the op computes in). A result that is a plain number is returned as a number."""
    scalar = op.stable  # the form that does not overflow where the op does not (softplus's), else its scalar
    subs = {p: as_sympy(a, "bool" if str(p) == "c" else dtype) for p, a in zip(op.params, args)}
    expr = scalar.xreplace(subs)
    if expr is sympy.true or expr is sympy.false:
        return bool(expr)
    if isinstance(expr, sympy.Number) and expr.is_finite is not False:
        if expr.is_Integer and dtype in ("int64", "bool"):
            return int(expr)
        if expr.is_real:
            return float(expr)
    return printer(dtype).doprint(expr)
