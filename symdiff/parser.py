"""``sd.parse``: a real parser for the expression language and the matrix notation ``sd.pretty``
prints. It never evaluates Python.

Grammar (Python's precedence, lowest first; the notation's forms beside the text's)::

    text     := line (newline line)*              a line: [label "="] expr [∈ ℝ^(m×n)]
    label    := name | "∂" name "/" "∂" name       t₁ = …, Z₁ = …, ∂L/∂W = …
    expr     := arith [compare arith]             compare: < <= > >= == != ≤ ≥ ≠ (= inside brackets)
    arith    := hadamard (("+" | "-" | "−") hadamard)*
    hadamard := term ("⊙" term)*                  ⊙ binds looser than a product, as printed
    term     := unary (("*" | "/" | "@" | "·" | "⊗" | juxtaposed) unary)*     2x is 2·x
    unary    := ("-" | "+" | "−") unary | power
    power    := postfix [("**" | "^") unary]      right-associative; -x**2 is -(x**2)
    postfix  := atom ("[" index ("," index)* "]" | "ᵀ" | superscript)*     Xᵀ, x², A⁻¹, A⁻ᵀ
    atom     := number | name | function "(" args ")" | "(" expr ")" | √atom | Σ₀,₁(expr)
              | 1[expr] | ‖expr‖ | log|det A| | I | Iₙ | σ(expr) | tr(expr) | diag(expr)
    index    := int | [int] ":" [int] [":" [int]] | None | ...
    args     := arg ("," arg)*;  arg := expr | (int, ...) | keyword "=" literal
    literal  := number | True | False | None | dtype | (int, ...) | ((int, ...), ...)

In the notation (:mod:`symdiff.parser_notation` says what each form builds) ``·`` is a matrix
product, or a product with a scalar; vectors are columns (a·bᵀ is an outer product); ``I``,
``onehot(y)`` and ``1ᵀ`` take their size from the operand next to them; subscripts are part of
a name (W₁ is W1, Iₙ the identity of size n) and a name may carry combining marks (ȳ, the
printer's y + U+0304). A line ``t₁ = …`` defines a name the later lines use; the lines whose
names nothing uses are the result: one expression, or a list (``names.Labelled``, with the
∂L/∂W labels) for several. A one-line ``name = …`` is refused as an assignment (only ∂L/∂W =
… labels one line). The printer's notes (``stabilized: …`` lines) are skipped. Not read back:
a scan (``scan(h, x_t ↦ …)``), elided indices ``[…]`` and constants shown as ``[n values]``.

Functions are the registered ones of the op catalogue (``symdiff.ops``), which build
expressions; transformations such as ``grad``, ``optimize`` or ``pretty`` are not callable
from text. Other names become scalar float64 symbols unless the namespace maps them, or they
are dimensions of the tensors in it (``/ m``). Attribute access, strings, lambdas, Python
keywords and dunder names are rejected with the position of the offending text. Digits are
ASCII only (superscript and subscript digits only where the notation puts them).

Arithmetic on literals folds as Python computes it, exactly, before any node is
built (``2**63 - 1`` is the largest int64), within a bound on the size of
intermediate results; a number that meets the graph must fit int64 or be a
finite float64, and division by zero is a parse error.

>>> import symdiff as sd
>>> x, y = sd.symbols("x y")
>>> sd.parse("sin(x)*exp(y) + x**2") is sd.sin(x) * sd.exp(y) + x**2
True
>>> sd.parse("sum(X*X, axis=0)", {"X": sd.tensor("X", ("m", 3))}).shape
(3,)
>>> X, W = sd.tensor("X", ("m", "n")), sd.tensor("W", ("n", "k"))
>>> labels = sd.tensor("y", ("m",), "int64")
>>> dW = sd.parse("∂L/∂W = Xᵀ·(softmax(X·W) − onehot(y)) / m", X, W, labels)
>>> dW.shape
(n, k)
>>> print(sd.pretty(sd.parse("t₁ = X·W\\nZ = relu(t₁)\\nZᵀ·t₁", X, W)))
t₁ = X·W
relu(t₁)ᵀ·t₁
"""

from __future__ import annotations

import inspect
import keyword
import math
import operator
import re
import unicodedata

import sympy

from . import parser_notation as pn
from .names import Labelled
from .shapes import ShapeError
from .node import Node, as_node, constant, tensor
from .ops.registry import FUNCTIONS

MAX_LENGTH = 100_000
MAX_DEPTH = 200
DTYPE_NAMES = {"float32", "float64", "int64", "bool"}
LITERALS = {"True": True, "False": False, "None": None}
# literal arithmetic is exact Python arithmetic on ints up to this size (2**63 - 1 needs 2**63 on
# the way); the estimate comes before a power is computed, so 9**9**9 is refused at once
MAX_INT_BITS = 4096
MAX_INT_DIGITS = 1233  # the decimal digits of a MAX_INT_BITS integer
INT64_MIN, INT64_MAX = -2**63, 2**63 - 1
FOLD = {"+": operator.add, "-": operator.sub, "*": operator.mul, "/": operator.truediv, "**": operator.pow,
        "<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge, "==": operator.eq,
        "!=": operator.ne}
COMPARE = {"<": "less", "<=": "less_equal", ">": "greater", ">=": "greater_equal", "==": "equal",
           "!=": "not_equal"}
# the notation's symbols as the text writes them ("=" is equality only inside brackets)
CANONICAL = {"−": "-", "≤": "<=", "≥": ">=", "≠": "!=", "=": "==", "^": "**"}

_LETTER = "A-Za-z_À-ÖØ-öø-ɏ"  # Latin letters; precomposed ones (ȳ) are read as letter + mark
_MARKS = "\u0300-\u036f"
_SUBSCRIPTS = "₀-₉ₐₑₕᵢⱼₖₗₘₙₒₚᵣₛₜᵤᵥₓ"
TOKEN = re.compile(rf"""
    (?P<newline>\n)
  | (?P<space>[ \t\r]+)
  | (?P<number>(?:[0-9]+\.[0-9]*|\.[0-9]+|[0-9]+)(?:[eE][+-]?[0-9]+)?)
  | (?P<fraction>[½⅓⅔¼¾⅛])
  | (?P<sum>Σ(?:[₀-₉]+(?:,[₀-₉]+)*)?)
  | (?P<name>[{_LETTER}][{_MARKS}]*(?:[{_LETTER}0-9][{_MARKS}]*)*[{_SUBSCRIPTS}]*|σ)
  | (?P<sup>⁻ᵀ|⁻?[⁰¹²³⁴⁵⁶⁷⁸⁹]+)
  | (?P<op>\*\*|<=|>=|==|!=|\.\.\.|[-+*/@()\[\],:<>=|^]|[·⊙⊗−ᵀ√∂‖≤≥≠∈ℝ×…])
""", re.VERBOSE)
FRACTIONS = {"½": 0.5, "⅓": 1 / 3, "⅔": 2 / 3, "¼": 0.25, "¾": 0.75, "⅛": 0.125}  # as sympy prints 1/2
NOTE_LINE = re.compile(r"stabilized: [^\n]*")  # sd.pretty's notes under the formulas
ENDS_EXPRESSION = {")", "]", "ᵀ", "‖", "…"}  # a newline after these ends a line
SUBSCRIPT_CHARS = set("₀₁₂₃₄₅₆₇₈₉") | set(pn.SUBSCRIPT_LETTERS)


class ParseError(ValueError):
    """Malformed or unsafe text; ``position`` is the 0-based offset of the problem."""

    def __init__(self, message, text, position):
        self.position = position
        self.reason = message
        line_start = text.rfind("\n", 0, position) + 1
        line_end = text.find("\n", position)
        line = text[line_start: line_end if line_end >= 0 else len(text)]
        if len(line) > 120:  # keep the caret near the problem in long inputs
            cut = max(0, position - line_start - 60)
            line, caret = line[cut: cut + 120], position - line_start - cut
        else:
            caret = position - line_start
        super().__init__(f"parse error at column {position + 1}: {message}\n  {line}\n  {' ' * caret}^")


class _Unrepresentable(Exception):
    """A literal result that symdiff cannot hold; the parser adds the position."""


def _show(value) -> str:
    """A number for a message: its digits when short, their count when not."""
    if isinstance(value, int) and value.bit_length() > 100:
        return f"a {len(str(abs(value))):,}-digit integer"
    return f"({value!r})" if value < 0 else repr(value)


def fold_numbers(op: str, a, b):
    """``a op b`` for two Python numbers, computed exactly as Python does, within bounds.

    >>> fold_numbers("-", 2**63, 1)
    9223372036854775807
    >>> fold_numbers("**", 2, -2)
    0.25
    """
    what = f"{_show(a)} {op} {_show(b)}"
    big_power = op == "**" and isinstance(a, int) and isinstance(b, int) and b > 0 and abs(a) > 1
    if big_power and (abs(a).bit_length() - 1) * b >= MAX_INT_BITS:  # a lower bound on its bits
        raise _Unrepresentable(f"{what} overflows: the result has more than {MAX_INT_BITS} bits")
    try:
        result = FOLD[op](a, b)
    except ZeroDivisionError:
        raise _Unrepresentable(f"division by zero in {what}") from None
    except OverflowError:  # Python raises it for floats out of range and ints too big for a float
        raise _Unrepresentable(f"{what} overflows float64") from None
    if isinstance(result, complex):
        raise _Unrepresentable(f"{what} is not a real number")
    if isinstance(result, float) and not math.isfinite(result):
        raise _Unrepresentable(f"{what} {'overflows float64' if math.isinf(result) else 'is not a number'}")
    if isinstance(result, int) and result.bit_length() > MAX_INT_BITS:
        raise _Unrepresentable(f"{what} overflows: the result has more than {MAX_INT_BITS} bits")
    return result


def _is_int(text: str) -> bool:
    return text.isascii() and text.isdigit()  # str.isdigit alone also takes '١٢'


def _is_int(text: str) -> bool:
    return text.isascii() and text.isdigit()  # str.isdigit alone also takes '١٢'


def _name_token(raw, text, pos):
    """(name, subscript) of a name token: W₁ is ("W1", "1"), ȳ is y + U+0304, xₜ is x_t."""
    if raw == "σ":
        return raw, ""
    base = raw.rstrip("".join(SUBSCRIPT_CHARS))
    sub = raw[len(base):]
    name = unicodedata.normalize("NFD", base)
    for k, ch in enumerate(name):
        if not (ch.isascii() and (ch.isalnum() or ch == "_")) and not (k and unicodedata.combining(ch)):
            raise ParseError(f"unexpected character {ch!r}", text, pos)
    if sub and all(c in "₀₁₂₃₄₅₆₇₈₉" for c in sub):
        name += sub.translate(pn.SUBSCRIPT_DIGITS)
    elif sub:
        name += "_" + "".join(pn.SUBSCRIPT_LETTERS.get(c, c.translate(pn.SUBSCRIPT_DIGITS)) for c in sub)
    if name.startswith("__"):
        raise ParseError(f"name {name!r} is not allowed (dunder names are reserved)", text, pos)
    if keyword.iskeyword(name) and name not in LITERALS:
        raise ParseError(f"keyword {name!r} is not allowed", text, pos)
    return name, sub


def _tokenize(text):
    """Tokens (kind, value, pos); also the names' subscripts and which names follow a number
    directly (2x). A newline ends a line only outside brackets and after a complete operand."""
    tokens, subs, juxtaposed, pos, depth, end_of_last = [], {}, set(), 0, 0, -1
    while pos < len(text):
        if (pos == 0 or text[pos - 1] == "\n") and text.startswith("stabilized: ", pos):
            pos = NOTE_LINE.match(text, pos).end()
            continue
        match = TOKEN.match(text, pos)
        if match is None:
            ch = text[pos]
            if ch == ".":
                raise ParseError("attribute access is not allowed", text, pos)
            if ch in "'\"":
                raise ParseError("strings are not allowed", text, pos)
            if ch == "↦":
                raise ParseError("a scan's body (↦) is not read back: build scans with sd.scan", text, pos)
            raise ParseError(f"unexpected character {ch!r}", text, pos)
        kind, value = match.lastgroup, match.group()
        kind = "number" if kind == "fraction" else kind
        if kind == "newline":
            last = tokens[-1] if tokens else None
            if depth == 0 and last is not None and (last[0] in ("number", "name", "sup")
                                                    or last[1] in ENDS_EXPRESSION):
                tokens.append(("newline", "\n", pos))
        elif kind != "space":
            if kind == "name":
                value, sub = _name_token(value, text, pos)
                if sub:
                    subs[len(tokens)] = sub
                if tokens and tokens[-1][0] == "number" and end_of_last == pos:
                    juxtaposed.add(len(tokens))
            elif kind == "op" and value in "([":
                depth += 1
            elif kind == "op" and value in ")]":
                depth = max(0, depth - 1)
            tokens.append((kind, value, pos))
        end_of_last = pos = match.end()
    tokens.append(("end", "", len(text)))
    return tokens, subs, juxtaposed


class _Parser:
    def __init__(self, text, namespace, dims):
        self.text, self.namespace, self.dims = text, namespace or {}, dims
        self.tokens, self.subs, self.juxtaposed = _tokenize(text)
        self.i, self.depth, self.brackets = 0, 0, 0
        self.locals, self.used = {}, set()
        self.keepdims = {}  # id(a reduction) -> (it, its keepdims form's builder)

    # -- token helpers --------------------------------------------------------------------
    def peek(self, offset=0):
        return self.tokens[min(self.i + offset, len(self.tokens) - 1)]

    def at(self, *values):
        kind, value, _ = self.peek()
        return kind in ("op", "name") and value in values

    def take(self):
        token = self.tokens[self.i]
        self.i += 1
        return token

    def expect(self, value, what):
        kind, got, pos = self.peek()
        if kind != "op" or got != value:
            raise self.error(f"expected {what}, found {got!r}" if got.strip() else f"expected {what} at the end", pos)
        return self.take()

    def error(self, message, pos=None):
        return ParseError(message, self.text, self.peek()[2] if pos is None else pos)

    def nested(self):
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise self.error(f"expression nested more than {MAX_DEPTH} levels deep")

    def notation(self, build, pos, *args):
        """``build(*args)`` of :mod:`.parser_notation`, its errors as parse errors at ``pos``."""
        try:
            return build(*args)
        except pn.NotationError as problem:
            raise self.error(str(problem), pos) from None

    def resolved(self, value, pos):
        if isinstance(value, pn.Pending):
            raise self.error(str(value.unresolved()), pos)
        return value

    # -- numbers --------------------------------------------------------------------------
    def number(self, text, pos):
        """The Python number a number token spells (long integers are refused before int())."""
        if text in FRACTIONS:
            return FRACTIONS[text]
        if _is_int(text):
            digits = len(text.lstrip("0"))
            if digits > MAX_INT_DIGITS:
                raise self.error(f"integer literal has too many digits ({digits:,}; at most "
                                 f"{MAX_INT_DIGITS:,})", pos)
            return int(text)
        value = float(text)
        if math.isinf(value):
            raise self.error(f"the literal {text if len(text) <= 24 else text[:20] + '...'} overflows float64",
                             pos)
        return value

    def weak(self, value, pos):
        """A number about to meet the graph: an int must fit int64, the graph's integer type."""
        if isinstance(value, int) and not INT64_MIN <= value <= INT64_MAX:
            raise self.error(f"integer {_show(value)} does not fit int64 (from -2**63 to 2**63 - 1)", pos)
        return value

    def combine(self, op, left, right, pos, right_pos):
        """``left op right``: exact arithmetic for two numbers, a graph node otherwise."""
        if isinstance(left, pn.Pending) or isinstance(right, pn.Pending):
            if op == "@":
                return self.notation(pn.product, pos, left, right)
            return self.notation(pn.elementwise, pos, lambda a, b: self.combine(op, a, b, pos, right_pos),
                                 left, right)
        if op != "@" and not isinstance(left, Node) and not isinstance(right, Node):
            try:
                result = fold_numbers(op, left, right)
            except _Unrepresentable as problem:
                raise self.error(str(problem), pos) from None
            return constant(result) if op in COMPARE else result
        left, right = self.weak(left, pos), self.weak(right, right_pos)
        if op != "@":
            left, right = self.kept(left, right), self.kept(right, left)
        try:
            if op in COMPARE:
                return FUNCTIONS[COMPARE[op]](left, right)
            return _matmul(left, right) if op == "@" else FOLD[op](left, right)
        except pn.NotationError as problem:
            raise self.error(str(problem), pos) from None
        except ShapeError:
            # Σ₁(G) prints the same with keepdims: the form whose axes broadcast is the one meant
            kept = [self.keepdims.get(id(v), (None, None, None))[1] for v in (left, right)]
            if op == "@" or kept == [None, None]:
                raise
            left, right = [k() if k is not None else v for k, v in zip(kept, (left, right))]
            return self.combine(op, left, right, pos, right_pos)

    def kept(self, value, other):
        """``value``, or its keepdims form where it is a reduction (Σ₁(G), max(G, axis=1)) that
        meets an operand of its input's rank: the printer writes both forms alike, and a reduced
        axis that broadcasts back is what the keepdims form means (t − Σ₁(t ⊙ s) in softmax's
        gradient). A reduction times a number stays one (2·max(G, axis=1))."""
        entry = self.keepdims.get(id(value))
        if entry is None:
            return value
        if isinstance(other, Node) and other.ndim == entry[2] and other.ndim > value.ndim:
            return entry[1]()
        return value

    def remember_keepdims(self, result, build, rank):
        self.keepdims[id(result)] = (result, build, rank)
        return result

    def product(self, left, right, pos, right_pos):
        """``left·right`` of the notation: numbers fold, a scalar factor multiplies, else matmul."""
        if not isinstance(left, (Node, pn.Pending)) and not isinstance(right, (Node, pn.Pending)):
            return self.combine("*", left, right, pos, right_pos)
        result = self.notation(pn.product, pos, self.weak(left, pos), self.weak(right, right_pos))
        for side, other in ((left, right), (right, left)):
            entry = self.keepdims.get(id(side)) if isinstance(side, Node) else None
            if entry is not None and not isinstance(other, (Node, pn.Pending)):  # 2·max(G, axis=1)
                self.remember_keepdims(result, lambda e=entry, o=other: e[1]() * o, entry[2])
        return result

    # -- lines ----------------------------------------------------------------------------
    def parse(self):
        lines = []
        while True:
            while self.peek()[0] == "newline":
                self.take()
            if self.peek()[0] == "end":
                break
            lines.append(self.line())
        if not lines:
            raise self.error("empty expression")
        if len(lines) == 1 and lines[0][0] == "name":
            raise self.error("assignment is not allowed (a one-line 'name = …' reads as Python; only "
                             "∂f/∂w = … labels a single formula)", lines[0][3])
        results = [(label, value) for kind, label, value, _ in lines if kind != "name" or label not in self.used]
        if len(results) == 1:
            return as_node(results[0][1])
        labels = [(tensor(label[0] or "f", ()), label[1]) if isinstance(label, tuple) else None
                  for label, _ in results]
        return Labelled([as_node(v) for _, v in results], labels)

    def line(self):
        """One line: (kind of label, label, value, position of its '=')."""
        kind, value, pos = self.peek()
        label_kind, label, eq_pos = None, None, pos
        if kind == "op" and value == "∂":
            label_kind, label = "derivative", self.derivative_label()
            eq_pos = self.expect("=", "'=' after the derivative's label")[2]
        elif kind == "name" and self.peek(1)[:2] == ("op", "="):
            label_kind, label = "name", value
            self.take()
            eq_pos = self.take()[2]
        start = self.peek()[2]
        result = self.resolved(self.weak(self.expr(), start), start)
        if self.at("∈"):
            self.annotation(result)
        kind, value, pos = self.peek()
        if kind not in ("newline", "end"):
            if value == "=":
                raise self.error("assignment is not allowed", pos)
            if value in (")", "]"):
                raise self.error(f"unmatched {value!r}", pos)
            raise self.error(f"unexpected {value!r} after a complete expression", pos)
        if label_kind == "name":
            self.locals[label] = result
        return label_kind, label, result, eq_pos

    def derivative_label(self):
        """∂f/∂w: (f, w)."""
        self.take()
        of = self.label_name("the function's name after '∂'")
        self.expect("/", "'/' in ∂f/∂w")
        self.expect("∂", "'∂' in ∂f/∂w")
        return of, self.label_name("the variable's name after '∂'")

    def label_name(self, what):
        kind, value, pos = self.peek()
        if kind != "name":
            raise self.error(f"expected {what}", pos)
        self.take()
        return value

    def annotation(self, value):
        """``∈ ℝ^(m×n)`` (``∈ ℝ`` for a scalar): checked against the formula's shape."""
        pos = self.take()[2]
        self.expect("ℝ", "ℝ after ∈")
        dims = []
        if self.at("^"):
            self.take()
            self.expect("(", "'(' after ℝ^")
            dims.append(self.tuple_item("a dimension"))
            while self.at("×"):
                self.take()
                dims.append(self.tuple_item("a dimension"))
            self.expect(")", "')' after the dimensions")
        self.notation(pn.check_shape, pos, value, dims, lambda d: d)

    # -- grammar --------------------------------------------------------------------------
    def compare_op(self):
        kind, value, _ = self.peek()
        if kind != "op":
            return None
        value = "==" if value == "=" and self.brackets > 0 else CANONICAL.get(value, value) if value != "=" else value
        return value if value in COMPARE else None

    def expr(self):
        self.nested()
        pos = self.peek()[2]
        left = self.arith()
        op = self.compare_op()
        if op is not None:
            self.take()
            right_pos = self.peek()[2]
            right = self.arith()
            if self.compare_op() is not None:
                raise self.error("chained comparisons are not allowed; use parentheses")
            left = self.combine(op, left, right, pos, right_pos)
        self.depth -= 1
        return left

    # arith, hadamard and term are written out, not one shared helper: every frame per level of
    # nesting counts against Python's stack (MAX_DEPTH levels must fit with room to spare)
    def arith(self):
        pos = self.peek()[2]
        left = self.hadamard()
        while self.at("+", "-", "−"):
            op = CANONICAL.get(self.take()[1], self.peek(-1)[1])
            right_pos = self.peek()[2]
            left = self.combine(op, left, self.hadamard(), pos, right_pos)
        return left

    def hadamard(self):
        pos = self.peek()[2]
        left = self.term()
        while self.at("⊙"):
            self.take()
            right_pos = self.peek()[2]
            left = self.combine("*", left, self.term(), pos, right_pos)
        return left

    def term(self):
        pos = self.peek()[2]
        left = self.unary()
        while True:
            if self.i in self.juxtaposed:  # 2x: a number written against a name
                right_pos = self.peek()[2]
                left = self.combine("*", left, self.unary(), pos, right_pos)
                continue
            if not self.at("*", "/", "@", "·", "⊗"):
                return left
            op = self.take()[1]
            right_pos = self.peek()[2]
            right = self.unary()
            if op == "·":
                left = self.product(left, right, pos, right_pos)
            elif op == "⊗":
                left = self.call_function("kron", [self.resolved(left, pos), self.resolved(right, right_pos)], {}, pos)
            else:
                left = self.combine(op, left, right, pos, right_pos)

    def unary(self):
        if self.at("-", "+", "−"):
            self.nested()
            op = self.take()[1]
            operand = self.unary()
            self.depth -= 1
            if op == "+":
                return operand
            return operand.map(lambda built: -built) if isinstance(operand, pn.Pending) else -operand
        return self.power()

    def power(self):
        pos = self.peek()[2]
        base = self.postfix()
        if self.at("**", "^"):
            self.take()
            self.nested()
            right_pos = self.peek()[2]
            exponent = self.unary()
            self.depth -= 1
            return self.combine("**", base, exponent, pos, right_pos)
        return base

    def postfix(self):
        pos = self.peek()[2]
        value = self.atom()
        while True:
            kind, op, opos = self.peek()
            if kind == "op" and op == "[":
                value = self.indexed(value)
            elif kind == "op" and op == "ᵀ":
                self.take()
                if isinstance(value, (int, float)) and value == 1:
                    value = pn.ones_row_pending()  # v·1ᵀ: a column spread along the rows
                else:
                    value = self.notation(pn.transposed, opos, value)
            elif kind == "sup":
                self.take()
                value = self.superscript(value, op, pos, opos)
            else:
                return value

    def superscript(self, value, text, pos, opos):
        """x², x⁻¹ (of a matrix, A⁻¹ = inv(A)), A⁻ᵀ."""
        square = isinstance(value, Node) and value.ndim >= 2 and value.shape[-1] == value.shape[-2]
        if text == "⁻ᵀ" or (text == "⁻¹" and square):  # A⁻¹ of a square matrix is its inverse
            return self.notation(pn.inverse, opos, value, text == "⁻ᵀ")
        digits = text.translate(pn.SUPERSCRIPT_DIGITS)
        exponent = (-1 if digits.startswith("-") else 1) * self.number(digits.lstrip("-"), opos)
        if isinstance(value, pn.Pending):
            return value.map(lambda built: built ** exponent)
        return self.combine("**", value, exponent, pos, opos)

    def indexed(self, value):
        pos = self.take()[2]
        if not isinstance(value, Node):
            raise self.error("only expressions can be indexed", pos)
        if self.at("…"):
            raise self.error("the printer elides indices as […]; they cannot be read back", pos)
        index = [self.index_item()]
        while self.at(","):
            self.take()
            index.append(self.index_item())
        self.expect("]", "']'")
        return value[tuple(index)]

    def index_item(self):
        if self.at("..."):
            self.take()
            return Ellipsis
        if self.at("None"):
            self.take()
            return None
        start = None if self.at(":") else self.integer("an index")
        if not self.at(":"):
            return start
        self.take()
        stop = None if self.at(":", ",", "]") else self.integer("a slice bound")
        step = None
        if self.at(":"):
            self.take()
            step = None if self.at(",", "]") else self.integer("a slice step")
        return slice(start, stop, step)

    def integer(self, what):
        sign = 1
        if self.at("-", "−"):
            self.take()
            sign = -1
        kind, value, pos = self.peek()
        if kind != "number" or not _is_int(value):
            raise self.error(f"expected an integer for {what}", pos)
        self.take()
        return self.weak(sign * self.number(value, pos), pos)

    def bracketed(self, close, what, pos):
        """An expression up to ``close`` (``)``, ``]``, ``‖``, ``|``), one level deeper."""
        self.nested()
        self.brackets += 1
        inner = self.expr()
        self.brackets -= 1
        self.depth -= 1
        self.expect(close, f"'{close}' to close the {what} at column {pos + 1}")
        return inner

    def atom(self):
        kind, value, pos = self.peek()
        if kind == "number":
            self.take()
            if value == "1" and self.at("["):  # 1[c]: an indicator
                self.take()
                return self.notation(pn.indicator, pos, self.resolved(self.bracketed("]", "'1['", pos), pos))
            return self.number(value, pos)
        if kind == "sum":
            self.take()
            axes = value[1:].translate(pn.SUBSCRIPT_DIGITS)
            open_pos = self.expect("(", "'(' after Σ")[2]
            body = self.resolved(self.bracketed(")", "'('", open_pos), open_pos)
            axes = tuple(int(a) for a in axes.split(",")) if axes else None
            result = self.notation(pn.summed, pos, body, axes)
            if axes is not None:
                self.remember_keepdims(result, lambda: FUNCTIONS["sum"](body, axis=axes, keepdims=True), body.ndim)
            return result
        if kind == "name":
            return self.named(value, pos)
        if kind == "sup":
            raise self.error(f"unexpected character {value[0]!r}: a superscript follows what it raises", pos)
        if value == "(":
            self.take()
            return self.bracketed(")", "'('", pos)
        if value == "√":
            self.take()
            self.nested()
            operand = self.resolved(self.postfix(), pos)
            self.depth -= 1
            return self.call_function("sqrt", [operand], {}, pos)
        if value == "‖":
            self.take()
            inner = self.resolved(self.bracketed("‖", "'‖'", pos), pos)
            if self.peek()[:2] == ("name", "_F"):
                self.take()
            return pn.norm(inner) if "norm" not in FUNCTIONS else self.call_function("norm", [inner], {}, pos)
        if value == "∂":
            raise self.error("a derivative's label ∂f/∂w starts a line: ∂f/∂w = …", pos)
        if value == "…":
            raise self.error("'…' stands for what the printer left out; it cannot be read back", pos)
        if kind == "end":
            raise self.error("unexpected end of the expression", pos)
        if kind == "newline":
            raise self.error("unexpected end of the line", pos)
        if value == "=":
            raise self.error("assignment is not allowed", pos)
        raise self.error(f"unexpected {value!r}", pos)

    def named(self, value, pos):
        """A name: a call, a defined or given name, the identity, a dimension or a new symbol."""
        index = self.i
        self.take()
        if self.at("("):
            if value == "I_":  # I_(n): an identity whose size has no subscript letters
                self.take()
                size = self.tuple_item("the identity's size")
                self.expect(")", "')' after the identity's size")
                return FUNCTIONS["eye"](size)
            return self.call(value, pos)
        if value == "σ":
            raise self.error("σ must be called: σ(x)", pos)
        if value == "log" and self.at("|"):  # log|det A|
            self.take()
            if not self.at("det"):
                raise self.error("expected 'det' in log|det A|")
            self.take()
            self.nested()
            operand = self.resolved(self.postfix(), pos)
            self.depth -= 1
            self.expect("|", "'|' to close log|det …|")
            return self.call_function("logdet", [operand], {}, pos)
        if value == "det" and value not in self.namespace and self.peek()[0] in ("name", "number"):  # det A
            self.nested()
            operand = self.resolved(self.postfix(), pos)
            self.depth -= 1
            return self.call_function("det", [operand], {}, pos)
        if value in ("True", "False"):
            return constant(LITERALS[value])
        if value == "None":
            raise self.error("None is only allowed in an index or as a keyword value", pos)
        if value in self.locals:
            self.used.add(value)
            return self.locals[value]
        if value in self.namespace:
            given = self.namespace[value]
            if isinstance(given, (Node, bool, int)):
                return given
            return float(given)  # a numpy float becomes Python's: literal arithmetic is Python's
        sub = self.subs.get(index, "")
        if value == "I":
            return pn.identity_pending()
        if sub and value.startswith("I") and value[1:].lstrip("_") == "".join(
                pn.SUBSCRIPT_LETTERS.get(c, c.translate(pn.SUBSCRIPT_DIGITS)) for c in sub):
            size = value[1:].lstrip("_")
            return FUNCTIONS["eye"](int(size) if _is_int(size) else self.dims.get(size, size))
        if value in self.dims:
            return constant(self.dims[value])
        if _expression_function(value) or value in pn.ALIASES:
            raise self.error(f"function {value!r} must be called", pos)
        return tensor(value, ())

    def tuple_item(self, what):
        """An int, a dimension of the given tensors (reshape(P, (m, 64))) or their product (m*n)."""
        item = self.dimension(what)
        while self.at("*"):
            self.take()
            item = item * self.dimension(what)
        return item

    def dimension(self, what):
        kind, value, pos = self.peek()
        if kind == "name" and value in self.dims:
            self.take()
            return self.dims[value]
        return self.integer(what)

    def call(self, name, pos):
        fn_name = pn.ALIASES.get(name, name)
        if fn_name in ("scan", "reverse_scan"):
            raise self.error("scan forms are not read back: build scans with sd.scan", pos)
        if fn_name in FUNCTIONS and not _expression_function(fn_name):
            raise self.error(f"{name!r} is not an expression function; call sd.{name} from Python", pos)
        internal = pn.is_internal(fn_name)
        if fn_name not in FUNCTIONS and fn_name != "diag" and not internal:
            raise self.error(f"unknown function {name!r}", pos)
        if name in self.namespace:
            raise self.error(f"{name!r} is a function here, not the value given in the namespace", pos)
        args, kwargs = self.arguments(name)
        if internal:
            built = self.notation(pn.internal_op, pos, fn_name, [self.resolved(a, pos) for a in args], kwargs)
            if built is None:
                raise self.error(f"unknown function {name!r}", pos)
            return built
        if fn_name == "one_hot" and len(args) == 1 and not kwargs:  # onehot(y): its classes from context
            return pn.one_hot_pending(args[0])
        if fn_name == "diag" and len(args) == 1 and not kwargs:
            return self.notation(pn.diag, pos, self.resolved(args[0], pos))
        if "keepdims" in inspect.signature(FUNCTIONS[fn_name]).parameters and "keepdims" not in kwargs:
            result = self.call_function(fn_name, args, kwargs, pos)  # max(X, axis=1) hides its keepdims
            rank = args[0].ndim if args and isinstance(args[0], Node) else None
            return self.remember_keepdims(
                result, lambda: self.call_function(fn_name, args, {**kwargs, "keepdims": True}, pos), rank)
        return self.call_function(fn_name, args, kwargs, pos)

    def call_function(self, name, args, kwargs, pos):
        if name not in FUNCTIONS:
            raise self.error(f"{name!r} needs sd.{name}, which this build does not have", pos)
        fn = FUNCTIONS[name]
        for a in list(args) + list(kwargs.values()):
            self.resolved(a, pos)
        args = _regrouped(fn, args, kwargs) or args
        try:
            inspect.signature(fn).bind(*args, **kwargs)
        except TypeError as problem:
            raise self.error(f"bad arguments to {name}: {problem}", pos) from None
        try:
            return fn(*args, **kwargs)
        except pn.NotationError as problem:
            raise self.error(str(problem), pos) from None

    def arguments(self, name):
        open_pos = self.expect("(", "'('")[2]
        self.nested()
        self.nested()  # as in bracketed: a call's level is counted twice
        self.brackets += 1
        args, kwargs = [], {}
        while not self.at(")"):
            if self.peek()[0] in ("end", "newline"):
                raise self.error(f"unclosed '(' of the call to {name}", open_pos)
            kind, value, kpos = self.peek()
            if kind == "name" and self.peek(1)[1] == "=" and self.peek(1)[0] == "op":
                self.take()
                self.take()
                if value in kwargs:
                    raise self.error(f"keyword {value!r} given twice", kpos)
                kwargs[value] = self.literal(kpos)
                if value in ("axis", "axes") and isinstance(kwargs[value], int):
                    kwargs[value] = self.more_axes(kwargs[value])
            else:
                if kwargs:
                    raise self.error("positional argument after a keyword argument", kpos)
                args.append(self.tuple_literal() if self._tuple_ahead() else self.weak(self.expr(), kpos))
            if not self.at(","):
                break
            self.take()
        self.expect(")", f"')' to close the call to {name}")
        self.brackets -= 1
        self.depth -= 2
        return args, kwargs

    def more_axes(self, first):
        """axis=2,3 as the printer writes several axes: the ints after the first, up to a keyword."""
        axes = [first]
        while self.at(",") and self.peek(1)[0] == "number" and self.peek(2)[1] in (",", ")"):
            self.take()
            axes.append(self.integer("an axis"))
        return tuple(axes) if len(axes) > 1 else first

    def _tuple_ahead(self):
        """'(' int (',' int)* ')' with at least one comma: a tuple of ints (or of dimensions)."""
        if not self.at("("):
            return False
        j, seen_comma = 1, False
        while True:
            kind, value, _ = self.peek(j)
            if kind == "op" and value in ("-", "−"):
                j += 1
                kind, value, _ = self.peek(j)
            if not (kind == "number" and _is_int(value)) and not (kind == "name" and value in self.dims):
                return False
            kind, value, _ = self.peek(j + 1)
            if value == "*":  # m*n
                j += 2
                continue
            if value == ")":
                return seen_comma
            if value != ",":
                return False
            seen_comma = True
            if self.peek(j + 2)[1] == ")":
                return True
            j += 2

    def tuple_literal(self):
        self.expect("(", "'('")
        items = [self.tuple_item("a tuple item")]
        while self.at(","):
            self.take()
            if self.at(")"):
                break
            items.append(self.tuple_item("a tuple item"))
        self.expect(")", "')'")
        return tuple(items)

    def tuple_of_tuples(self):
        """'(' tuple (',' tuple)* [','] ')': one level of nesting, each item a tuple of ints."""
        self.expect("(", "'('")
        items = []
        while True:
            if not self._tuple_ahead():
                raise self.error("a tuple of tuples holds tuples of ints, e.g. ((0, 0), (1, 2))", self.peek()[2])
            items.append(self.tuple_literal())
            if not self.at(","):
                break
            self.take()
            if self.at(")"):
                break
        self.expect(")", "')'")
        return tuple(items)

    def literal(self, pos):
        kind, value, vpos = self.peek()
        if kind == "name" and (value in LITERALS or value in DTYPE_NAMES):
            self.take()
            return LITERALS.get(value, value)
        if self._tuple_ahead():
            return self.tuple_literal()
        if self.at("(") and self.peek(1)[1] == "(":  # a tuple of int tuples: pad's ((0, 0), (1, 2))
            return self.tuple_of_tuples()
        sign = 1
        if self.at("-", "−"):
            self.take()
            sign = -1
            kind, value, vpos = self.peek()
        if kind == "number":
            self.take()
            return self.weak(sign * self.number(value, vpos), vpos)
        raise self.error("keyword values must be literals: numbers, True/False/None, tuples of ints "
                         "(or of tuples of ints) or dtype names", vpos)


def _expression_function(name) -> bool:
    """Whether text may call ``name``: the op catalogue builds nodes in bounded time, while
    transformations (grad, hessian, compare, optimize, printing) can run for as long as hostile
    text makes them nest, and return no expression."""
    fn = FUNCTIONS.get(name)
    return fn is not None and fn.__module__.startswith(f"{__package__}.ops.")


def _matmul(a, b):
    return FUNCTIONS["matmul"](a, b)


def _regrouped(fn, args, kwargs):
    """The arguments as the printer flattened them, regrouped: a tuple of pairs written as pairs
    in a row (pad(X, (0, 0), (1, 2))) as one tuple, and a list of arrays as its items
    (concatenate(a, b)); None where neither applies or the call would not fit."""
    parameters = list(inspect.signature(fn).parameters)
    if parameters and parameters[0] == "arrays" and len(args) > 1 and all(isinstance(a, Node) for a in args):
        return [list(args)]
    k = len(args)
    while k > 1 and isinstance(args[k - 1], tuple):
        k -= 1
    if len(args) - k < 2:
        return None
    regrouped = [*args[:k], tuple(args[k:])]
    try:
        inspect.signature(fn).bind(*regrouped, **kwargs)
    except TypeError:
        return None
    return regrouped


def _namespace(namespace, leaves) -> dict:
    """The names text may use: a dict, or tensors named by their own names."""
    if isinstance(namespace, (Node, list, tuple)):
        leaves = (*([namespace] if isinstance(namespace, Node) else namespace), *leaves)
        namespace = {}
    names = {}
    for name, value in (namespace or {}).items():
        if not isinstance(name, str) or not name.isidentifier():
            raise TypeError(f"namespace keys must be identifiers, got {name!r}")
        if not isinstance(value, (Node, int, float)):
            raise TypeError(f"namespace values must be expressions or numbers, got {type(value).__name__} "
                            f"for {name!r}")
        names[unicodedata.normalize("NFD", name)] = value
    for leaf in leaves:
        if not isinstance(leaf, Node) or not leaf.is_leaf:
            raise TypeError(f"tensors to parse against must be named leaves (sd.tensor), got {leaf!r:.80}")
        names[unicodedata.normalize("NFD", leaf.name)] = leaf
    return names


def _dimensions(namespace) -> dict:
    """Name -> sympy symbol of every symbolic dimension of the given tensors (``/ m``)."""
    dims = {}
    for value in namespace.values():
        for d in value.shape if isinstance(value, Node) else ():
            if isinstance(d, sympy.Basic):
                dims.update((str(s), s) for s in d.free_symbols)
    return dims


def parse(text: str, namespace=None, *leaves):
    """Parse ``text`` into an expression (a list, ``names.Labelled``, for several results).

    ``namespace`` maps names to tensors or numbers, or is the tensors themselves (as more
    arguments or a list), named by their names; their symbolic dimensions are names too."""
    if not isinstance(text, str):
        raise TypeError(f"parse() takes a string, got {type(text).__name__}")
    if len(text) > MAX_LENGTH:
        raise ParseError(f"the text is {len(text):,} characters long; the limit is {MAX_LENGTH:,}", text[:200], 0)
    names = _namespace(namespace, leaves)
    parser = _Parser(text, names, _dimensions(names))
    try:
        return parser.parse()
    except RecursionError:  # MAX_DEPTH leaves room on the stack, unless the caller took it already
        raise ParseError("expression nested too deeply for the room left on Python's stack", text,
                         parser.peek()[2]) from None
