"""Constant folding: an op whose inputs are all numbers becomes its value (small results only).

int64 arithmetic is folded in exact Python integers, so an overflow is an error, not a wrap-around.

>>> import symdiff as sd
>>> print(fold_constants(sd.constant(2.0) * sd.constant(3.0)))
6
"""

from __future__ import annotations

import numpy as np
import sympy

from ..evaluate import evaluate
from ..node import constant
from ..ops import elementwise as ew
from ..ops.movement import broadcast_to, broadcast_to_op
from ..ops.reduce import sum_op
from .registry import ANY, rule

FOLD_LIMIT = 64  # constant folding produces at most this many elements
FOLD_INPUT_LIMIT = 1 << 16  # ...from at most this many: a sum or matmul of a huge constant stays as it is
INT64_MIN, INT64_MAX = -2**63, 2**63 - 1


def representable(value, dtype):
    """Whether a folded number is a constant of ``dtype`` as it is: in range and finite."""
    if dtype == "int64":
        return INT64_MIN <= value <= INT64_MAX
    return bool(np.isfinite(value)) and (dtype != "float32" or abs(value) <= np.finfo(np.float32).max)


def _int_power(a, b):
    if abs(a) > 1 and (abs(a).bit_length() - 1) * b > 64:  # refused before 9**(9**9) is computed
        raise OverflowError(f"power of int64 constants overflows int64: {a}**{b} has more than 64 bits")
    return a**b


# int64 ops folded in exact Python integers, so that an overflow is an error, not a wrap-around
EXACT_INT = {ew.add: lambda a, b: a + b, ew.subtract: lambda a, b: a - b, ew.multiply: lambda a, b: a * b,
             ew.negative: lambda a: -a, ew.square: lambda a: a * a, ew.abs_: abs, ew.power: _int_power}


def _fold_int64(node):
    """The exact value of an int64 op on constants, or an OverflowError saying it does not fit."""
    values = [np.asarray(i.attr("value"), dtype=object) for i in node.inputs]
    if node.op is sum_op:
        exact = np.sum(values[0], axis=node.attr("axis"), keepdims=node.attr("keepdims"))
    else:
        exact = np.frompyfunc(EXACT_INT[node.op], len(values), 1)(*values)
    exact = np.asarray(exact, dtype=object)
    outside = [v for v in exact.flat if not INT64_MIN <= v <= INT64_MAX]
    if outside:
        raise OverflowError(f"{node.op.name} of int64 constants overflows int64: {outside[0]} is outside "
                            "[-2**63, 2**63 - 1] (numpy would wrap around)")
    return exact.astype(np.int64)


@rule(ANY)
def fold_constants(node):
    """op(c₁, …, cₖ) → its value, for numeric constants cᵢ (small results only)."""
    if not node.inputs or node.op is broadcast_to_op:
        return None
    if not all(i.is_constant and not isinstance(i.attr("value"), sympy.Basic) for i in node.inputs):
        return None
    if not isinstance(node.size, int) or node.size > FOLD_LIMIT:
        return None
    if sum(i.size for i in node.inputs) > FOLD_INPUT_LIMIT:
        return None
    if node.dtype == "int64" and (node.op in EXACT_INT or node.op is sum_op):
        if node.op is ew.power and (np.asarray(node.inputs[1].attr("value")) < 0).any():
            return None  # an integer to a negative power is an error of evaluation, not of folding
        value = _fold_int64(node)
    else:
        value = evaluate(node, {})
    if value.ndim and value.size and (value == value.flat[0]).all():  # uniform: a broadcast scalar
        return broadcast_to(constant(value.flat[0].item(), node.dtype), node.shape)
    return constant(value if value.ndim else value.item(), node.dtype)
