"""The pipeline: one explicit, ordered list of named passes, and ``optimize`` that runs it."""

from __future__ import annotations

import sys

from ..graph import as_list, count_ops, is_nested, unflatten
from ..names import carry_labels, relabel
from ..node import Node
from ..ops.registry import function
from ..printing import notes, to_str
from .algebra import IDENTITIES, LIKE_TERMS, SIGNS_AND_RECIPROCALS, distribute
from .canonical import canonical_order
from .fold import fold_constants
from .movement import BATCHED, MOVEMENT, TRANSPOSES, sum_of_broadcast
from .registry import run_pass
from .scalars import COLLECT_CONSTANTS, HOIST, combine_scalar_factors
from .stable import ONE_HOT, STABILIZE, stabilize

PIPELINE = (
    ("simplify", (*IDENTITIES, *MOVEMENT, *TRANSPOSES, *BATCHED, sum_of_broadcast, *SIGNS_AND_RECIPROCALS,
                  *ONE_HOT)),
    ("fold_constants", (fold_constants,)),
    ("stabilize", STABILIZE),
    ("hoist_scalar_division", (*HOIST, *COLLECT_CONSTANTS)),
    ("canonicalize", (canonical_order,)),
    ("simplify_again", (*IDENTITIES, *MOVEMENT, *TRANSPOSES, *BATCHED, sum_of_broadcast, fold_constants,
                        *SIGNS_AND_RECIPROCALS, *HOIST, *COLLECT_CONSTANTS, combine_scalar_factors, distribute,
                        *LIKE_TERMS, canonical_order)),
    ("eliminate_common_subexpressions", ()),  # rebuilding through hash-consing merges them
    ("eliminate_dead_code", ()),  # only nodes reachable from the outputs survive
)


@function
def optimize(exprs, passes=None, debug: bool | str = False):
    """Simplify, fold constants, stabilize, canonicalize, CSE and drop dead code.

    ``passes`` names a subset of the pipeline (in pipeline order); ``debug=True``
    prints the graph after every pass, ``debug="name"`` after that pass only.
    One expression in, one out; a list in, a list out; a list of lists (``sd.hessian``'s rows)
    in, a list of lists out.

    >>> import symdiff as sd
    >>> v = sd.tensor("v", ("n",))
    >>> print(sd.optimize(sd.log(sd.sigmoid(v))))
    -softplus(-v)
    """
    outputs = as_list(exprs)
    names = [name for name, _ in PIPELINE]
    unknown = [p for p in (passes or []) if p not in names]
    if unknown:
        raise ValueError(f"unknown passes {unknown}; the pipeline is {names}")
    baseline, stabilized = outputs, [()] * len(outputs)
    for name, rules in PIPELINE:
        if passes is not None and name not in passes:
            continue
        before = outputs
        if name == "stabilize":  # the stable rules also say which of them fired (printing/notes.py)
            outputs, stabilized = stabilize(outputs, rules)
        elif rules:
            outputs = run_pass(outputs, rules)
        if name == "stabilize" and any(a is not b for a, b in zip(before, outputs)):
            # stable forms may cost an operation more; later passes may not. When no stable
            # form was introduced, the yardstick stays the input itself.
            baseline = outputs
        if debug is True or debug == name:
            print(f"-- after {name} --\n{to_str(outputs)}", file=sys.stdout)
    originals = as_list(exprs)
    if passes is None and count_ops(outputs) > count_ops(baseline):
        outputs = baseline  # never costlier than the stabilized input
    for old, new, fired in zip(originals, outputs, stabilized):
        carry_labels(old, new)
        notes.settle(old, new, fired)  # what sd.grad stabilized, and what the stabilize pass did here
    if is_nested(exprs):
        return unflatten(exprs, outputs)
    return outputs[0] if isinstance(exprs, Node) else relabel(exprs, outputs)
