"""Jacobian and Hessian sparsity patterns read from the graph, and the colouring that uses them.

:func:`sparsity` propagates, node by node, which input elements each element depends on (a
boolean matrix per node: its elements × the leaf's elements), as CasADi and Symbolics.jl do:

- elementwise ops keep each element's dependence (the union over their inputs);
- reductions (sum, max, logsumexp) union over the reduced axes; softmax-like ops over their axis;
- matmul unions along the contraction (row i of A and column j of B feed element (i, j));
- movement ops (reshape, transpose, broadcast_to, getitem, flip, concatenate, pad, dilate)
  move the dependence with the elements: they are run on labelled elements to see which
  input element lands where;
- ops that are not differentiable (comparisons, sign, argmax) and stop_gradient depend on nothing;
- every other op is treated conservatively: each output element depends on everything any
  input depends on. A pattern is therefore a superset of the true nonzeros, never a subset.

Sizes must be concrete. :func:`colour_columns` is a greedy distance-1 colouring of the column
intersection graph: columns that share no row get one colour, so one JVP per colour computes
them all (``sd.jacobian(F, x, sparse=True, at=...)``).

>>> import symdiff as sd
>>> x = sd.tensor("x", (5,))
>>> p = sd.pad(x, ((1, 1),))
>>> laplacian = p[:-2] - 2 * x + p[2:]
>>> S = sd.sparsity(laplacian, x)
>>> print(S)
■■···
■■■··
·■■■·
··■■■
···■■
>>> S.nnz, int(colour_columns(S.pattern).max()) + 1
(13, 3)
"""

from __future__ import annotations

import html

import numpy as np

from . import shapes
from .graph import toposort
from .node import Node, as_node
from .ops.registry import function
from .results import origin_of

_MOVEMENT = {"broadcast_to", "reshape", "transpose", "flip", "getitem", "concatenate", "pad", "dilate",
             "diagonal", "diag_embed"}
_REDUCTIONS = {"sum", "max", "logsumexp"}
_ALONG_AXIS = {"softmax", "log_softmax"}


class SparsityPattern:
    """The boolean pattern of a Jacobian, flattened: ``pattern[i, j]`` is True where output element
    ``i`` may depend on input element ``j``. ``shape`` is the Jacobian's (f.shape + wrt.shape)."""

    def __init__(self, pattern: np.ndarray, shape: tuple, of: str = "", wrt: str = ""):
        self.pattern = np.asarray(pattern, dtype=bool)
        self.shape = tuple(shape)
        self.of, self.wrt = of, wrt

    @property
    def nnz(self) -> int:
        return int(self.pattern.sum())

    @property
    def density(self) -> float:
        return self.nnz / self.pattern.size if self.pattern.size else 0.0

    def __str__(self):
        return "\n".join("".join("■" if v else "·" for v in row) for row in self.pattern)

    def __repr__(self):
        m, n = self.pattern.shape
        return f"SparsityPattern({m}×{n}, nnz={self.nnz})"

    def _repr_html_(self):
        cells = "".join("<tr>" + "".join(
            f'<td style="width:8px;height:8px;padding:0;background:{"#333" if v else "#eee"}"></td>'
            for v in row) + "</tr>" for row in self.pattern)
        m, n = self.pattern.shape
        title = html.escape(f"∂{self.of}/∂{self.wrt}: " if self.of else "")
        return (f"<p>{title}{m}×{n}, {self.nnz} structural nonzeros ({self.density:.0%})</p>"
                f'<table style="border-collapse:collapse">{cells}</table>')


class SparseJacobian:
    """A Jacobian's values at a point, computed from ``products`` compressed JVPs ("forward") or
    VJPs ("reverse"), one per colour. ``dense`` has the Jacobian's shape; ``rows, cols, values``
    are its structural nonzeros in the flattened (outputs × inputs) layout.
    ``np.asarray(J)`` gives the dense array."""

    def __init__(self, pattern: SparsityPattern, dense2d: np.ndarray, mode: str, products: int, colours, shape):
        self.pattern = pattern
        self.mode = mode
        self.products = products
        self.colours = np.asarray(colours)
        self.rows, self.cols = np.nonzero(pattern.pattern)
        self.values = dense2d[self.rows, self.cols]
        self.dense = dense2d.reshape(shape)

    def __array__(self, dtype=None, copy=None):
        return self.dense if dtype is None else self.dense.astype(dtype)

    def __repr__(self):
        m, n = self.pattern.pattern.shape
        return (f"SparseJacobian({m}×{n}, nnz={self.pattern.nnz}, {self.products} {self.mode} products "
                f"instead of {n if self.mode == 'forward' else m})")

    def _repr_html_(self):
        return f"<p>{html.escape(repr(self))}</p>" + self.pattern._repr_html_()


def _concrete(shape, what):
    if not all(isinstance(d, int) for d in shape):
        raise shapes.ShapeError(f"sparsity needs concrete sizes; {what} has shape {shapes.format_shape(shape)}")
    return shape


def _numel(shape) -> int:
    return int(np.prod(shape, dtype=np.int64)) if shape else 1


def _moved(node, deps, n):
    """Dependence of a movement op: run it on labelled elements (labels k + 1, and 2(k + 1) to tell
    a moved element from a filled-in constant) and read which input element lands where."""
    runs = []
    for scale in (1, 2):
        values, offset = [], 0
        for i in node.inputs:
            size = _numel(i.shape)
            if i.dtype.startswith("float"):
                values.append((scale * (offset + 1 + np.arange(size, dtype=np.float64))).reshape(i.shape))
                offset += size
            else:
                return None  # integer operands (indices): the caller treats the op conservatively
        runs.append(np.asarray(node.op.evaluate(values, node.attrs, node.shape, {}), np.float64).reshape(-1))
    first, second = runs
    moved = (second == 2 * first) & (first >= 1)
    source = np.where(moved, first, 1).astype(np.int64) - 1
    stacked = np.concatenate([deps[id(i)] for i in node.inputs], axis=0)
    return stacked[source] & moved[:, None]


def _reduced(node, d, n):
    (a,) = node.inputs
    axis = node.attr("axis")
    full = d.reshape(a.shape + (n,))
    out = full.any(axis=tuple(axis), keepdims=bool(node.attr("keepdims"))) if axis else full.any(
        axis=tuple(range(a.ndim)), keepdims=bool(node.attr("keepdims")))
    return out.reshape(-1, n)


def _along_axis(node, d, n):
    (a,) = node.inputs[:1]
    axis = node.attr("axis")
    axis = tuple(axis) if isinstance(axis, tuple) else (axis if axis is not None else -1,)
    full = d.reshape(a.shape + (n,))
    axis = tuple(ax % a.ndim for ax in axis)
    return np.broadcast_to(full.any(axis=axis, keepdims=True), full.shape).reshape(-1, n)


def _matmul(node, deps, n):
    a, b = node.inputs
    da, db = deps[id(a)].reshape(a.shape + (n,)), deps[id(b)].reshape(b.shape + (n,))
    if a.ndim == 1:
        da = da[None]
    if b.ndim == 1:
        db = db[..., None, :]
    rows = da.any(axis=-2)  # (..., i, n): everything row i of A depends on
    cols = db.any(axis=-3)  # (..., j, n): everything column j of B depends on
    out = rows[..., :, None, :] | cols[..., None, :, :]
    return np.broadcast_to(out, out.shape).reshape(-1, n) if out.size else out.reshape(-1, n)


def dependence(f: Node, w: Node) -> np.ndarray:
    """Boolean matrix (numel(f) × numel(w)): which elements of leaf ``w`` each element of ``f`` depends on."""
    n = _numel(_concrete(w.shape, w.name))
    deps = {}
    for node in toposort([f]):
        size = _numel(_concrete(node.shape, str(node).split("\n")[0][:60]))
        name = node.op.name
        if node is w:
            d = np.eye(n, dtype=bool)
        elif not node.inputs or not node.op.differentiable or name == "stop_gradient":
            d = np.zeros((size, n), dtype=bool)
        elif getattr(node.op, "kind", "") == "elementwise":
            d = np.zeros((size, n), dtype=bool)
            for i in node.inputs:
                d |= deps[id(i)]
        elif name in _MOVEMENT:
            d = _moved(node, deps, n)
        elif name in _REDUCTIONS:
            d = _reduced(node, deps[id(node.inputs[0])], n)
        elif name in _ALONG_AXIS:
            d = _along_axis(node, deps[id(node.inputs[0])], n)
        elif name == "matmul":
            d = _matmul(node, deps, n)
        else:
            d = None
        if d is None:  # conservative: everything the inputs depend on, for every element
            union = np.zeros(n, dtype=bool)
            for i in node.inputs:
                union |= deps[id(i)].any(axis=0)
            d = np.broadcast_to(union, (size, n))
        deps[id(node)] = np.ascontiguousarray(d, dtype=bool).reshape(size, n)
    return deps[id(f)]


@function
def sparsity(expr, wrt=None) -> SparsityPattern:
    """The structural sparsity pattern of the Jacobian of ``expr`` with respect to leaf ``wrt``.

    ``expr`` may also be a Jacobian built by ``sd.jacobian`` or a Hessian block built by
    ``sd.hessian`` (then ``wrt`` is known: the pattern is read from the function it differentiates,
    for a Hessian the gradient). For a Hessian pattern of a scalar ``f`` pass ``sd.grad(f, x)``.

    >>> import symdiff as sd
    >>> x = sd.tensor("x", (4,))
    >>> print(sd.sparsity(sd.hessian(sd.sum(sd.sin(x)), x)))
    ■···
    ·■··
    ··■·
    ···■
    """
    if wrt is None:
        origin = origin_of(expr)
        if origin is None:
            raise TypeError("sparsity: give wrt (a leaf), or a Jacobian made by sd.jacobian / sd.hessian")
        expr, wrt = origin
    f = as_node(expr)
    if not isinstance(wrt, Node) or not wrt.is_leaf:
        raise TypeError(f"sparsity: wrt must be one leaf, got {wrt!r}")
    pattern = dependence(f, wrt)
    return SparsityPattern(pattern, f.shape + wrt.shape, of=str(f) if len(str(f)) < 40 else "f", wrt=wrt.name)


def colour_columns(pattern: np.ndarray) -> np.ndarray:
    """Greedy distance-1 colouring of the column intersection graph (columns conflict when they
    share a row), in column order: colour[j] for each column; a column with no nonzero gets -1.

    >>> colour_columns(np.eye(3, dtype=bool)).tolist()
    [0, 0, 0]
    """
    P = np.asarray(pattern, dtype=bool)
    m, n = P.shape
    colours = np.full(n, -1, dtype=np.int64)
    row_colours = [set() for _ in range(m)]  # colours already used in each row
    for j in range(n):
        rows = np.nonzero(P[:, j])[0]
        if not rows.size:
            continue
        taken = set().union(*(row_colours[i] for i in rows))
        c = 0
        while c in taken:
            c += 1
        colours[j] = c
        for i in rows:
            row_colours[i].add(c)
    return colours
