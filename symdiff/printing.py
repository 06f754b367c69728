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

INFIX = {  # op name -> (symbol, precedence, associativity)
    "add": (" + ", 2, "left"),
    "subtract": (" - ", 2, "left"),
    "multiply": ("*", 3, "left"),
    "divide": (" / ", 3, "left"),
    "matmul": (" @ ", 3, "left"),
    "power": ("**", 5, "right"),
    "less": (" < ", 1, "none"),
    "less_equal": (" <= ", 1, "none"),
    "greater": (" > ", 1, "none"),
    "greater_equal": (" >= ", 1, "none"),
    "equal": (" == ", 1, "none"),
    "not_equal": (" != ", 1, "none"),
}
ATOM, UNARY = 6, 4
HIDDEN = {"broadcast_to"}  # printed as their input: broadcasting is implicit


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
    if name in HIDDEN:
        return args[0]
    if name in INFIX:
        symbol, prec, assoc = INFIX[name]
        (lt, lp), (rt, rp) = args
        left_paren = lp < prec or (lp == prec and assoc != "left")
        right_paren = rp < prec or (rp == prec and assoc != "right")
        if name == "power" and lp == UNARY:
            left_paren = True
        lt = f"({lt})" if left_paren else lt
        rt = f"({rt})" if right_paren else rt
        return f"{lt}{symbol}{rt}", prec
    if name == "negative":
        t, p = args[0]
        return (f"-({t})" if p < UNARY else f"-{t}"), UNARY
    if name == "getitem":
        t, p = args[0]
        return f"{t if p == ATOM else f'({t})'}[{_format_index(node.attr('index'), node.inputs[0].shape)}]", ATOM
    texts = [t for t, _ in args]
    attrs = node.attrs
    if name in ("sum", "max", "logsumexp", "argmax"):
        if len(attrs["axis"]) != node.inputs[0].ndim or name == "argmax":
            texts.append(f"axis={_format_attr(attrs['axis'])}")
        if attrs["keepdims"]:
            texts.append("keepdims=True")
    elif name in ("softmax", "log_softmax"):
        if attrs["axis"] != node.inputs[0].ndim - 1:
            texts.append(f"axis={attrs['axis']}")
    elif name in ("reshape", "broadcast_to"):
        texts.append(_format_attr(tuple(attrs["shape"])) if len(attrs["shape"]) != 1 else f"({attrs['shape'][0]},)")
    elif name == "transpose":
        if attrs["axes"] != tuple(range(node.ndim))[::-1]:
            texts.append(str(attrs["axes"]))
    elif name == "astype":
        texts.append(attrs["dtype"])
    elif name == "one_hot":
        texts.append(str(attrs["num_classes"]))
    elif name == "eye":
        texts.append(str(attrs["n"]))
        if attrs["dtype"] != "float64":
            texts.append(f"dtype={attrs['dtype']}")
    elif name in ("take", "concatenate"):
        if attrs["axis"] != 0:
            texts.append(f"axis={attrs['axis']}")
    return f"{name}({', '.join(texts)})", ATOM


def to_str(exprs) -> str:
    """Text of one or more expressions, with shared subexpressions named ``t0, t1, ...``."""
    outputs = as_list(exprs)
    order = toposort(outputs)
    counts = users(order)
    output_ids = {id(o) for o in outputs}
    rendered, lines = {}, []
    for node in order:
        text = _render(node, [rendered[id(i)] for i in node.inputs])
        shared = counts[id(node)] > 1 and is_operation(node) and node.op.name not in HIDDEN
        if shared and id(node) not in output_ids:
            temp = f"t{len(lines)}"
            lines.append(f"{temp} = {text[0]}")
            text = (temp, ATOM)
        rendered[id(node)] = text
    lines.extend(rendered[id(o)][0] for o in outputs)
    return "\n".join(lines)
