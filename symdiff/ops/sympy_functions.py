"""The ops that have a stable form, as sympy functions: sigmoid, softplus, logsumexp, softmax.

Written out in exp and log, these over- or underflow in float64 (``exp(1e4)`` is
inf, and ``inf/inf`` is nan) where the graph's own ops do not. Symbolic mode
therefore scalarizes them as these functions. Each declares only its local partial
derivative (``fdiff``), in terms of the others, so ``sympy.diff`` writes every
derivative in them too; ``to_graph`` rebuilds them as the graph's stable ops.

``naive()`` is the textbook form: it evaluates them at high precision (``evalf``),
rewrites them (``expr.rewrite(sympy.exp)``) and sizes them, so operation counts
stay what sympy would have built from exp and log (:func:`count_ops`).

>>> import sympy
>>> a, b = sympy.symbols("a b", real=True)
>>> sympy.diff(logsumexp(a, b), a)
softmax(a, b)[0]
>>> sympy.diff(softplus(a), a)
sigmoid(a)
>>> sympy.diff(sigmoid(a), a)
(1 - sigmoid(a))*sigmoid(a)
>>> count_ops(logsumexp(a, b)) == sympy.count_ops(sympy.log(sympy.exp(a) + sympy.exp(b)))
True
"""

from __future__ import annotations

import functools

import numpy as np
import sympy
from mpmath.libmp import prec_to_dps
from sympy.core.function import ArgumentIndexError
from sympy.core.logic import fuzzy_and


class stopped(sympy.Function):
    """``stop_gradient``'s element in symbolic mode: its argument's value, derivative 0."""

    def fdiff(self, argindex=1):
        return sympy.Integer(0)

    def _eval_evalf(self, prec):
        return self.args[0].evalf(prec_to_dps(prec))

    def _eval_is_extended_real(self):
        return self.args[0].is_extended_real


class normal_cdf(sympy.Function):
    """Φ(x), the standard normal CDF, ``erfc(−x/√2)/2``. A function of its own because sympy
    rewrites ``erfc(−z)`` as ``2 − erfc(z)``, which cancels to 0 below x ≈ −6 where Φ does not
    (the kernels print it as ``0.5·erfc(−x·√½)``)."""

    def fdiff(self, argindex=1):
        x = self.args[0]
        return sympy.exp(-x**2 / 2) / sympy.sqrt(2 * sympy.pi)

    def _eval_evalf(self, prec):
        if self.args[0].is_number:
            return (sympy.erfc(-self.args[0] / sympy.sqrt(2)) / 2).evalf(prec_to_dps(prec))
        return None

    def _eval_is_extended_real(self):
        return self.args[0].is_extended_real


class StableFunction(sympy.Function):
    """A function whose graph op is evaluated stably; ``naive()`` is its exp/log form."""

    def naive(self):  # each subclass gives its exp/log form
        raise NotImplementedError(f"{type(self).__name__} does not define its exp/log form (naive)")

    def _eval_rewrite_as_exp(self, *args, **hints):
        return self.naive()

    def _eval_evalf(self, prec):
        if all(a.is_number for a in self.args):
            return self.naive().evalf(prec_to_dps(prec))  # mpmath's exponent range: no overflow
        return self.func(*[a.evalf(prec_to_dps(prec)) for a in self.args])

    def _eval_is_extended_real(self):
        return fuzzy_and(a.is_extended_real for a in self.args)

    def _eval_is_finite(self):
        return fuzzy_and(a.is_finite for a in self.args)


# lower-case class names, as sympy's own functions: a function prints by its class name
class sigmoid(StableFunction):
    """``1 / (1 + exp(-x))``."""

    nargs = 1

    @classmethod
    def eval(cls, x):
        if x.is_zero:
            return sympy.S.Half

    def naive(self):
        return 1 / (1 + sympy.exp(-self.args[0]))

    def fdiff(self, argindex=1):
        return self * (1 - self)

    def _eval_is_positive(self):
        return self.args[0].is_real


class softplus(StableFunction):
    """``log(1 + exp(x))``."""

    nargs = 1

    @classmethod
    def eval(cls, x):
        if x.is_zero:
            return sympy.log(2)

    def naive(self):
        return sympy.log(1 + sympy.exp(self.args[0]))

    def fdiff(self, argindex=1):
        return sigmoid(self.args[0])

    def _eval_is_positive(self):
        return self.args[0].is_real


class logsumexp(StableFunction):
    """``log(exp(a₀) + … + exp(aₙ))``."""

    @classmethod
    def eval(cls, *args):
        if not args:
            return sympy.S.NegativeInfinity
        if len(args) == 1:
            return args[0]

    def naive(self):
        return sympy.log(sympy.Add(*[sympy.exp(a) for a in self.args]))

    def fdiff(self, argindex=1):
        return softmax(argindex - 1, *self.args)


class softmax(StableFunction):
    """Component ``k`` of the softmax of ``a``: ``exp(aₖ) / (exp(a₀) + … + exp(aₙ))``.

    The first argument is the index ``k``; it prints as ``softmax(a₀, …, aₙ)[k]``.
    """

    @classmethod
    def eval(cls, k, *args):
        if not (k.is_Integer and 0 <= k < len(args)):
            raise ValueError(f"softmax: index {k} is not one of the {len(args)} components")
        if len(args) == 1:
            return sympy.S.One

    @property
    def index(self) -> int:
        return int(self.args[0])

    @property
    def components(self) -> tuple:
        return self.args[1:]

    def naive(self):
        a = self.components
        return sympy.exp(a[self.index]) / sympy.Add(*[sympy.exp(v) for v in a])

    def fdiff(self, argindex=1):
        if argindex == 1:
            raise ArgumentIndexError(self, argindex)  # the index is not a variable
        j = argindex - 2
        if j == self.index:
            return self * (1 - self)
        return -self * softmax(j, *self.components)

    def _eval_is_extended_real(self):
        return fuzzy_and(a.is_extended_real for a in self.components)

    def _eval_is_positive(self):
        return fuzzy_and(a.is_real for a in self.components)

    def _sympystr(self, printer):
        return f"softmax({', '.join(printer._print(a) for a in self.components)})[{self.index}]"

    def _latex(self, printer):
        inner = ", ".join(printer._print(a) for a in self.components)
        return rf"\operatorname{{softmax}}\left({inner}\right)_{{{self.index}}}"


UNARY = (sigmoid, softplus)


# -- on object arrays of sympy expressions: how symbolic mode runs the reductions ----------------
def reduce_objects(values, axes, keepdims, combine):
    """``combine(*items)`` of the entries of ``values`` over ``axes`` (an object array).

    >>> a = np.array([[sympy.Symbol("p"), 1], [2, 3]], dtype=object)
    >>> reduce_objects(a, (1,), False, sympy.Add).tolist()
    [p + 1, 5]
    """
    axes = tuple(axes)
    moved = np.moveaxis(values, axes, tuple(range(values.ndim - len(axes), values.ndim)))
    flat = moved.reshape(moved.shape[: values.ndim - len(axes)] + (-1,))
    out = np.empty(flat.shape[:-1], dtype=object)
    for index in np.ndindex(*out.shape):
        out[index] = combine(*flat[index])
    if keepdims:
        out = out.reshape(tuple(1 if i in axes else d for i, d in enumerate(values.shape)))
    return out


def along_axis(values, axis, lane):
    """``lane`` (a list of expressions -> a list as long) applied along ``axis`` of ``values``."""
    moved = np.moveaxis(values, axis, -1)
    out = np.empty(moved.shape, dtype=object)
    for index in np.ndindex(*moved.shape[:-1]):
        for j, v in enumerate(lane(list(moved[index]))):
            out[index + (j,)] = v
    return np.moveaxis(out, -1, axis)


def softmax_lane(row):
    return [softmax(j, *row) for j in range(len(row))]


def log_softmax_lane(row):
    lse = logsumexp(*row)
    return [v - lse for v in row]


def stabilize(expr, params):
    """``expr`` with the exp/log form of each unary stable function of a param replaced by it.

    >>> x = sympy.Symbol("x", real=True)
    >>> stabilize(2 / (1 + sympy.exp(-x)), (x,))
    2*sigmoid(x)
    """
    return expr.xreplace({f(p).naive(): f(p) for f in UNARY for p in params})


@functools.cache
def _naive_ops(cls, arity: int) -> int:
    args = sympy.symbols(f"a0:{arity}", real=True)
    call = cls(0, *args) if cls is softmax else cls(*args)
    return int(sympy.count_ops(call.naive()))


def _extra_ops(expr, memo) -> int:
    """Operations ``sympy.count_ops`` misses in ``expr``'s stable calls, per tree occurrence."""
    if expr in memo:
        return memo[expr]
    total = sum(_extra_ops(a, memo) for a in expr.args)
    if isinstance(expr, StableFunction):
        arity = len(expr.components) if isinstance(expr, softmax) else len(expr.args)
        total += _naive_ops(type(expr), arity) - 1  # count_ops counts the call as one
    memo[expr] = total
    return total


def count_ops(expr) -> int:
    """``sympy.count_ops`` with each stable function counted as its exp/log form: the
    expression's size as sympy would see the textbook math, shared subexpressions repeated."""
    return int(sympy.count_ops(expr, visual=False)) + _extra_ops(sympy.sympify(expr), {})
