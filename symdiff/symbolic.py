"""Symbolic mode: the graph scalarized into sympy expressions and differentiated by ``sympy.diff``.

Every element of every float input becomes a sympy symbol (``X[0, 1]``; a
scalar ``x`` stays ``x``), integer inputs (labels) take their values from
``at`` (without values, a one-hot of labels, and the cross-entropy that picks through one,
become 0/1 indicator symbols ``onehot(y)[i, j]``, each row summing to 1, rebuilt as the
graph's ``one_hot(y, k)[i, j]``: softmax regression needs no label values), and each node becomes a numpy object array of sympy expressions: an
elementwise op through its scalar form, any other op by running its own numpy
``evaluate`` on the object arrays, or by the rule it registers with
``@op.defsymbolic`` where numpy's functions would not do (max, softmax). This is
how a computer-algebra system sees the function: no sharing, so the derivative
swells. ``symbolic-cse`` then runs ``sympy.cse`` over all derivatives. The
result is rebuilt as graph nodes with the leaves' shapes, so ``sd.evaluate``
works on it; where integer inputs were baked in, it is valid for those values.

The ops with a stable form (sigmoid, softplus, logsumexp, softmax and the ops
built on them) scalarize as the sympy functions of :mod:`.ops.sympy_functions`,
so their derivatives are written in them and rebuilt as the same stable ops: no
``exp(1e4)`` overflows into ``inf/inf``.

sympy's work grows with the number of wrt elements times the function's size as
a tree; that product is checked against ``max_operations`` before anything is
scalarized, the function's real size once it is, and the derivatives' running
size while ``sympy.diff`` builds them (``TooLarge`` names the size and the limit).

>>> import symdiff as sd
>>> x, y = sd.symbols("x y")
>>> [str(g) for g in symbolic_grad(sd.sin(x) * y, [x, y])]
['y*cos(x)', 'sin(x)']
>>> z, label = sd.tensor("z", (1, 2)), sd.tensor("label", (1,), "int64")
>>> symbolic_derivatives(sd.softmax_cross_entropy(z, label), [z]).expressions
[-onehot(label)[0, 0] + softmax(z[0, 0], z[0, 1])[0], -onehot(label)[0, 1] + softmax(z[0, 0], z[0, 1])[1]]
"""

from __future__ import annotations

import dataclasses
import functools
import time

import numpy as np
import sympy

from . import shapes
from .evaluate import _resolve_env, as_leaf_value, bind_dims
from .graph import as_list, leaves, toposort
from .node import Node, as_node, make
from .ops import sympy_functions
from .ops.elementwise import ElementwiseOp, astype
from .ops.from_sympy import to_graph
from .ops.movement import reshape, stack
from .ops.nn import one_hot_op, softmax_cross_entropy_op
from .ops.sympy_functions import count_ops
from .rewrite.stable import stabilize

MAX_OPERATIONS = 200_000
_REDUCTIONS = ("sum", "max", "logsumexp", "softmax", "log_softmax", "softmax_cross_entropy")


class TooLarge(ValueError):
    """The scalarized function, or its derivatives, would be too large for sympy to be sensible."""


class NotScalarizable(ValueError):
    """An op with no formula in its inputs' elements (argmax: piecewise constant, its value a
    choice rather than an expression), so symbolic mode cannot take the graph."""


def _check_size(size: int, limit: int, what: str):
    if size > limit:
        raise TooLarge(f"symbolic mode would build about {size:,} scalar operations (limit {limit:,}): {what}; "
                       "use mode='reverse', or raise the limit (max_operations; symbolic_limit in sd.compare)")


def _bindings(exprs, at):
    nodes = leaves(exprs)
    given = _resolve_env(at or {}, nodes) if at else {}
    arrays = {id(n): as_leaf_value(n, given[id(n)]) for n in nodes if id(n) in given}
    symbolic = [n for n in nodes if id(n) not in arrays and any(not isinstance(d, int) for d in n.shape)]
    if symbolic:
        raise ValueError(f"symbolic mode needs concrete shapes: give values for {', '.join(n.name for n in symbolic)} "
                         "in `at` (their dimensions are symbolic)")
    return bind_dims([n for n in nodes if id(n) in arrays], arrays), arrays


def _numel(shape, bindings) -> int:
    return int(np.prod(shapes.substitute(shape, bindings), dtype=np.int64))


def estimate(exprs, bindings) -> int:
    """Scalar operations the scalarized graph will hold, shared parts once (matmul counts m·n·k)."""
    total = 0
    for n in toposort(exprs):
        size = _numel(n.shape, bindings)
        if n.op.name == "matmul":
            size *= int(shapes.substitute(n.inputs[0].shape, bindings)[-1])
        elif n.op.name in _REDUCTIONS:
            size = _numel(n.inputs[0].shape, bindings) * 3
        total += size
    return total


def _element_tree(node, inputs, bindings) -> int:
    """Tree size of one element of ``node``, given the tree sizes of its inputs' elements."""
    if not node.inputs:
        return 0
    name, a = node.op.name, node.inputs[0]
    if isinstance(node.op, ElementwiseOp):
        return (0 if name == "astype" else node.op.ops_per_element) + sum(inputs)
    if name == "matmul":
        k = int(shapes.substitute(a.shape, bindings)[-1])
        return k * (inputs[0] + inputs[1]) + 2 * k - 1
    if name in ("sum", "max", "logsumexp", "scatter_add"):
        r = max(1, _numel(a.shape, bindings) // max(1, _numel(node.shape, bindings)))
        return r * inputs[0] + (2 * r if name == "logsumexp" else r - 1)
    if name in ("softmax", "log_softmax"):
        r = int(shapes.substitute(a.shape, bindings)[node.attrs["axis"]])
        return r * inputs[0] + 2 * r + 1
    if name == "softmax_cross_entropy":
        k = int(shapes.substitute(a.shape, bindings)[-1])
        rows = _numel(a.shape, bindings) // max(1, k)
        return rows * (k * inputs[0] + 2 * k + 2)
    return max(inputs)  # movement ops pick elements


def tree_estimate(exprs, bindings) -> int:
    """Scalar operations of the scalarized expressions as trees, shared parts repeated: the size
    ``sympy.diff`` and ``sympy.count_ops`` walk (the logistic map doubles it at every step)."""
    per_element = {}
    for n in toposort(exprs):
        per_element[id(n)] = _element_tree(n, [per_element[id(i)] for i in n.inputs], bindings)
    return sum(per_element[id(o)] * _numel(o.shape, bindings) for o in as_list(exprs))


def derivative_estimate(f, wrt, at=None) -> int:
    """Scalar operations ``sympy.diff`` would build: wrt elements times ``f``'s tree size.

    >>> import symdiff as sd
    >>> X = sd.tensor("X", (2, 3))
    >>> derivative_estimate(sd.sum(sd.tanh(X)), [X])
    66
    """
    f, nodes = as_node(f), as_list(wrt)
    bindings, _ = _bindings([f] + nodes, at)
    return sum(_numel(w.shape, bindings) for w in nodes) * tree_estimate([f], bindings)


def _element_symbols(leaf, shape):
    if not shape:
        return np.array(sympy.Symbol(leaf.name, real=True), dtype=object)
    out = np.empty(shape, dtype=object)
    for index in np.ndindex(*shape):
        out[index] = sympy.Symbol(f"{leaf.name}[{', '.join(map(str, index))}]", real=True)
    return out


@functools.cache
def _stable_scalar(op):
    """The op's scalar form with its exp/log spelling of a stable function replaced by it."""
    return sympy_functions.stabilize(op.scalar, op.params)


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
    scalar = _stable_scalar(op) if op.name != "astype" else None
    for index in np.ndindex(*out.shape):
        values = [a[index] for a in args]
        if op.name == "astype":
            v = values[0]
            # a Symbol is also a sympy Boolean: only a bool *input* is a condition
            out[index] = sympy.Piecewise((1, v), (0, True)) if from_bool and not isinstance(v, sympy.Number) else v
            continue
        if op.name == "power":
            _check_integer_power(*values)
        out[index] = scalar.xreplace(dict(zip(op.params, values)))
    return out


def _check_integer_power(base, exponent):
    """Refuse an exact integer power beyond int64 before sympy computes it (9**(9**9) has 370
    million digits): the graph's integers are int64."""
    if isinstance(base, sympy.Integer) and isinstance(exponent, sympy.Integer) and abs(base) > 1 \
            and exponent > 0 and (int(abs(base)).bit_length() - 1) * int(exponent) > 64:
        raise OverflowError(f"power of int64 values overflows int64: {base}**{exponent} has more than 64 bits")


def _scalarize_node(node, inputs, bindings, arrays, indicators=None):
    name, attrs = node.op.name, node.attrs
    shape = shapes.substitute(node.shape, bindings)
    if node.is_leaf:
        if id(node) in arrays and not node.dtype.startswith("float"):
            return _objects(arrays[id(node)])
        if not node.dtype.startswith("float"):
            return UnknownLabels(node)  # an error, unless only one-hot rows use it (below)
        return _element_symbols(node, shape)
    if node.is_constant:
        value = attrs["value"]
        if isinstance(value, sympy.Basic):
            return np.array(value.xreplace(bindings), dtype=object)
        return _objects(value)
    unknown = next((v for v in inputs if isinstance(v, UnknownLabels)), None)
    if unknown is not None:
        return _of_unknown_labels(node, inputs, shape, bindings, unknown, indicators)
    if isinstance(node.op, ElementwiseOp):
        return _elementwise(node.op, inputs, from_bool=name == "astype" and node.inputs[0].dtype == "bool")
    if node.op.symbolic is None:
        raise NotScalarizable(f"symbolic mode cannot write {name} as a formula in its inputs' elements (it is "
                              "piecewise constant); use mode='reverse' or 'forward'")
    if node.op.symbolic is node.op.evaluate:  # numpy's own functions on object arrays
        values = [_as_indices(v) if i.dtype == "int64" else v for i, v in zip(node.inputs, inputs)]
        return _sympified(node.op.evaluate(values, attrs, shape, bindings))
    return node.op.symbolic(inputs, attrs, shape, bindings)


def _as_indices(values):
    """Integer data as an int64 array (indices numpy can take), where every entry is a number."""
    if all(isinstance(v, sympy.Integer) for v in np.asarray(values).flat):
        return np.vectorize(int, otypes=[np.int64])(values)
    return values


def _sympified(result):
    """``result`` as an object array of sympy expressions: a numeric array, or the plain zeros
    that numpy fills a new object array with, become sympy numbers."""
    if not isinstance(result, np.ndarray):  # one element picked out (getitem, a dot product)
        return result if isinstance(result, sympy.Basic) else _as_number(result)
    if result.dtype != object:
        return _objects(result)
    if any(not isinstance(v, sympy.Basic) for v in result.flat):
        result = np.array(result)  # writable, and not a view of the input
        for index in np.ndindex(*result.shape):
            if not isinstance(result[index], sympy.Basic):
                result[index] = _as_number(result[index])
    return result


# -- labels without values: one-hot rows as 0/1 indicator symbols ------------------------------
class UnknownLabels:
    """What an integer input without a value scalarizes to: nothing yet. Only a one-hot of it (or
    the cross-entropy, which picks through one) has a formula without the values: the rows of
    0/1 indicators Yᵢⱼ (with Σⱼ Yᵢⱼ = 1), symbols that are rebuilt as ``one_hot(y, k)[i, j]``."""

    def __init__(self, leaf):
        self.leaf = leaf

    def error(self, op_name):
        return ValueError(f"symbolic mode needs the values of integer inputs: give {self.leaf.name} in `at` "
                          f"({op_name} uses them; without values only one_hot({self.leaf.name}) and "
                          "softmax_cross_entropy can treat them, as 0/1 indicators)")


def _indicator_symbols(labels: UnknownLabels, k: int, dtype: str, shape, indicators):
    """Yᵢⱼ = 1[yᵢ = j] as symbols named onehot(y)[i, j], each recorded with its graph node."""
    hot = make(one_hot_op, (labels.leaf,), num_classes=k, dtype=dtype)
    out = np.empty(tuple(shape) + (k,), dtype=object)
    for index in np.ndindex(*out.shape):
        symbol = sympy.Symbol(f"onehot({labels.leaf.name})[{', '.join(map(str, index))}]", nonnegative=True)
        out[index] = symbol
        if indicators is not None:
            indicators[symbol] = hot[index]
    return out


def _of_unknown_labels(node, inputs, shape, bindings, labels, indicators):
    if node.op is one_hot_op:
        return _indicator_symbols(labels, int(shape[-1]), node.dtype, shape[:-1], indicators)
    if node.op is softmax_cross_entropy_op:  # mean over rows of logsumexp(zᵢ) − Σⱼ Yᵢⱼ·zᵢⱼ
        logits = inputs[0]
        k = logits.shape[-1]
        hot = _indicator_symbols(labels, k, node.inputs[0].dtype, logits.shape[:-1], indicators)
        rows, hots = logits.reshape(-1, k), hot.reshape(-1, k)
        terms = [sympy_functions.logsumexp(*row) - sympy.Add(*[y * z for y, z in zip(h, row)])
                 for row, h in zip(rows, hots)]
        return np.array(sympy.Add(*terms) / len(terms), dtype=object)
    raise labels.error(node.op.name)


def one_hot_rows_sum_to_one(expressions, indicators) -> list:
    """``expressions`` with each one-hot row's sum Σⱼ Yᵢⱼ replaced by 1 (a row holds one 1)."""
    if not indicators:
        return list(expressions)
    rows = {}  # (the one-hot node, the row's index) -> its symbols; each symbol's node is hot[i, j]
    for symbol, element in indicators.items():
        rows.setdefault((id(element.inputs[0]), element.attr("index")[:-1]), []).append(symbol)
    sums = {sympy.Add(*row): sympy.Integer(1) for row in rows.values() if len(row) > 1}
    return [_rows_to_one(e, sums) if e.free_symbols & indicators.keys() else e for e in expressions]


REGROUP_LIMIT = 5_000  # operations: expanding and factoring a larger derivative costs more than it saves


def _rows_to_one(expr, sums):
    """``expr`` with Σⱼ Yᵢⱼ → 1, after grouping each stable function's coefficients (the
    derivative of Σⱼ Yᵢⱼ·log softmax(zᵢ)ⱼ holds Yᵢ₀·sᵢₖ + Yᵢ₁·sᵢₖ + …); kept only if smaller."""
    best = expr.subs(sums)
    if count_ops(expr) <= REGROUP_LIMIT:
        calls = sorted(expr.atoms(sympy_functions.StableFunction), key=sympy.default_sort_key)
        grouped = sympy.collect(sympy.expand(expr), calls, func=sympy.factor).subs(sums)
        best = grouped if count_ops(grouped) < count_ops(best) else best
    return best


def scalarize(exprs, at=None, max_operations: int = MAX_OPERATIONS, indicators: dict | None = None):
    """Object arrays of sympy expressions, one per expression (memoized per node).

    Labels without values scalarize as one-hot indicator symbols; ``indicators`` (if given)
    receives each symbol's graph node (``one_hot(y, k)[i, j]``)."""
    outputs = as_list(exprs)
    bindings, arrays = _bindings(outputs, at)
    _check_size(estimate(outputs, bindings), max_operations, "the scalarized function")
    memo = {}
    for node in toposort(outputs):
        memo[id(node)] = _scalarize_node(node, [memo[id(i)] for i in node.inputs], bindings, arrays, indicators)
    return [memo[id(o)] for o in outputs]


@dataclasses.dataclass
class Differentiated:
    """sympy's derivatives of a scalar function before cse: where both symbolic modes start."""

    f: Node
    wrt: list
    element_symbols: list  # per wrt leaf, an object array of its element symbols
    symbol_map: dict  # every float input element symbol -> its graph node (leaf[i, j])
    derivatives: list  # flat, wrt leaf by wrt leaf
    function_tree_ops: int
    tree_ops: int
    diff_s: float
    operations: int  # the largest size checked against max_operations: the least limit that lets this run


@dataclasses.dataclass
class SymbolicDerivatives:
    graphs: list  # one graph node per wrt leaf, with its shape
    expressions: list  # sympy derivative expressions (after cse: the reduced ones)
    replacements: list  # cse's (symbol, expression) pairs; empty without cse
    function_tree_ops: int  # f's operations as a tree
    tree_ops: int  # the derivatives as trees (no sharing): the swell
    dag_ops: int  # after cse: replacements + reduced expressions
    diff_s: float
    cse_s: float

    @property
    def derive_s(self) -> float:
        return self.diff_s + self.cse_s


def _ops(exprs) -> int:
    # stable functions count as their exp/log forms: the swell meter sees the textbook math
    return sum(count_ops(e) for e in exprs)


def _symbol_map(f, nodes, bindings) -> dict:
    mapping = {}
    for leaf in [n for n in leaves([f]) if n.dtype.startswith("float")] + nodes:
        symbols = _element_symbols(leaf, shapes.substitute(leaf.shape, bindings))
        for index in np.ndindex(*symbols.shape):
            mapping[symbols[index]] = leaf[index] if symbols.ndim else leaf
    return mapping


def _terms_by_symbol(expr) -> dict:
    """The top-level terms of ``expr`` that hold each symbol (a loss over rows: one row's terms)."""
    found = {}
    for term in sympy.Add.make_args(expr):
        for s in term.free_symbols:
            found.setdefault(s, []).append(term)
    return found


def _diff_each(expr, symbols, limit):
    """``sympy.diff(expr, s)`` for each symbol, stopped as soon as their trees pass ``limit``.

    Only the terms that hold ``s`` are differentiated: the same derivative, without sympy
    walking every other row of a loss to find that it does not depend on ``s``."""
    terms = _terms_by_symbol(expr)
    derivatives, tree_ops, diff_s = [], 0, 0.0
    for s in symbols:
        start = time.perf_counter()
        d = sympy.diff(sympy.Add(*terms.get(s, ())), s)
        diff_s += time.perf_counter() - start
        tree_ops += count_ops(d)
        _check_size(tree_ops, limit, f"sympy.diff had built that many after {len(derivatives) + 1:,} "
                                     f"of {len(symbols):,} wrt elements")
        derivatives.append(d)
    return derivatives, tree_ops, diff_s


def differentiate(f, wrt, at=None, max_operations: int = MAX_OPERATIONS) -> Differentiated:
    """``sympy.diff`` of scalar ``f`` by every wrt element, within ``max_operations``."""
    f = as_node(f)
    if f.shape != ():
        raise ValueError("symbolic mode differentiates scalar functions; use jacobian for others")
    f = stabilize([f])[0][0]  # log(1 + eᶻ) scalarizes as softplus(z): sympy's exp(1000) would overflow
    nodes = as_list(wrt)
    bindings, _ = _bindings([f] + nodes, at)
    count, tree = sum(_numel(w.shape, bindings) for w in nodes), tree_estimate([f], bindings)
    _check_size(count * tree, max_operations, f"{count:,} wrt elements × about {tree:,} operations of f as a tree")
    element_symbols = [_element_symbols(w, shapes.substitute(w.shape, bindings)) for w in nodes]
    symbols = [s for array in element_symbols for s in np.asarray(array).reshape(-1)]
    indicators = {}
    (expr,) = scalarize([f], at, max_operations, indicators)
    expr = expr.item() if isinstance(expr, np.ndarray) else expr
    function_tree_ops = count_ops(expr)
    _check_size(count * function_tree_ops, max_operations,
                f"{count:,} wrt elements × {function_tree_ops:,} operations of f as a tree")
    derivatives, tree_ops, diff_s = _diff_each(expr, symbols, max_operations)
    derivatives = one_hot_rows_sum_to_one(derivatives, indicators)
    operations = max(count * tree, estimate([f], bindings), count * function_tree_ops, tree_ops)
    return Differentiated(f, nodes, element_symbols, {**_symbol_map(f, nodes, bindings), **indicators}, derivatives,
                          function_tree_ops, tree_ops, diff_s, operations)


def derive(d: Differentiated, cse: bool = False) -> SymbolicDerivatives:
    """The derivatives ``d`` (run through ``sympy.cse`` if asked) as sizes, times and graphs."""
    replacements, reduced, cse_s = [], d.derivatives, 0.0
    if cse:
        start = time.perf_counter()
        replacements, reduced = sympy.cse(d.derivatives, symbols=sympy.numbered_symbols("cse_t", real=True))
        cse_s = time.perf_counter() - start
    dag_ops = _ops([e for _, e in replacements]) + _ops(reduced) if cse else d.tree_ops
    graphs = _rebuild(d.wrt, d.element_symbols, replacements, reduced, d.f, d.symbol_map)
    return SymbolicDerivatives(graphs, list(reduced), list(replacements), d.function_tree_ops, d.tree_ops,
                               dag_ops, d.diff_s, cse_s)


def symbolic_derivatives(f, wrt, cse: bool = False, at=None, max_operations: int = MAX_OPERATIONS):
    """Differentiate scalar ``f`` with sympy; sizes, times and the rebuilt graphs."""
    return derive(differentiate(f, wrt, at, max_operations), cse)


def _rebuild(nodes, element_symbols, replacements, reduced, like, symbol_map):
    mapping = dict(symbol_map)  # every input element symbol -> its graph node (leaf[i, j])
    memo = {}  # one for all: the derivatives share most of their parts
    for symbol, expression in replacements:
        mapping[symbol] = to_graph(expression, mapping, like=like, memo=memo)
    graphs, position = [], 0
    for w, symbols in zip(nodes, element_symbols):
        count = int(symbols.size)
        parts = [astype(to_graph(e, mapping, like=like, memo=memo), w.dtype)
                 for e in reduced[position: position + count]]
        position += count
        graphs.append(parts[0] if symbols.ndim == 0 else reshape(stack(parts), symbols.shape))  # concrete sizes
    return graphs


def symbolic_grad(f, wrt, cse: bool = False, at=None, max_operations: int = MAX_OPERATIONS) -> list:
    """Gradient of scalar ``f`` by ``sympy.diff`` (and ``sympy.cse``), as graph nodes."""
    return symbolic_derivatives(f, wrt, cse, at, max_operations).graphs
