"""Formulas that read like the textbook: Unicode (``sd.pretty``) and LaTeX (``sd.latex``).

Matrix notation: Xᵀ, · for matrix products only, ⊙ for elementwise products of
tensors (a scalar factor stays juxtaposed: 2x, 2·Xᵀ·r), σ for the sigmoid, 1[·]
for indicators, Σ with the axis for sums, softmax/logsumexp by name. No printed
operation hides one that changes the meaning: vectors are columns, so a vector
reshaped to a row prints vᵀ and an outer product a·bᵀ; a vector broadcast against
the identity or along a matrix's rows is diag(v) (I ⊙ v, M·diag(v)); Σ(A ⊙ I) is
tr(A); the identity is I, or Iₙ where no other factor gives its size; a reshape
that moves entries prints as reshape(…). Broadcasting along rows stays implicit,
as in numpy (a column spread along the rows is v·1ᵀ). A subexpression used more
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

from . import shapes
from .graph import as_list, is_operation, toposort, users
from .names import derivative_label, name_of, position_label
from .ops.elementwise import scalar_value
from .ops.registry import COMPARISON, function

SUB = str.maketrans("0123456789", "₀₁₂₃₄₅₆₇₈₉")
SUP = str.maketrans("0123456789-", "⁰¹²³⁴⁵⁶⁷⁸⁹⁻")
SUB_ANY = dict(zip("0123456789aehijklmnoprstuvx+-()", "₀₁₂₃₄₅₆₇₈₉ₐₑₕᵢⱼₖₗₘₙₒₚᵣₛₜᵤᵥₓ₊₋₍₎"))
# ⊙ binds looser than ·, so (A ⊙ B)·C keeps its parentheses
ATOM, POSTFIX, POWER, UNARY, PRODUCT, HADAMARD, SUM, COMPARE = 10, 9, 8, 7, 6, 5, 4, 3


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
    # the comparison ops (those with an Infix of COMPARISON precedence), by their text symbol
    compare = {"<": " < ", "<=": " ≤ ", ">": " > ", ">=": " ≥ ", "==": " = ", "!=": " ≠ "}

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

    def identity(self, n=None):
        """I, or Iₙ where nothing around it says its size."""
        text = "" if n is None else str(n)
        return "I" + "".join(SUB_ANY[c] for c in text) if all(c in SUB_ANY for c in text) else f"I_({text})"


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
    compare = {"<": " < ", "<=": " \\le ", ">": " > ", ">=": " \\ge ", "==": " = ", "!=": " \\ne "}
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

    def identity(self, n=None):
        return "I" if n is None else f"I_{{{sympy.latex(n) if isinstance(n, sympy.Basic) else n}}}"


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
    return text if prec >= need else f"({text})"


class _Printed:
    """What the walk has printed so far. A rule may look inside a node only where no name
    (t₁, or the user's) stands for it in the formula."""

    def __init__(self):
        self.texts, self.named = {}, set()

    def __getitem__(self, node):
        return self.texts[id(node)]

    def shows(self, node, op):
        return node.op.name == op and id(node) not in self.named


def _leading_ones_stripped(shape):
    shape = tuple(shape)
    while shape and shape[0] == 1:
        shape = shape[1:]
    return shape


def _swaps_last_two(node):
    k = node.ndim
    return k >= 2 and tuple(node.attr("axes")) == tuple(range(k - 2)) + (k - 1, k - 2)


def _as_vector(node, seen):
    """(v, "column" | "row") where ``node`` is the vector v reshaped to (n, 1) or (1, n)."""
    if seen.shows(node, "reshape") and node.inputs[0].ndim == 1 and node.ndim == 2 and 1 in node.shape:
        return node.inputs[0], ("column" if node.shape[1] == 1 else "row")
    return None, None


def _factor(node, seen, style, left=False):
    """A matrix product's factor: an identity there takes its size from the other factor, and a
    row on the left is the vector itself (v·M, as numpy reads a vector times a matrix)."""
    vector, kind = _as_vector(node, seen)
    if left and kind == "row":
        return seen[vector]
    return (style.identity(), ATOM) if seen.shows(node, "eye") else seen[node]


def _transposed(node, seen, style):
    """(text, precedence) of nodeᵀ; a row's transpose is its vector, a transpose's is its input."""
    source = node.inputs[0] if node.inputs else None
    vector, kind = _as_vector(node, seen)
    if kind == "row" or (seen.shows(node, "transpose") and _swaps_last_two(node)):
        return seen[source]
    if (seen.shows(node, "reshape") and min(node.ndim, source.ndim) >= 2 and node.shape[-2:] == source.shape[-2:]
            and _leading_ones_stripped(node.shape) == _leading_ones_stripped(source.shape)):
        return _transposed(source, seen, style)  # a batch axis of one added or dropped
    text, prec = seen[vector] if kind == "column" else seen[node]
    return style.transpose.format(_wrap(text, prec, ATOM)), POSTFIX


def _product(left, right, style):
    (a, pa), (b, pb) = left, right
    return f"{_wrap(a, pa, PRODUCT)}{style.matmul}{_wrap(b, pb, PRODUCT + 1)}", PRODUCT


def _reshape(node, seen, style):
    """A reshape shows where it changes the meaning: a vector as a row (vᵀ) or a column (v,
    as vectors are), a batch of rows, anything that moves entries; a batch axis of one does not."""
    source = node.inputs[0]
    vector, kind = _as_vector(node, seen)
    if kind == "column":
        return seen[vector]
    if kind == "row":
        return style.transpose.format(_wrap(*seen[vector], ATOM)), POSTFIX
    if node.ndim == 1 and _as_vector(source, seen)[0] is not None:  # a row or column read as a vector again
        return seen[source.inputs[0]]
    if node.ndim == 1 and source.ndim == 2 and 1 in source.shape:  # Σ₀(G) with keepdims, as a vector
        return seen[source]
    if _leading_ones_stripped(node.shape) == _leading_ones_stripped(source.shape):
        return seen[source]
    rows = _rows_mapped(node, seen, style)
    if rows is not None:
        return rows
    return style.func("reshape", [seen[source][0], shapes.format_shape(node.shape)]), ATOM


def _rows_mapped(node, seen, style):
    """reshape(P @ reshape(M, (k, r, 1)), (k, p)) applies P to each row of M: it is M·Pᵀ.
    Batched tangents and cotangents (the seeds of a Jacobian) take this form."""
    mm = node.inputs[0]
    if not (node.ndim == 2 and seen.shows(mm, "matmul") and tuple(mm.shape) == tuple(node.shape) + (1,)):
        return None
    p, q = mm.inputs
    if not (seen.shows(q, "reshape") and q.inputs[0].ndim == 2 and tuple(q.shape) == tuple(q.inputs[0].shape) + (1,)):
        return None
    if tuple(p.shape[-2:]) != (node.shape[1], q.shape[1]) or _leading_ones_stripped(p.shape[:-2]):
        return None
    return _product(_factor(q.inputs[0], seen, style, left=True), _transposed(p, seen, style), style)


def _diagonal(node, seen, style):
    """diag(v) where broadcasting a vector makes one: I ⊙ v = diag(v); a matrix times v along
    its rows is M·diag(v), times a column v is diag(v)·M."""
    if node.ndim != 2:
        return None
    for full, spread in (node.inputs, node.inputs[::-1]):
        if not seen.shows(spread, "broadcast_to") or full.op.name == "broadcast_to" or full.shape != node.shape:
            continue
        vector, kind = _as_vector(spread.inputs[0], seen)
        if vector is None and spread.inputs[0].ndim == 1:
            vector, kind = spread.inputs[0], "row"
        if vector is None:
            continue
        diag = style.func("diag", [seen[vector][0]]), ATOM
        if seen.shows(full, "eye"):
            return diag
        return _product(seen[full], diag, style) if kind == "row" else _product(diag, seen[full], style)
    return None


def _broadcast(node, seen, style):
    """Broadcasting is implicit, as in numpy, where it spreads a vector along the rows; a column
    spread along the rows is the outer product v·1ᵀ."""
    vector, kind = _as_vector(node.inputs[0], seen)
    if kind == "row":
        return seen[vector]
    if kind == "column" and node.shape[-1] != 1:
        return _product(seen[vector], (style.transpose.format("1"), POSTFIX), style)
    return seen[node.inputs[0]]


def _trace(node, seen, style):
    """Σ(A ⊙ I) over both axes is tr(A)."""
    source = node.inputs[0]
    if source.ndim != 2 or len(node.attr("axis")) != 2 or not seen.shows(source, "multiply"):
        return None
    for a, e in (source.inputs, source.inputs[::-1]):
        if seen.shows(e, "eye") and a.shape == e.shape:
            return style.func("tr", [seen[a][0]]), ATOM
    return None


def _render(node, args, style: Style, seen: _Printed):
    """(text, precedence) of ``node`` given its inputs' renderings (and, for the rules that
    read structure, what was printed for the nodes below them)."""
    op = node.op.name
    if node.is_leaf:
        return style.name(node.name), ATOM
    if node.is_constant:
        return _number(node.attr("value"), style)
    if op == "broadcast_to":
        return _broadcast(node, seen, style)
    if op == "astype" and node.inputs[0].dtype != "bool":
        return args[0]
    if op == "reshape":
        return _reshape(node, seen, style)
    if op == "eye":
        return style.identity(node.attr("n")), ATOM
    if op == "astype":  # a boolean used as a number: an indicator
        return style.indicator.format(args[0][0]), ATOM
    if op in ("add", "subtract"):
        (a, pa), (b, pb) = args
        sep = style.plus if op == "add" else style.minus
        return f"{_wrap(a, pa, SUM)}{sep}{_wrap(b, pb, SUM + (op == 'subtract'))}", SUM
    if op == "multiply":
        (a, pa), (b, pb) = args
        unspread = [i.inputs[0] if i.op.name == "broadcast_to" else i for i in node.inputs]
        if not any(shapes.numel(i.shape) == 1 for i in unspread):  # · only for matrix products
            return _diagonal(node, seen, style) or (
                f"{_wrap(a, pa, POWER)}{style.hadamard}{_wrap(b, pb, POWER)}", HADAMARD)
        if scalar_value(node.inputs[0]) is not None and pb >= POWER and style.unicode:
            return f"{a}{b}" if b[:1].isalpha() else f"{a}{style.times}{b}", PRODUCT
        if node.inputs[0].shape == () or scalar_value(node.inputs[0]) is not None:  # scalar · (product)
            return f"{_wrap(a, pa, PRODUCT)}{style.times}{_wrap(b, pb, PRODUCT)}", PRODUCT
        return f"{_wrap(a, pa, PRODUCT)}{style.times}{_wrap(b, pb, PRODUCT + 1)}", PRODUCT
    if op == "matmul":
        return _product(_factor(node.inputs[0], seen, style, left=True), _factor(node.inputs[1], seen, style), style)
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
    if op == "transpose" and _swaps_last_two(node):
        return _transposed(node.inputs[0], seen, style)
    if node.op.infix is not None and node.op.infix.precedence == COMPARISON:
        (a, pa), (b, pb) = args
        return f"{_wrap(a, pa, SUM)}{style.compare[node.op.infix.symbol.strip()]}{_wrap(b, pb, SUM)}", COMPARE
    if op == "sigmoid":
        return f"{style.sigma}({args[0][0]})" if style.unicode else f"\\sigma\\left({args[0][0]}\\right)", ATOM
    if op == "sqrt":
        a, pa = args[0]
        return style.sqrt.format(_wrap(a, pa, ATOM)), ATOM
    if op == "reciprocal":
        a, pa = args[0]
        return style.frac("1", a, ATOM, pa), PRODUCT if style.unicode else ATOM
    if op == "sum":
        trace = _trace(node, seen, style)
        if trace is not None:
            return trace
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
    if op == "transpose" and tuple(node.attr("axes")) != tuple(range(node.ndim))[::-1]:
        texts.append(str(tuple(node.attr("axes"))))
    return style.func(op, texts), ATOM


def _trivial(node):
    return not is_operation(node) or node.op.name in ("broadcast_to", "reshape", "astype", "transpose", "negative", "eye")


def render(exprs, style: Style, show_shapes: bool = False) -> list:
    """Lines: definitions of named and shared nodes, then one formula per expression."""
    outputs = as_list(exprs)
    order = toposort(outputs)
    counts = users(order)
    output_ids = {id(o) for o in outputs}
    seen, lines, temps = _Printed(), [], 0
    for node in order:
        text = _render(node, [seen[i] for i in node.inputs], style, seen)
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
            seen.named.add(id(node))
        seen.texts[id(node)] = text
    for i, o in enumerate(outputs):
        derivative = position_label(exprs, i) or derivative_label(o)
        if derivative is not None:
            lhs = style.derivative(style.name(derivative[0] or "f"), style.name(derivative[1]))
        elif name_of(o) is not None and not o.is_leaf:
            lhs = style.name(name_of(o))
        else:
            lhs = None
        body = seen[o][0]
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
