"""Movement ops: broadcast_to, reshape, transpose, flip, indexing, take, concatenate.

They move or copy elements without arithmetic (FLOPs 0). Shapes may be symbolic.
Each op's JVP and VJP follow its declaration. Tangents and cotangents carry ``nb``
leading batch axes (0 or 1) so that forward-mode gradients and Jacobians are one
batched pass; ``lead`` is that batch prefix of the shape.

>>> import symdiff as sd
>>> X = sd.tensor("X", ("m", "n"))
>>> X.T.shape
(n, m)
>>> X[:, 1:].shape
(m, n - 1)
"""

from __future__ import annotations

import numpy as np
import sympy

from .. import dtypes, shapes
from ..node import Node, as_node, constant, make
from ..shapes import ShapeError, format_shape
from .registry import Op, Shown, function
from .sympy_functions import stopped

# The lowest op family: it imports no other (symdiff.expr draws the layers). Its rules reach the
# families above through the Expr methods: a.astype(dtype), x.sum(axis), as for arithmetic.


# -- broadcast_to --------------------------------------------------------------------------
def _broadcast_infer(inputs, attrs):
    (a,), target = inputs, attrs["shape"]
    if len(a.shape) > len(target):
        raise ShapeError(f"broadcast_to: cannot broadcast {format_shape(a.shape)} to {format_shape(target)}")
    for d, t in zip(a.shape[::-1], target[::-1]):
        if not (shapes.is_one(d) or shapes.same_dim(d, t)):
            raise ShapeError(f"broadcast_to: cannot broadcast {format_shape(a.shape)} to {format_shape(target)}")
    return target, a.dtype


SHAPE = Shown("shape", positional=True)

# numpy leaves broadcasting implicit, and so does the printer
broadcast_to_op = Op(
    "broadcast_to", infer=_broadcast_infer, view=True, implicit=True, print_attrs=(SHAPE,),
    evaluate=lambda v, attrs, out_shape, b: np.broadcast_to(v[0], out_shape),
)


@broadcast_to_op.defjvp
def _broadcast_to_jvp(node, ts, nb):
    t, lead = ts[0], ts[0].shape[:nb]
    return broadcast_to(reshape(t, lead + (1,) * (node.ndim - node.inputs[0].ndim) + node.inputs[0].shape),
                        lead + node.shape)


@broadcast_to_op.defvjp
def _broadcast_to_vjp(node, ct, nb, needed=None):
    return [sum_to(ct, nb, node.inputs[0].shape)]


@function
def broadcast_to(a, shape) -> Node:
    """``a`` repeated along new or size-1 axes to ``shape`` (numpy rules).

    >>> import symdiff as sd
    >>> sd.broadcast_to(sd.symbols("x"), (2, 3)).shape
    (2, 3)
    """
    a = as_node(a)
    shape = shapes.shape(shape)
    if len(shape) == len(a.shape) and all(map(shapes.same_dim, shape, a.shape)):
        return a
    return make(broadcast_to_op, (a,), shape=shape)


# -- reshape -------------------------------------------------------------------------------
def _reshape_infer(inputs, attrs):
    (a,), target = inputs, attrs["shape"]
    if not shapes.same_dim(shapes.numel(a.shape), shapes.numel(target)):
        raise ShapeError(f"reshape: cannot reshape {format_shape(a.shape)} into {format_shape(target)}")
    return target, a.dtype


reshape_op = Op("reshape", infer=_reshape_infer, view=True, print_attrs=(SHAPE,),
                evaluate=lambda v, attrs, out_shape, b: np.reshape(v[0], out_shape))


@reshape_op.defjvp
def _reshape_jvp(node, ts, nb):
    return reshape(ts[0], ts[0].shape[:nb] + node.shape)


@reshape_op.defvjp
def _reshape_vjp(node, ct, nb, needed=None):
    return [reshape(ct, ct.shape[:nb] + node.inputs[0].shape)]


@function
def reshape(a, shape) -> Node:
    """``a`` with a new shape of the same size; one dimension may be -1 (inferred).

    >>> import symdiff as sd
    >>> sd.reshape(sd.tensor("X", (2, 3)), (3, -1)).shape
    (3, 2)
    """
    a = as_node(a)
    if isinstance(shape, (int, str, sympy.Basic)):
        shape = (shape,)
    shape = list(shape)
    unknown = [i for i, d in enumerate(shape) if isinstance(d, int) and d == -1]
    if len(unknown) > 1:
        raise ShapeError(f"reshape: only one dimension can be -1, got {tuple(shape)}")
    if unknown:
        known = shapes.numel([shapes.dim(d) for i, d in enumerate(shape) if i != unknown[0]])
        total = shapes.numel(a.shape)
        inferred = sympy.simplify(sympy.sympify(total) / known) if known != 0 else None
        if inferred is None or not (inferred.is_Integer or (inferred.is_integer and inferred.free_symbols)):
            raise ShapeError(f"reshape: cannot reshape {format_shape(a.shape)} into {tuple(shape)}")
        shape[unknown[0]] = inferred
    shape = shapes.shape(shape)
    if len(shape) == len(a.shape) and all(map(shapes.same_dim, shape, a.shape)):
        return a
    return make(reshape_op, (a,), shape=shape)


@function
def expand_dims(a, axis: int) -> Node:
    """``a`` with a new axis of size 1 at ``axis``."""
    a = as_node(a)
    axis = shapes.normalize_axis(axis, a.ndim + 1, "expand_dims")
    return reshape(a, a.shape[:axis] + (1,) + a.shape[axis:])


@function
def squeeze(a, axis=None) -> Node:
    """``a`` without its size-1 axes (or only those in ``axis``)."""
    a = as_node(a)
    axes = [i for i, d in enumerate(a.shape) if d == 1] if axis is None else shapes.normalize_axes(axis, a.ndim, "squeeze")
    for i in axes:
        if a.shape[i] != 1:
            raise ShapeError(f"squeeze: axis {i} of {format_shape(a.shape)} does not have size 1")
    return reshape(a, tuple(d for i, d in enumerate(a.shape) if i not in axes))


# -- transpose -----------------------------------------------------------------------------
def _transpose_infer(inputs, attrs):
    (a,), axes = inputs, attrs["axes"]
    if sorted(axes) != list(range(a.ndim)):
        raise ShapeError(f"transpose: axes {axes} are not a permutation of the {a.ndim} axes of {format_shape(a.shape)}")
    return tuple(a.shape[i] for i in axes), a.dtype


def _reversed_axes(node):
    return tuple(range(node.ndim))[::-1]


transpose_op = Op("transpose", infer=_transpose_infer, view=True,
                  print_attrs=(Shown("axes", positional=True, default=_reversed_axes),),
                  evaluate=lambda v, attrs, out_shape, b: np.transpose(v[0], attrs["axes"]))


def _shifted(axes, nb):
    return tuple(range(nb)) + tuple(a + nb for a in axes)


@transpose_op.defjvp
def _transpose_jvp(node, ts, nb):
    return transpose(ts[0], _shifted(node.attr("axes"), nb))


@transpose_op.defvjp
def _transpose_vjp(node, ct, nb, needed=None):
    return [transpose(ct, _shifted(tuple(np.argsort(node.attr("axes"))), nb))]


@function
def transpose(a, axes=None) -> Node:
    """``a`` with its axes permuted (reversed when ``axes`` is None), as numpy.

    >>> import symdiff as sd
    >>> sd.transpose(sd.tensor("A", (2, 3, 4)), (0, 2, 1)).shape
    (2, 4, 3)
    """
    a = as_node(a)
    if axes is None:
        axes = tuple(range(a.ndim))[::-1]
    axes = tuple(shapes.normalize_axis(i, a.ndim, "transpose") for i in axes)
    if axes == tuple(range(a.ndim)):
        if len(axes) != a.ndim:
            raise ShapeError(f"transpose: axes {axes} do not match {format_shape(a.shape)}")
        return a
    return make(transpose_op, (a,), axes=axes)


function(transpose, name="permute_dims")


# -- flip ----------------------------------------------------------------------------------
def _flip_infer(inputs, attrs):
    return inputs[0].shape, inputs[0].dtype


def _all_axes(node):
    return tuple(range(node.ndim))


# numpy makes a view (negative strides); lowering reads it by index arithmetic, i -> d - 1 - i
flip_op = Op("flip", infer=_flip_infer, view=True, print_attrs=(Shown("axis", default=_all_axes),),
             evaluate=lambda v, attrs, out_shape, b: np.flip(v[0], attrs["axis"]))


@flip_op.defjvp
def _flip_jvp(node, ts, nb):
    return flip(ts[0], tuple(a + nb for a in node.attr("axis")))


@flip_op.defvjp
def _flip_vjp(node, ct, nb, needed=None):  # flip is its own inverse and its own transpose
    return [flip(ct, tuple(a + nb for a in node.attr("axis")))]


@function
def flip(a, axis=None) -> Node:
    """``a`` with the order of its elements reversed along ``axis`` (an int, a tuple of ints, or
    None for every axis; negative axes count from the end), as ``numpy.flip``.

    >>> import symdiff as sd
    >>> X = sd.tensor("X", ("m", 3))
    >>> print(sd.flip(X, -1))
    flip(X, axis=1)
    >>> print(sd.flip(X))
    flip(X)
    >>> sd.flip(X, 2)
    Traceback (most recent call last):
    ...
    symdiff.shapes.ShapeError: flip: axis 2 is out of range for an array of shape (m, 3)
    """
    a = as_node(a)
    axes = tuple(range(a.ndim)) if axis is None else tuple(axis) if isinstance(axis, (tuple, list)) else (axis,)
    for i in axes:
        if isinstance(i, bool) or not isinstance(i, (int, np.integer)):
            raise TypeError(f"flip: axis must be an int, a tuple of ints or None, got {axis!r}")
        if not -a.ndim <= i < a.ndim:
            raise ShapeError(f"flip: axis {i} is out of range for an array of shape {format_shape(a.shape)}")
    axes = shapes.normalize_axes(axes, a.ndim, "flip")  # sorted; a repeated axis is refused
    axes = tuple(i for i in axes if not shapes.is_one(a.shape[i]))  # reversing one element: nothing
    if not axes:
        return a
    return make(flip_op, (a,), axis=axes)


# -- basic indexing ------------------------------------------------------------------------
def _normalize_index(index, shape):
    """numpy basic indexing -> tuple of ("int", i) / ("slice", start, stop, step) / ("newaxis",)."""
    if not isinstance(index, tuple):
        index = (index,)
    n_real = sum(1 for i in index if i is not None and i is not Ellipsis)
    if sum(1 for i in index if i is Ellipsis) > 1:
        raise IndexError("an index can only have a single ellipsis ('...')")
    if n_real > len(shape):
        raise IndexError(f"too many indices for an array of shape {format_shape(shape)}")
    expanded = []
    for i in index:
        if i is Ellipsis:
            expanded.extend([slice(None)] * (len(shape) - n_real))
        else:
            expanded.append(i)
    expanded.extend([slice(None)] * (len(shape) - sum(1 for i in expanded if i is not None)))
    out, axis = [], 0
    for i in expanded:
        if i is None:
            out.append(("newaxis",))
            continue
        d = shape[axis]
        if isinstance(i, slice):
            out.append(_normalize_slice(i, d))
        elif isinstance(i, (int, np.integer)) and not isinstance(i, bool):
            i = int(i)
            if isinstance(d, int):
                if not -d <= i < d:
                    raise IndexError(f"index {i} is out of bounds for axis {axis} with size {d}")
                i %= d
            elif i < 0:
                i = d + i
            out.append(("int", i))
        else:
            raise IndexError(f"unsupported index {i!r}: use ints, slices, None, ... or sd.take")
        axis += 1
    return tuple(out)


def _normalize_slice(s, d):
    for v in (s.start, s.stop, s.step):
        if v is not None and (not isinstance(v, (int, np.integer)) or isinstance(v, bool)):
            raise IndexError(f"slice bounds must be ints or None, got {s}")
    if isinstance(d, int):
        start, stop, step = s.indices(d)
        return ("slice", start, stop, step, len(range(start, stop, step)))
    step = 1 if s.step is None else int(s.step)
    if step <= 0:
        raise IndexError("slices of symbolic dimensions need a positive step")
    start = 0 if s.start is None else (d + s.start if s.start < 0 else int(s.start))
    stop = d if s.stop is None else (d + s.stop if s.stop < 0 else int(s.stop))
    return ("slice", start, stop, step, sympy.ceiling(sympy.sympify(stop - start) / step))


def _getitem_infer(inputs, attrs):
    out = []
    for entry in attrs["index"]:
        if entry[0] == "slice":
            out.append(entry[4])
        elif entry[0] == "newaxis":
            out.append(1)
    return shapes.shape(out), inputs[0].dtype


def _concrete(v, bindings):
    return int(v) if isinstance(v, int) else int(sympy.sympify(v).xreplace(bindings))


def _getitem_evaluate(values, attrs, out_shape, bindings):
    index = []
    for entry in attrs["index"]:
        if entry[0] == "int":
            index.append(_concrete(entry[1], bindings))
        elif entry[0] == "newaxis":
            index.append(None)
        else:
            start, stop, step = (_concrete(v, bindings) for v in entry[1:4])
            index.append(slice(start, stop if stop >= 0 else None, step))
    if all(entry[0] == "int" for entry in attrs["index"]) and isinstance(values[0], np.ndarray):
        index.append(Ellipsis)  # a 0-d view, not a copied scalar: slice_scatter writes through it
    return values[0][tuple(index)]


getitem_op = Op("getitem", infer=_getitem_infer, evaluate=_getitem_evaluate, view=True)


def _batched_index(node, x, nb):
    return tuple(full_slice(d) for d in x.shape[:nb]) + node.attr("index")


@getitem_op.defjvp
def _getitem_jvp(node, ts, nb):
    return make(getitem_op, (ts[0],), index=_batched_index(node, ts[0], nb))


@getitem_op.defvjp
def _getitem_vjp(node, ct, nb, needed=None):
    return [make(slice_scatter_op, (ct,), index=_batched_index(node, ct, nb),
                 shape=ct.shape[:nb] + node.inputs[0].shape)]


def getitem(a, index) -> Node:
    """numpy basic indexing (ints, slices, None, ...); an int64 expression index means ``take``."""
    a = as_node(a)
    if isinstance(index, Node):
        return take(a, index, axis=0)
    normalized = _normalize_index(index, a.shape)
    if all(e[0] == "slice" and e[1] == 0 and e[3] == 1 and shapes.same_dim(e[2], d)
           for e, d in zip(normalized, a.shape)) and len(normalized) == a.ndim:
        return a
    return make(getitem_op, (a,), index=normalized)


# -- take (gather) -------------------------------------------------------------------------
def _take_infer(inputs, attrs):
    a, indices = inputs
    axis = attrs["axis"]
    if indices.dtype != "int64":
        raise TypeError(f"take: indices must be int64, got {indices.dtype}")
    return a.shape[:axis] + indices.shape + a.shape[axis + 1:], a.dtype


AXIS_0 = Shown("axis", default=0)  # shown where it is not 0
take_op = Op("take", infer=_take_infer, index_function=True, print_attrs=(AXIS_0,),
             evaluate=lambda v, attrs, out_shape, b: np.take(v[0], v[1], axis=attrs["axis"]))


@take_op.defjvp
def _take_jvp(node, ts, nb):
    return None if ts[0] is None else take(ts[0], node.inputs[1], node.attr("axis") + nb)


@take_op.defvjp
def _take_vjp(node, ct, nb, needed=None):
    return [scatter_add(ct, node.inputs[1], node.attr("axis") + nb, ct.shape[:nb] + node.inputs[0].shape), None]


@function
def take(a, indices, axis: int = 0) -> Node:
    """Elements of ``a`` at integer ``indices`` along ``axis`` (numpy's ``take``).

    >>> import symdiff as sd
    >>> sd.take(sd.tensor("E", (10, 4)), sd.tensor("i", (3,), "int64")).shape
    (3, 4)
    """
    a, indices = as_node(a), as_node(indices)
    axis = shapes.normalize_axis(axis, a.ndim, "take")
    return make(take_op, (a, indices), axis=axis)


@function
def embedding(weight, indices) -> Node:
    """Rows of ``weight`` (num_embeddings, dim) at ``indices`` (int64, any shape), as
    ``torch.nn.functional.embedding``: the result has shape ``indices.shape + (dim,)``. It is
    ``take`` along axis 0, whose VJP adds the cotangent rows back (a scatter-add, so a repeated
    index gets the sum). An index outside ``[0, num_embeddings)`` is an error: ``IndexError``
    when evaluated, a checked error inside a compiled program, never an out-of-bounds read.

    >>> import symdiff as sd
    >>> E, ids = sd.tensor("E", (100, 16)), sd.tensor("ids", ("T", "B"), "int64")
    >>> sd.embedding(E, ids).shape
    (T, B, 16)
    """
    weight, indices = as_node(weight), as_node(indices)
    if weight.ndim != 2:
        raise ShapeError(f"embedding: the weight must be (num_embeddings, dim), got {format_shape(weight.shape)}")
    if indices.dtype != "int64":
        raise TypeError(f"embedding: indices must be int64, got {indices.dtype}")
    return take(weight, indices, axis=0)


# -- stop_gradient ---------------------------------------------------------------------------
stop_gradient_op = Op("stop_gradient", infer=lambda inputs, attrs: (inputs[0].shape, inputs[0].dtype), view=True,
                      evaluate=lambda v, attrs, out_shape, b: v[0],
                      doc="its input, as a constant for differentiation (JAX's lax.stop_gradient)")


@stop_gradient_op.defsymbolic
def _stop_gradient_symbolic(values, attrs, out_shape, bindings):
    out = np.empty(values[0].shape, dtype=object)
    for i in np.ndindex(out.shape):
        out[i] = stopped(values[0][i])
    return out


@stop_gradient_op.defjvp
def _stop_gradient_jvp(node, ts, nb):
    return None  # a zero tangent


@stop_gradient_op.defvjp
def _stop_gradient_vjp(node, ct, nb, needed=None):
    return [None]


@function
def stop_gradient(a) -> Node:
    """``a`` itself, with zero derivative: every mode treats it as a constant (as JAX's
    ``lax.stop_gradient`` and PyTorch's ``detach``). Compiled, it costs nothing (a view).

    >>> import symdiff as sd
    >>> x = sd.tensor("x", ())
    >>> (g,) = sd.grad(x * sd.stop_gradient(x), [x])
    >>> float(sd.evaluate(g, {x: 3.0}))
    3.0
    """
    return make(stop_gradient_op, (as_node(a),))


# -- concatenate / stack -------------------------------------------------------------------
def _concatenate_infer(inputs, attrs):
    axis, first = attrs["axis"], inputs[0]
    for other in inputs[1:]:
        if other.ndim != first.ndim or not all(
            shapes.same_dim(p, q) for i, (p, q) in enumerate(zip(first.shape, other.shape)) if i != axis
        ):
            listed = ", ".join(format_shape(i.shape) for i in inputs)
            raise ShapeError(f"concatenate: shapes {listed} differ outside axis {axis}")
    total = sum((i.shape[axis] for i in inputs), 0)
    out = list(first.shape)
    out[axis] = shapes.dim(total)
    return tuple(out), first.dtype


concatenate_op = Op("concatenate", infer=_concatenate_infer, kernel="concatenate", print_attrs=(AXIS_0,),
                    evaluate=lambda v, attrs, out_shape, b: np.concatenate(v, axis=attrs["axis"]))


@concatenate_op.defjvp
def _concatenate_jvp(node, ts, nb):
    lead = next(t for t in ts if t is not None).shape[:nb]
    parts = [t if t is not None else zeros(lead + i.shape, node.dtype) for t, i in zip(ts, node.inputs)]
    return concatenate(parts, axis=node.attr("axis") + nb)


@concatenate_op.defvjp
def _concatenate_vjp(node, ct, nb, needed=None):
    axis, start, out = node.attr("axis"), 0, []
    for i in node.inputs:
        stop = start + i.shape[axis]
        out.append(slice_axis(ct, axis + nb, start, stop))
        start = stop
    return out


@function
def concatenate(arrays, axis: int = 0) -> Node:
    """Join expressions along an existing axis.

    >>> import symdiff as sd
    >>> sd.concatenate([sd.tensor("A", (2, 3)), sd.tensor("B", (4, 3))]).shape
    (6, 3)
    """
    nodes = [as_node(a) for a in arrays]
    if not nodes:
        raise ValueError("concatenate needs at least one array")
    if len({n.ndim for n in nodes}) != 1:
        raise ShapeError("concatenate: arrays must have the same number of dimensions, got "
                         + ", ".join(format_shape(n.shape) for n in nodes))
    axis = shapes.normalize_axis(axis, nodes[0].ndim, "concatenate")
    common = dtypes.promote(*[n.dtype for n in nodes])
    nodes = [n.astype(common) for n in nodes]
    if len(nodes) == 1:
        return nodes[0]
    return make(concatenate_op, nodes, axis=axis)


@function
def stack(arrays, axis: int = 0) -> Node:
    """Join expressions of one shape along a new axis.

    >>> import symdiff as sd
    >>> x, y = sd.symbols("x y")
    >>> sd.stack([x, y]).shape
    (2,)
    """
    nodes = [as_node(a) for a in arrays]
    if not nodes:
        raise ValueError("stack needs at least one array")
    if len({n.ndim for n in nodes}) != 1:
        raise ShapeError("stack: arrays must have one shape, got " + ", ".join(format_shape(n.shape) for n in nodes))
    axis = shapes.normalize_axis(axis, nodes[0].ndim + 1, "stack")
    return concatenate([expand_dims(n, axis) for n in nodes], axis=axis)


# -- scatters: the adjoints of indexing ----------------------------------------------------
def _scatter_infer(inputs, attrs):
    return attrs["shape"], inputs[0].dtype


def _slice_scatter_evaluate(values, attrs, out_shape, bindings):
    out = np.zeros(out_shape, dtype=values[0].dtype)
    view = _getitem_evaluate([out], {"index": attrs["index"]}, None, bindings)
    view[...] = values[0]
    return out


def _scatter_add_evaluate(values, attrs, out_shape, bindings):
    out = np.zeros(out_shape, dtype=values[0].dtype)
    np.add.at(out, (slice(None),) * attrs["axis"] + (values[1],), values[0])
    return out


slice_scatter_op = Op("slice_scatter", infer=_scatter_infer, evaluate=_slice_scatter_evaluate,
                      kernel="slice_scatter",
                      doc="zeros of `shape` with the input written at `index` (adjoint of getitem)")


@slice_scatter_op.defjvp
def _slice_scatter_jvp(node, ts, nb):
    return make(slice_scatter_op, (ts[0],), index=_batched_index(node, ts[0], nb), shape=ts[0].shape[:nb] + node.shape)


@slice_scatter_op.defvjp
def _slice_scatter_vjp(node, ct, nb, needed=None):
    return [make(getitem_op, (ct,), index=_batched_index(node, ct, nb))]


scatter_add_op = Op("scatter_add", infer=_scatter_infer, evaluate=_scatter_add_evaluate,
                    kernel="scatter_add", flops=lambda node: shapes.numel(node.inputs[0].shape),
                    doc="zeros of `shape` plus the input added at integer indices (adjoint of take)")


@scatter_add_op.defjvp
def _scatter_add_jvp(node, ts, nb):
    return None if ts[0] is None else scatter_add(ts[0], node.inputs[1], node.attr("axis") + nb,
                                                  ts[0].shape[:nb] + node.shape)


@scatter_add_op.defvjp
def _scatter_add_vjp(node, ct, nb, needed=None):
    return [take(ct, node.inputs[1], node.attr("axis") + nb), None]


@function
def slice_scatter(a, index_of, shape) -> Node:
    """Zeros of ``shape`` with ``a`` written where ``index_of`` (a getitem node) reads.

    >>> import symdiff as sd
    >>> X = sd.tensor("X", (3,))
    >>> sd.slice_scatter(sd.tensor("v", (2,)), X[1:], X.shape).shape
    (3,)
    """
    if not isinstance(index_of, Node) or index_of.op.name != "getitem":
        raise TypeError(f"slice_scatter: index_of must be an indexing expression (such as X[1:]), got "
                        f"{index_of if isinstance(index_of, Node) else type(index_of).__name__}")
    return make(slice_scatter_op, (as_node(a),), index=index_of.attr("index"), shape=shapes.shape(shape))


@function
def scatter_add(a, indices, axis: int, shape) -> Node:
    """Zeros of ``shape`` with ``a`` added at ``indices`` along ``axis`` (repeated indices add)."""
    return make(scatter_add_op, (as_node(a), as_node(indices)), axis=axis, shape=shapes.shape(shape))


# -- helpers of the derivative rules -------------------------------------------------------


@function
def split(a, indices_or_sections, axis: int = 0) -> list:
    """``numpy.split``: an int ``k`` gives ``k`` equal parts along ``axis`` (it must divide the
    axis), a list of indices the parts between them. Each part is a slice (a view); the
    inverse of ``concatenate``, so each part's VJP puts its cotangent back in place.

    >>> import symdiff as sd
    >>> X = sd.tensor("X", (2, 6))
    >>> [p.shape for p in sd.split(X, 3, axis=1)], [p.shape for p in sd.split(X, [1, 4], axis=1)]
    ([(2, 2), (2, 2), (2, 2)], [(2, 1), (2, 3), (2, 2)])
    """
    a = as_node(a)
    axis = shapes.normalize_axis(axis, a.ndim, "split")
    d = a.shape[axis]
    if isinstance(indices_or_sections, (int, np.integer)) and not isinstance(indices_or_sections, bool):
        k = int(indices_or_sections)
        if k < 1:
            raise ValueError(f"split: the number of sections must be positive, got {k}")
        if isinstance(d, int):
            if d % k:
                raise ShapeError(f"split: {k} sections do not divide axis {axis} of size {d} "
                                 f"(shape {format_shape(a.shape)})")
            step = d // k
        else:
            step = sympy.sympify(d) / k
            if not (step.is_integer or step.is_Symbol or step.is_Mul and all(f.is_integer for f in step.args)):
                raise ShapeError(f"split: {k} sections do not divide the symbolic axis {axis} of size {d}")
        bounds = [i * step for i in range(k + 1)]
    elif isinstance(indices_or_sections, (list, tuple)):
        cuts = list(indices_or_sections)
        if not all(isinstance(c, (int, np.integer)) and not isinstance(c, bool) for c in cuts):
            raise TypeError(f"split: indices must be ints, got {indices_or_sections!r}")
        if not isinstance(d, int):
            raise ShapeError("split: split points need a concrete axis size; give a number of sections")
        cuts = [min(max(int(c) + d if c < 0 else int(c), 0), d) for c in cuts]
        bounds = [0] + cuts + [d]
    else:
        raise TypeError(f"split: expected an int or a list of indices, got {indices_or_sections!r}")
    parts = []
    for start, stop in zip(bounds[:-1], bounds[1:]):
        stop = max(stop, start) if isinstance(stop, int) and isinstance(start, int) else stop
        parts.append(slice_axis(a, axis, start, stop) if (start, stop) != (0, d) else a)
    return parts


def zeros(shape, dtype) -> Node:
    """A zero tensor of ``shape`` (a broadcast scalar constant)."""
    return broadcast_to(constant(0, dtype), shape)


def full_slice(d):
    return ("slice", 0, d, 1, d)


def slice_axis(a, axis, start, stop):
    """``a[..., start:stop, ...]`` on ``axis`` (bounds may be symbolic)."""
    entries = tuple(full_slice(d) for d in a.shape)
    entries = entries[:axis] + (("slice", start, stop, 1, shapes.dim(stop - start) if not isinstance(stop - start, int) else stop - start),) + entries[axis + 1:]
    return make(getitem_op, (a,), index=entries)


def sum_to(x, nb, target):
    """Sum ``x`` (shape lead + S) down to lead + ``target`` by undoing numpy broadcasting."""
    lead, body = x.shape[:nb], x.shape[nb:]
    extra = len(body) - len(target)
    axes = tuple(range(nb, nb + extra)) + tuple(
        nb + extra + i for i, d in enumerate(target) if d == 1 and body[extra + i] != 1)
    if axes:
        x = x.sum(axis=axes, keepdims=True)
    return reshape(x, lead + tuple(target))
