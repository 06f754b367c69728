"""In-place updates: write a new parameter value straight into its input array when safe.

After scheduling, each update ``W ← V`` computes V into a temporary and copies it into
W's array at the end of the program. Two rewrites remove the temporary and the copy:

* ``W ← b·W ± c·(A·B)`` (an SGD step on a matmul gradient, or momentum ``v ← μv + g``)
  becomes one GEMM call that accumulates into W: ``gemm(alpha=±c, beta=b, C=W)``;
* an elementwise update whose loop reads W only at the element it writes (``W − c·g``,
  Adam's moment updates) writes W in place.

Both require that no later kernel reads W (they would see the new value).

The program calls :func:`fold` on each schedule (the two stages stay apart: a schedule can be
inspected before and after).

>>> import symdiff as sd
>>> from symdiff.lowering.plan.schedule import schedule
>>> X, W = sd.tensor("X", (8, 4)), sd.tensor("W", (4, 3))
>>> G = sd.tensor("G", (8, 3))
>>> s = schedule([], [X, W, G], {W: W - 0.5 * (X.T @ G)})
>>> [(k.kind, k.out.buffer.name) for k in s.kernels], len(s.updates)   # a product, a step, a copy
([('gemm', 't0'), ('loop', 't1')], 1)
>>> s = fold(s)
>>> [(k.kind, k.out.buffer.name, k.alpha, k.beta) for k in s.kernels], s.updates
([('gemm', 'in1', -0.5, 1.0)], [])
"""

from __future__ import annotations

import sympy

from .schedule import Schedule, View, consumers_of, renumber_temps


def fold(sched: Schedule) -> Schedule:
    """``sched`` with its updates written in place where safe (see the module doc)."""
    kept = fold_updates(sched.kernels, sched.updates, sched.update_leaves, sched.views, sched.temps,
                        consumers_of(sched.nodes), sched.bindings)
    kept_positions = {pos for pos, _ in kept}
    sched.update_leaves = [leaf for (pos, _), leaf in zip(sched.updates, sched.update_leaves)
                           if pos in kept_positions]
    sched.updates = kept
    renumber_temps(sched.temps)
    return sched


def kernel_buffers(kernel, views) -> set:
    """Names of the buffers a kernel reads (through views and fused producers)."""
    roots = [kernel.node] if kernel.copy else list(kernel.node.inputs)
    roots += [i for n in kernel.epilogue for i in n.inputs]
    out, seen, stack = set(), set(), roots
    while stack:
        n = stack.pop()
        if id(n) in seen:
            continue
        seen.add(id(n))
        view = views.get(id(n))
        if view is not None:
            out.add(view.buffer.name)
        elif not (n.is_constant and n.shape == ()):
            stack.extend(n.inputs)
    return out


def _number(node, bindings):
    """The value of a scalar constant (through broadcasts/reshapes), dimension symbols bound: a
    float, or a sympy expression in the run-time dimensions (a mean's ``1/m``, computed in C)."""
    while node.op.name in ("broadcast_to", "reshape"):
        node = node.inputs[0]
    if not (node.is_constant and node.shape == ()):
        return None
    value = node.attr("value")
    if isinstance(value, sympy.Basic):
        value = sympy.sympify(value.xreplace(bindings))
        if value.is_number:
            return float(value)
        runtime = set(bindings.values())
        return value if value.free_symbols <= runtime else None
    return float(value) if not isinstance(value, bool) else None


def _scaled_matmul(node, bindings, consumers):
    """(matmul, c) when node is c·(A·B) built from multiplies/divides by scalar constants whose
    intermediate results nothing else reads."""
    c = 1.0
    while node.op.name in ("multiply", "divide"):
        if len(consumers[id(node)]) > 1:
            return None
        a, b = node.inputs
        kb, ka = _number(b, bindings), _number(a, bindings)
        if kb is not None:
            if node.op.name == "divide":
                if kb == 0:
                    return None
                c /= kb
            else:
                c *= kb
            node = a
        elif ka is not None and node.op.name == "multiply":
            c *= ka
            node = b
        else:
            return None
    return (node, c) if node.op.name == "matmul" else None


def _aligned_reads_only(value, leaf, views) -> bool:
    """Whether the loop computing ``value`` reads ``leaf``'s buffer only at the element it writes."""
    target = views[id(leaf)].buffer
    stack = list(value.inputs)
    while stack:
        n = stack.pop()
        if n is leaf:
            continue
        view = views.get(id(n))
        if view is not None:
            if view.buffer is target:
                return False  # a transposed/broadcast/sliced view of the leaf
            continue
        if n.op.view or getattr(n.op, "kind", "") != "elementwise":
            if not (n.is_constant and n.shape == ()):
                # index maps change which element is read: leaf must not be reachable below
                if _reaches(n, target, views):
                    return False
            continue
        stack.extend(n.inputs)
    return True


def _reaches(node, target, views) -> bool:
    stack = [node]
    while stack:
        n = stack.pop()
        view = views.get(id(n))
        if view is not None:
            if view.buffer is target:
                return True
            continue
        stack.extend(n.inputs)
    return False


def fold_updates(kernels, updates, update_leaves, views, temps, consumers, bindings):
    """Rewrite ``kernels``/``updates`` in place (see the module doc); returns the kept updates."""
    reads = [kernel_buffers(k, views) for k in kernels]
    position = {id(k): i for i, k in enumerate(kernels)}
    kept = []
    for (pos, view), leaf in zip(updates, update_leaves):
        target = views[id(leaf)].buffer
        kernel = next((k for k in kernels if view.buffer is k.out.buffer and not k.copy), None)
        if kernel is None or view.buffer.role != "temp" or kernel.kind != "loop":
            kept.append((pos, view))
            continue
        value = kernel.node
        if _fold_gemm(kernel, value, leaf, target, kernels, reads, position, views, temps, consumers, bindings):
            continue
        i = position[id(kernel)]
        later = any(target.name in reads[j] for j in range(i + 1, len(kernels)))
        # readers of the new value (if any) come after its kernel and find it in the leaf's array
        if not later and _aligned_reads_only(value, leaf, views):
            temps.remove(view.buffer)
            kernel.out = View.contiguous(target, view.shape)
            views[id(value)] = kernel.out
            continue
        kept.append((pos, view))
    return kept


def _leaf_coefficient(node, leaf, bindings):
    """b when node is leaf (b = 1) or b·leaf / leaf·b with b a scalar constant, else None."""
    if node is leaf:
        return 1.0
    if node.op.name == "multiply":
        x, y = node.inputs
        if x is leaf:
            return _number(y, bindings)
        if y is leaf:
            return _number(x, bindings)
    return None


def _as_gemm_update(value, leaf, bindings, consumers):
    """(matmul, alpha, beta) when value = beta·leaf ± c·(A·B) (an SGD or momentum step)."""
    if value.op.name not in ("add", "subtract"):
        return None
    a, b = value.inputs
    beta, other, sign = _leaf_coefficient(a, leaf, bindings), b, (-1.0 if value.op.name == "subtract" else 1.0)
    if beta is None and value.op.name == "add":
        beta, other, sign = _leaf_coefficient(b, leaf, bindings), a, 1.0
    if beta is None:
        return None
    found = _scaled_matmul(other, bindings, consumers)
    if found is None:
        return None
    matmul, c = found
    alpha = sign * c
    if isinstance(alpha, sympy.Basic) and alpha.is_number:
        alpha = float(alpha)
    return matmul, alpha, beta


def _fold_gemm(kernel, value, leaf, target, kernels, reads, position, views, temps, consumers, bindings) -> bool:
    found = _as_gemm_update(value, leaf, bindings, consumers)
    if found is None:
        return False
    matmul, alpha, beta = found
    gemm = next((k for k in kernels if k.node is matmul and k.kind == "gemm"), None)
    if gemm is None or gemm.out.buffer.role != "temp" or matmul.dtype not in ("float32", "float64"):
        return False
    if len(consumers[id(matmul)]) != 1:
        return False
    g = position[id(gemm)]
    if target.name in reads[g]:
        return False  # the product reads W itself
    if any(target.name in reads[j] for j in range(g + 1, len(kernels)) if kernels[j] is not kernel):
        return False  # a later kernel needs the old W
    temps.remove(gemm.out.buffer)
    temps.remove(kernel.out.buffer)
    gemm.out = View.contiguous(target, gemm.out.shape)
    gemm.alpha, gemm.beta = alpha, beta
    views[id(matmul)] = gemm.out  # nothing else reads the product
    kernels.remove(kernel)
    reads.pop(position[id(kernel)])
    position.clear()
    position.update({id(k): i for i, k in enumerate(kernels)})
    views[id(value)] = gemm.out  # readers of the new value (W ← W − lr·v after v ← μv + g) find it in place
    return True
