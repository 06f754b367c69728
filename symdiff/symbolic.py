"""Symbolic mode: the graph scalarized into sympy expressions and differentiated by ``sympy.diff``.

Every element of every float input becomes a sympy symbol (``X[0, 1]``; a
scalar ``x`` stays ``x``), integer inputs (labels) take their values from
``at``, and each node becomes a numpy object array of sympy expressions. This is
how a computer-algebra system sees the function: no sharing, so the derivative
swells. ``symbolic-cse`` then runs ``sympy.cse`` over all derivatives. The
result is rebuilt as graph nodes with the leaves' shapes, so ``sd.evaluate``
works on it; where integer inputs were baked in, it is valid for those values.

>>> import symdiff as sd
>>> x, y = sd.symbols("x y")
>>> [str(g) for g in symbolic_grad(sd.sin(x) * y, [x, y])]
['y*cos(x)', 'sin(x)']
"""

from __future__ import annotations

import dataclasses
import time

import numpy as np
import sympy

from . import shapes
from .graph import as_list, leaves, toposort
from .node import Node, as_node
from .ops.elementwise import ElementwiseOp
from .ops.from_sympy import to_graph

MAX_OPERATIONS = 200_000


class TooLarge(ValueError):
    """The scalarized function would be too large for sympy to be sensible."""


def _bindings(exprs, at):
    from .evaluate import _resolve_env, as_leaf_value, bind_dims

    nodes = leaves(exprs)
    given = _resolve_env(at or {}, nodes) if at else {}
    arrays = {id(n): as_leaf_value(n, given[id(n)]) for n in nodes if id(n) in given}
    symbolic = [n for n in nodes if id(n) not in arrays and any(not isinstance(d, int) for d in n.shape)]
    if symbolic:
        raise ValueError(f"symbolic mode needs concrete shapes: give values for {', '.join(n.name for n in symbolic)} "
                         "in `at` (their dimensions are symbolic)")
    return bind_dims([n for n in nodes if id(n) in arrays], arrays), arrays


def estimate(exprs, bindings) -> int:
    """Scalar operations the scalarized graph will hold (matmul counts m·n·k)."""
    total = 0
    for n in toposort(exprs):
        size = int(np.prod(shapes.substitute(n.shape, bindings)))
        if n.op.name == "matmul":
            size *= int(shapes.substitute(n.inputs[0].shape, bindings)[-1])
        elif n.op.name in ("sum", "max", "logsumexp", "softmax", "log_softmax", "softmax_cross_entropy"):
            size = int(np.prod(shapes.substitute(n.inputs[0].shape, bindings))) * 3
        total += size
    return total


def _element_symbols(leaf, shape):
    if not shape:
        return np.array(sympy.Symbol(leaf.name, real=True), dtype=object)
    out = np.empty(shape, dtype=object)
    for index in np.ndindex(*shape):
        out[index] = sympy.Symbol(f"{leaf.name}[{', '.join(map(str, index))}]", real=True)
    return out


def _reduce(values, axes, keepdims, combine):
    axes = tuple(axes)
    moved = np.moveaxis(values, axes, tuple(range(values.ndim - len(axes), values.ndim)))
    flat = moved.reshape(moved.shape[: values.ndim - len(axes)] + (-1,))
    out = np.empty(flat.shape[:-1], dtype=object)
    for index in np.ndindex(*out.shape):
        out[index] = combine(list(flat[index]))
    if keepdims:
        out = out.reshape(tuple(1 if i in axes else d for i, d in enumerate(values.shape)))
    return out


def _sum(items):
    return sympy.Add(*items)


def _lse(items):
    return sympy.log(sympy.Add(*[sympy.exp(v) for v in items]))


def _as_number(value):
    if isinstance(value, (bool, np.bool_)):
        return sympy.true if value else sympy.false
    if isinstance(value, (int, np.integer)):
        return sympy.Integer(int(value))
    return sympy.Float(float(value)) if not float(value).is_integer() else sympy.Integer(int(value))


def _objects(array):
    array = np.asarray(array)
    out = np.empty(array.shape, dtype=object)
    for index in np.ndindex(*array.shape):
        out[index] = _as_number(array[index].item() if array.ndim else array.item())
    return out


def _elementwise(op, args, from_bool=False):
    args = np.broadcast_arrays(*args)
    out = np.empty(args[0].shape, dtype=object)
    for index in np.ndindex(*out.shape):
        values = [a[index] for a in args]
        if op.name == "astype":
            v = values[0]
            # a Symbol is also a sympy Boolean: only a bool *input* is a condition
            out[index] = sympy.Piecewise((1, v), (0, True)) if from_bool and not isinstance(v, sympy.Number) else v
            continue
        out[index] = op.scalar.xreplace(dict(zip(op.params, values)))
    return out


def _scalarize_node(node, inputs, bindings, arrays):
    name, attrs = node.op.name, node.attrs
    shape = shapes.substitute(node.shape, bindings)
    if node.is_leaf:
        if id(node) in arrays and not node.dtype.startswith("float"):
            return _objects(arrays[id(node)])
        if not node.dtype.startswith("float"):
            raise ValueError(f"symbolic mode needs the values of integer inputs: give {node.name} in `at`")
        return _element_symbols(node, shape)
    if node.is_constant:
        value = attrs["value"]
        if isinstance(value, sympy.Basic):
            return np.array(value.xreplace(bindings), dtype=object)
        return _objects(value)
    if isinstance(node.op, ElementwiseOp):
        return _elementwise(node.op, inputs, from_bool=name == "astype" and node.inputs[0].dtype == "bool")
    a = inputs[0] if inputs else None
    if name == "broadcast_to":
        return np.broadcast_to(a, shape)
    if name in ("reshape",):
        return a.reshape(shape)
    if name == "transpose":
        return np.transpose(a, attrs["axes"])
    if name in ("getitem", "slice_scatter", "take", "scatter_add", "concatenate", "one_hot", "eye"):
        return _structural(name, node, inputs, shape, bindings)
    if name == "sum":
        return _reduce(a, attrs["axis"], attrs["keepdims"], _sum)
    if name == "max":
        return _reduce(a, attrs["axis"], attrs["keepdims"], lambda items: sympy.Max(*items))
    if name == "logsumexp":
        return _reduce(a, attrs["axis"], attrs["keepdims"], _lse)
    if name == "matmul":
        return np.matmul(a, inputs[1])
    if name in ("softmax", "log_softmax"):
        axis = attrs["axis"]
        lse = _reduce(a, (axis,), True, _lse)
        out = np.vectorize(lambda v, l: v - l, otypes=[object])(a, lse)
        return out if name == "log_softmax" else np.vectorize(sympy.exp, otypes=[object])(out)
    if name == "softmax_cross_entropy":
        labels = arrays_from(inputs[1])
        k = a.shape[-1]
        flat, flat_labels = a.reshape(-1, k), labels.reshape(-1)
        terms = [_lse(list(row)) - row[int(label)] for row, label in zip(flat, flat_labels)]
        return np.array(sympy.Add(*terms) / len(terms), dtype=object)
    raise NotImplementedError(f"symbolic mode does not support op {name}")


def arrays_from(values):
    """Concrete integer data back from an object array of sympy integers."""
    return np.vectorize(int, otypes=[np.int64])(values)


def _structural(name, node, inputs, shape, bindings):
    from .ops.movement import _getitem_evaluate

    attrs = node.attrs
    if name == "getitem":
        return _getitem_evaluate([inputs[0]], attrs, shape, bindings)
    if name == "slice_scatter":
        out = np.full(shape, sympy.Integer(0), dtype=object)
        view = _getitem_evaluate([out], {"index": attrs["index"]}, None, bindings)
        view[...] = inputs[0]
        return out
    if name == "take":
        return np.take(inputs[0], arrays_from(inputs[1]), axis=attrs["axis"])
    if name == "scatter_add":
        out = np.full(shape, sympy.Integer(0), dtype=object)
        np.add.at(out, (slice(None),) * attrs["axis"] + (arrays_from(inputs[1]),), inputs[0])
        return out
    if name == "concatenate":
        return np.concatenate(inputs, axis=attrs["axis"])
    if name == "one_hot":
        labels = arrays_from(inputs[0])
        return _objects((labels[..., None] == np.arange(shape[-1])).astype(np.int64))
    if name == "eye":
        return _objects(np.eye(shape[0], dtype=np.int64))
    raise NotImplementedError(name)


def scalarize(exprs, at=None, max_operations: int = MAX_OPERATIONS):
    """Object arrays of sympy expressions, one per expression (memoized per node)."""
    outputs = as_list(exprs)
    bindings, arrays = _bindings(outputs, at)
    size = estimate(outputs, bindings)
    if size > max_operations:
        raise TooLarge(f"symbolic mode would build about {size:,} scalar operations (limit {max_operations:,}); "
                       "use mode='reverse', or raise max_operations")
    memo = {}
    for node in toposort(outputs):
        memo[id(node)] = _scalarize_node(node, [memo[id(i)] for i in node.inputs], bindings, arrays)
    return [memo[id(o)] for o in outputs]


@dataclasses.dataclass
class SymbolicDerivatives:
    graphs: list  # one graph node per wrt leaf, with its shape
    expressions: list  # sympy derivative expressions (after cse: the reduced ones)
    replacements: list  # cse's (symbol, expression) pairs; empty without cse
    function_tree_ops: int  # sympy.count_ops of f: the function as a tree
    tree_ops: int  # the derivatives as trees (no sharing): the swell
    dag_ops: int  # after cse: replacements + reduced expressions
    diff_s: float
    cse_s: float

    @property
    def derive_s(self) -> float:
        return self.diff_s + self.cse_s


def _ops(exprs) -> int:
    return int(sum(sympy.count_ops(e, visual=False) for e in exprs))


def symbolic_derivatives(f, wrt, cse: bool = False, at=None, max_operations: int = MAX_OPERATIONS):
    """Differentiate scalar ``f`` with sympy; sizes, times and the rebuilt graphs."""
    f = as_node(f)
    if f.shape != ():
        raise ValueError("symbolic mode differentiates scalar functions; use jacobian for others")
    nodes = as_list(wrt)
    (expr,) = scalarize([f], at, max_operations)
    expr = expr.item() if isinstance(expr, np.ndarray) else expr
    bindings, _ = _bindings([f] + nodes, at)
    element_symbols = [_element_symbols(w, shapes.substitute(w.shape, bindings)) for w in nodes]
    start = time.perf_counter()
    derivatives = [np.vectorize(lambda s: sympy.diff(expr, s), otypes=[object])(symbols)
                   for symbols in element_symbols]
    diff_s = time.perf_counter() - start
    flat = [d for array in derivatives for d in np.asarray(array).reshape(-1)]
    tree_ops = _ops(flat)
    replacements, reduced, cse_s = [], flat, 0.0
    if cse:
        start = time.perf_counter()
        replacements, reduced = sympy.cse(flat, symbols=sympy.numbered_symbols("cse_t", real=True))
        cse_s = time.perf_counter() - start
    dag_ops = _ops([e for _, e in replacements]) + _ops(reduced) if cse else tree_ops
    every_leaf = [n for n in leaves([f]) if n.dtype.startswith("float")]
    symbol_map = {}
    for leaf in every_leaf + nodes:
        symbols = _element_symbols(leaf, shapes.substitute(leaf.shape, bindings))
        for index in np.ndindex(*symbols.shape):
            symbol_map[symbols[index]] = leaf[index] if symbols.ndim else leaf
    graphs = _rebuild(nodes, element_symbols, replacements, reduced, f, symbol_map)
    return SymbolicDerivatives(graphs, list(reduced), list(replacements), _ops([expr]), tree_ops, dag_ops,
                               diff_s, cse_s)


def _rebuild(nodes, element_symbols, replacements, reduced, like, symbol_map):
    from .ops.movement import reshape, stack

    mapping = dict(symbol_map)  # every input element symbol -> its graph node (leaf[i, j])
    for symbol, expression in replacements:
        mapping[symbol] = to_graph(expression, mapping, like=like)
    graphs, position = [], 0
    for w, symbols in zip(nodes, element_symbols):
        count = int(symbols.size)
        parts = [_graph_of(e, mapping, like, w) for e in reduced[position: position + count]]
        position += count
        graphs.append(parts[0] if symbols.ndim == 0 else reshape(stack(parts), symbols.shape))  # concrete sizes
    return graphs


def _graph_of(expression, mapping, like, leaf):
    from .ops.elementwise import astype

    node = to_graph(expression, mapping, like=like)
    return astype(node, leaf.dtype)


def symbolic_grad(f, wrt, cse: bool = False, at=None, max_operations: int = MAX_OPERATIONS) -> list:
    """Gradient of scalar ``f`` by ``sympy.diff`` (and ``sympy.cse``), as graph nodes."""
    return symbolic_derivatives(f, wrt, cse, at, max_operations).graphs


