"""Movement compositions collapse, one rule per identity: transpose∘transpose, reshape∘reshape, …

>>> import symdiff as sd
>>> X = sd.tensor("X", (2, 3))
>>> reshape_of_reshape(sd.reshape(sd.reshape(X, (6,)), (3, 2))) is sd.reshape(X, (3, 2))
True
"""

from __future__ import annotations

from ..node import constant, make
from ..ops import elementwise as ew
from ..ops.linalg import matmul_op
from ..ops.movement import broadcast_to, broadcast_to_op, reshape, reshape_op, transpose, transpose_op
from ..ops.reduce import sum_op
from .registry import rule

FLOATS = ("float32", "float64")


@rule(transpose_op)
def transpose_of_unit_axes(node):
    """transpose(x) → reshape(x) when only size-1 axes move: the data order is unchanged."""
    a = node.inputs[0]
    moved = [axis for axis in node.attr("axes") if a.shape[axis] != 1]
    return reshape(a, node.shape) if moved == sorted(moved) else None


@rule(transpose_op)
def transpose_of_transpose(node):
    """transpose(transpose(x, p), q) → transpose(x, p∘q)."""
    a = node.inputs[0]
    if a.op is not transpose_op:
        return None
    inner, outer = a.attr("axes"), node.attr("axes")
    return transpose(a.inputs[0], tuple(inner[i] for i in outer))


@rule(reshape_op)
def reshape_of_reshape(node):
    """reshape(reshape(x)) → reshape(x)."""
    a = node.inputs[0]
    return reshape(a.inputs[0], node.shape) if a.op is reshape_op else None


@rule(broadcast_to_op)
def broadcast_of_broadcast(node):
    """broadcast_to(broadcast_to(x)) → broadcast_to(x)."""
    a = node.inputs[0]
    return broadcast_to(a.inputs[0], node.shape) if a.op is broadcast_to_op else None


@rule(ew.astype_)
def cast_through_float64(node):
    """astype(astype(x, float64), d) → astype(x, d) for floating x and d: float64 holds every float."""
    a = node.inputs[0]
    if a.op is ew.astype_ and a.inputs[0].dtype in FLOATS and node.dtype in FLOATS and a.dtype == "float64":
        return ew.astype(a.inputs[0], node.dtype)
    return None


MOVEMENT = (transpose_of_unit_axes, transpose_of_transpose, reshape_of_reshape, broadcast_of_broadcast,
            cast_through_float64)


@rule(sum_op)
def sum_of_broadcast(node):
    """Σ over axes of a broadcast scalar is a scale: sum(broadcast_to(c, S)) = c · |S_axes|."""
    b = node.inputs[0]
    if b.op is not broadcast_to_op:
        return None
    source = b.inputs[0]
    if source.shape != ():
        return None
    count = 1
    for axis in node.attr("axis"):
        count = count * b.shape[axis]
    scaled = source * constant(count, source.dtype) if count != 1 else source
    return broadcast_to(scaled, node.shape)


# -- transposes move toward the leaves: (A·B)ᵀ = Bᵀ·Aᵀ, (A + B)ᵀ = Aᵀ + Bᵀ, (Aᵀ)ᵀ = A ---------------
LINEAR = (ew.add, ew.subtract)
SCALED = (ew.multiply, ew.divide)


def _is_matrix_transpose(node):
    return node.op is transpose_op and node.ndim == 2 and tuple(node.attr("axes")) == (1, 0)


def _is_diagonal(node):
    """v ⊙ I (a vector spread against the identity): diag(v), its own transpose."""
    if node.op is not ew.multiply or node.ndim != 2:
        return False
    for full, spread in (node.inputs, node.inputs[::-1]):
        if full.op.name == "eye" and spread.op is broadcast_to_op:
            source = spread.inputs[0]
            if source.ndim == 1 or (source.ndim == 2 and source.shape[1] == 1):
                return True
    return False


def _scalar_spread(node):
    return node.op is broadcast_to_op and node.inputs[0].shape == ()


def free_transpose(node, depth: int = 6):
    """nodeᵀ (of a matrix) where it costs no new operation, else None: the input of a
    transpose, a vector's other reshape, the identity, a spread scalar, diag(v), and products,
    sums and scalings made only of those.

    >>> import symdiff as sd
    >>> A, B = sd.tensor("A", (2, 2)), sd.tensor("B", (2, 2))
    >>> free_transpose(A.T @ B.T) is B @ A, free_transpose(A @ B)
    (True, None)
    """
    if node.ndim != 2 or depth == 0:
        return None
    if _is_matrix_transpose(node):
        return node.inputs[0]
    if node.op.name == "eye" or _is_diagonal(node):
        return node
    if _scalar_spread(node):
        return broadcast_to(node.inputs[0], node.shape[::-1])
    if node.op is reshape_op and node.inputs[0].ndim == 1 and 1 in node.shape:
        return reshape(node.inputs[0], node.shape[::-1])
    if node.op is matmul_op and all(i.ndim == 2 for i in node.inputs):
        p, q = (free_transpose(i, depth - 1) for i in node.inputs[::-1])
        return p @ q if p is not None and q is not None else None
    if node.op is ew.negative:
        inner = free_transpose(node.inputs[0], depth - 1)
        return -inner if inner is not None else None
    if node.op in LINEAR + SCALED and all(i.shape == node.shape for i in node.inputs):
        parts = [free_transpose(i, depth - 1) for i in node.inputs]
        return None if any(p is None for p in parts) else make(node.op, parts)
    return None


def transposed(node):
    """nodeᵀ, free where it can be."""
    free = free_transpose(node)
    return transpose(node) if free is None else free


@rule(transpose_op)
def transpose_of_free(node):
    """Xᵀ → what X's transpose is for free: (Aᵀ)ᵀ → A, (Aᵀ·Bᵀ)ᵀ → B·A, diag(v)ᵀ → diag(v)."""
    if not _is_matrix_transpose(node):
        return None
    return free_transpose(node.inputs[0])


@rule(transpose_op)
def transpose_of_product(node):
    """(P·Q)ᵀ → Qᵀ·Pᵀ when a factor's transpose is free: no operation more, one transpose nearer the leaves."""
    if not _is_matrix_transpose(node):
        return None
    a = node.inputs[0]
    if a.op is not matmul_op or any(i.ndim != 2 for i in a.inputs):
        return None
    p, q = a.inputs
    if free_transpose(p) is None and free_transpose(q) is None:
        return None
    return transposed(q) @ transposed(p)


@rule(transpose_op)
def transpose_of_elementwise(node):
    """(P ± Q)ᵀ → Pᵀ ± Qᵀ and (c·P)ᵀ → c·Pᵀ when a term's transpose is free (or a factor is a scalar)."""
    if not _is_matrix_transpose(node):
        return None
    a = node.inputs[0]
    if a.op not in LINEAR + SCALED or len(a.inputs) != 2:
        return None
    if not all(i.shape == a.shape for i in a.inputs):
        return None
    scalar = [_scalar_spread(i) for i in a.inputs]
    if a.op in LINEAR and not any(scalar) and all(free_transpose(i) is None for i in a.inputs):
        return None
    if a.op in SCALED and not any(scalar) and all(free_transpose(i) is None for i in a.inputs):
        return None
    return make(a.op, [transposed(i) for i in a.inputs])


TRANSPOSES = (transpose_of_free, transpose_of_product, transpose_of_elementwise)


# -- batched products that are plain ones: the Jacobian's columns of I -----------------------
@rule(matmul_op)
def columns_of_a_matrix(node):
    """M @ reshape(N, (k, r, 1)) → reshape(N·Mᵀ, (k, p, 1)): M applied to each row of N.

    A forward-mode Jacobian pushes the k columns of I (or of a matrix) through a product as a
    batch of (r, 1) columns; this is one matrix product (and I·Mᵀ is Mᵀ)."""
    m, q = node.inputs
    if node.ndim != 3 or q.op is not reshape_op or q.inputs[0].ndim != 2 or q.shape[-1] != 1:
        return None
    n = q.inputs[0]
    if m.op is reshape_op and m.ndim == 3 and m.shape[0] == 1 and m.inputs[0].ndim == 2:
        m = m.inputs[0]
    if m.ndim != 2 or n.shape[1] != m.shape[1] or q.shape[0] != n.shape[0]:
        return None
    return reshape(n @ transposed(m), node.shape)


@rule(reshape_op)
def reshape_of_scaled(node):
    """reshape(c·X) → c·reshape(X) for a scalar c: the number stays in front of what it scales."""
    a = node.inputs[0]
    if a.op is not ew.multiply or node.size == 1:
        return None
    for c, x in (a.inputs, a.inputs[::-1]):
        if _scalar_spread(c) and x.shape == a.shape:
            return broadcast_to(c.inputs[0], node.shape) * reshape(x, node.shape)
    return None


@rule(reshape_op)
def vector_product(node):
    """reshape(M·reshape(v, (k, 1)), (n,)) → M·v and reshape(reshape(v, (1, k))·M, (n,)) → v·M:
    a vector made a column to multiply it is a matrix-vector product."""
    a = node.inputs[0]
    if node.ndim != 1 or a.op is not matmul_op or a.ndim != 2:
        return None
    m, q = a.inputs
    if a.shape[1] == 1 and q.op is reshape_op and q.inputs[0].ndim == 1 and m.ndim == 2:
        return m @ q.inputs[0]
    if a.shape[0] == 1 and m.op is reshape_op and m.inputs[0].ndim == 1 and q.ndim == 2:
        return m.inputs[0] @ q
    return None


BATCHED = (columns_of_a_matrix, reshape_of_scaled, vector_product)
