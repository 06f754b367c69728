"""Formulas that read like the textbook: Unicode (``sd.pretty``) and LaTeX (``sd.latex``).

Matrix notation: Xᵀ, · for matrix products, ⊙ for elementwise products of
tensors, σ for the sigmoid, 1[·] for indicators, Σ with the axis for sums,
softmax/logsumexp by name; broadcasting is implicit. A subexpression used more
than once is named once (t₁ = …) before the formulas; nodes the user named
(``sd.name``) print by name with their definition listed first. Derivatives
made by ``sd.grad`` print as ∂L/∂W; a list that labels its positions
(``names.Labelled``) prints each position with its own label, even where two
positions hold the same node.

>>> import symdiff as sd
>>> X, W = sd.tensor("X", ("m", "n")), sd.tensor("W", ("n", "k"))
>>> y = sd.tensor("y", ("m",), "int64")
>>> L = sd.name(sd.softmax_cross_entropy(X @ W, y), "L")
>>> print(sd.pretty(sd.optimize(sd.grad(L, W))))
∂L/∂W = Xᵀ·(softmax(X·W) − onehot(y)) / m
"""

from __future__ import annotations

import numpy as np
import sympy

from .graph import as_list, is_operation, toposort, users
from .names import derivative_label, name_of, position_label
from .ops.elementwise import scalar_value
from .ops.registry import function

SUB = str.maketrans("0123456789", "₀₁₂₃₄₅₆₇₈₉")
SUP = str.maketrans("0123456789-", "⁰¹²³⁴⁵⁶⁷⁸⁹⁻")
ATOM, POSTFIX, POWER, UNARY, PRODUCT, SUM, COMPARE = 9, 8, 7, 6, 5, 4, 3
TRANSPARENT = {"broadcast_to", "astype_float"}


class Style:
    """How one notation writes each construct."""

    unicode = True

    def name(self, text):
        head = text.rstrip("0123456789")
        digits = text[len(head):]
        if len(head) > 1 and "_" not in head:
            return text
        return head + digits.translate(SUB) if self.unicode else (f"{head}_{{{digits}}}" if digits else text)

    def temp(self, i):
        return f"t{str(i).translate(SUB)}" if self.unicode else f"t_{{{i}}}"

    transpose = "{}ᵀ"
    matmul = "·"
    hadamard = " ⊙ "
    times = "·"
    minus = " − "
    plus = " + "
    neg = "−"
    div = " / "
    indicator = "1[{}]"
    sigma = "σ"
    sum_all = "Σ({})"
    sum_axis = "Σ{}({})"
    sqrt = "√{}"
    compare = {"less": " < ", "less_equal": " ≤ ", "greater": " > ", "greater_equal": " ≥ ",
               "equal": " = ", "not_equal": " ≠ "}

    def func(self, name, args):
        return f"{name}({', '.join(args)})"

    def power(self, base, k):
        return base + str(k).translate(SUP)

    def frac(self, a, b, pa, pb):
        return f"{a if pa > SUM else f'({a})'} / {b if pb > PRODUCT else f'({b})'}"

    def derivative(self, f, w):
        return f"∂{f}/∂{w}"

    def define(self, lhs, rhs):
        return f"{lhs} = {rhs}"

    def shape(self, dims):
        return " ∈ ℝ^(" + "×".join(str(d) for d in dims) + ")" if dims else " ∈ ℝ"


class Latex(Style):
    unicode = False
    transpose = "{}^\\top"
    matmul = " "
    hadamard = " \\odot "
    times = " \\cdot "
    minus = " - "
    neg = "-"
    indicator = "\\mathbb{{1}}\\left[{}\\right]"
    sigma = "\\sigma"
    sum_all = "\\sum\\left({}\\right)"
    sum_axis = "\\sum_{{{}}}\\left({}\\right)"
    sqrt = "\\sqrt{{{}}}"
    compare = {"less": " < ", "less_equal": " \\le ", "greater": " > ", "greater_equal": " \\ge ",
               "equal": " = ", "not_equal": " \\ne "}
    NAMED = {"exp", "log", "sin", "cos", "tan", "tanh"}

    def func(self, name, args):
        head = f"\\{name}" if name in self.NAMED else f"\\operatorname{{{name}}}"
        return f"{head}\\left({', '.join(args)}\\right)"

    def power(self, base, k):
        return f"{{{base}}}^{{{k}}}"

    def frac(self, a, b, pa, pb):
        return f"\\frac{{{a}}}{{{b}}}"

    def derivative(self, f, w):
        return f"\\frac{{\\partial {f}}}{{\\partial {w}}}"

    def define(self, lhs, rhs):
        return f"{lhs} &= {rhs}"

    def shape(self, dims):
        return " \\in \\mathbb{R}^{" + " \\times ".join(str(d) for d in dims) + "}" if dims else " \\in \\mathbb{R}"


def _number(value, style):
    if isinstance(value, sympy.Basic):
        return (style.name(str(value)) if value.is_Symbol else str(value)), (ATOM if value.is_Atom else PRODUCT)
    if isinstance(value, np.ndarray):
        return f"[{value.size} values]", ATOM
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        value = int(value)
    text = f"{value:.6g}" if isinstance(value, float) else str(value)
    return text, (UNARY if text.startswith("-") else ATOM)


def _wrap(text, prec, need):
    return text if prec >= need else (f"\\left({text}\\right)" if text.startswith("\\") and False else f"({text})")


def _render(node, args, style: Style):
    """(text, precedence) of ``node`` given its inputs' renderings."""
    op = node.op.name
    if node.is_leaf:
        return style.name(node.name), ATOM
    if node.is_constant:
        return _number(node.attr("value"), style)
    if op in ("broadcast_to", "reshape") or (op == "astype" and node.inputs[0].dtype != "bool"):
        return args[0]
    if op == "astype":  # a boolean used as a number: an indicator
        return style.indicator.format(args[0][0]), ATOM
    if op in ("add", "subtract"):
        (a, pa), (b, pb) = args
        sep = style.plus if op == "add" else style.minus
        return f"{_wrap(a, pa, SUM)}{sep}{_wrap(b, pb, SUM + (op == 'subtract'))}", SUM
    if op == "multiply":
        (a, pa), (b, pb) = args
        tensors = all(i.ndim and i.op.name != "broadcast_to" for i in node.inputs)
        if tensors:
            return f"{_wrap(a, pa, POWER)}{style.hadamard}{_wrap(b, pb, POWER)}", PRODUCT
        if scalar_value(node.inputs[0]) is not None and pb >= POWER and style.unicode:
            return f"{a}{b}" if b[:1].isalpha() else f"{a}{style.times}{b}", PRODUCT
        if node.inputs[0].shape == () or scalar_value(node.inputs[0]) is not None:  # scalar · (product)
            return f"{_wrap(a, pa, PRODUCT)}{style.times}{_wrap(b, pb, PRODUCT)}", PRODUCT
        return f"{_wrap(a, pa, PRODUCT)}{style.times}{_wrap(b, pb, PRODUCT + 1)}", PRODUCT
    if op == "matmul":
        (a, pa), (b, pb) = args
        return f"{_wrap(a, pa, PRODUCT)}{style.matmul}{_wrap(b, pb, PRODUCT + 1)}", PRODUCT
    if op == "divide":
        (a, pa), (b, pb) = args
        return style.frac(a, b, pa, pb), PRODUCT if style.unicode else ATOM
    if op == "negative":
        a, pa = args[0]
        return f"{style.neg}{_wrap(a, pa, POWER)}", UNARY
    if op in ("square", "power"):
        a, pa = args[0]
        k = 2 if op == "square" else scalar_value(node.inputs[1])
        if k is not None and float(k).is_integer():
            return style.power(_wrap(a, pa, ATOM), int(k)), POWER
        b, pb = args[1]
        return f"{_wrap(a, pa, ATOM)}^{_wrap(b, pb, ATOM)}" if style.unicode else f"{{{a}}}^{{{b}}}", POWER
    if op == "transpose" and node.ndim == 2:
        a, pa = args[0]
        return style.transpose.format(_wrap(a, pa, ATOM)), POSTFIX
    if op in style.compare:
        (a, pa), (b, pb) = args
        return f"{_wrap(a, pa, SUM)}{style.compare[op]}{_wrap(b, pb, SUM)}", COMPARE
    if op == "sigmoid":
        return f"{style.sigma}({args[0][0]})" if style.unicode else f"\\sigma\\left({args[0][0]}\\right)", ATOM
    if op == "sqrt":
        a, pa = args[0]
        return style.sqrt.format(_wrap(a, pa, ATOM)), ATOM
    if op == "reciprocal":
        a, pa = args[0]
        return style.frac("1", a, ATOM, pa), PRODUCT if style.unicode else ATOM
    if op == "sum":
        axes = node.attr("axis")
        body = args[0][0]
        if len(axes) == node.inputs[0].ndim:
            return style.sum_all.format(body), ATOM
        label = ",".join(str(a) for a in axes)
        return style.sum_axis.format(label.translate(SUB) if style.unicode else label, body), ATOM
    if op == "one_hot":
        return style.func("onehot", [args[0][0]]), ATOM
    if op == "softmax_cross_entropy":
        return style.func("CE", [a for a, _ in args]), ATOM
    texts = [a for a, _ in args]
    if op in ("logsumexp", "max", "argmax") and len(node.attr("axis")) != node.inputs[0].ndim:
        texts.append(f"axis={','.join(str(a) for a in node.attr('axis'))}")
    if op == "getitem":
        return f"{_wrap(texts[0], args[0][1], ATOM)}[…]", POSTFIX
    return style.func(op, texts), ATOM


def _trivial(node):
    return not is_operation(node) or node.op.name in ("broadcast_to", "reshape", "astype", "transpose", "negative")


def render(exprs, style: Style, show_shapes: bool = False) -> list:
    """Lines: definitions of named and shared nodes, then one formula per expression."""
    outputs = as_list(exprs)
    order = toposort(outputs)
    counts = users(order)
    output_ids = {id(o) for o in outputs}
    texts, lines, temps = {}, [], 0
    for node in order:
        text = _render(node, [texts[id(i)] for i in node.inputs], style)
        label = name_of(node) if not node.is_leaf else None
        if label is None and counts[id(node)] > 1 and not _trivial(node) and id(node) not in output_ids:
            temps += 1
            label = style.temp(temps)
        elif label is not None:
            label = style.name(label)
        if label is not None and id(node) not in output_ids:
            shape = style.shape(node.shape) if show_shapes else ""
            lines.append(style.define(label, text[0]) + shape)
            text = (label, ATOM)
        texts[id(node)] = text
    for i, o in enumerate(outputs):
        derivative = position_label(exprs, i) or derivative_label(o)
        if derivative is not None:
            lhs = style.derivative(style.name(derivative[0] or "f"), style.name(derivative[1]))
        elif name_of(o) is not None and not o.is_leaf:
            lhs = style.name(name_of(o))
        else:
            lhs = None
        body = texts[id(o)][0]
        shape = style.shape(o.shape) if show_shapes else ""
        lines.append((style.define(lhs, body) if lhs else body) + shape)
    return lines


@function
def pretty(exprs, show_shapes: bool = False) -> str:
    """Unicode formulas, one per line (shared and named pieces defined first)."""
    return "\n".join(render(exprs, Style(), show_shapes))


@function
def latex(exprs, show_shapes: bool = False) -> str:
    """LaTeX: one expression as a formula; several as an ``aligned`` block.

    >>> import symdiff as sd
    >>> x = sd.symbols("x")
    >>> sd.latex(sd.sigmoid(x) / 2)
    '\\\\frac{\\\\sigma\\\\left(x\\\\right)}{2}'
    """
    lines = render(exprs, Latex(), show_shapes)
    if len(lines) == 1:
        return lines[0].replace(" &= ", " = ")
    return "\\begin{aligned}\n" + " \\\\\n".join(
        line if "&=" in line else "&" + line for line in lines) + "\n\\end{aligned}"
