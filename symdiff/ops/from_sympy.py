"""Build graph nodes from a sympy scalar expression (elementwise derivatives, symbolic mode).

Each sympy symbol maps to a node; numbers become weak constants of the dtype of
``like``. Subtraction and division are recovered from sympy's sums of negated
terms and negative powers, so ``1 - t**2`` becomes ``subtract(1, square(t))``.
The stable functions of :mod:`.sympy_functions` become the graph's stable ops
(sigmoid, softplus, logsumexp, softmax), never their exp/log forms.

>>> import sympy, symdiff as sd
>>> x = sd.symbols("x")
>>> s = sympy.Symbol("s", real=True)
>>> print(to_graph(1 - s**2, {s: sd.tanh(x)}))
1 - square(tanh(x))
>>> print(to_graph(sympy_functions.sigmoid(s), {s: x}))
sigmoid(x)
"""

from __future__ import annotations

import functools

import sympy
from sympy.codegen.cfunctions import log1p as _sym_log1p

from ..node import Node, as_node, constant
from . import elementwise as e
from . import sympy_functions
from .movement import stack
from .nn import softmax
from .reduce import logsumexp
from .registry import OPS


class UnsupportedSympy(TypeError):
    pass


@functools.cache
def _functions() -> dict:
    """sympy function -> elementwise op. A unary stable function maps to the registered op whose
    scalar form is its exp/log form: found in the registry, not listed here by name."""
    table = {
        sympy.exp: e.exp, sympy.log: e.log, sympy.sin: e.sin, sympy.cos: e.cos, sympy.tan: e.tan,
        sympy.tanh: e.tanh, sympy.Abs: e.abs_, sympy.sign: e.sign, _sym_log1p: e.log1p,
    }
    for function in sympy_functions.UNARY:
        table[function] = next(op for op in OPS.values() if isinstance(op, e.ElementwiseOp) and op.arity == 1
                               and op.scalar == function(op.params[0]).naive())
    return table


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


def to_graph(expr, mapping: dict, like: Node | None = None, memo: dict | None = None) -> Node:
    """The graph of sympy ``expr`` with symbols replaced by ``mapping``'s nodes.

    ``memo`` (sympy expression -> node) may be shared by calls over expressions with common
    parts, such as the derivatives of one function: each part is then built once.
    """
    like = like if like is not None else next(iter(mapping.values()), None)
    memo = {} if memo is None else memo

    def number(v):
        return as_node(int(v) if v.is_Integer else float(v), like=like)

    def conv(x):
        if x in memo:
            return memo[x]
        out = build(x)
        memo[x] = out
        return out

    def product(factors):
        nodes = [conv(f) for f in factors]
        result = nodes[0]
        for n in nodes[1:]:
            result = result * n
        return result

    def build(x):
        if x.is_Symbol:
            if x in mapping:
                return as_node(mapping[x])
            if x.is_integer and x.is_positive:  # a dimension such as m: a dimension constant
                return constant(x, like.dtype if like is not None and like.dtype.startswith("float") else "float64")
            raise UnsupportedSympy(f"no node for symbol {x}")
        if x.is_Number:
            return number(x)
        if x in (sympy.true, sympy.false):
            return as_node(bool(x))
        if x.is_Add:
            terms = sorted(x.args, key=lambda t: (t.could_extract_minus_sign(), sympy.default_sort_key(t)))
            result = None
            for t in terms:
                negative = t.could_extract_minus_sign()
                node = conv(-t if negative else t)
                if result is None:
                    result = -node if negative else node
                else:
                    result = result - node if negative else result + node
            return result
        if x.is_Mul or (x.is_Pow and x.exp.is_negative):
            if x.could_extract_minus_sign():
                return -conv(-x)
            num, den = sympy.fraction(x)
            if den == 1:
                return product(sorted(sympy.Mul.make_args(num), key=lambda f: not f.is_Number))
            bottom = product(sympy.Mul.make_args(den))
            if num == 1:
                return e.apply(e.reciprocal, bottom)
            return conv(num) / bottom
        if x.is_Pow:
            base, exp = x.args
            if exp == 2:
                return e.apply(e.square, conv(base))
            if exp == sympy.Rational(1, 2):
                return e.apply(e.sqrt, conv(base))
            if exp.is_Integer and 2 < exp <= 4:
                b = conv(base)
                result = b
                for _ in range(int(exp) - 1):
                    result = result * b
                return result
            return conv(base) ** conv(exp)
        if isinstance(x, sympy.Piecewise):
            (a, cond), rest = x.args[0], x.args[1:]
            other = sympy.Piecewise(*rest) if len(rest) > 1 or rest[0][1] != sympy.true else rest[0][0]
            return e.where(conv(cond), conv(a), conv(other))
        if isinstance(x, (sympy.Max, sympy.Min)):
            op = e.maximum if isinstance(x, sympy.Max) else e.minimum
            args = [conv(a) for a in x.args]
            result = args[0]
            for a in args[1:]:
                result = e.apply(op, result, a)
            return result
        if isinstance(x, sympy.core.relational.Relational):
            op = {sympy.StrictLessThan: e.less, sympy.LessThan: e.less_equal,
                  sympy.StrictGreaterThan: e.greater, sympy.GreaterThan: e.greater_equal,
                  sympy.Equality: e.equal, sympy.Unequality: e.not_equal}[type(x)]
            return e.apply(op, conv(x.lhs), conv(x.rhs))
        if isinstance(x, sympy.Heaviside):
            arg = conv(x.args[0])
            return e.astype(e.apply(e.greater, arg, 0), like.dtype if like is not None else "float64")
        if isinstance(x, sympy_functions.logsumexp):
            return logsumexp(_vector([conv(a) for a in x.args]))
        if isinstance(x, sympy_functions.softmax):
            return softmax(_vector([conv(a) for a in x.components]))[x.index]
        functions = _functions()
        if x.func in functions:
            return e.apply(functions[x.func], *[conv(a) for a in x.args])
        raise UnsupportedSympy(f"cannot build a graph for sympy expression {x} ({x.func.__name__})")

    return conv(sympy.sympify(expr))
