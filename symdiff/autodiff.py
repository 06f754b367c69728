"""Forward and reverse mode on the graph itself: derivatives are graph nodes.

Reverse mode extends the graph with adjoint nodes (as in CMU's needle), so the
gradient of a gradient, Hessians and Hessian-vector products come for free.
Forward mode pushes tangents through the same op rules; several tangents at once
travel as one batched tangent (a leading axis), which is how a forward-mode
gradient with respect to n input elements is one pass whose cost shows the n.

>>> import symdiff as sd
>>> x, y = sd.symbols("x y")
>>> f = sd.sin(x) * sd.exp(y) + x**2
>>> dx, dy = sd.grad(f, [x, y])
>>> print(dx)
x*2 + exp(y)*cos(x)
>>> [round(float(v), 6) for v in sd.evaluate([dx, dy], {x: 0.3, y: -0.7})]
[1.074406, 0.146751]
"""

from __future__ import annotations

import numpy as np
import sympy

from . import dtypes, shapes, sparsity
from .evaluate import evaluate
from .graph import as_list, cost, toposort
from .names import mark_derivative
from .node import Node, as_node, constant, tensor
from .ops.elementwise import scalar_value
from .ops.linalg import eye
from .ops.movement import broadcast_to, reshape, slice_axis, transpose, zeros
from .ops.registry import function
from .printing import notes
from .results import Derivatives, attach_note, record_origin
from .rewrite.stable import stabilize
from .symbolic import symbolic_grad


class DifferentiationError(TypeError):
    """A derivative that is not defined as asked (non-scalar grad, integer leaf, ...)."""


def _check_wrt(wrt) -> list:
    nodes = as_list(wrt)
    for w in nodes:
        if not w.is_leaf:
            raise DifferentiationError(f"can only differentiate with respect to leaves, not {w}; "
                                       "give the expression a name with sd.tensor and substitute")
        if not dtypes.is_float(w.dtype):
            raise DifferentiationError(f"cannot differentiate with respect to {w.name}: it is {w.dtype}; "
                                       "derivatives need float leaves")
    return nodes


def _depends(order, wrt) -> set:
    """Ids of nodes in ``order`` that depend on some ``wrt`` leaf."""
    live = {id(w) for w in wrt}
    for n in order:
        if any(id(i) in live for i in n.inputs):
            live.add(id(n))
    return live


def _accumulate(table, node, value):
    key = id(node)
    old = table.get(key)
    if old is None:
        table[key] = value
        return
    # the cotangents of a multi-output op (a scan) are packs of parts, summed part by part
    combine = getattr(old.op, "add_cotangents", None) if old.op is value.op else None
    table[key] = combine(old, value) if combine is not None else old + value


def vjp_graph(outputs, cotangents, wrt, nb: int = 0) -> list:
    """Cotangents of ``wrt`` given cotangents of ``outputs`` (reverse mode, as graph nodes)."""
    outputs, wrt = as_list(outputs), _check_wrt(wrt)
    order = toposort(outputs)
    live = _depends(order, wrt)
    ct = {}
    for o, c in zip(outputs, cotangents):
        if id(o) in live:
            _accumulate(ct, o, c)
    for node in reversed(order):
        g = ct.get(id(node))
        if g is None or not node.inputs or not node.op.differentiable:
            continue
        needed = tuple(id(i) in live for i in node.inputs)
        if node.op.vjp is None:
            raise DifferentiationError(f"op {node.op.name} has no reverse-mode rule")
        # an op may send its cotangents past its inputs (sd.custom_vjp: to the composite's arguments)
        targets = node.op.vjp_targets(node) if hasattr(node.op, "vjp_targets") else node.inputs
        for inp, c in zip(targets, node.op.vjp(node, g, nb, needed)):
            if c is not None and id(inp) in live:
                _accumulate(ct, inp, c)
    lead = cotangents[0].shape[:nb] if cotangents else ()
    return [ct.get(id(w), zeros(lead + w.shape, w.dtype)) for w in wrt]


def jvp_graph(outputs, wrt, tangents, nb: int = 0) -> list:
    """Tangents of ``outputs`` given tangents of ``wrt`` (forward mode, as graph nodes)."""
    outputs, wrt = as_list(outputs), _check_wrt(wrt)
    t = {id(w): as_node(v) for w, v in zip(wrt, tangents) if v is not None}
    for node in toposort(outputs):
        if id(node) in t or not node.inputs or not node.op.differentiable:
            continue
        ins = [t.get(id(i)) for i in node.inputs]
        if all(v is None for v in ins):
            continue
        if node.op.jvp is None:
            raise DifferentiationError(f"op {node.op.name} has no forward-mode rule")
        out = node.op.jvp(node, ins, nb)
        if out is not None:
            t[id(node)] = out
    lead = next(iter(t.values())).shape[:nb] if t else ()
    return [t.get(id(o), zeros(lead + o.shape, o.dtype) if dtypes.is_float(o.dtype) else None)
            for o in outputs]


def basis(wrt: list) -> list:
    """Batched tangent seeds for ``wrt``: together one identity of size Σ numel (the n of forward mode)."""
    sizes = [shapes.numel(w.shape) for w in wrt]
    total = shapes.dim(sum(sizes, 0)) if not all(isinstance(s, int) for s in sizes) else sum(sizes)
    identity = eye(total, wrt[0].dtype)
    seeds, start = [], 0
    for w, n in zip(wrt, sizes):
        block = identity if len(wrt) == 1 else slice_axis(identity, 1, start, start + n)
        seeds.append(reshape(block, (total,) + w.shape))
        start = start + n
    return seeds


# -- public entry points -------------------------------------------------------------------
MODES = ("reverse", "forward", "symbolic", "symbolic-cse")


def _single(wrt):
    return isinstance(wrt, Node)


@function
def grad(f, wrt, mode: str = "reverse", at=None):
    """Gradient of scalar ``f`` with respect to each leaf in ``wrt`` (same shapes as the leaves).

    ``mode`` is "reverse" (one backward pass), "forward" (one batched pass with a
    tangent per input element), "symbolic" or "symbolic-cse" (sympy on the
    scalarized graph; ``at`` gives the values of integer inputs and symbolic sizes).
    A single leaf gives a single result, a list a list.

    >>> import symdiff as sd
    >>> X, w = sd.tensor("X", ("m", "n")), sd.tensor("w", ("n",))
    >>> g = sd.grad(sd.sum((X @ w) ** 2), w)
    >>> g.shape
    (n,)
    """
    f = as_node(f)
    if f.shape != ():
        raise DifferentiationError(f"grad needs a scalar function, got shape {shapes.format_shape(f.shape)}; "
                                   "use sd.jacobian or sd.vjp for non-scalar functions")
    if not dtypes.is_float(f.dtype):
        raise DifferentiationError(f"grad needs a float function, got {f.dtype}")
    nodes = _check_wrt(wrt)
    labelled, ([f], [fired]) = f, stabilize([f])  # differentiate log(1 + eᶻ) as softplus(z): no inf/inf
    if mode == "reverse":
        result = vjp_graph([f], [constant(1, f.dtype)], nodes)
    elif mode == "forward":
        (tangent,) = jvp_graph([f], nodes, basis(nodes), nb=1)
        result, start = [], 0
        for w in nodes:
            n = shapes.numel(w.shape)
            result.append(reshape(slice_axis(tangent, 0, start, start + n) if len(nodes) > 1 else tangent, w.shape))
            start = start + n
    elif mode in ("symbolic", "symbolic-cse"):
        result = symbolic_grad(f, nodes, cse=mode == "symbolic-cse", at=at)
    else:
        raise ValueError(f"unknown mode {mode!r}; choose one of {', '.join(MODES)}")
    for r, w in zip(result, nodes):
        mark_derivative(r, labelled, w)
        notes.record(r, fired)
    # equal derivatives are one node: each position of the list carries its own ∂f/∂w label
    if _single(wrt):
        return result[0]
    return Derivatives(result, [(labelled, w.name) for w in nodes], kind="grad", wrt=[w.name for w in nodes])


@function
def jvp(f, wrt, tangents):
    """Directional derivative J·t of ``f`` (one expression or a list) along ``tangents``.

    >>> import symdiff as sd
    >>> x, y = sd.symbols("x y")
    >>> print(sd.jvp(x * y, [x, y], [1.0, 0.0]))
    y
    """
    outputs = as_list(f)
    nodes = _check_wrt(wrt)
    tangents = tangents if isinstance(tangents, (list, tuple)) else [tangents]
    tangents = [as_node(t, like=w) for t, w in zip(tangents, nodes)]
    for w, t in zip(nodes, tangents):
        if t.shape != w.shape and not (t.shape == () and t.is_constant):
            raise shapes.ShapeError(f"jvp: tangent for {w.name} has shape {shapes.format_shape(t.shape)}, "
                                    f"expected {shapes.format_shape(w.shape)}")
    # a zero tangent is a symbolic zero: nothing flows from that leaf
    tangents = [None if scalar_value(t) == 0 else broadcast_to(t, w.shape) for t, w in zip(tangents, nodes)]
    result = jvp_graph(outputs, nodes, tangents)
    return result[0] if isinstance(f, Node) else result


@function
def vjp(f, wrt, cotangent):
    """Cotangent pullback Jᵀ·c of expression ``f`` into each leaf of ``wrt``.

    >>> import symdiff as sd
    >>> v = sd.tensor("v", (3,))
    >>> c = sd.tensor("c", (3,))
    >>> print(sd.vjp(sd.exp(v), v, c))
    c*exp(v)
    """
    f = as_node(f)
    c = as_node(cotangent, like=f)
    if c.shape != f.shape:
        c = broadcast_to(c, f.shape)
    result = vjp_graph([f], [c], _check_wrt(wrt))
    return result[0] if _single(wrt) else result


def _dim_bindings(f, nodes, at) -> dict:
    """Concrete sizes of symbolic dims from ``at``: leaf -> value (its shape binds the dims) or
    dim name / sympy symbol -> int."""
    bindings = {}
    if not at:
        return bindings
    if not hasattr(at, "items"):
        raise TypeError(f"at= must be a mapping (leaf or dim name -> value), got {type(at).__name__}")
    by_name = {str(d): d for n in toposort([f] + list(nodes)) for d in n.shape if isinstance(d, sympy.Symbol)}
    for key, value in at.items():
        if isinstance(key, Node):
            got = np.shape(value)
            if len(got) != key.ndim:
                raise shapes.ShapeError(f"at=: {key.name} has shape {shapes.format_shape(key.shape)}, "
                                        f"the value {shapes.format_shape(got)}")
            bindings.update({d: int(g) for d, g in zip(key.shape, got) if isinstance(d, sympy.Symbol)})
        elif isinstance(key, (str, sympy.Symbol)) and str(key) in by_name and isinstance(value, (int, np.integer)):
            bindings[by_name[str(key)]] = int(value)
    return bindings


def _counts(f, nodes):
    n = sympy.sympify(sum((shapes.numel(w.shape) for w in nodes), 0))
    return n, sympy.sympify(shapes.numel(f.shape))


def crossover(forward_flops, reverse_flops) -> str:
    """The condition under which reverse mode is cheaper than forward mode, solved from their FLOPs
    (the same solve as ``sd.compare``'s crossover line), as a sentence.

    >>> import sympy
    >>> m, n = sympy.symbols("m n", integer=True, positive=True)
    >>> crossover(n * (2 * m + 1), m * (2 * n + 1))
    'forward when n < m, reverse when m < n (forward − reverse FLOPs = -m + n; crossover at m = n)'
    """
    diff = sympy.factor(sympy.expand(sympy.sympify(forward_flops) - sympy.sympify(reverse_flops)))
    for s in sorted(diff.free_symbols, key=lambda s: s.name):
        roots = [r for r in sympy.solve(diff, s) if r.free_symbols and r != s]
        if not roots:
            continue
        root = roots[0]
        typical = {t: 10 for t in root.free_symbols}
        above = diff.subs(s, 2 * root).subs(typical)  # sign of forward − reverse where s exceeds the root
        if not above.is_number or above == 0:
            continue
        wins_above, wins_below = ("reverse", "forward") if above > 0 else ("forward", "reverse")
        return (f"{wins_above} when {root} < {s}, {wins_below} when {s} < {root} "
                f"(forward − reverse FLOPs = {diff}; crossover at {s} = {root})")
    return f"forward − reverse FLOPs = {diff}: no crossover for positive sizes"


def _cheaper_at(diff, bindings):
    value = sympy.sympify(diff).xreplace(bindings)
    return None if not value.is_number else ("forward" if value < 0 else "reverse")


def choose_jacobian_mode(f, nodes, at=None) -> tuple[str, str]:
    """("forward" | "reverse", why): forward needs one tangent per input element, reverse one
    cotangent per output element; pick the smaller count. On a tie reverse wins: its rows come
    out in the Jacobian's layout (output axes first), forward's need a transpose (measured on
    tanh(A·x), n = m = 100: 0.18 vs 0.20 ms).

    With symbolic sizes the counts may not be ordered: then both Jacobians' FLOPs are solved for
    their crossover (as ``sd.compare`` does) and the condition is stated. Sizes from ``at`` (leaf
    values or dim sizes) pick the cheaper side; without them reverse is built (it wins the tie
    m = n) and the sentence says when forward would have been cheaper.
    """
    n, m = _counts(f, nodes)
    bindings = _dim_bindings(f, nodes, at)
    concrete_n, concrete_m = sympy.sympify(n.xreplace(bindings)), sympy.sympify(m.xreplace(bindings))
    if concrete_n.is_number and concrete_m.is_number:
        n_text = n if n == concrete_n else f"{n} = {concrete_n}"
        m_text = m if m == concrete_m else f"{m} = {concrete_m}"
        if concrete_n < concrete_m:
            return "forward", f"forward mode: {n_text} input elements < {m_text} output elements"
        if concrete_n == concrete_m:
            return "reverse", (f"reverse mode: {m_text} output elements = {n_text} input elements; on a tie "
                               "reverse's rows come out in the Jacobian's layout")
        return "reverse", f"reverse mode: {m_text} output elements < {n_text} input elements"
    fwd = cost(_build(f, nodes, "forward"))["flops"]
    rev = cost(_build(f, nodes, "reverse"))["flops"]
    condition = crossover(fwd, rev)
    chosen = _cheaper_at(fwd - rev, bindings) or "reverse"
    return chosen, (f"{chosen} mode: {n} input and {m} output elements cannot be ordered; by their FLOPs {condition}; "
                    f"built {chosen} (give at= sizes to choose for them)")


def _build(f, nodes, mode) -> list:
    result = []
    if mode == "forward":
        for w in nodes:
            (t,) = jvp_graph([f], [w], basis([w]), nb=1)  # (n,) + f.shape
            moved = transpose(t, tuple(range(1, t.ndim)) + (0,)) if t.ndim > 1 else t
            result.append(reshape(moved, f.shape + w.shape))
    elif mode == "reverse":
        m = shapes.numel(f.shape)
        seed = reshape(eye(m, f.dtype), (m,) + f.shape)
        for c, w in zip(vjp_graph([f], [seed], nodes, nb=1), nodes):
            result.append(reshape(c, f.shape + w.shape))
    else:
        raise ValueError(f"unknown jacobian mode {mode!r}; choose auto, forward or reverse")
    return result


@function
def jacobian(f, wrt, mode: str = "auto", explain: bool = False, at=None, sparse: bool = False):
    """Jacobian of ``f`` with respect to each leaf: shape ``f.shape + leaf.shape``.

    ``mode="auto"`` picks forward or reverse from the input and output sizes (with symbolic
    sizes, from the solved FLOPs crossover; ``at`` gives sizes); ``explain=True`` also returns
    the sentence saying why, which the result also carries (``results.note_of``; a list's
    ``mode_note``). ``sparse=True`` detects the sparsity pattern (:func:`symdiff.sparsity.sparsity`)
    and computes the values at the point ``at`` from one product per colour of a graph
    colouring (columns for forward, rows for reverse; "auto": fewer products):
    a :class:`~symdiff.sparsity.SparseJacobian` per leaf.

    >>> import symdiff as sd
    >>> A, x = sd.tensor("A", (3, 2)), sd.tensor("x", (2,))
    >>> J, why = sd.jacobian(sd.tanh(A @ x), x, explain=True)
    >>> J.shape, why
    ((3, 2), 'forward mode: 2 input elements < 3 output elements')
    """
    f = as_node(f)
    nodes = _check_wrt(wrt)
    if sparse:
        if at is None:
            raise ValueError("jacobian(sparse=True) needs at= values: the compressed products are numeric")
        out = [sparse_jacobian(f, w, at, mode) for w in nodes]
        return out[0] if _single(wrt) else out
    why = f"{mode} mode, as asked"
    if mode == "auto":
        mode, why = choose_jacobian_mode(f, nodes, at)
    result = _build(f, nodes, mode)
    for r, w in zip(result, nodes):
        record_origin(r, f, w)
    if _single(wrt):
        out = attach_note(result[0], why)
    else:
        out = Derivatives(result, [(f, w.name) for w in nodes], kind="jacobian", wrt=[w.name for w in nodes],
                          mode_note=why)
    return (out, why) if explain else out


def _evaluated(exprs, at, extra):
    env = dict(at)
    env.update(extra)
    return evaluate(exprs, env)


def sparse_jacobian(f, w, at, mode="auto") -> sparsity.SparseJacobian:
    """The Jacobian of ``f`` with respect to leaf ``w`` at ``at``, from compressed products: the
    columns (forward) or rows (reverse) of one colour share one JVP (VJP), since no two of them
    have a nonzero in the same row (column)."""
    pattern = sparsity.sparsity(f, w)
    P = pattern.pattern
    m, n = P.shape
    col_colours, row_colours = sparsity.colour_columns(P), sparsity.colour_columns(P.T)
    if mode == "auto":
        mode = "forward" if col_colours.max(initial=-1) <= row_colours.max(initial=-1) else "reverse"
    if mode not in ("forward", "reverse"):
        raise ValueError(f"unknown jacobian mode {mode!r}; choose auto, forward or reverse")
    colours = col_colours if mode == "forward" else row_colours
    k = int(colours.max(initial=-1)) + 1
    if k == 0:
        return sparsity.SparseJacobian(pattern, np.zeros((m, n)), mode, 0, colours, f.shape + w.shape)
    # seed: one row per colour; entry 1 at each column (row) of that colour
    seed = np.zeros((k, n if mode == "forward" else m), dtype=w.dtype if mode == "forward" else f.dtype)
    coloured = np.nonzero(colours >= 0)[0]
    seed[colours[coloured], coloured] = 1
    if mode == "forward":
        leaf = tensor("sparse_seed", (k,) + w.shape, w.dtype)
        (t,) = jvp_graph([f], [w], [leaf], nb=1)
        compressed = np.asarray(_evaluated(t, at, {leaf: seed.reshape((k,) + w.shape)})).reshape(k, m)
        rows, cols = np.nonzero(P)
        values = compressed[colours[cols], rows]
    else:
        leaf = tensor("sparse_seed", (k,) + f.shape, f.dtype)
        (c,) = vjp_graph([f], [leaf], [w], nb=1)
        compressed = np.asarray(_evaluated(c, at, {leaf: seed.reshape((k,) + f.shape)})).reshape(k, n)
        rows, cols = np.nonzero(P)
        values = compressed[colours[rows], cols]
    dense = np.zeros((m, n), dtype=np.result_type(values.dtype, np.float64) if values.size else np.float64)
    dense[rows, cols] = values
    return sparsity.SparseJacobian(pattern, dense, mode, k, colours, f.shape + w.shape)


@function
def hessian(f, wrt, sparse: bool = False, at=None):
    """Hessian of scalar ``f`` by forward-over-reverse: the Jacobian of the reverse-mode gradient.

    ``sparse=True`` (with ``at=`` values) colours the columns of the gradient's Jacobian, whose
    pattern is the Hessian's: a :class:`~symdiff.sparsity.SparseJacobian` per (row, column) leaf
    pair (one leaf: one result).

    >>> import symdiff as sd
    >>> x, y = sd.symbols("x y")
    >>> H = sd.hessian(x**2 * y, [x, y])
    >>> [[float(sd.evaluate(h, {x: 1.0, y: 3.0})) for h in row] for row in H]
    [[6.0, 2.0], [2.0, 0.0]]
    """
    nodes = _check_wrt(wrt)
    g = grad(f, nodes, mode="reverse")
    g = [g] if isinstance(g, Node) else list(g)
    if sparse:
        if at is None:
            raise ValueError("hessian(sparse=True) needs at= values: the compressed products are numeric")
        rows = [[sparse_jacobian(gi, wj, at, "forward") for wj in nodes] for gi in g]
        return rows[0][0] if _single(wrt) else rows
    rows = [[jacobian(gi, wj, mode="forward") for wj in nodes] for gi in g]
    if _single(wrt):
        return rows[0][0]
    f = as_node(f)
    return Derivatives(rows, [(f, w.name) for w in nodes], kind="hessian", wrt=[w.name for w in nodes],
                       mode_note="forward over reverse")


@function
def hvp(f, wrt, vectors):
    """Hessian-vector products H·v without forming H: a JVP of the reverse-mode gradient.

    >>> import symdiff as sd
    >>> x, y = sd.symbols("x y")
    >>> hv = sd.hvp(x**2 * y, [x, y], [1.0, 0.0])
    >>> [float(sd.evaluate(h, {x: 1.0, y: 3.0})) for h in hv]
    [6.0, 2.0]
    """
    nodes = _check_wrt(wrt)
    return jvp(grad(f, nodes, mode="reverse"), nodes, vectors)
