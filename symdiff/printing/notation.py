"""Matrix notation: the Unicode style (``sd.pretty``), LaTeX (``sd.latex``) and the buffer
formulas of a lowered program (``explain()``, kernel comments), on the walk of :mod:`.driver`.

One rule per op (:data:`RULES`) writes it in the notation :mod:`symdiff.pretty` describes
(Xᵀ, ·, ⊙, diag(v), Iₙ, tr(A), a·bᵀ); a rule looks inside a node only where no name stands
for it. The three styles differ in their tables: symbols, names, how a call looks.

>>> import symdiff as sd
>>> from symdiff.printing.driver import walk
>>> a, b = sd.tensor("a", (3,)), sd.tensor("b", (4,))
>>> walk([sd.reshape(a, (3, 1)) @ sd.reshape(b, (1, 4))], UNICODE)
['a·bᵀ']
"""

from __future__ import annotations

import fractions
import re
from typing import ClassVar

import numpy as np
import sympy

from .. import shapes
from ..ops.elementwise import scalar_value
from ..ops.registry import ATOM, HADAMARD, POSTFIX, POWER, PRODUCT, SUM, UNARY
from . import loops
from .driver import Style, wrap

_LIKE_A_BUFFER = re.compile(r"(in|out|t|c)[0-9]+")  # the names lowering gives buffers
SUB = str.maketrans("0123456789", "₀₁₂₃₄₅₆₇₈₉")
SUP = str.maketrans("0123456789-", "⁰¹²³⁴⁵⁶⁷⁸⁹⁻")
SUB_ANY = dict(zip("0123456789aehijklmnoprstuvx+-()", "₀₁₂₃₄₅₆₇₈₉ₐₑₕᵢⱼₖₗₘₙₒₚᵣₛₜᵤᵥₓ₊₋₍₎"))


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
    return style.transpose.format(wrap(text, prec, ATOM)), POSTFIX


def _product(left, right, style):
    (a, pa), (b, pb) = left, right
    return f"{wrap(a, pa, PRODUCT)}{style.matmul}{wrap(b, pb, PRODUCT + 1)}", PRODUCT


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


def _trace(node, seen, style):
    """Σ(A ⊙ I) over both axes is tr(A)."""
    source = node.inputs[0]
    if source.ndim != 2 or len(node.attr("axis")) != 2 or not seen.shows(source, "multiply"):
        return None
    for a, e in (source.inputs, source.inputs[::-1]):
        if seen.shows(e, "eye") and a.shape == e.shape:
            return style.func("tr", [seen[a][0]]), ATOM
    return None


# -- the rules, one per op (node, its inputs' (text, precedence), style, what was printed) ------

def _broadcast(node, args, style, seen):
    """Broadcasting is implicit, as in numpy, where it spreads a vector along the rows; a column
    spread along the rows is the outer product v·1ᵀ."""
    vector, kind = _as_vector(node.inputs[0], seen)
    if kind == "row":
        return seen[vector]
    if kind == "column" and node.shape[-1] != 1:
        return _product(seen[vector], (style.transpose.format("1"), POSTFIX), style)
    return seen[node.inputs[0]]


def _reshape(node, args, style, seen):
    """A reshape shows where it changes the meaning: a vector as a row (vᵀ) or a column (v,
    as vectors are), a batch of rows, anything that moves entries; a batch axis of one does not."""
    source = node.inputs[0]
    vector, kind = _as_vector(node, seen)
    if kind == "column":
        return seen[vector]
    if kind == "row":
        return style.transpose.format(wrap(*seen[vector], ATOM)), POSTFIX
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


def _astype(node, args, style, seen):
    if node.inputs[0].dtype != "bool":
        return args[0]
    return style.indicator.format(args[0][0]), ATOM  # a boolean used as a number: an indicator


def _eye(node, args, style, seen):
    return style.identity(node.attr("n")), ATOM


VULGAR = {(1, 2): "½", (1, 3): "⅓", (2, 3): "⅔", (1, 4): "¼", (3, 4): "¾", (1, 5): "⅕", (1, 6): "⅙",
          (1, 8): "⅛"}


def _fraction(value):
    """(p, q) where a float is a simple fraction p/q (q ≤ 12): 0.5 is ½, 0.25 is ¼."""
    if not isinstance(value, float) or value.is_integer():
        return None
    exact = fractions.Fraction(value).limit_denominator(12)
    return (exact.numerator, exact.denominator) if float(exact) == value else None


def _coefficient(value, text, style):
    """A number in front of what it scales: a simple fraction as ½ or \\frac{1}{2}."""
    fraction = _fraction(value)
    if fraction is None:
        return text, False
    p, q = fraction
    if style.unicode:
        if (abs(p), q) not in VULGAR:
            return text, False
        return ("−" if p < 0 else "") + VULGAR[abs(p), q], True
    return f"{'-' if p < 0 else ''}\\frac{{{abs(p)}}}{{{q}}}", True


def _multiply(node, args, style, seen):
    (a, pa), (b, pb) = args
    unspread = [i.inputs[0] if i.op.name == "broadcast_to" else i for i in node.inputs]
    if not any(shapes.numel(i.shape) == 1 for i in unspread):  # · only for matrix products
        elementwise = f"{wrap(a, pa, POWER)}{style.hadamard}{wrap(b, pb, POWER)}", HADAMARD
        return _diagonal(node, seen, style) or elementwise
    first, second = node.inputs
    if scalar_value(second) is not None and scalar_value(first) is None:  # x·2 reads 2x: the number first
        (a, pa), (b, pb), first = (b, pb), (a, pa), second
    value = scalar_value(first)
    if value is not None:
        a, fraction = _coefficient(value, a, style)
        if fraction and pb < PRODUCT:
            b, pb = f"({b})", ATOM
        if fraction and (b.startswith("(") or (pb >= POWER and "(" not in b)):  # ½x, ½(A + Aᵀ)·x
            return f"{a}{b}" if style.unicode else f"{a} {b}", UNARY if a[:1] in "−-" else PRODUCT
    if value is not None and pb >= POWER and style.juxtapose:  # 2x
        # 2x and 2X², but 1.12838·exp(x) and 0.5·x: a call or a decimal point reads apart
        name = b[:1].isalpha() and "(" not in b and "." not in a
        return f"{a}{b}" if name else f"{a}{style.times}{b}", PRODUCT
    if first.shape == () or value is not None:  # scalar · (product)
        return f"{wrap(a, pa, PRODUCT)}{style.times}{wrap(b, pb, PRODUCT)}", PRODUCT
    return f"{wrap(a, pa, PRODUCT)}{style.times}{wrap(b, pb, PRODUCT + 1)}", PRODUCT


def _matmul(node, args, style, seen):
    """A·B; a product on the right needs no parentheses: A·(B·c) is A·B·c (the product associates)."""
    a, b = node.inputs
    right = _factor(b, seen, style)
    if seen.shows(b, "matmul") and right[1] == PRODUCT and b.ndim <= 2 and a.ndim <= 2:
        right = right[0], PRODUCT + 1
    return _product(_factor(a, seen, style, left=True), right, style)


def _divide(node, args, style, seen):
    (a, pa), (b, pb) = args
    return style.frac(a, b, pa, pb), PRODUCT if style.unicode else ATOM


def _negative(node, args, style, seen):
    a, pa = args[0]
    return f"{style.neg}{wrap(a, pa, POWER)}", UNARY


def _power(node, args, style, seen):
    a, pa = args[0]
    k = 2 if node.op.name == "square" else scalar_value(node.inputs[1])
    if k is not None and float(k).is_integer():
        return style.power(wrap(a, pa, ATOM), int(k)), POWER
    b, pb = args[1]
    return f"{wrap(a, pa, ATOM)}^{wrap(b, pb, ATOM)}" if style.unicode else f"{{{a}}}^{{{b}}}", POWER


def _transpose(node, args, style, seen):
    return _transposed(node.inputs[0], seen, style) if _swaps_last_two(node) else None


def _sigmoid(node, args, style, seen):
    return f"{style.sigma}({args[0][0]})" if style.unicode else f"\\sigma\\left({args[0][0]}\\right)", ATOM


def _sqrt(node, args, style, seen):
    a, pa = args[0]
    return style.sqrt.format(wrap(a, pa, ATOM)), ATOM


def _reciprocal(node, args, style, seen):
    a, pa = args[0]
    return style.frac("1", a, ATOM, pa), PRODUCT if style.unicode else ATOM


def _sum(node, args, style, seen):
    trace = _trace(node, seen, style)
    if trace is not None:
        return trace
    axes = node.attr("axis")
    body = args[0][0]
    if len(axes) == node.inputs[0].ndim:
        return style.sum_all.format(body), ATOM
    label = ",".join(str(a) for a in axes)
    return style.sum_axis.format(label.translate(SUB) if style.unicode else label, body), ATOM


def _named(name):
    return lambda node, args, style, seen: (style.func(name, [a for a, _ in args]), ATOM)


def _getitem(node, args, style, seen):
    return f"{wrap(args[0][0], args[0][1], ATOM)}[…]", POSTFIX


RULES = {"broadcast_to": _broadcast, "reshape": _reshape, "astype": _astype, "eye": _eye,
         "multiply": _multiply, "matmul": _matmul, "divide": _divide, "negative": _negative,
         "square": _power, "power": _power, "transpose": _transpose, "sigmoid": _sigmoid, "sqrt": _sqrt,
         "reciprocal": _reciprocal, "sum": _sum, "one_hot": _named("onehot"),
         "softmax_cross_entropy": _named("CE"), "getitem": _getitem, **loops.RULES}


class Unicode(Style):
    """``sd.pretty``: Unicode matrix notation; user names and temporaries t₁, t₂… subscripted."""

    unicode = True
    juxtapose = True  # a number times what starts with a letter: 2x
    rules = RULES
    assoc: ClassVar[dict] = {"add": "both"}
    # the infix ops that print here as declared (+, <, >) need no entry; the others:
    symbols: ClassVar[dict] = {" - ": " − ", " <= ": " ≤ ", " >= ": " ≥ ", " == ": " = ", " != ": " ≠ "}
    unnamed = frozenset({"broadcast_to", "reshape", "astype", "transpose", "negative", "eye"})
    first_temp = 1
    transpose = "{}ᵀ"
    matmul = "·"
    hadamard = " ⊙ "
    times = "·"
    neg = "−"
    indicator = "1[{}]"
    sigma = "σ"
    sum_all = "Σ({})"
    sum_axis = "Σ{}({})"
    sqrt = "√{}"

    def name(self, text):
        head = text.rstrip("0123456789")
        digits = text[len(head):]
        if len(head) > 1 and "_" not in head:
            return text
        return head + digits.translate(SUB) if self.unicode else (f"{head}_{{{digits}}}" if digits else text)

    def temp(self, i):
        return f"t{str(i).translate(SUB)}" if self.unicode else f"t_{{{i}}}"

    def number(self, value, dtype):
        if isinstance(value, sympy.Basic):
            return (self.name(str(value)) if value.is_Symbol else str(value)), (ATOM if value.is_Atom else PRODUCT)
        if isinstance(value, np.ndarray):
            return f"[{value.size} values]", ATOM
        if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
            value = int(value)
        text = f"{value:.6g}" if isinstance(value, float) else str(value)
        return text, (UNARY if text.startswith("-") else ATOM)

    def call(self, node, texts):
        op = node.op.name
        if op in ("logsumexp", "max", "argmax") and len(node.attr("axis")) != node.inputs[0].ndim:
            texts.append(f"axis={','.join(str(a) for a in node.attr('axis'))}")
        if op == "transpose" and tuple(node.attr("axes")) != tuple(range(node.ndim))[::-1]:
            texts.append(str(tuple(node.attr("axes"))))
        if op == "flip" and not node.op.print_attrs[0].is_default(node):  # flip(X, axis=0) ≠ flip(X)
            axes = node.attr("axis")
            texts.append(f"axis={','.join(str(a) for a in axes) if len(axes) != 1 else axes[0]}")
        if op in ("pad", "dilate"):  # what they add is the attributes: pad(X, (0, 0), (1, 2))
            texts += [_attr_text(node.attr(s.name)) if s.name != "value" else f"value={node.attr('value')}"
                      for s in node.op.print_attrs if not s.is_default(node)]
        if node.op.pretty_attrs:  # conv2d(X, W, stride=2): a pair of equal values as one number
            texts += [self.keyword(s.name, _compact(node.attr(s.name))) for s in node.op.print_attrs
                      if not s.is_default(node)]
        return self.func(op, texts)

    def func(self, name, args):
        return f"{name}({', '.join(args)})"

    def keyword(self, name, value):
        return f"{name}={value}"

    def power(self, base, k):
        return base + str(k).translate(SUP)

    def frac(self, a, b, pa, pb):
        return f"{a if pa > SUM else f'({a})'} / {b if pb > PRODUCT else f'({b})'}"

    def shape(self, dims):
        return " ∈ ℝ^(" + "×".join(str(d) for d in dims) + ")" if dims else " ∈ ℝ"

    def identity(self, n=None):
        """I, or Iₙ where nothing around it says its size."""
        text = "" if n is None else str(n)
        return "I" + "".join(SUB_ANY[c] for c in text) if all(c in SUB_ANY for c in text) else f"I_({text})"


class Latex(Unicode):
    """``sd.latex``: the same notation in LaTeX; definitions aligned at ``&=``."""

    unicode = juxtapose = False
    symbols: ClassVar[dict] = {" - ": " - ", " <= ": " \\le ", " >= ": " \\ge ", " == ": " = ",
                               " != ": " \\ne "}
    transpose = "{}^\\top"
    matmul = " "
    hadamard = " \\odot "
    times = " \\cdot "
    neg = "-"
    indicator = "\\mathbb{{1}}\\left[{}\\right]"
    sigma = "\\sigma"
    sum_all = "\\sum\\left({}\\right)"
    sum_axis = "\\sum_{{{}}}\\left({}\\right)"
    sqrt = "\\sqrt{{{}}}"
    NAMED = frozenset({"exp", "log", "sin", "cos", "tan", "tanh"})

    def func(self, name, args):
        head = f"\\{name}" if name in self.NAMED else f"\\operatorname{{{_escaped(name)}}}"
        return f"{head}\\left({', '.join(args)}\\right)"

    def keyword(self, name, value):
        return f"\\mathrm{{{_escaped(name)}}}={value}"

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


class Buffers(Unicode):
    """The formula one kernel of a lowered program computes: the Unicode notation over the
    program's buffers (given to the walk as atoms: ``t0``, ``out0``) and the user's leaves, names
    as the user spelled them (``W0``, not W₀), one line: nothing inside it is named (what the
    result is, ∂L/∂W, is for the caller to say: :func:`~.driver.result_label`)."""

    names_nodes = names_shared = labels_results = False
    juxtapose = False  # 0.1·t9, not 0.1t9: names of buffers end in digits

    def name(self, text):
        return f"'{text}'" if _LIKE_A_BUFFER.fullmatch(text) else text  # a user's t0 is not the buffer t0


UNICODE, LATEX, BUFFERS = Unicode(), Latex(), Buffers()


def _escaped(name: str) -> str:
    """A name in LaTeX text: max_pool2d is max\\_pool2d (a bare _ starts a subscript)."""
    return name.replace("_", "\\_")


def _compact(value) -> str:
    """An attribute as the Unicode and LaTeX printers show it: (2, 2) as 2."""
    if isinstance(value, tuple) and value and all(v == value[0] for v in value):
        return str(value[0])
    return str(value)


def _attr_text(value) -> str:
    """An attribute as a reader writes it: (0, 0), (1, 2) for pairs, 2 for a number."""
    if isinstance(value, tuple) and value and all(isinstance(v, tuple) for v in value):
        return ", ".join(str(tuple(v)) for v in value)
    return str(tuple(value)) if isinstance(value, tuple) else str(value)
from . import linalg_notation  # noqa: E402  (inv, det, solve, kron, norm…: symdiff.ops.matrix's rules)
RULES.update(linalg_notation.rules(RULES))
