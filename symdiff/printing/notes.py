"""Notes that travel with a result and print under its formula: what was stabilized.

``sd.optimize`` and ``sd.grad`` rewrite hand-written losses into their stable forms
(:mod:`symdiff.rewrite.stable`); the result then says so where a user looks:
``sd.pretty`` prints one line per note after the formulas ("stabilized: log(1 + eᶻ) →
softplus(z)"). The table is kept beside the graph, by node identity, and its entries die with
their nodes; ``str`` of an expression (what ``sd.parse`` reads back) never shows them.
Nodes are hash-consed, so a note belongs to the node, not to one way of reaching it: the
latest ``sd.optimize`` or ``sd.grad`` that returned a node sets its notes (σ(z) reached from
``eᶻ/(1 + eᶻ)`` says so, and says something else when reached next from ``1/(1 + e⁻ᶻ)``); a
node that no call returned since, built again by hand (``CE(U, y)`` written directly while an
optimized hand-written loss that became it is alive), prints the notes it has.

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
    """Say that ``node`` was reached by these stabilizations (strings), and only these: the
    latest derivation of a node is the one its printout describes (see the module note)."""
    notes = tuple(dict.fromkeys(notes))
    if notes or node in _notes:
        _notes[node] = notes


def notes_of(node) -> tuple:
    """The notes recorded on ``node`` (a tuple, empty if none)."""
    return _notes.get(node, ())


def settle(old, new, fired=()) -> None:
    """``new``, made from ``old`` by a rewrite in which ``fired`` happened, says what ``old``
    said and ``fired``; a node rewritten to itself keeps its own notes and adds ``fired``."""
    record(new, notes_of(old) + tuple(fired))


def lines(exprs) -> list:
    """The note lines of a printout of ``exprs``: each note once, in the order of the outputs."""
    seen = []
    for node in as_list(exprs):
        seen.extend(n for n in notes_of(node) if n not in seen)
    return [f"stabilized: {n}" for n in seen]
