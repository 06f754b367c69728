"""Numerically better forms, one rule per identity: log(1 + eᶻ) = softplus(z), log Σ eᶻ = logsumexp(z), …

These change *how* a value is computed, never the value. The hand-written forms of the
course's losses overflow where their stable forms do not: ``log(1 + exp(1000))`` is inf (and
its gradient ``inf/inf`` NaN), ``softplus(1000)`` is 1000. The rules of ``STABILIZE`` find them
wherever they appear (under broadcasts, inside sums and means, with ``1`` or ``1.0``):

- log(1 + eᶻ), log(eᶻ + 1), log1p(eᶻ) → softplus(z);  log σ(z) → −softplus(−z);
  log(1 − σ(z)) → −softplus(z);
- log Σ eᶻ → logsumexp(z) (over any axes, keepdims too);  log softmax(z) → log_softmax(z);
  z − logsumexp(z) (kept dims, broadcast back) → log_softmax(z);
- Σₖ Uₖ·Yₖ − logsumexp(U) → Σₖ Yₖ·log_softmax(U)ₖ for one-hot rows Y (Σₖ Yₖ = 1), and
  Σ onehot(y) ⊙ log_softmax(z) → −N·CE(z, y): a cross-entropy written by hand becomes the
  fused op, whose gradient is (softmax(z) − onehot(y))/N;
- 1/(1 + eᶻ) → σ(−z), eᶻ/(1 + eᶻ) and σ(−z)·eᶻ → σ(z): the derivative of log(1 + eᶻ) written
  out (as ``sd.vjp`` of a graph never stabilized builds it);
- log(1 + x) → log1p(x) (exact near x = 0).

:func:`stabilize` runs them and says which fired: each rule carries a ``note``, and
``sd.optimize`` and ``sd.grad`` (which stabilizes ``f`` before differentiating it) record the
notes of their results; ``sd.pretty`` prints them under the formulas
(:mod:`symdiff.printing.notes`):

>>> import symdiff as sd
>>> X, w, y = sd.tensor("X", ("m", "n")), sd.tensor("w", ("n",)), sd.tensor("y", ("m",))
>>> L = sd.name(sd.mean(sd.log(1 + sd.exp(-y * (X @ w)))), "L")
>>> print(sd.pretty(sd.optimize(L)))
L = Σ(softplus(−(y ⊙ (X·w)))) / m
stabilized: log(1 + eᶻ) → softplus(z)
>>> print(sd.pretty(sd.optimize(sd.grad(L, [w]))))
∂L/∂w = Xᵀ·−(y ⊙ σ(−(y ⊙ (X·w))) / m)
stabilized: log(1 + eᶻ) → softplus(z)
>>> v = sd.tensor("v", (3,))
>>> print(log_of_sigmoid(sd.log(sd.sigmoid(v))))
-softplus(-v)
"""

from __future__ import annotations

import contextvars
import functools

import numpy as np

from ..node import constant
from ..ops import elementwise as ew
from ..ops.elementwise import apply, scalar_value
from ..ops.movement import broadcast_to, broadcast_to_op, reshape, reshape_op
from ..ops.nn import log_softmax, log_softmax_op, one_hot_op, softmax_cross_entropy, softmax_op
from ..ops.reduce import logsumexp, logsumexp_op, sum_, sum_op
from .registry import rule, run_pass

_FIRED: contextvars.ContextVar = contextvars.ContextVar("symdiff_stabilized", default=None)


def noted(note: str):
    """Give a rule the ``note`` that :func:`stabilize` reports when the rule fires."""

    def decorate(fn):
        @functools.wraps(fn)
        def wrapped(node):
            out = fn(node)
            fired = _FIRED.get()
            if out is not None and out is not node and fired is not None and note not in fired:
                fired.append(note)
            return out

        wrapped.note = note
        return wrapped

    return decorate


def _is_one(node) -> bool:
    """1, 1.0, a broadcast 1, or an array constant of ones."""
    if scalar_value(node) == 1:
        return True
    value = node.attr("value") if node.is_constant else None
    return isinstance(value, np.ndarray) and value.size > 0 and bool(np.all(value == 1))


def _one_plus(node):
    """x where ``node`` is 1 + x or x + 1, else None."""
    if node.op is ew.add:
        a, b = node.inputs
        if _is_one(a):
            return b
        if _is_one(b):
            return a
    return None


def _one_minus(node):
    """x where ``node`` is 1 − x or 1 + (−x), else None."""
    if node.op is ew.subtract and _is_one(node.inputs[0]):
        return node.inputs[1]
    x = _one_plus(node)
    return x.inputs[0] if x is not None and x.op is ew.negative else None


def _softplus(z):
    return apply(ew.softplus, z)


@rule(ew.log)
@noted("log σ(z) → −softplus(−z)")
def log_of_sigmoid(node):
    """log(sigmoid x) → −softplus(−x)."""
    a = node.inputs[0]
    return -_softplus(-a.inputs[0]) if a.op is ew.sigmoid else None


@rule(ew.log, ew.log1p)
@noted("log(1 − σ(z)) → −softplus(z)")
def log_of_one_minus_sigmoid(node):
    """log(1 − σ(z)) → −softplus(z) (and log1p(−σ(z)), what log(1 + x) → log1p(x) makes of it)."""
    a = node.inputs[0]
    x = _one_minus(a) if node.op is ew.log else (a.inputs[0] if a.op is ew.negative else None)
    return -_softplus(x.inputs[0]) if x is not None and x.op is ew.sigmoid else None


@rule(ew.log, ew.log1p)
@noted("log(1 + eᶻ) → softplus(z)")
def log_of_one_plus_exp(node):
    """log(1 + eᶻ), log(eᶻ + 1), log1p(eᶻ) → softplus(z)."""
    a = node.inputs[0]
    x = _one_plus(a) if node.op is ew.log else a
    return _softplus(x.inputs[0]) if x is not None and x.op is ew.exp else None


@rule(ew.log)
@noted("log softmax(z) → log_softmax(z)")
def log_of_softmax(node):
    """log(softmax x) → log_softmax(x)."""
    a = node.inputs[0]
    return log_softmax(a.inputs[0], axis=a.attr("axis")) if a.op is softmax_op else None


@rule(ew.log)
@noted("log(Σ eᶻ) → logsumexp(z)")
def log_of_sum_of_exp(node):
    """log Σ eᶻ → logsumexp(z), over the sum's axes, keepdims as the sum."""
    a = node.inputs[0]
    if a.op is sum_op and a.inputs[0].op is ew.exp:
        return logsumexp(a.inputs[0].inputs[0], axis=a.attr("axis"), keepdims=a.attr("keepdims"))
    return None


def _kept_logsumexp_of(node, z):
    """The axis if ``node`` is logsumexp(z) over one axis, dims kept, broadcast back to z's shape."""
    if node.op is broadcast_to_op:
        node = node.inputs[0]
    if node.op is reshape_op and node.inputs[0].op is logsumexp_op and not node.inputs[0].attr("keepdims"):
        inner = node.inputs[0]
        axes = inner.attr("axis")
        kept = tuple(1 if i in axes else d for i, d in enumerate(z.shape))
        node = inner if len(axes) == 1 and node.shape == kept else node
    if node.op is logsumexp_op and node.inputs[0] is z and len(node.attr("axis")) == 1:
        return node.attr("axis")[0]
    return None


@rule(ew.subtract)
@noted("z − logsumexp(z) → log_softmax(z)")
def log_softmax_by_hand(node):
    """z − logsumexp(z) (along one axis, kept and broadcast back) → log_softmax(z)."""
    z, lse = node.inputs
    axis = _kept_logsumexp_of(lse, z)
    return log_softmax(z, axis=axis) if axis is not None else None


def _picked(node):
    """(U, Y) where ``node`` is Σ over the last axis of U ⊙ Y, Y a one-hot of labels, else None."""
    if node.op is not sum_op or node.inputs[0].op is not ew.multiply:
        return None
    a, b = node.inputs[0].inputs
    hot, u = (a, b) if a.op is one_hot_op else (b, a) if b.op is one_hot_op else (None, None)
    if hot is None or node.attr("axis") != (hot.ndim - 1,):
        return None
    return u, hot


@rule(ew.subtract)
def picked_minus_logsumexp(node):
    """Σₖ Uₖ·Yₖ − logsumexp(U) → Σₖ Yₖ·log_softmax(U)ₖ for one-hot rows Y (Σₖ Yₖ = 1); and
    the other way round, logsumexp(U) − Σₖ Uₖ·Yₖ, its negation. A step, not a stabilization
    (logsumexp is stable already), so it has no note: the cross-entropy it leads to has one."""
    for first, second, sign in ((0, 1, 1), (1, 0, -1)):
        found, lse = _picked(node.inputs[first]), node.inputs[second]
        if found is None or lse.op is not logsumexp_op:
            continue
        u, hot = found
        if lse.inputs[0] is u and lse.attr("axis") == (u.ndim - 1,) and \
                lse.attr("keepdims") == node.inputs[first].attr("keepdims"):
            total = sum_(hot * log_softmax(u), axis=-1, keepdims=lse.attr("keepdims"))
            return total if sign == 1 else -total
    return None


def _negated(u):
    return u.inputs[0] if u.op is ew.negative else -u


@rule(ew.divide, ew.reciprocal)
@noted("1/(1 + eᶻ) → σ(−z)")
def reciprocal_of_one_plus_exp(node):
    """1/(1 + eᶻ) → σ(−z) (so 1/(1 + e⁻ᶻ) → σ(z)): what the derivative of log(1 + eᶻ) holds
    when taken of a graph never stabilized (``sd.vjp``), next to an eᶻ that overflows."""
    if node.op is ew.divide and not _is_one(node.inputs[0]):
        return None
    x = _one_plus(node.inputs[-1])
    return apply(ew.sigmoid, _negated(x.inputs[0])) if x is not None and x.op is ew.exp else None


@rule(ew.divide)
@noted("eᶻ/(1 + eᶻ) → σ(z)")
def exp_over_one_plus_exp(node):
    """eᶻ/(1 + eᶻ) → σ(z) (inf/inf at z = 1000)."""
    top, x = node.inputs[0], _one_plus(node.inputs[1])
    return apply(ew.sigmoid, top.inputs[0]) if x is not None and x.op is ew.exp and top is x else None


@rule(ew.multiply)
@noted("eᶻ/(1 + eᶻ) → σ(z)")
def exp_times_sigmoid_of_negation(node):
    """σ(−z)·eᶻ → σ(z) (the reciprocal rule's σ(−z) times the eᶻ beside it: 0·inf at z = 1000)."""
    for s, e in (node.inputs, node.inputs[::-1]):
        if s.op is ew.sigmoid and e.op is ew.exp and _negated(e.inputs[0]) is s.inputs[0]:
            return apply(ew.sigmoid, e.inputs[0])
    return None


STABILIZE_LOGS = (log_of_sigmoid, log_of_one_minus_sigmoid, log_of_one_plus_exp, log_of_softmax, log_of_sum_of_exp,
                  log_softmax_by_hand, picked_minus_logsumexp)


@rule(ew.log)
@noted("log(1 + x) → log1p(x)")
def log_of_one_plus(node):
    """log(1 + x) → log1p(x)."""
    a = node.inputs[0]
    x = _one_plus(a)
    if x is not None:
        return apply(ew.log1p, x)
    return None


@rule(sum_op)
def sum_of_one_hot(node):
    """Σₖ onehot(y) → 1 over the class axis."""
    a = node.inputs[0]
    if a.op is one_hot_op and node.attr("axis") == (a.ndim - 1,):
        return broadcast_to(constant(1, node.dtype), node.shape)
    return None


def _summed_product(node):
    """(product, sign) where ``node`` sums all elements of ±product: Σ(A ⊙ B), or Σ(±Σ_last(A ⊙ B))
    (a mean of per-row sums, negated or not); else (None, 1)."""
    if node.op is not sum_op or len(node.attr("axis")) != node.inputs[0].ndim:
        return None, 1
    a, sign = node.inputs[0], 1
    if a.op is ew.negative:
        a, sign = a.inputs[0], -1
    if a.op is sum_op and not a.attr("keepdims") and a.attr("axis") == (a.inputs[0].ndim - 1,):
        a = a.inputs[0]
    elif sign == -1:
        return None, 1
    return (a, sign) if a.op is ew.multiply and a.ndim >= 1 else (None, 1)


@rule(sum_op)
@noted("−Σ onehot(y) ⊙ log softmax(z) → CE(z, y)")
def cross_entropy_by_hand(node):
    """Σ onehot(y) ⊙ log_softmax(z) → −N·CE(z, y) (N labels): a cross-entropy written out by
    hand becomes the fused op, whose gradient is softmax(z) − onehot(y)."""
    a, sign = _summed_product(node)
    if a is None:
        return None
    pair = {i.op: i for i in a.inputs}
    hot, logp = pair.get(one_hot_op), pair.get(log_softmax_op)
    if hot is not None and logp is not None and logp.attr("axis") == logp.ndim - 1 and \
            hot.inputs[0].shape == logp.shape[:-1] and hot.dtype == logp.dtype:
        count = hot.inputs[0].size
        loss = softmax_cross_entropy(logp.inputs[0], hot.inputs[0])
        total = constant(count, node.dtype) * loss if count != 1 else loss
        result = -total if sign == 1 else total
        return reshape(result, node.shape) if node.shape != () else result
    return None


STABILIZE = (*STABILIZE_LOGS, reciprocal_of_one_plus_exp, exp_over_one_plus_exp, exp_times_sigmoid_of_negation,
             log_of_one_plus,
             cross_entropy_by_hand)
ONE_HOT = (sum_of_one_hot,)  # the cross-entropy rule runs in STABILIZE, where its note is kept


def stabilize(outputs: list, rules=STABILIZE) -> tuple[list, list]:
    """``outputs`` rewritten by ``rules``, and per output the notes of the rules that fired in it
    (in the order they fired: bottom-up, deterministic).

    >>> import symdiff as sd
    >>> Z = sd.tensor("Z", ("m", "k"))
    >>> new, notes = stabilize([sd.log(sd.sum(sd.exp(Z), axis=1)), Z])
    >>> print(new[0]); notes
    logsumexp(Z, axis=1)
    [('log(Σ eᶻ) → logsumexp(z)',), ()]
    """
    outputs = list(outputs)
    new, fired = _run_noting(outputs, rules)
    changed = [i for i, (a, b) in enumerate(zip(outputs, new)) if a is not b]
    notes = [()] * len(outputs)
    for i in changed:  # several changed: which rules fired in which is found output by output
        notes[i] = tuple(fired) if len(changed) == 1 else tuple(_run_noting([outputs[i]], rules)[1])
    return new, notes


def _run_noting(outputs, rules):
    token = _FIRED.set([])
    try:
        new = run_pass(outputs, rules)
        return new, _FIRED.get()
    finally:
        _FIRED.reset(token)
