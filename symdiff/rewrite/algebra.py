"""Algebraic identities, one rule per identity: x·1 → x, x − x → 0, −(−x) → x, …

``IDENTITIES`` and ``SIGNS_AND_RECIPROCALS`` list the rules in the order a pass tries them.

>>> import symdiff as sd
>>> x = sd.symbols("x")
>>> multiply_by_one(x * 1) is x, multiply_by_one(x * 2)
(True, None)
"""

from __future__ import annotations

from ..node import constant, make
from ..ops import elementwise as ew
from ..ops.elementwise import scalar_value
from ..ops.linalg import matmul_op
from ..ops.movement import broadcast_to, broadcast_to_op, reshape_op, transpose_op, zeros
from ..ops.reduce import sum_op
from .fold import representable
from .movement import transposed
from .patterns import constant_factor, peel, scalar_divisor, spread_like
from .registry import rule


# -- products ------------------------------------------------------------------------------
@rule(ew.multiply)
def multiply_by_one(node):
    """1·x → x and x·1 → x."""
    a, b = node.inputs
    if scalar_value(a) == 1:
        return b
    if scalar_value(b) == 1:
        return a
    return None


@rule(ew.multiply)
def multiply_by_zero(node):
    """0·x → 0 and x·0 → 0 (x not a number: that is constant folding's)."""
    values = [scalar_value(i) for i in node.inputs]
    if 0 in values and None in values:
        return zeros(node.shape, node.dtype)
    return None


@rule(ew.multiply)
def multiply_by_minus_one(node):
    """(−1)·x → −x and x·(−1) → −x."""
    a, b = node.inputs
    if scalar_value(a) == -1:
        return -b
    if scalar_value(b) == -1:
        return -a
    return None


# -- sums and differences ------------------------------------------------------------------
@rule(ew.add)
def add_self(node):
    """x + x → 2·x."""
    a, b = node.inputs
    return constant(2, node.dtype) * a if a is b else None


@rule(ew.add)
def add_zero(node):
    """0 + x → x and x + 0 → x."""
    a, b = node.inputs
    if scalar_value(a) == 0:
        return b
    if scalar_value(b) == 0:
        return a
    return None


@rule(ew.add)
def add_negative(node):
    """x + (−y) → x − y and (−y) + x → x − y."""
    a, b = node.inputs
    if b.op is ew.negative:
        return a - b.inputs[0]
    if a.op is ew.negative:
        return b - a.inputs[0]
    return None


@rule(ew.subtract)
def subtract_zero(node):
    """x − 0 → x."""
    return node.inputs[0] if scalar_value(node.inputs[1]) == 0 else None


@rule(ew.subtract)
def zero_minus(node):
    """0 − x → −x."""
    return -node.inputs[1] if scalar_value(node.inputs[0]) == 0 else None


@rule(ew.subtract)
def subtract_self(node):
    """x − x → 0."""
    a, b = node.inputs
    return zeros(node.shape, node.dtype) if a is b else None


@rule(ew.subtract)
def subtract_negative(node):
    """x − (−y) → x + y."""
    a, b = node.inputs
    return a + b.inputs[0] if b.op is ew.negative else None


# -- quotients, negations, exp and log -----------------------------------------------------
@rule(ew.divide)
def divide_by_one(node):
    """x/1 → x."""
    return node.inputs[0] if scalar_value(node.inputs[1]) == 1 else None


@rule(ew.negative)
def double_negative(node):
    """−(−x) → x."""
    (a,) = node.inputs
    return a.inputs[0] if a.op is ew.negative else None


@rule(ew.negative)
def negate_difference(node):
    """−(p − q) → q − p."""
    (a,) = node.inputs
    return a.inputs[1] - a.inputs[0] if a.op is ew.subtract else None


@rule(ew.exp)
def exp_of_log(node):
    """exp(log x) → x."""
    (a,) = node.inputs
    return a.inputs[0] if a.op is ew.log else None


@rule(ew.log)
def log_of_exp(node):
    """log(exp x) → x."""
    (a,) = node.inputs
    return a.inputs[0] if a.op is ew.exp else None


IDENTITIES = (multiply_by_one, multiply_by_zero, multiply_by_minus_one, add_self, add_zero, add_negative,
              subtract_zero, zero_minus, subtract_self, subtract_negative, divide_by_one,
              double_negative, negate_difference, exp_of_log, log_of_exp)


# -- signs and reciprocals move outwards ---------------------------------------------------
@rule(ew.multiply)
def negated_times_difference(node):
    """(−u)·(p − q) → u·(q − p)."""
    for a, b in (node.inputs, node.inputs[::-1]):
        if b.op is ew.negative and a.op is ew.subtract:
            p, q = a.inputs
            return b.inputs[0] * (q - p)
    return None


@rule(ew.multiply)
def factor_out_of_product(node):
    """a·(1/c) → a/c, a·(−b) → −(a·b) and a·(−c) → −(a·c) for a scalar c in disguise.

    One rule, not three: which factor is looked at first decides the form, so the three
    are tried together, the right factor before the left."""
    for a, b in (node.inputs, node.inputs[::-1]):
        inner = peel(b)
        if inner.shape == () and inner.op is ew.reciprocal:
            return a / spread_like(inner.inputs[0], a)
        if b.op is ew.negative:
            return -(a * b.inputs[0])
        if inner.shape == () and inner.op is ew.negative:
            return -(a * spread_like(inner.inputs[0], a))
    return None


@rule(ew.add, ew.subtract)
def common_scalar_divisor(node):
    """a/c + b/c → (a + b)/c and a/c − b/c → (a − b)/c for a scalar c."""
    left, right = (scalar_divisor(i) for i in node.inputs)
    if left and right and left[1] is right[1]:
        combined = left[0] + right[0] if node.op is ew.add else left[0] - right[0]
        return combined / spread_like(left[1], combined)
    return None


@rule(ew.divide)
def negated_numerator(node):
    """(−a)/b → −(a/b)."""
    a, b = node.inputs
    return -(a.inputs[0] / b) if a.op is ew.negative else None


@rule(sum_op, transpose_op, reshape_op, broadcast_to_op)
def linear_of_negative(node):
    """L(−x) → −L(x) for a linear op L (sum, transpose, reshape, broadcast)."""
    a = node.inputs[0]
    return -make(node.op, (a.inputs[0],), **node.attrs) if a.op is ew.negative else None


SIGNS_AND_RECIPROCALS = (negated_times_difference, factor_out_of_product, common_scalar_divisor,
                         negated_numerator, linear_of_negative)


def _as_matrix_times(node):
    """(M, x) with node = M·x; a vector times a matrix, v·B, is Bᵀ·v."""
    a, b = node.inputs
    if a.ndim == 1 and b.ndim == 2:
        return transposed(b), a
    return a, b


@rule(ew.add, ew.subtract)
def distribute(node):
    """A·x ± B·x → (A ± B)·x and x·A ± x·B → x·(A ± B): one product instead of two
    (v·B, a vector times a matrix, is Bᵀ·v: A·x + x·B → (A + Bᵀ)·x)."""
    p, q = node.inputs
    if p.op is not matmul_op or q.op is not matmul_op:
        return None
    combine = (lambda u, v: u + v) if node.op is ew.add else (lambda u, v: u - v)
    (a, x), (b, y) = p.inputs, q.inputs
    if x is y and a.shape == b.shape and a.dtype == b.dtype:
        return combine(a, b) @ x
    if a is b and x.shape == y.shape and x.dtype == y.dtype:
        return a @ combine(x, y)
    if p.ndim == 1 and q.ndim == 1:
        (a, x), (b, y) = _as_matrix_times(p), _as_matrix_times(q)
        if x is y and a.shape == b.shape and a.dtype == b.dtype:
            return combine(a, b) @ x
    return None


def _coefficient(node):
    """(c, rest) with node = c·rest for a number c (1 where there is none)."""
    split = constant_factor(node)
    if split is not None:
        return scalar_value(split[1]), split[0]
    if node.op is ew.negative:
        return -1, node.inputs[0]
    return 1, node


@rule(ew.add, ew.subtract)
def collect_like_terms(node):
    """c₁·M ± c₂·M → (c₁ ± c₂)·M and c·P ± c·Q → c·(P ± Q): a number multiplies once."""
    (ca, ra), (cb, rb) = (_coefficient(i) for i in node.inputs)
    if (ca == 1 and cb == 1) or ra.shape != node.shape or rb.shape != node.shape or ra.dtype != rb.dtype:
        return None
    sign = 1 if node.op is ew.add else -1
    if ra is rb:
        value = ca + sign * cb
        if not representable(value, node.dtype):
            return None
        if value == 0:
            return zeros(node.shape, node.dtype)
        return ra if value == 1 else -ra if value == -1 else _times(value, ra)
    if ca == cb:
        return _times(ca, ra + rb if sign == 1 else ra - rb)
    if ca == -cb:  # c·P − c·Q written as c·P + (−c)·Q
        return _times(ca, ra - rb if sign == 1 else ra + rb)
    return None


def _times(value, node):
    return -node if value == -1 else broadcast_to(constant(value, node.dtype), node.shape) * node


LIKE_TERMS = (collect_like_terms,)
