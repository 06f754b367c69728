"""Linear algebra: matmul (vector, matrix and batched, numpy's rules).

>>> import symdiff as sd
>>> X, W = sd.tensor("X", ("m", "n")), sd.tensor("W", ("n", "k"))
>>> (X @ W).shape
(m, k)
>>> sd.cost(X @ W)["flops"]
2*k*m*n
"""

from __future__ import annotations

import numpy as np

from .. import dtypes, shapes
from ..node import Node, as_node, make
from ..shapes import ShapeError, format_shape
from .registry import Op, function


def _matmul_infer(inputs, attrs):
    a, b = inputs
    if a.ndim == 0 or b.ndim == 0:
        raise ShapeError(f"matmul: operands must have at least one dimension, got "
                         f"{format_shape(a.shape)} and {format_shape(b.shape)}")
    if a.dtype != b.dtype:
        raise TypeError(f"matmul: operands must have one dtype, got {a.dtype} and {b.dtype}")
    sa = (1,) + a.shape if a.ndim == 1 else a.shape
    sb = b.shape + (1,) if b.ndim == 1 else b.shape
    if not shapes.same_dim(sa[-1], sb[-2]):
        raise ShapeError(f"matmul: inner dimensions differ: {format_shape(a.shape)} @ {format_shape(b.shape)}")
    batch = shapes.broadcast_shapes("matmul", sa[:-2], sb[:-2])
    out = batch + (sa[-2], sb[-1])
    if a.ndim == 1:
        out = out[:-2] + out[-1:]
    if b.ndim == 1:
        out = out[:-1]
    return out, a.dtype


def _matmul_flops(node):
    a, _ = node.inputs
    return 2 * shapes.numel(node.shape) * a.shape[-1]


matmul_op = Op("matmul", infer=_matmul_infer, flops=_matmul_flops,
               evaluate=lambda v, at, s, b: np.matmul(v[0], v[1]))


@function
def matmul(a, b) -> Node:
    """Matrix product with numpy's rules (1-D operands, broadcast batch dimensions)."""
    a, b = as_node(a), as_node(b)
    common = dtypes.promote(a.dtype, b.dtype)
    from .elementwise import astype

    return make(matmul_op, (astype(a, common), astype(b, common)))
