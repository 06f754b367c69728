"""``sd.parse``: a real parser for the expression language. It never evaluates Python.

Grammar (Python's precedence, lowest first)::

    expr     := arith [compare arith]            compare: < <= > >= == != (no chains)
    arith    := term (("+" | "-") term)*
    term     := unary (("*" | "/" | "@") unary)*
    unary    := ("-" | "+") unary | power
    power    := postfix ["**" unary]             right-associative; -x**2 is -(x**2)
    postfix  := atom ("[" index ("," index)* "]")*
    atom     := number | name | function "(" args ")" | "(" expr ")"
    index    := int | [int] ":" [int] [":" [int]] | None | ...
    args     := arg ("," arg)*;  arg := expr | (int, ...) | keyword "=" literal
    literal  := number | True | False | None | dtype | (int, ...) | ((int, ...), ...)

Functions are the registered ones of the op catalogue (``symdiff.ops``), which
build expressions; transformations such as ``grad``, ``optimize`` or ``pretty``
are not callable from text. Other names become scalar float64 symbols unless
``namespace`` maps them. Attribute access, strings, lambdas, Python keywords and
dunder names are rejected with the position of the offending text. Digits are
ASCII only.

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
"""

from __future__ import annotations

import inspect
import keyword
import math
import operator
import re

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

TOKEN = re.compile(r"""
    (?P<space>[ \t\r\n]+)
  | (?P<number>(?:[0-9]+\.[0-9]*|\.[0-9]+|[0-9]+)(?:[eE][+-]?[0-9]+)?)
  | (?P<name>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<op>\*\*|<=|>=|==|!=|\.\.\.|[-+*/@()\[\],:<>=])
""", re.VERBOSE)


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


def _tokenize(text):
    tokens, pos = [], 0
    while pos < len(text):
        match = TOKEN.match(text, pos)
        if match is None:
            ch = text[pos]
            if ch == ".":
                raise ParseError("attribute access is not allowed", text, pos)
            if ch in "'\"":
                raise ParseError("strings are not allowed", text, pos)
            raise ParseError(f"unexpected character {ch!r}", text, pos)
        kind = match.lastgroup
        if kind != "space":
            value = match.group()
            if kind == "name":
                if value.startswith("__"):
                    raise ParseError(f"name {value!r} is not allowed (dunder names are reserved)", text, pos)
                if keyword.iskeyword(value) and value not in LITERALS:
                    raise ParseError(f"keyword {value!r} is not allowed", text, pos)
            tokens.append((kind, value, pos))
        pos = match.end()
    tokens.append(("end", "", len(text)))
    return tokens


class _Parser:
    def __init__(self, text, namespace):
        self.text, self.namespace = text, namespace or {}
        self.tokens, self.i, self.depth = _tokenize(text), 0, 0

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
            raise self.error(f"expected {what}, found {got!r}" if got else f"expected {what} at the end", pos)
        return self.take()

    def error(self, message, pos=None):
        return ParseError(message, self.text, self.peek()[2] if pos is None else pos)

    def nested(self):
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise self.error(f"expression nested more than {MAX_DEPTH} levels deep")

    # -- numbers --------------------------------------------------------------------------
    def number(self, text, pos):
        """The Python number a number token spells (long integers are refused before int())."""
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
        if op != "@" and not isinstance(left, Node) and not isinstance(right, Node):
            try:
                result = fold_numbers(op, left, right)
            except _Unrepresentable as problem:
                raise self.error(str(problem), pos) from None
            return constant(result) if op in COMPARE else result
        left, right = self.weak(left, pos), self.weak(right, right_pos)
        if op in COMPARE:
            return FUNCTIONS[COMPARE[op]](left, right)
        return _matmul(left, right) if op == "@" else FOLD[op](left, right)

    # -- grammar --------------------------------------------------------------------------
    def parse(self):
        if self.peek()[0] == "end":
            raise self.error("empty expression")
        result = self.weak(self.expr(), 0)
        kind, value, pos = self.peek()
        if kind != "end":
            if value == "=":
                raise self.error("assignment is not allowed", pos)
            if value in (")", "]"):
                raise self.error(f"unmatched {value!r}", pos)
            raise self.error(f"unexpected {value!r} after a complete expression", pos)
        return result

    def expr(self):
        self.nested()
        pos = self.peek()[2]
        left = self.arith()
        if self.at(*COMPARE):
            op = self.take()[1]
            right_pos = self.peek()[2]
            right = self.arith()
            if self.at(*COMPARE):
                raise self.error("chained comparisons are not allowed; use parentheses")
            left = self.combine(op, left, right, pos, right_pos)
        self.depth -= 1
        return left

    # arith and term are written out, not one shared helper: every frame per level of nesting
    # counts against Python's stack (MAX_DEPTH levels must fit with room to spare)
    def arith(self):
        pos = self.peek()[2]
        left = self.term()
        while self.at("+", "-"):
            op = self.take()[1]
            right_pos = self.peek()[2]
            left = self.combine(op, left, self.term(), pos, right_pos)
        return left

    def term(self):
        pos = self.peek()[2]
        left = self.unary()
        while self.at("*", "/", "@"):
            op = self.take()[1]
            right_pos = self.peek()[2]
            left = self.combine(op, left, self.unary(), pos, right_pos)
        return left

    def unary(self):
        if self.at("-", "+"):
            self.nested()
            op = self.take()[1]
            operand = self.unary()
            self.depth -= 1
            return -operand if op == "-" else operand  # a negated number stays a (weak) number
        return self.power()

    def power(self):
        pos = self.peek()[2]
        base = self.postfix()
        if self.at("**"):
            self.take()
            self.nested()
            right_pos = self.peek()[2]
            exponent = self.unary()
            self.depth -= 1
            return self.combine("**", base, exponent, pos, right_pos)
        return base

    def postfix(self):
        value = self.atom()
        while self.at("["):
            pos = self.take()[2]
            if not isinstance(value, Node):
                raise self.error("only expressions can be indexed", pos)
            index = [self.index_item()]
            while self.at(","):
                self.take()
                index.append(self.index_item())
            self.expect("]", "']'")
            value = value[tuple(index)]
        return value

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
        if self.at("-"):
            self.take()
            sign = -1
        kind, value, pos = self.peek()
        if kind != "number" or not _is_int(value):
            raise self.error(f"expected an integer for {what}", pos)
        self.take()
        return self.weak(sign * self.number(value, pos), pos)

    def atom(self):
        kind, value, pos = self.peek()
        if kind == "number":
            self.take()
            return self.number(value, pos)
        if kind == "name":
            self.take()
            if self.at("("):
                return self.call(value, pos)
            if value in ("True", "False"):
                return constant(LITERALS[value])
            if value == "None":
                raise self.error("None is only allowed in an index or as a keyword value", pos)
            if value in self.namespace:
                given = self.namespace[value]
                if isinstance(given, (Node, bool, int)):
                    return given
                return float(given)  # a numpy float becomes Python's: literal arithmetic is Python's
            if _expression_function(value):
                raise self.error(f"function {value!r} must be called", pos)
            return tensor(value, ())
        if value == "(":
            self.take()
            self.nested()
            inner = self.expr()
            self.depth -= 1
            self.expect(")", f"')' to close the '(' at column {pos + 1}")
            return inner
        if kind == "end":
            raise self.error("unexpected end of the expression", pos)
        if value == "=":
            raise self.error("assignment is not allowed", pos)
        raise self.error(f"unexpected {value!r}", pos)

    def call(self, name, pos):
        if name in FUNCTIONS and not _expression_function(name):
            raise self.error(f"{name!r} is not an expression function; call sd.{name} from Python", pos)
        if name not in FUNCTIONS:
            raise self.error(f"unknown function {name!r}", pos)
        if name in self.namespace:
            raise self.error(f"{name!r} is a function here, not the value given in the namespace", pos)
        fn = FUNCTIONS[name]
        open_pos = self.expect("(", "'('")[2]
        self.nested()
        args, kwargs = [], {}
        while not self.at(")"):
            if self.peek()[0] == "end":
                raise self.error(f"unclosed '(' of the call to {name}", open_pos)
            kind, value, kpos = self.peek()
            if kind == "name" and self.peek(1)[1] == "=" and self.peek(1)[0] == "op":
                self.take()
                self.take()
                if value in kwargs:
                    raise self.error(f"keyword {value!r} given twice", kpos)
                kwargs[value] = self.literal(kpos)
            else:
                if kwargs:
                    raise self.error("positional argument after a keyword argument", kpos)
                args.append(self.tuple_literal() if self._tuple_ahead() else self.weak(self.expr(), kpos))
            if not self.at(","):
                break
            self.take()
        self.expect(")", f"')' to close the call to {name}")
        self.depth -= 1
        try:
            inspect.signature(fn).bind(*args, **kwargs)
        except TypeError as problem:
            raise self.error(f"bad arguments to {name}: {problem}", pos) from None
        return fn(*args, **kwargs)

    def _tuple_ahead(self):
        """'(' int (',' int)* ')' with at least one comma: a tuple of ints, e.g. a shape."""
        if not self.at("("):
            return False
        j, seen_comma = 1, False
        while True:
            kind, value, _ = self.peek(j)
            if kind == "op" and value == "-":
                j += 1
                kind, value, _ = self.peek(j)
            if kind != "number" or not _is_int(value):
                return False
            kind, value, _ = self.peek(j + 1)
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
        items = [self.integer("a tuple item")]
        while self.at(","):
            self.take()
            if self.at(")"):
                break
            items.append(self.integer("a tuple item"))
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
        if self.at("-"):
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


def parse(text: str, namespace: dict | None = None) -> Node:
    """Parse ``text`` into an expression; ``namespace`` maps names to tensors or numbers."""
    if not isinstance(text, str):
        raise TypeError(f"parse() takes a string, got {type(text).__name__}")
    if len(text) > MAX_LENGTH:
        raise ParseError(f"the text is {len(text):,} characters long; the limit is {MAX_LENGTH:,}", text[:200], 0)
    for name, value in (namespace or {}).items():
        if not isinstance(name, str) or not name.isidentifier():
            raise TypeError(f"namespace keys must be identifiers, got {name!r}")
        if not isinstance(value, (Node, int, float)):
            raise TypeError(f"namespace values must be expressions or numbers, got {type(value).__name__} "
                            f"for {name!r}")
    parser = _Parser(text, namespace)
    try:
        return as_node(parser.parse())
    except RecursionError:  # MAX_DEPTH leaves room on the stack, unless the caller took it already
        raise ParseError("expression nested too deeply for the room left on Python's stack", text,
                         parser.peek()[2]) from None
