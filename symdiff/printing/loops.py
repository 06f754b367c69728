"""How the printers write a scan: the body as a function of its placeholders, then what it
runs from and over; an output of the scan as ``t.h`` (the history of carry h), ``t.y``.

The body is printed by the same walk, with its own temporaries (s₁, s₂ …, one letter deeper
for a scan inside a body), so a body reads as the step it is:

>>> import symdiff as sd
>>> from symdiff.printing.driver import walk
>>> from symdiff.printing.notation import UNICODE
>>> xs, w = sd.tensor("xs", (5,)), sd.symbols("w")
>>> h, hs = sd.scan(lambda h, x: (sd.tanh(w * h + x),) * 2, sd.constant(0.0), xs, names="h")
>>> walk([hs], UNICODE)
['scan(h, xs_t ↦ tanh(w·h + xs_t); h = 0, xs_t ∈ xs).y']
"""

from __future__ import annotations

import copy

from ..ops.registry import ATOM, POSTFIX
from .driver import walk, wrap

TEMP_LETTERS = "suvwz"


def _inner(style):
    """The style a body prints in: temporaries of their own letter, results unlabelled."""
    inner = copy.copy(style)
    depth = getattr(style, "scan_depth", 0)
    inner.scan_depth = depth + 1
    letter = TEMP_LETTERS[min(depth, len(TEMP_LETTERS) - 1)]
    inner.temp = lambda i: style.name(f"{letter}{i}")
    inner.labels_results = False
    return inner


def body_text(body, style) -> str:
    """``params ↦ outputs`` (with ``where`` definitions where the body shares pieces)."""
    lines = walk(list(body.outputs), _inner(style))
    n = len(body.outputs)
    defs, outs = lines[:-n] if n else lines, lines[-n:] if n else []
    nc = len(body.carries)
    carries, ys = outs[:nc], outs[nc:]
    params = [style.name(p.name) for p in body.carries + body.xs]
    lhs = params[0] if len(params) == 1 else ", ".join(params)
    rhs = carries[0] if len(carries) == 1 else "(" + ", ".join(carries) + ")"
    if ys and not (len(ys) == len(carries) and ys == carries):
        rhs = "(" + ", ".join(carries) + " | " + ", ".join(ys) + ")" if len(carries) > 1 or ys else rhs
    arrow = " ↦ " if getattr(style, "unicode", True) or style.__class__.__name__ == "Text" else " \\mapsto "
    where = f" where {', '.join(defs)}" if defs else ""
    return f"{lhs}{arrow}{rhs}{where}"


def scan_rule(node, args, style, seen):
    body = node.attr("body")
    nc, nx = len(body.carries), len(body.xs)
    texts = [a for a, _ in args]
    latex = not getattr(style, "unicode", True) and style.__class__.__name__ != "Text"
    member = " \\in " if latex else " ∈ "
    binds = [f"{style.name(p.name)} = {t}" for p, t in zip(body.carries, texts[:nc])]
    binds += [f"{style.name(p.name)}{member}{t}" for p, t in zip(body.xs, texts[nc:nc + nx])]
    binds += [f"{style.name(p.name)} = {t}" for p, arg, t in zip(body.consts, node.inputs[nc + nx:], texts[nc + nx:])
              if arg is not p]
    head = "reverse_scan" if node.attr("reverse") else "scan"
    head = f"\\operatorname{{{head.replace('_', chr(92) + '_')}}}" if latex else head
    inside = f"{body_text(body, style)}; {', '.join(binds)}"
    return (f"{head}\\left({inside}\\right)" if latex else f"{head}({inside})"), ATOM


def part_label(node, style) -> str | None:
    """``h`` for the output of carry h, ``y``/``y1`` for the per-step outputs; None where the
    packed value is not a scan's."""
    packed = node.inputs[0]
    if packed.op.name != "scan":
        return None
    body, k = packed.attr("body"), node.attr("index")
    if k < len(body.carries):
        return style.name(body.carries[k].name)
    ny = len(body.ys)
    return "y" if ny == 1 else style.name(f"y{k - len(body.carries)}")


def scan_part_rule(node, args, style, seen):
    label = part_label(node, style)
    (text, prec), = args
    if label is None:
        return f"{wrap(text, prec, ATOM)}[{node.attr('index')}]", POSTFIX
    return f"{wrap(text, prec, ATOM)}.{label}", POSTFIX


RULES = {"scan": scan_rule, "scan_part": scan_part_rule}
