"""Rules registered with the ops they match, and the pass that dispatches on ``node.op``.

A rule is a function node -> replacement or None. ``@rule(multiply)`` records the op
objects it matches (``ANY`` for rules that apply to every op, such as constant folding);
a pass tries on each node only the rules registered for that node's op or for ``ANY``,
in the pass's own order (PyTensor's ``@node_rewriter([log, exp])``, tinygrad's ``UPat(Ops.X)``).

>>> from symdiff.ops import elementwise as ew
>>> @rule(ew.exp)
... def exp_of_zero(node):
...     "exp(0) → 1"
>>> exp_of_zero.ops == (ew.exp,), rules_for((exp_of_zero,), ew.log)
(True, ())
"""

from __future__ import annotations

import functools

from ..graph import toposort
from ..node import make


class _Any:
    """The marker of rules that apply to a node of every op."""

    def __repr__(self):
        return "ANY"


ANY = _Any()


def rule(*ops):
    """Register the decorated rule with the op objects it matches (or ``ANY``).

    >>> from symdiff.ops import elementwise as ew
    >>> @rule(ew.add, ew.subtract)
    ... def noop(node):
    ...     "x → x"
    >>> [op.name for op in noop.ops]
    ['add', 'subtract']
    """
    if not ops:
        raise TypeError("rule() needs the ops the rule matches (or ANY)")

    def register(fn):
        fn.ops = ops
        return fn

    return register


@functools.cache
def rules_for(rules: tuple, op) -> tuple:
    """The rules of ``rules`` a node of ``op`` tries, in their order.

    >>> from symdiff.ops import elementwise as ew
    >>> from symdiff.rewrite import fold_constants
    >>> rules_for((fold_constants,), ew.exp) == (fold_constants,)
    True
    """
    return tuple(r for r in rules if ANY in r.ops or op in r.ops)


def run_pass(outputs: list, rules) -> list:
    """Apply ``rules`` bottom-up, each node rewritten to a fixed point; return new outputs.

    A node tries only the rules registered for its op (and those for ``ANY``). What a rule
    builds is rewritten the same way, but only its new nodes: a node already rewritten in this
    pass is a fixed point, remembered, so a pass costs time in proportion to the graph it
    visits and the nodes its rules build (not the graph once per rewrite).

    >>> import symdiff as sd
    >>> from symdiff.rewrite.algebra import multiply_by_one
    >>> x = sd.symbols("x")
    >>> run_pass([sd.exp(x * 1)], (multiply_by_one,))[0] is sd.exp(x)
    True
    """
    rules = tuple(rules)
    done = {}  # id(node) -> (node, its fixed point); the node is held so that its id stays its own
    for root in outputs:
        _rewrite_all(root, rules, done)
    return [done[id(o)][1] for o in outputs]


def _rewrite_all(root, rules, done):
    for node in toposort([root], done):
        if id(node) in done:
            continue
        inputs = tuple(done[id(i)][1] for i in node.inputs)
        current = node if all(a is b for a, b in zip(inputs, node.inputs)) else make(node.op, inputs, **node.attrs)
        for _ in range(50):
            if id(current) in done and done[id(current)][1] is current:
                break  # a fixed point already
            for rewrite in rules_for(rules, current.op):
                replaced = rewrite(current)
                if replaced is not None and replaced is not current:
                    if replaced.shape != current.shape or replaced.dtype != current.dtype:
                        raise AssertionError(f"rule {rewrite.__name__} changed {current.op.name}'s type")
                    _rewrite_all(replaced, rules, done)  # nodes a rule builds may simplify further
                    current = done[id(replaced)][1]
                    break
            else:
                break
        done[id(node)] = (node, current)
        done[id(current)] = (current, current)
