"""The one walk every printer shares; a style (text, Unicode, LaTeX, buffers) says only how
things look.

:func:`walk` visits the graph inputs first, asks the style for each node's (text, precedence)
given its inputs', and names a node where the style wants it named: by the user's name
(``sd.name``), by a temporary where it is used more than once, or by a name given from outside
(``atoms``: the buffers of a lowered program), so that the formulas after it refer to the name.
Precedences are the one ladder of :mod:`symdiff.ops.registry` (``COMPARISON`` … ``ATOM``);
:func:`wrap` parenthesizes by it.

>>> import symdiff as sd
>>> from symdiff.printing.text import TEXT
>>> x = sd.symbols("x")
>>> walk([sd.exp(x) + sd.exp(x) * 2.0], TEXT)
['t0 = exp(x)', 't0 + t0*2']
"""

from __future__ import annotations

from typing import ClassVar

from ..graph import as_list, is_operation, toposort
from ..names import derivative_label, name_of, position_label
from ..ops.registry import ATOM


def wrap(text, prec, need):
    """``text``, in parentheses where it binds looser than ``need``."""
    return text if prec >= need else f"({text})"


class Printed:
    """What the walk has printed so far. A rule may look inside a node only where no name
    (a temporary, a buffer, the user's) stands for it in the formula."""

    def __init__(self):
        self.texts, self.named = {}, set()

    def __getitem__(self, node):
        return self.texts[id(node)]

    def shows(self, node, op):
        return node.op.name == op and id(node) not in self.named


class Style:
    """How one notation looks: its tables, and which nodes it names.

    ``rules`` maps an op name to ``rule(node, args, style, seen)``, giving (text, precedence) or
    None to fall through to the op's infix form (``symbols`` and ``assoc`` override what the op
    declares) or to a call."""

    rules: ClassVar[dict] = {}
    symbols: ClassVar[dict] = {}  # an Infix symbol as declared (" - ") -> as this style writes it
    assoc: ClassVar[dict] = {}  # op name -> associativity instead of the declared one ("both": a + (b + c))
    unnamed: frozenset = frozenset()  # ops never named when shared: they print as little as their input
    first_temp = 0
    names_nodes = True  # a node the user named prints by that name, defined on a line of its own
    labels_results = True  # a result prints as ∂L/∂W = … or Z = … where it is a derivative or named
    names_shared = True  # a node used more than once prints once, as a temporary

    def name(self, text):
        return text

    def temp(self, i):
        return f"t{i}"

    def define(self, lhs, rhs):
        return f"{lhs} = {rhs}"

    def shape(self, dims):
        return ""

    def derivative(self, f, w):
        return f"∂{f}/∂{w}"

    def shares(self, node):
        return self.names_shared and is_operation(node) and node.op.name not in self.unnamed

    def rule(self, node):
        return self.rules.get(node.op.name)


def render(node, args, style: Style, seen: Printed):
    """(text, precedence) of ``node`` given its inputs' (and, for rules that read structure,
    what was printed for the nodes below them)."""
    if node.is_leaf:
        return style.name(node.name), ATOM
    if node.is_constant:
        return style.number(node.attr("value"), node.dtype)
    rule = style.rule(node)
    shown = rule(node, args, style, seen) if rule is not None else None
    if shown is not None:
        return shown
    if node.op.infix is not None:
        return infix(node, args, style)
    return style.call(node, [text for text, _ in args]), ATOM


def infix(node, args, style: Style):
    """``a ∘ b`` at the op's declared precedence; an operand binding as tightly is parenthesized
    unless the op associates that way."""
    declared = node.op.infix
    prec, assoc = declared.precedence, style.assoc.get(node.op.name, declared.assoc)
    (a, pa), (b, pb) = args
    if pa < prec or (pa == prec and assoc not in ("left", "both")):
        a = f"({a})"
    if pb < prec or (pb == prec and assoc not in ("right", "both")):
        b = f"({b})"
    return f"{a}{style.symbols.get(declared.symbol, declared.symbol)}{b}", prec


def result_label(node, style: Style, exprs=None, position: int = 0):
    """What a result is, where it says: ∂L/∂W for a derivative (of the list ``exprs`` at
    ``position``, or recorded on the node), the user's name for a named node; else None."""
    derivative = position_label(exprs, position) or derivative_label(node)
    if derivative is not None:
        return style.derivative(style.name(derivative[0] or "f"), style.name(derivative[1]))
    if name_of(node) is not None and not node.is_leaf:
        return style.name(name_of(node))
    return None


def walk(exprs, style: Style, show_shapes: bool = False, atoms: dict | None = None) -> list:
    """Lines: the definitions of named and shared nodes, then one formula per expression.

    ``atoms`` (id(node) -> text) names nodes from outside: they print as that text, and the
    walk does not look below them."""
    outputs = as_list(exprs)
    atoms = atoms or {}
    order = toposort(outputs, atoms)
    counts = dict.fromkeys(map(id, order), 0)  # uses within what is printed
    for node in order:
        for i in () if id(node) in atoms else node.inputs:
            counts[id(i)] += 1
    output_ids = {id(o) for o in outputs}
    seen, lines, temps = Printed(), [], 0
    for node in order:
        if id(node) in atoms:
            seen.texts[id(node)] = (atoms[id(node)], ATOM)
            seen.named.add(id(node))
            continue
        text = render(node, [seen[i] for i in node.inputs], style, seen)
        label = name_of(node) if style.names_nodes and not node.is_leaf else None
        if label is not None:
            label = style.name(label)
        elif counts[id(node)] > 1 and style.shares(node) and id(node) not in output_ids:
            label = style.temp(style.first_temp + temps)
            temps += 1
        if label is not None and id(node) not in output_ids:
            lines.append(style.define(label, text[0]) + (style.shape(node.shape) if show_shapes else ""))
            text = (label, ATOM)
            seen.named.add(id(node))
        seen.texts[id(node)] = text
    for i, o in enumerate(outputs):
        lhs = result_label(o, style, exprs, i) if style.labels_results else None
        body = seen[o][0]
        shape = style.shape(o.shape) if show_shapes else ""
        lines.append((style.define(lhs, body) if lhs else body) + shape)
    return lines
