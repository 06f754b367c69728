"""Notes that travel with a result and print under its formula: what was stabilized.

``sd.optimize`` and ``sd.grad`` rewrite hand-written losses into their stable forms
(:mod:`symdiff.rewrite.stable`); the result then says so where a user looks:
``sd.pretty`` prints one line per note after the formulas ("stabilized: log(1 + eᶻ) →
softplus(z)"). The table is kept beside the graph, by node identity, and its entries die with
their nodes; ``str`` of an expression (what ``sd.parse`` reads back) never shows them.

>>> import symdiff as sd
>>> x = sd.symbols("x")
>>> f = sd.exp(x)
>>> record(f, ("log(1 + eᶻ) → softplus(z)",))
>>> lines([f])
['stabilized: log(1 + eᶻ) → softplus(z)']
"""

from __future__ import annotations

from ..graph import as_list
from ..names import IdentityWeakMap

_notes = IdentityWeakMap()


def record(node, notes) -> None:
    """Add ``notes`` (strings) to what ``node`` says was stabilized, keeping their order."""
    if not notes:
        return
    old = _notes.get(node, ())
    _notes[node] = old + tuple(n for n in notes if n not in old)


def notes_of(node) -> tuple:
    """The notes recorded on ``node`` (a tuple, empty if none)."""
    return _notes.get(node, ())


def carry(old, new) -> None:
    """``new`` (made from ``old`` by a rewrite) keeps ``old``'s notes."""
    if old is not new:
        record(new, notes_of(old))


def lines(exprs) -> list:
    """The note lines of a printout of ``exprs``: each note once, in the order of the outputs."""
    seen = []
    for node in as_list(exprs):
        seen.extend(n for n in notes_of(node) if n not in seen)
    return [f"stabilized: {n}" for n in seen]
