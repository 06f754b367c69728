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

import numpy as np
import sympy

from .graph import as_list, is_operation, toposort, users

ATOM, UNARY = 6, 4  # above every infix op's precedence (``Op.infix``); unary minus binds below ``**``


def _format_value(value, dtype) -> tuple[str, int]:
    if isinstance(value, sympy.Basic):
        text = str(value)
        return (text, ATOM) if value.is_Atom else (f"({text})", ATOM)
    if isinstance(value, np.ndarray):
        if value.size <= 6:
            return f"constant({value.tolist()})", ATOM
        return f"constant(<{dtype} array {value.shape}>)", ATOM
    if isinstance(value, bool):
        return ("True" if value else "False"), ATOM
    text = repr(int(value)) if isinstance(value, float) and value.is_integer() and abs(value) < 1e15 else repr(value)
    return text, (UNARY if text.startswith("-") else ATOM)


def _format_attr(value) -> str:
    if isinstance(value, tuple) and len(value) == 1:
        return str(value[0])
    return str(value).replace("'", "")


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


def _render(node, args) -> tuple[str, int]:
    """Text and precedence of ``node`` given its inputs' (text, precedence)."""
    name = node.op.name
    if node.is_leaf:
        return node.name, ATOM
    if node.is_constant:
        return _format_value(node.attr("value"), node.dtype)
    if node.op.implicit:
        return args[0]
    if node.op.infix is not None:
        infix = node.op.infix
        prec = infix.precedence  # ** binds above unary minus: (-x)**2 keeps its parentheses
        (lt, lp), (rt, rp) = args
        left_paren = lp < prec or (lp == prec and infix.assoc != "left")
        right_paren = rp < prec or (rp == prec and infix.assoc != "right")
        lt = f"({lt})" if left_paren else lt
        rt = f"({rt})" if right_paren else rt
        return f"{lt}{infix.symbol}{rt}", prec
    if name == "negative":
        t, p = args[0]
        return (f"-({t})" if p < UNARY else f"-{t}"), UNARY
    if name == "getitem":
        t, p = args[0]
        return f"{t if p == ATOM else f'({t})'}[{_format_index(node.attr('index'), node.inputs[0].shape)}]", ATOM
    texts = [t for t, _ in args]
    for shown in node.op.print_attrs:
        if not shown.is_default(node):
            value = node.attr(shown.name)
            texts.append(_format_positional(value) if shown.positional else f"{shown.name}={_format_attr(value)}")
    return f"{name}({', '.join(texts)})", ATOM


def _format_positional(value) -> str:
    return str(tuple(value)).replace("'", "") if isinstance(value, tuple) else str(value)


def to_str(exprs) -> str:
    """Text of one or more expressions, with shared subexpressions named ``t0, t1, ...``."""
    outputs = as_list(exprs)
    order = toposort(outputs)
    counts = users(order)
    output_ids = {id(o) for o in outputs}
    rendered, lines = {}, []
    for node in order:
        text = _render(node, [rendered[id(i)] for i in node.inputs])
        shared = counts[id(node)] > 1 and is_operation(node) and not node.op.implicit
        if shared and id(node) not in output_ids:
            temp = f"t{len(lines)}"
            lines.append(f"{temp} = {text[0]}")
            text = (temp, ATOM)
        rendered[id(node)] = text
    lines.extend(rendered[id(o)][0] for o in outputs)
    return "\n".join(lines)
