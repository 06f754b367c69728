"""Matrix functions: inv, det, logdet (slogdet), solve, diag/diagonal, kron, norm, outer.

Batched like numpy's ``linalg``: a matrix operand is ``(..., n, n)``, its leading axes a batch
(broadcast between operands, as numpy broadcasts them). The rules are Giles (2008),
"Collected matrix derivative results for forward and reverse mode AD", written as graph
ops, so grad-of-grad and Hessians work (Y = A⁻¹, ·ᵀ swaps the last two axes):

=========  =================================  ===================================
op         JVP (tangent)                      VJP (cotangent)
=========  =================================  ===================================
inv        dY = −Y·dA·Y                       Ā = −Yᵀ·Ȳ·Yᵀ
det        dd = det A · tr(Y·dA)              Ā = d̄ · det A · Yᵀ
logdet     dl = tr(Y·dA)                      Ā = l̄ · Yᵀ
solve      dx = A⁻¹(db − dA·x)                b̄ = A⁻ᵀx̄,  Ā = −b̄·xᵀ
diag       diag(dv)                           v̄ = diagonal(C̄)
diagonal   diagonal(dA)                       Ā = diag(ā) (padded if A is not square)
kron       dA ⊗ B + A ⊗ dB                    Ā_ij = Σ_kl C̄[ip+k, jq+l]·B_kl, B̄ alike
norm       dn = ⟨x, dx⟩/‖x‖                   x̄ = n̄·x/‖x‖
=========  =================================  ===================================

**Singular matrices (the policy).** ``inv`` and ``solve`` of a matrix whose LU factorization
with partial pivoting meets an exactly zero pivot raise ``ValueError`` naming the op, the
shape and the batch element (the numpy evaluator), or a ``RuntimeError`` with the same text
(a compiled program: its kernel returns an error status, nothing is written for the caller
to mistake for a result). A nearly singular matrix is not detected: it gives the large,
inaccurate numbers numpy gives. ``det`` of a singular matrix is 0 and ``logdet`` is −inf
(``slogdet``'s sign 0), as numpy's; their derivatives are built from A⁻¹ (det·A⁻ᵀ is the
adjugate, finite at a singular A, but it is computed through A⁻¹), so differentiating them
*at* an exactly singular matrix raises the inv error rather than returning a number.
``norm``'s derivative at x = 0 is the subgradient 0 (not NaN).

>>> import symdiff as sd
>>> A = sd.tensor("A", (2, 2))
>>> at = {A: [[2.0, 1.0], [1.0, 3.0]]}
>>> round(float(sd.evaluate(sd.det(A), at)), 12)
5.0
>>> sd.evaluate(sd.grad(sd.det(A), A), at).round(12).tolist()  # det(A)·A⁻ᵀ, the cofactors
[[3.0, -1.0], [-1.0, 2.0]]
"""

from __future__ import annotations

import numpy as np
import sympy

from .. import dtypes, shapes
from ..node import Node, as_node, make
from ..shapes import ShapeError, format_shape
from .elementwise import where
from .linalg import matmul
from .movement import getitem, reshape, sum_to, transpose
from .padding import pad
from .reduce import sum_
from .registry import Op, Shown, function

LINALG = "linalg"  # the kernel kind of the ops below that factorize (lowering/render/cpu_linalg.py)
INDEXED = "linalg_index"  # the kind of those that only move and multiply elements (diag, kron, ...)


class LinAlgError(ValueError):
    """A singular matrix given to inv or solve (a ValueError: bad input)."""


# -- helpers: the last two axes, batches, alignment ---------------------------------------------
def mT(x):
    """``x`` with its last two axes swapped (a batch of transposes)."""
    axes = list(range(x.ndim))
    axes[-2:] = axes[-1], axes[-2]
    return transpose(x, tuple(axes))


def _trailing(x, k):
    """``x`` with ``k`` axes of size 1 appended (to broadcast against matrices)."""
    return reshape(x, x.shape + (1,) * k) if k and x.shape else x


def _aligned(x, lead, rank):
    """A tangent or cotangent ``x`` (``lead`` + its operand's shape) with size-1 axes inserted
    after ``lead`` so that its batch axes line up with a batch of ``rank`` axes."""
    body = x.shape[len(lead):]
    missing = rank - (len(body) - 2)
    return reshape(x, lead + (1,) * missing + body) if missing > 0 else x


def _square_infer(name, drop):
    def infer(inputs, attrs):
        (a,) = inputs
        if a.ndim < 2 or not shapes.same_dim(a.shape[-1], a.shape[-2]):
            raise ShapeError(f"{name}: needs a square matrix or a batch of them (..., n, n), "
                             f"got {format_shape(a.shape)}")
        if not dtypes.is_float(a.dtype):
            raise TypeError(f"{name}: needs a float matrix, got {a.dtype}")
        return (a.shape[:-2] if drop else a.shape), a.dtype

    return infer


def _batches(a):
    return shapes.numel(a.shape[:-2])


def _lu_flops(node):  # getrf: 2/3 n³ per matrix
    a = node.inputs[0]
    return sympy.Rational(2, 3) * _batches(a) * a.shape[-1] ** 3


def _singular(name, shape, index):
    """The error of a singular matrix, worded as the compiled kernels word it (cpu/linalg.hpp)."""
    at = f" at batch index {index}" if index is not None else ""
    return LinAlgError(f"{name}: the matrix{at} of {format_shape(shape)} is singular (a zero pivot in "
                       "its LU factorization with partial pivoting)")


def _first_singular(a):
    """The flat batch index of the first exactly singular matrix of ``a``, or None."""
    for flat, index in enumerate(np.ndindex(*a.shape[:-2])):
        try:
            np.linalg.inv(a[index])
        except np.linalg.LinAlgError:
            return flat
    return None


def _checked(name, fn, a, *rest):
    try:
        return fn(a, *rest)
    except np.linalg.LinAlgError:
        index = _first_singular(np.asarray(a))
        raise _singular(name, a.shape, index if a.ndim > 2 else None) from None


def _objects_per_matrix(a, fn, out_tail):
    """``fn`` (a sympy.Matrix -> an expression, or an object array of shape ``out_tail``) for
    each matrix of a batch."""
    a = np.asarray(a, dtype=object)
    out = np.empty(a.shape[:-2] + out_tail, dtype=object)
    for index in np.ndindex(*a.shape[:-2]):
        out[index] = fn(sympy.Matrix(a[index]))
    return out


def _symbolic_inverse(m):
    if m.shape[0] <= 3:
        adjugate, det = m.adjugate(), m.det(method="berkowitz")
        if det == 0:
            raise _singular("inv", m.shape, None)
        return np.array(adjugate / det, dtype=object)
    return np.array(m.inv(method="LU"), dtype=object)


# -- inv ---------------------------------------------------------------------------------------
inv_op = Op("inv", infer=_square_infer("inv", drop=False), kernel=LINALG,
            flops=lambda node: 2 * _batches(node) * node.shape[-1] ** 3,  # LU, then n triangular pairs
            evaluate=lambda v, at, s, b: _checked("inv", np.linalg.inv, v[0]),
            doc="the inverse of a square matrix (a batch of them)")


@inv_op.defsymbolic
def _inv_symbolic(values, attrs, out_shape, bindings):
    return _objects_per_matrix(values[0], _symbolic_inverse, tuple(out_shape[-2:]))


@inv_op.defjvp
def _inv_jvp(node, ts, nb):
    return -(node @ ts[0] @ node)


@inv_op.defvjp
def _inv_vjp(node, ct, nb, needed=None):
    y = mT(node)
    return [-(y @ ct @ y)]


# -- det, logdet and slogdet's sign -------------------------------------------------------------
det_op = Op("det", infer=_square_infer("det", drop=True), kernel=LINALG, flops=_lu_flops,
            evaluate=lambda v, at, s, b: np.linalg.det(v[0]),
            doc="the determinant (0 for a singular matrix)")
logdet_op = Op("logdet", infer=_square_infer("logdet", drop=True), kernel=LINALG, flops=_lu_flops,
               evaluate=lambda v, at, s, b: np.linalg.slogdet(v[0])[1],
               doc="log|det A| (−inf for a singular matrix)")
slogdet_sign_op = Op("slogdet_sign", infer=_square_infer("slogdet", drop=True), kernel=LINALG,
                     flops=_lu_flops, differentiable=False,
                     evaluate=lambda v, at, s, b: np.linalg.slogdet(v[0])[0],
                     doc="the sign of det A (−1, 0 or 1), from the LU factorization: no overflow")


@det_op.defsymbolic
def _det_symbolic(values, attrs, out_shape, bindings):
    return _objects_per_matrix(values[0], lambda m: m.det(method="berkowitz"), ())


@logdet_op.defsymbolic
def _logdet_symbolic(values, attrs, out_shape, bindings):
    return _objects_per_matrix(values[0], lambda m: sympy.log(sympy.Abs(m.det(method="berkowitz"))),
                                ())


@slogdet_sign_op.defsymbolic
def _sign_symbolic(values, attrs, out_shape, bindings):
    return _objects_per_matrix(values[0], lambda m: sympy.sign(m.det(method="berkowitz")), ())


def _trace_of_product(y, t, nb):
    """tr(Y·T) per matrix of the batch: Σ (Yᵀ ⊙ T) over the last two axes."""
    return sum_(mT(y) * t, axis=(t.ndim - 2, t.ndim - 1))


@det_op.defjvp
def _det_jvp(node, ts, nb):
    return node * _trace_of_product(inv(node.inputs[0]), ts[0], nb)


@det_op.defvjp
def _det_vjp(node, ct, nb, needed=None):
    return [_trailing(ct * node, 2) * mT(inv(node.inputs[0]))]


@logdet_op.defjvp
def _logdet_jvp(node, ts, nb):
    return _trace_of_product(inv(node.inputs[0]), ts[0], nb)


@logdet_op.defvjp
def _logdet_vjp(node, ct, nb, needed=None):
    return [_trailing(ct, 2) * mT(inv(node.inputs[0]))]


# -- solve -------------------------------------------------------------------------------------
def _solve_infer(inputs, attrs):
    a, b = inputs
    if a.ndim < 2 or not shapes.same_dim(a.shape[-1], a.shape[-2]):
        raise ShapeError(f"solve: A must be a square matrix or a batch of them (..., n, n), got "
                         f"{format_shape(a.shape)}")
    if b.ndim < 2:
        raise ShapeError(f"solve: the solve op takes b as (..., n, k), got {format_shape(b.shape)} "
                         "(sd.solve lifts a vector)")
    if a.dtype != b.dtype or not dtypes.is_float(a.dtype):
        raise TypeError(f"solve: A and b must have one float dtype, got {a.dtype} and {b.dtype}")
    if not shapes.same_dim(a.shape[-1], b.shape[-2]):
        raise ShapeError(f"solve: A {format_shape(a.shape)} and b {format_shape(b.shape)}: b needs "
                         f"{a.shape[-1]} rows")
    batch = shapes.broadcast_shapes("solve", a.shape[:-2], b.shape[:-2])
    return batch + b.shape[-2:], a.dtype


def _solve_flops(node):
    a, b = node.inputs
    n, k = a.shape[-1], b.shape[-1]
    return shapes.numel(node.shape[:-2]) * (sympy.Rational(2, 3) * n**3 + 2 * n**2 * k)


def _solve_numpy(a, b):
    a = np.asarray(a)
    batch = np.broadcast_shapes(a.shape[:-2], np.shape(b)[:-2])
    a = np.broadcast_to(a, batch + a.shape[-2:])
    b = np.broadcast_to(b, batch + np.shape(b)[-2:])
    return _checked("solve", np.linalg.solve, a, b)


solve_op = Op("solve", infer=_solve_infer, kernel=LINALG, flops=_solve_flops,
              evaluate=lambda v, at, s, b: _solve_numpy(v[0], v[1]),
              doc="x with A·x = b, for a batch of matrices b (..., n, k)")


@solve_op.defsymbolic
def _solve_symbolic(values, attrs, out_shape, bindings):
    a, b = (np.asarray(v, dtype=object) for v in values)
    batch = tuple(out_shape[:-2])
    a, b = np.broadcast_to(a, batch + a.shape[-2:]), np.broadcast_to(b, batch + b.shape[-2:])
    out = np.empty(tuple(out_shape), dtype=object)
    for index in np.ndindex(*batch):
        out[index] = np.array(sympy.Matrix(_symbolic_inverse(sympy.Matrix(a[index]))) * sympy.Matrix(b[index]),
                              dtype=object)
    return out


@solve_op.defjvp
def _solve_jvp(node, ts, nb):
    a = node.inputs[0]
    ta, tb = ts
    lead = (ta if ta is not None else tb).shape[:nb]
    rank = node.ndim - 2
    rhs = _aligned(tb, lead, rank) if tb is not None else None
    if ta is not None:
        term = _aligned(ta, lead, rank) @ node
        rhs = -term if rhs is None else rhs - term
    return _solve(a, rhs)


@solve_op.defvjp
def _solve_vjp(node, ct, nb, needed=None):
    needed = needed or (True, True)
    a, b = node.inputs
    db = _solve(mT(a), ct)  # lead + the batch of x
    da = sum_to(-(db @ mT(node)), nb, a.shape) if needed[0] else None
    return [da, sum_to(db, nb, b.shape) if needed[1] else None]


def _solve(a, b):
    return make(solve_op, (a, b))


# -- diag (vector -> matrix) and diagonal (matrix -> vector) ------------------------------------
def _diag_infer(inputs, attrs):
    (v,) = inputs
    if v.ndim < 1:
        raise ShapeError("diag: needs a vector (or a batch of them), got a scalar")
    return v.shape + v.shape[-1:], v.dtype


diag_embed_op = Op("diag_embed", infer=_diag_infer, kernel=INDEXED,
                   evaluate=lambda v, at, s, b: _diag_embed(v[0]),
                   doc="the diagonal matrix of a vector, over the last axis (PyTorch's diag_embed)")


def _diag_embed(v):
    v = np.asarray(v)
    out = np.zeros(v.shape + v.shape[-1:], dtype=v.dtype)
    n = v.shape[-1]
    out[..., np.arange(n), np.arange(n)] = v
    return out


def _diagonal_size(a):
    n, m = a.shape[-2:]
    if shapes.same_dim(n, m):
        return n
    if isinstance(n, int) and isinstance(m, int):
        return min(n, m)
    raise ShapeError(f"diagonal: the sizes of {format_shape(a.shape)} must be equal or known integers")


def _diagonal_infer(inputs, attrs):
    (a,) = inputs
    if a.ndim < 2:
        raise ShapeError(f"diagonal: needs at least two axes, got {format_shape(a.shape)}")
    return a.shape[:-2] + (_diagonal_size(a),), a.dtype


diagonal_op = Op("diagonal", infer=_diagonal_infer, kernel=INDEXED,
                 print_attrs=(Shown("axis1", default=0), Shown("axis2", default=1)),
                 evaluate=lambda v, at, s, b: np.diagonal(v[0], axis1=-2, axis2=-1).copy(),
                 doc="the diagonal of the last two axes")


@diag_embed_op.defjvp
def _diag_jvp(node, ts, nb):
    return make(diag_embed_op, (ts[0],))


@diag_embed_op.defvjp
def _diag_vjp(node, ct, nb, needed=None):
    return [_diagonal(ct)]


@diagonal_op.defjvp
def _diagonal_jvp(node, ts, nb):
    return _diagonal(ts[0])


@diagonal_op.defvjp
def _diagonal_vjp(node, ct, nb, needed=None):
    a = node.inputs[0]
    full = make(diag_embed_op, (ct,))
    n, m, k = a.shape[-2], a.shape[-1], node.shape[-1]
    if shapes.same_dim(n, m):
        return [full]
    return [pad(full, ((0, 0),) * (full.ndim - 2) + ((0, n - k), (0, m - k)))]


def _diagonal(a):
    return make(diagonal_op, (a,), axis1=a.ndim - 2, axis2=a.ndim - 1)


# -- kron --------------------------------------------------------------------------------------
def _kron_infer(inputs, attrs):
    a, b = inputs
    if a.ndim < 2 or b.ndim < 2:
        raise ShapeError(f"kron: the kron op takes matrices (..., m, n), got {format_shape(a.shape)} and "
                         f"{format_shape(b.shape)} (sd.kron lifts vectors)")
    if a.dtype != b.dtype:
        raise TypeError(f"kron: operands must have one dtype, got {a.dtype} and {b.dtype}")
    batch = shapes.broadcast_shapes("kron", a.shape[:-2], b.shape[:-2])
    return batch + (a.shape[-2] * b.shape[-2], a.shape[-1] * b.shape[-1]), a.dtype


def _kron_numpy(a, b):
    a, b = np.asarray(a), np.asarray(b)
    (m, n), (p, q) = a.shape[-2:], b.shape[-2:]
    out = a[..., :, None, :, None] * b[..., None, :, None, :]
    return out.reshape(out.shape[:-4] + (m * p, n * q))


kron_op = Op("kron", infer=_kron_infer, kernel=INDEXED,
             flops=lambda node: shapes.numel(node.shape),
             evaluate=lambda v, at, s, b: _kron_numpy(v[0], v[1]),
             doc="the Kronecker product of the last two axes")


@kron_op.defjvp
def _kron_jvp(node, ts, nb):
    a, b = node.inputs
    ta, tb = ts
    lead = (ta if ta is not None else tb).shape[:nb]
    rank = node.ndim - 2
    total = None
    if ta is not None:
        total = make(kron_op, (_aligned(ta, lead, rank), b))
    if tb is not None:
        term = make(kron_op, (a, _aligned(tb, lead, rank)))
        total = term if total is None else total + term
    return total


@kron_op.defvjp
def _kron_vjp(node, ct, nb, needed=None):
    needed = needed or (True, True)
    a, b = node.inputs
    (m, n), (p, q) = a.shape[-2:], b.shape[-2:]
    c4 = reshape(ct, ct.shape[:-2] + (m, p, n, q))
    last = c4.ndim
    da = db = None
    if needed[0]:
        bb = reshape(b, b.shape[:-2] + (1, p, 1, q))
        da = sum_to(sum_(c4 * bb, axis=(last - 3, last - 1)), nb, a.shape)
    if needed[1]:
        aa = reshape(a, a.shape[:-2] + (m, 1, n, 1))
        db = sum_to(sum_(c4 * aa, axis=(last - 4, last - 2)), nb, b.shape)
    return [da, db]


# -- norm --------------------------------------------------------------------------------------
def _norm_infer(inputs, attrs):
    (x,) = inputs
    if not dtypes.is_float(x.dtype):
        raise TypeError(f"norm: needs a float input, got {x.dtype}")
    return (), x.dtype


def _norm_symbolic(values, attrs, out_shape, bindings):
    x = np.asarray(values[0], dtype=object)
    return np.array(sympy.sqrt(sum((e**2 for e in x.flat), sympy.Integer(0))), dtype=object)


norm_op = Op("norm", infer=_norm_infer, kernel=INDEXED,
             flops=lambda node: 2 * shapes.numel(node.inputs[0].shape),
             evaluate=lambda v, at, s, b: np.linalg.norm(np.ravel(v[0])),
             doc="the 2-norm of all elements (a vector's 2-norm, a matrix's Frobenius norm)")
norm_op.defsymbolic(_norm_symbolic)


def _unit(node):
    """x/‖x‖, written x / where(‖x‖ > 0, ‖x‖, 1): at x = 0 it is 0/1 = 0, the subgradient."""
    return node.inputs[0] / where(node > 0, node, 1.0)


@norm_op.defjvp
def _norm_jvp(node, ts, nb):
    t = ts[0]
    return sum_(_unit(node) * t, axis=tuple(range(nb, t.ndim)))


@norm_op.defvjp
def _norm_vjp(node, ct, nb, needed=None):
    return [_trailing(ct, node.inputs[0].ndim) * _unit(node)]


# -- public functions --------------------------------------------------------------------------
def _float_matrix(name, a):
    a = as_node(a)
    if a.dtype in ("int64", "bool"):
        a = a.astype("float64")
    return a


@function
def inv(a) -> Node:
    """The inverse of a square matrix, or of each matrix of a batch ``(..., n, n)``; a singular
    one is an error (the module's policy).

    >>> import symdiff as sd
    >>> A = sd.tensor("A", (2, 2))
    >>> sd.evaluate(sd.inv(A), {A: [[2.0, 0.0], [0.0, 4.0]]}).tolist()
    [[0.5, 0.0], [0.0, 0.25]]
    >>> sd.evaluate(sd.inv(A), {A: [[1.0, 2.0], [2.0, 4.0]]})
    Traceback (most recent call last):
    ...
    symdiff.ops.matrix.LinAlgError: inv: the matrix of (2, 2) is singular (a zero pivot in its LU factorization with partial pivoting)
    """
    return make(inv_op, (_float_matrix("inv", a),))


@function
def det(a) -> Node:
    """The determinant of a square matrix (a batch: one per matrix); 0 for a singular one.

    >>> import symdiff as sd
    >>> A = sd.tensor("A", (2, 2))
    >>> float(sd.evaluate(sd.det(A), {A: [[1.0, 2.0], [3.0, 4.0]]}))
    -2.0000000000000004
    """
    return make(det_op, (_float_matrix("det", a),))


@function
def logdet(a) -> Node:
    """log|det A|, computed from the LU factorization (no overflow of det itself); −inf for a
    singular matrix. Its gradient is A⁻ᵀ.

    >>> import symdiff as sd
    >>> A = sd.tensor("A", (2, 2))
    >>> round(float(sd.evaluate(sd.logdet(A), {A: [[1e200, 0.0], [0.0, 1e200]]})), 3)
    921.034
    """
    return make(logdet_op, (_float_matrix("logdet", a),))


@function
def slogdet(a) -> tuple:
    """numpy's ``slogdet``: (sign, log|det A|). The sign has no derivative (it is piecewise
    constant); the log is :func:`logdet`.

    >>> import symdiff as sd
    >>> A = sd.tensor("A", (2, 2))
    >>> sign, logabs = sd.slogdet(A)
    >>> [float(v) for v in sd.evaluate([sign, logabs], {A: [[0.0, 2.0], [3.0, 0.0]]})]
    [-1.0, 1.791759469228055]
    """
    a = _float_matrix("slogdet", a)
    return make(slogdet_sign_op, (a,)), make(logdet_op, (a,))


@function
def slogdet_sign(a) -> Node:
    """The sign of det A (−1, 0 or 1), slogdet's first result, from the LU factorization (no
    overflow or underflow of det itself); no derivative.

    >>> import symdiff as sd
    >>> A = sd.tensor("A", (2, 2))
    >>> float(sd.evaluate(sd.slogdet_sign(A), {A: [[1e-200, 0.0], [0.0, -1e-200]]}))
    -1.0
    """
    return make(slogdet_sign_op, (_float_matrix("slogdet", a),))


@function
def solve(a, b) -> Node:
    """x with A·x = b, numpy's ``solve``: ``b`` a vector ``(n,)`` or a batch of matrices
    ``(..., n, k)``; the batch axes broadcast. A singular A is an error.

    >>> import symdiff as sd
    >>> A, b = sd.tensor("A", (2, 2)), sd.tensor("b", (2,))
    >>> sd.evaluate(sd.solve(A, b), {A: [[2.0, 0.0], [0.0, 4.0]], b: [1.0, 1.0]}).tolist()
    [0.5, 0.25]
    """
    a, b = _float_matrix("solve", a), _float_matrix("solve", b)
    common = dtypes.promote(a.dtype, b.dtype)
    a, b = a.astype(common), b.astype(common)
    if a.ndim < 2:
        raise ShapeError(f"solve: A must be a square matrix or a batch of them (..., n, n), got "
                         f"{format_shape(a.shape)}")
    if b.ndim == 1:  # numpy 2: a 1-D b is a vector, the batch comes from A
        if not shapes.same_dim(a.shape[-1], b.shape[0]):
            raise ShapeError(f"solve: A {format_shape(a.shape)} and b {format_shape(b.shape)}: b needs "
                             f"{a.shape[-1]} entries")
        x = _solve(a, reshape(b, b.shape + (1,)))
        return reshape(x, x.shape[:-1])
    if b.ndim == 0:
        raise ShapeError("solve: b must be a vector or a matrix, got a scalar")
    return _solve(a, b)


@function
def diag(v) -> Node:
    """numpy's ``diag`` (offset 0): a vector's diagonal matrix, or a matrix's diagonal.

    >>> import symdiff as sd
    >>> v = sd.tensor("v", (2,))
    >>> sd.evaluate(sd.diag(v), {v: [1.0, 2.0]}).tolist()
    [[1.0, 0.0], [0.0, 2.0]]
    """
    v = as_node(v)
    if v.ndim == 1:
        return make(diag_embed_op, (v,))
    if v.ndim == 2:
        return diagonal(v)
    raise ShapeError(f"diag: needs a vector or a matrix, got {format_shape(v.shape)} (diag_embed and "
                     "diagonal take batches)")


@function
def diag_embed(v) -> Node:
    """PyTorch's ``diag_embed``: each vector along the last axis as a diagonal matrix."""
    return make(diag_embed_op, (as_node(v),))


@function
def diagonal(a, offset=0, axis1=0, axis2=1) -> Node:
    """numpy's ``diagonal``: the diagonal of axes ``axis1``, ``axis2`` (``offset`` above or below
    it), as the last axis of the result.

    >>> import symdiff as sd
    >>> A = sd.tensor("A", (2, 3))
    >>> sd.evaluate(sd.diagonal(A, 1), {A: [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]}).tolist()
    [2.0, 6.0]
    """
    a = as_node(a)
    if a.ndim < 2:
        raise ShapeError(f"diagonal: needs at least two axes, got {format_shape(a.shape)}")
    i = shapes.normalize_axis(axis1, a.ndim, "diagonal")
    j = shapes.normalize_axis(axis2, a.ndim, "diagonal")
    if i == j:
        raise ShapeError(f"diagonal: axis1 and axis2 must differ, got {axis1} and {axis2}")
    others = [d for d in range(a.ndim) if d not in (i, j)]
    a = transpose(a, tuple(others + [i, j]))
    if not isinstance(offset, int) or isinstance(offset, bool):
        raise TypeError(f"diagonal: offset must be an int, got {offset!r}")
    if offset:
        index = (Ellipsis, slice(None), slice(offset, None)) if offset > 0 else \
            (Ellipsis, slice(-offset, None), slice(None))
        a = getitem(a, index)
    return _diagonal(a)


@function
def kron(a, b) -> Node:
    """numpy's ``kron`` of two vectors or two matrices: A ⊗ B, the blocks a_ij·B.

    >>> import symdiff as sd
    >>> A, B = sd.tensor("A", (2, 2)), sd.tensor("B", (1, 2))
    >>> sd.evaluate(sd.kron(A, B), {A: [[1.0, 2.0], [3.0, 4.0]], B: [[1.0, 10.0]]}).tolist()
    [[1.0, 10.0, 2.0, 20.0], [3.0, 30.0, 4.0, 40.0]]
    """
    a, b = as_node(a), as_node(b)
    common = dtypes.promote(a.dtype, b.dtype)
    a, b = a.astype(common), b.astype(common)
    if a.ndim == b.ndim == 1:
        k = make(kron_op, (reshape(a, (1,) + a.shape), reshape(b, (1,) + b.shape)))
        return reshape(k, k.shape[1:])
    if a.ndim == b.ndim == 2:
        return make(kron_op, (a, b))
    raise ShapeError(f"kron: takes two vectors or two matrices, got {format_shape(a.shape)} and "
                     f"{format_shape(b.shape)}")


@function
def norm(x, ord=None, axis=None) -> Node:
    """numpy's ``norm`` with its defaults (``ord=None, axis=None``): the 2-norm of all the
    elements, a vector's length or a matrix's Frobenius norm. Its gradient is x/‖x‖, and 0 at
    x = 0 (a subgradient; x/‖x‖ would be NaN there).

    >>> import symdiff as sd
    >>> v = sd.tensor("v", (2,))
    >>> float(sd.evaluate(sd.norm(v), {v: [3.0, 4.0]}))
    5.0
    >>> sd.evaluate(sd.grad(sd.norm(v), v), {v: [0.0, 0.0]}).tolist()
    [0.0, 0.0]
    """
    if ord is not None or axis is not None:
        raise NotImplementedError(f"norm: only ord=None, axis=None (the 2-norm of all elements) so far, got "
                                  f"ord={ord!r}, axis={axis!r}")
    return make(norm_op, (_float_matrix("norm", x),))


@function
def outer(a, b) -> Node:
    """numpy's ``outer``: a·bᵀ of the flattened inputs (a matrix product of a column and a row).

    >>> import symdiff as sd
    >>> a, b = sd.tensor("a", (2,)), sd.tensor("b", (3,))
    >>> print(sd.pretty(sd.outer(a, b)))
    a·bᵀ
    """
    a, b = as_node(a), as_node(b)
    return matmul(reshape(a, (-1, 1)), reshape(b, (1, -1)))

