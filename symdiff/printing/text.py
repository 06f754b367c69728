"""Plain-text form of expressions: Python-like infix, shared subexpressions named once.

A subexpression used more than once is printed once as ``t0 = ...`` and then
referred to by name; ``broadcast_to`` is left implicit as in numpy. A graph with
no sharing prints on one line in the syntax ``sd.parse`` reads back.

>>> import symdiff as sd
>>> x, y = sd.symbols("x y")
>>> print(sd.sin(x * y) + (x * y) ** 2)
t0 = x*y
sin(t0) + t0**2
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import sympy

from ..graph import as_list, is_operation
from ..ops.registry import ATOM, UNARY
from . import loops
from .driver import Style, walk


def _format_attr(value) -> str:
    if isinstance(value, tuple) and len(value) == 1:
        return str(value[0])
    return str(value).replace("'", "")


def _format_positional(value) -> str:
    return str(tuple(value)).replace("'", "") if isinstance(value, tuple) else str(value)


def _format_index(entries, shape) -> str:
    parts, axis = [], 0
    for e in entries:
        d = shape[axis] if axis < len(shape) and e[0] != "newaxis" else None
        axis += e[0] != "newaxis"
        if e[0] == "int":
            parts.append(str(e[1]))
        elif e[0] == "newaxis":
            parts.append("None")
        else:
            start, stop, step = e[1:4]
            full_stop = stop == d or (step < 0 and stop == -1)
            text = ("" if start == 0 else str(start)) + ":" + ("" if full_stop else str(stop))
            parts.append(text + ("" if step == 1 else f":{step}"))
    return ", ".join(parts)


def _negative(node, args, style, seen):
    t, p = args[0]
    return (f"-({t})" if p < UNARY else f"-{t}"), UNARY


def _getitem(node, args, style, seen):
    t, p = args[0]
    return f"{t if p == ATOM else f'({t})'}[{_format_index(node.attr('index'), node.inputs[0].shape)}]", ATOM


def _its_input(node, args, style, seen):
    return args[0]


class Text(Style):
    """What ``sd.parse`` reads back: every op as it is called (``sum(x, axis=0)``), infix ops
    as declared (``x*y``, ``a @ b``), broadcasting implicit; no user names, temporaries t0, t1…"""

    rules: ClassVar[dict] = {"negative": _negative, "getitem": _getitem, **loops.RULES}
    names_nodes = labels_results = False

    def rule(self, node):
        return _its_input if node.op.implicit else self.rules.get(node.op.name)

    def shares(self, node):
        return is_operation(node) and not node.op.implicit

    def number(self, value, dtype):
        if isinstance(value, sympy.Basic):
            text = str(value)
            return (text, ATOM) if value.is_Atom else (f"({text})", ATOM)
        if isinstance(value, np.ndarray):
            if value.size <= 6:
                return f"constant({value.tolist()})", ATOM
            return f"constant(<{dtype} array {value.shape}>)", ATOM
        if isinstance(value, bool):
            return ("True" if value else "False"), ATOM
        integral = isinstance(value, float) and value.is_integer() and abs(value) < 1e15
        text = repr(int(value)) if integral else repr(value)
        return text, (UNARY if text.startswith("-") else ATOM)

    def call(self, node, texts):
        for shown in node.op.print_attrs:
            if not shown.is_default(node):
                value = node.attr(shown.name)
                shown_text = _format_positional(value) if shown.positional else f"{shown.name}={_format_attr(value)}"
                texts.append(shown_text)
        return f"{node.op.name}({', '.join(texts)})"


TEXT = Text()


def to_str(exprs) -> str:
    """Text of one or more expressions, with shared subexpressions named ``t0, t1, ...``."""
    return "\n".join(walk(as_list(exprs), TEXT))
