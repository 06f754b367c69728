"""What each kernel computes, in the user's names: the source map from the maths to the code.

One line per kernel, shown by ``explain()`` and as the comment above the kernel in the
generated source: the buffer it writes and its shape, then the formula in the buffers style of
:mod:`symdiff.printing` (the matrix notation of ``sd.pretty``): the program's inputs by the
user's names, what other kernels stored by their buffers' names (``t0``, ``out1``, as the code
names them), a result that is a derivative or named as ``∂L/∂W = …``, a GEMM that accumulates
(``out = beta·out + alpha·A·B``) with its coefficients.

A user's name reaches the source in comments only, never as an identifier, and :func:`comment`
escapes whatever could end the comment or hide code (a newline, a backslash, ``*/``,
invisible or control characters); printable non-ASCII stays, as UTF-8.

>>> import symdiff as sd
>>> from symdiff.lowering.plan.schedule import schedule
>>> X, W = sd.tensor("X", (4, 3)), sd.tensor("W", (3, 2))
>>> kernel_formulas(schedule([sd.tanh(X @ W + 1.0)], [X, W]))
['t0[4,2] = X·W', 'out0[4,2] = tanh(t0 + 1)']
>>> print(comment("t0 = W\\n*/ x\\\\"))
// t0 = W\\x0a* / x\\x5c
"""

from __future__ import annotations

import re

import sympy

from symdiff.printing.driver import result_label, walk
from symdiff.printing.notation import BUFFERS

from ..plan.schedule import Schedule


def _stored(sched: Schedule) -> dict:
    """id(node) -> buffer name, for the nodes a kernel writes to memory (not the leaves, which
    print by the user's names, nor the views, which print as what they do to their input)."""
    stored = {}
    for node in sched.nodes:
        view = sched.views.get(id(node))
        if view is None or node.is_leaf or node.op.view or (node.is_constant and node.shape == ()):
            continue
        stored[id(node)] = view.buffer.name
    return stored


def kernel_formulas(sched: Schedule, sizes: dict | None = None) -> list:
    """Per kernel: ``buffer[shape] = formula`` (the buffer it writes, what it computes); the
    shape with the run-time dimensions (``D0``) replaced by ``sizes`` where given. The text holds
    the user's names as they are: show it with :func:`one_line` or :func:`comment`."""
    stored = _stored(sched)
    inputs = _input_names(sched)
    lines = []
    for kernel in sched.kernels:
        root = kernel.node
        own = None if kernel.copy else stored.pop(id(root), None)  # the kernel's own node, in full
        body = walk([root], BUFFERS, atoms=stored)[0]
        if own is not None:
            stored[id(root)] = own
        label = result_label(root, BUFFERS)
        out = kernel.out.buffer.name
        if kernel.kind == "gemm" and (kernel.alpha != 1.0 or kernel.beta != 0.0):
            rhs = f"{kernel.beta:g}·{inputs.get(out, out)} + {_coefficient(kernel.alpha, sizes)}·{label or body}"
            rhs += f", {label} = {body}" if label else ""
        else:
            rhs = f"{label} = {body}" if label else body
        shape = ",".join(_dim(d, sizes) for d in kernel.out.shape)
        lines.append(f"{out}[{shape}] = {rhs}")
    return lines


def _coefficient(c, sizes) -> str:
    """A GEMM coefficient: a float, or an expression in the run-time dimensions (``-0.5/D0``)."""
    if isinstance(c, sympy.Basic) and c.free_symbols:
        c = c.xreplace(sizes or {})
        if c.free_symbols:
            return str(c)
    return f"{float(c):g}"


def _dim(d, sizes) -> str:
    if not sizes or isinstance(d, int):
        return str(d)
    return str(sympy.sympify(getattr(d, "expr", d)).xreplace(sizes))  # a run-time dimension's polynomial


def input_legend(sched: Schedule, leaves=None) -> str:
    """``inputs: in0 = X, in1 = W``: which input buffer holds which of the program's inputs
    (``leaves``, in order; else those the schedule reads, the others marked unused)."""
    names = _input_names(sched, leaves)
    return "inputs: " + ", ".join(f"{b.name} = {names.get(b.name, '(unused)')}" for b in sched.inputs)


def _input_names(sched: Schedule, leaves=None) -> dict:
    """input buffer name -> the user's name of what it holds, as the buffers style prints it."""
    if leaves is not None:
        return {b.name: BUFFERS.name(leaf.name) for b, leaf in zip(sched.inputs, leaves)}
    return {sched.views[id(n)].buffer.name: BUFFERS.name(n.name) for n in sched.nodes
            if n.is_leaf and id(n) in sched.views}


def one_line(text: str) -> str:
    """``text`` with every character that is not printable (newlines, control and invisible
    characters, lone surrogates) and every backslash written as an escape: ``\\x0a``."""
    return "".join(ch if ch.isprintable() and ch != "\\" else _escape(ch) for ch in text)


def _escape(ch: str) -> str:
    code = ord(ch)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def comment(text: str) -> str:
    """``text`` as one C++ ``//`` comment that ends at the end of its line: one line, no
    backslash that could splice the next line in, no ``*/`` or ``/*``, no ``??`` trigraph."""
    safe = one_line(text).replace("?", "\\x3f")
    return "// " + re.sub(r"(?<=[*/])(?=[*/])", " ", safe)
