"""Linear algebra: matmul (vector, matrix and batched, numpy's rules), the identity, trace.

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
from .elementwise import astype
from .movement import reshape, sum_to, transpose
from .reduce import sum_
from .registry import PRODUCT, Infix, Op, Shown, function


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


matmul_op = Op("matmul", infer=_matmul_infer, flops=_matmul_flops, kernel="gemm",
               infix=Infix(" @ ", PRODUCT), evaluate=lambda v, at, s, b: np.matmul(v[0], v[1]))


# -- matmul's derivatives ------------------------------------------------------------------
# 1-D operands are lifted to matrices ((k,) -> (1, k) on the left, (k, 1) on the right) so the
# rules are the matrix ones: dA = G Bᵀ, dB = Aᵀ G, with broadcast batch dims summed away.


def _lifted(a, b):
    a2 = reshape(a, (1,) + a.shape) if a.ndim == 1 else a
    b2 = reshape(b, b.shape + (1,)) if b.ndim == 1 else b
    return a2, b2


def _swap(x):
    axes = list(range(x.ndim))
    axes[-2:] = axes[-1], axes[-2]
    return transpose(x, axes)


def _lifted_out_shape(a2, b2):
    return shapes.broadcast_shapes("matmul", a2.shape[:-2], b2.shape[:-2]) + (a2.shape[-2], b2.shape[-1])


def _aligned(x, batch_rank, nb):
    """``x`` with leading 1s: its batch dims padded to ``batch_rank``, then ``nb`` more for the
    tangent's leading axes, so numpy broadcasting lines the batch axes up."""
    missing = batch_rank - (x.ndim - 2)
    return reshape(x, (1,) * (nb + missing) + x.shape) if nb + missing else x


@matmul_op.defjvp
def _matmul_jvp(node, ts, nb):
    a, b = node.inputs
    a2, b2 = _lifted(a, b)
    rank = len(_lifted_out_shape(a2, b2)) - 2
    ta, tb = ts
    lead = (ta if ta is not None else tb).shape[:nb]
    total = None
    if ta is not None:
        total = _aligned(reshape(ta, a2.shape), rank, 0) if nb == 0 else \
            reshape(ta, lead + (1,) * (rank - a2.ndim + 2) + a2.shape)
        total = total @ _aligned(b2, rank, nb)
    if tb is not None:
        tb2 = reshape(tb, lead + (1,) * (rank - b2.ndim + 2) + b2.shape)
        term = _aligned(a2, rank, nb) @ tb2
        total = term if total is None else total + term
    return reshape(total, lead + node.shape)


def _vector_vjp(node, ct, needed):
    """Direct rules where an operand is a vector (no lifting): matrix·vector gives dB = Aᵀ·c,
    vector·matrix dA = B·c, and a dot product c·b and c·a."""
    a, b = node.inputs
    if a.ndim == 1 and b.ndim == 1:
        return [ct * b if needed[0] else None, ct * a if needed[1] else None]
    if a.ndim == 2 and b.ndim == 1 and not needed[0]:
        return [None, _swap(a) @ ct]
    if a.ndim == 1 and b.ndim == 2 and not needed[1]:
        return [b @ ct, None]
    return None


@matmul_op.defvjp
def _matmul_vjp(node, ct, nb, needed=None):
    needed = needed or (True, True)
    direct = _vector_vjp(node, ct, needed) if nb == 0 else None
    if direct is not None:
        return direct
    a, b = node.inputs
    a2, b2 = _lifted(a, b)
    lead = ct.shape[:nb]
    out2 = _lifted_out_shape(a2, b2)
    rank = len(out2) - 2
    g = reshape(ct, lead + out2)
    da = reshape(sum_to(g @ _swap(_aligned(b2, rank, nb)), nb, a2.shape), lead + a.shape) if needed[0] else None
    db = reshape(sum_to(_swap(_aligned(a2, rank, nb)) @ g, nb, b2.shape), lead + b.shape) if needed[1] else None
    return [da, db]


# -- the identity ----------------------------------------------------------------------------
eye_op = Op("eye", infer=lambda inputs, attrs: ((attrs["n"], attrs["n"]), attrs["dtype"]),
            evaluate=lambda v, attrs, out_shape, b: np.eye(out_shape[0], dtype=attrs["dtype"]),
            index_function=True, differentiable=False,
            print_attrs=(Shown("n", positional=True), Shown("dtype", default="float64")),
            doc="the n×n identity (seeds of batched tangents)")


# -- public functions ------------------------------------------------------------------------
@function
def matmul(a, b) -> Node:
    """Matrix product with numpy's rules (1-D operands, broadcast batch dimensions)."""
    a, b = as_node(a), as_node(b)
    common = dtypes.promote(a.dtype, b.dtype)
    return make(matmul_op, (astype(a, common), astype(b, common)))


@function
def trace(a) -> Node:
    """Sum of the diagonal of a square matrix, as Σ(A ⊙ I).

    >>> import symdiff as sd
    >>> A = sd.tensor("A", (2, 2))
    >>> float(sd.evaluate(sd.trace(A), {A: [[1.0, 2.0], [3.0, 4.0]]}))
    5.0
    """
    a = as_node(a)
    if a.ndim != 2 or not shapes.same_dim(a.shape[0], a.shape[1]):
        raise ShapeError(f"trace: needs a square matrix, got {format_shape(a.shape)}")
    return sum_(a * eye(a.shape[0], a.dtype))


@function
def eye(n, dtype="float64") -> Node:
    """The identity matrix of (possibly symbolic) size ``n``.

    >>> import symdiff as sd
    >>> sd.evaluate(sd.eye(2), {}).tolist()
    [[1.0, 0.0], [0.0, 1.0]]
    """
    return make(eye_op, (), n=shapes.dim(n), dtype=dtypes.check_dtype(dtype))
