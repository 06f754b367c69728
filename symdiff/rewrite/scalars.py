"""Numbers and scalar divisors move to the front and the back: the textbook's 2·X / m.

>>> import symdiff as sd
>>> x = sd.symbols("x")
>>> print(number_first(x * 2))
2*x
"""

from __future__ import annotations

import sympy

from ..graph import count_ops
from ..node import constant, make
from ..ops import elementwise as ew
from ..ops.elementwise import scalar_value
from ..ops.from_sympy import to_graph
from ..ops.linalg import eye_op, matmul_op
from ..ops.movement import broadcast_to, reshape
from .fold import representable
from .patterns import constant_factor, peel, scalar_divisor
from .registry import rule


def _scalar_of(c, like):
    """The number in the (broadcast) constant ``c``, as a scalar constant of ``like``'s dtype."""
    return constant(scalar_value(c), like.dtype)


@rule(matmul_op)
def drop_identity(node):
    """I·B → B and A·I → A."""
    a, b = node.inputs
    if a.op is eye_op and b.ndim >= 1:
        return b
    if b.op is eye_op and a.ndim >= 1:
        return a
    return None


@rule(matmul_op)
def outer_product_with_number(node):
    """c·b → c ⊙ b for a number c as a column: an outer product with a number is a scaling."""
    a, b = node.inputs
    if a.ndim >= 2 and b.ndim >= 2 and a.shape[-1] == 1:  # inner dimension 1: an outer product
        for constant_side, other in ((a, b), (b, a)):
            if scalar_value(constant_side) is not None:
                c = constant(scalar_value(constant_side), node.dtype)
                return broadcast_to(c, node.shape) * broadcast_to(other, node.shape)
    return None


@rule(matmul_op)
def number_out_of_matmul(node):
    """A·(c·B) → c·(A·B) and (c·A)·B → c·(A·B): A·(2r) = 2(A·r)."""
    a, b = node.inputs
    for first, split in ((True, constant_factor(a)), (False, constant_factor(b))):
        if split is not None:
            rest, c = split
            inner = make(node.op, (rest, b) if first else (a, rest), **node.attrs)
            return _scalar_of(c, inner) * inner
    return None


@rule(matmul_op, ew.multiply)
def hoist_scalar_division(node):
    """(a/c)·b → (a·b)/c and (a/c) ⊙ b → (a ⊙ b)/c for a scalar c: the textbook's trailing /m."""
    a, b = node.inputs
    for first, split in ((True, scalar_divisor(a)), (False, scalar_divisor(b))):
        if split is None:
            continue
        numerator, c = split
        if node.op is ew.multiply and scalar_value(b if first else a) is not None:
            continue  # c·(x/m) stays: nothing to gain
        inner = make(node.op, (numerator, b) if first else (a, numerator), **node.attrs)
        return inner / c
    return None


@rule(eye_op)
def identity_of_one(node):
    """I₁ → 1: the identity of size one is the number (a scalar's Jacobian seed)."""
    return broadcast_to(constant(1, node.dtype), node.shape) if node.attr("n") == 1 else None


HOIST = (identity_of_one, drop_identity, outer_product_with_number, number_out_of_matmul, hoist_scalar_division)


@rule(ew.multiply)
def collect_numbers(node):
    """c₁·(c₂·x) → (c₁c₂)·x: numbers in a product gather into one factor."""
    split = constant_factor(node)
    inner = constant_factor(split[0]) if split is not None else None
    if inner is None:
        return None
    value = scalar_value(split[1]) * scalar_value(inner[1])
    if not representable(value, node.dtype):
        return None  # c₁·(c₂·x) may be finite where c₁c₂ is not
    return (constant(value, node.dtype) * inner[0]) if value != 1 else inner[0]


@rule(ew.multiply)
def number_first(node):
    """x·c → c·x: 2x, not x·2 (where collect_numbers has no two numbers to gather)."""
    split = constant_factor(node)
    if split is None or constant_factor(split[0]) is not None:
        return None
    if scalar_value(node.inputs[0]) is None:
        return make(node.op, (node.inputs[1], node.inputs[0]), **node.attrs)
    return None


COLLECT_CONSTANTS = (collect_numbers, number_first)


def _factors(node, numerator, denominator, sign):
    """Flatten a product/quotient tree into factor lists; returns the overall sign."""
    if node.op is ew.multiply:
        sign = _factors(node.inputs[0], numerator, denominator, sign)
        return _factors(node.inputs[1], numerator, denominator, sign)
    if node.op is ew.divide:
        sign = _factors(node.inputs[0], numerator, denominator, sign)
        return _factors(node.inputs[1], denominator, numerator, sign)
    if node.op is ew.negative:
        return _factors(node.inputs[0], numerator, denominator, -sign)
    inner = peel(node)
    if inner is not node and inner.shape == () and inner.op in (ew.multiply, ew.divide, ew.negative):
        return _factors(inner, numerator, denominator, sign)  # a spread scalar product: 2x / (2·s)
    numerator.append(node)
    return sign


def _as_sympy_scalar(node, symbols):
    """A scalar node as sympy: numbers stay numbers, anything else is an opaque symbol."""
    node = peel(node)
    value = scalar_value(node)
    if value is not None:
        return sympy.nsimplify(value) if isinstance(value, float) else sympy.Integer(value)
    if node.is_constant and isinstance(node.attr("value"), sympy.Basic):
        return node.attr("value")
    key = id(node)
    if key not in symbols:
        symbols[key] = (sympy.Symbol(f"s{len(symbols)}", positive=True), node)
    return symbols[key][0]


def _scalar_graph(expr, mapping, like):
    if expr.free_symbols:
        graph = to_graph(expr, mapping, like=like)
        return reshape(graph, ()) if graph.shape else graph
    value = int(expr) if expr.is_Integer else float(expr)
    if not representable(value, like.dtype):
        raise OverflowError(f"the coefficient {expr} does not fit {like.dtype}")
    return constant(value, like.dtype)


@rule(ew.multiply, ew.divide)
def combine_scalar_factors(node):
    """In a product, gather every scalar factor into one simplified coefficient: 2·(λ/2)·W = λ·W."""
    numerator, denominator = [], []
    sign = _factors(node, numerator, denominator, 1)
    scalars = [f for f in numerator + denominator if peel(f).shape == ()]
    if len(scalars) < 2 and sign == 1:
        return None
    symbols = {}
    coefficient = sympy.Integer(sign)
    for f in numerator:
        if peel(f).shape == ():
            coefficient *= _as_sympy_scalar(f, symbols)
    for f in denominator:
        if peel(f).shape == ():
            coefficient /= _as_sympy_scalar(f, symbols)
    mapping = {sym: graph for sym, graph in symbols.values()}
    tensors_up = [f for f in numerator if peel(f).shape != ()]
    tensors_down = [f for f in denominator if peel(f).shape != ()]
    top, bottom = sympy.fraction(coefficient)  # the textbook's a·X / m: numbers in front, divisor last
    negative = top.could_extract_minus_sign()
    top = -top if negative else top
    try:
        result = _coefficient_times(top, bottom, tensors_up, tensors_down, mapping, node)
    except OverflowError:
        return None  # the combined coefficient is no constant of this dtype: keep the factors apart
    if negative:
        result = -result
    return result if count_ops(result) < count_ops(node) else None


def _coefficient_times(top, bottom, tensors_up, tensors_down, mapping, node):
    """top·Π(tensors_up) / Π(tensors_down) / bottom, numbers in front and the divisor last."""
    result = None
    for f in tensors_up:
        result = f if result is None else result * f
    if result is None:
        result = broadcast_to(_scalar_graph(top, mapping, node), node.shape)
    elif top != 1:
        result = broadcast_to(_scalar_graph(top, mapping, node), node.shape) * result
    for f in tensors_down:
        result = result / f
    if bottom != 1:
        result = result / broadcast_to(_scalar_graph(bottom, mapping, node), node.shape)
    return result
