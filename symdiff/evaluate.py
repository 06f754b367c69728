"""The reference evaluator: run a graph with numpy.

This is the oracle that compiled programs are tested against, and the backend
that works everywhere without a compiler.

>>> import symdiff as sd
>>> x, y = sd.symbols("x y")
>>> sd.evaluate([x * y, x + y], {x: 2.0, y: 3.0})
[array(6.), array(5.)]
"""

from __future__ import annotations

import numpy as np
import sympy

from . import dtypes, shapes
from .graph import as_list, toposort
from .node import Node
from .shapes import ShapeError, format_shape


def _describe(leaf: Node) -> str:
    return f"{leaf.name} (shape {format_shape(leaf.shape)}, {leaf.dtype})"


def _resolve_env(env, leaves) -> dict:
    """Map each leaf (by id) to the value given for it, by node or by name."""
    if env is None:
        env = {}
    if not hasattr(env, "items"):
        raise TypeError("evaluate: values must be a mapping {leaf or name: value}")
    by_name = {}
    for leaf in leaves:
        by_name.setdefault(leaf.name, []).append(leaf)
    given = {}
    for key, value in env.items():
        if isinstance(key, Node):
            if not key.is_leaf:
                raise TypeError(f"evaluate: only leaves can be given values, not {key}")
            given[id(key)] = value
        elif isinstance(key, str):
            matches = by_name.get(key, [])
            if len(matches) > 1:
                raise ValueError(f"evaluate: name {key!r} is ambiguous: "
                                 + ", ".join(_describe(m) for m in matches) + "; key by the leaf itself")
            if matches:
                given.setdefault(id(matches[0]), value)
        else:
            raise TypeError(f"evaluate: keys must be leaves or names, got {type(key).__name__}")
    missing = [leaf for leaf in leaves if id(leaf) not in given]
    if missing:
        raise KeyError("evaluate: no value for " + ", ".join(_describe(m) for m in missing))
    return given


def as_leaf_value(leaf: Node, value) -> np.ndarray:
    """Convert a user value for ``leaf``: dtype by same-kind casting, never from floats to ints."""
    if isinstance(value, Node):
        raise TypeError(f"evaluate: the value for {leaf.name} is an expression; give numbers")
    array = np.asarray(value)
    if not dtypes.can_cast_value(array.dtype, leaf.dtype):
        raise TypeError(f"evaluate: {leaf.name} is {leaf.dtype}; a value of dtype {array.dtype} "
                        "cannot be cast to it safely")
    return np.asarray(array, dtype=leaf.dtype)


def bind_dims(leaves, arrays: dict) -> dict:
    """Bind symbolic dimensions from the values' shapes; check every dim is consistent."""
    bindings = {}
    for leaf in leaves:
        got = arrays[id(leaf)].shape
        if len(got) != len(leaf.shape):
            raise ShapeError(f"evaluate: {leaf.name} expects shape {format_shape(leaf.shape)}, "
                             f"got {format_shape(got)}")
        for want, have in zip(leaf.shape, got):
            if isinstance(want, sympy.Symbol):
                if bindings.setdefault(want, have) != have:
                    raise ShapeError(f"evaluate: dimension {want} is {bindings[want]} elsewhere but "
                                     f"{have} in {leaf.name} of shape {format_shape(got)}")
    for leaf in leaves:
        got = arrays[id(leaf)].shape
        try:
            want = shapes.substitute(leaf.shape, bindings)
        except ShapeError:
            raise ShapeError(f"evaluate: cannot determine the dimensions of {leaf.name} "
                             f"{format_shape(leaf.shape)} from the values given") from None
        if want != got:
            raise ShapeError(f"evaluate: {leaf.name} expects shape {format_shape(leaf.shape)} = "
                             f"{format_shape(want)}, got {format_shape(got)}")
    return bindings


def evaluate(exprs, values=None):
    """Evaluate one expression or a list of them with numpy.

    ``values`` maps leaves (or their names) to numbers or arrays. One expression
    in gives one array out; a list in gives a list out.

    >>> import symdiff as sd
    >>> X = sd.tensor("X", ("m", 2))
    >>> sd.evaluate(X.sum(axis=0), {"X": [[1.0, 2.0], [3.0, 4.0]]})
    array([4., 6.])
    """
    single = isinstance(exprs, Node)
    outputs = as_list(exprs)
    order = toposort(outputs)
    leaf_nodes = [n for n in order if n.is_leaf]
    given = _resolve_env(values, leaf_nodes)
    arrays = {id(leaf): as_leaf_value(leaf, given[id(leaf)]) for leaf in leaf_nodes}
    # leaves given but not used still fix dimensions (a derivative may be zeros((m, n)))
    in_graph = set(arrays)
    extra = [k for k in (values or {}) if isinstance(k, Node) and k.is_leaf and id(k) not in in_graph]
    arrays.update({id(k): as_leaf_value(k, values[k]) for k in extra})
    bindings = bind_dims(leaf_nodes + extra, arrays)
    results = dict(arrays)
    for node in order:
        if node.is_leaf:
            continue
        inputs = [results[id(i)] for i in node.inputs]
        out_shape = shapes.substitute(node.shape, bindings)
        value = np.asarray(node.op.evaluate(inputs, node.attrs, out_shape, bindings))
        if value.dtype.name != node.dtype:
            value = value.astype(node.dtype)
        if value.shape != out_shape:
            raise AssertionError(f"{node.op.name} produced shape {value.shape}, expected {out_shape}")
        results[id(node)] = value
    out = []
    for o in outputs:
        v = results[id(o)]
        # never hand out read-only views or the caller's own arrays
        out.append(np.array(v) if (not v.flags.writeable or v.base is not None or o.is_leaf) else v)
    return out[0] if single else out
