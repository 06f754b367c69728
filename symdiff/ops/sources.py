"""Graph sources: named leaves (inputs) and constants."""

from __future__ import annotations

import numpy as np
import sympy

from .registry import Op


def _leaf_infer(inputs, attrs):
    return attrs["shape"], attrs["dtype"]


def _leaf_evaluate(values, attrs, out_shape, bindings):
    raise RuntimeError(f"leaf {attrs['name']} has no value")  # evaluate() binds leaves itself


def _constant_evaluate(values, attrs, out_shape, bindings):
    value = attrs["value"]
    if isinstance(value, sympy.Basic):
        value = sympy.sympify(value.xreplace(bindings))
        if not value.is_Number:
            raise ValueError(f"constant {attrs['value']} needs values for {value.free_symbols}")
        value = int(value) if value.is_Integer else float(value)
    return np.asarray(value, dtype=attrs["dtype"])


leaf = Op("leaf", infer=_leaf_infer, evaluate=_leaf_evaluate, doc="a named input")
constant = Op(
    "constant",
    infer=_leaf_infer,
    evaluate=_constant_evaluate,
    differentiable=False,
    doc="a number, an array, or an expression in the dimensions",
)
