"""sd.parse: precedence, round trips, keyword literals, and hostile text rejected unexecuted."""

import builtins
import math
import os
import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import symdiff as sd
from symdiff.parser import ParseError

X = sd.tensor("X", ("m", "n"))
NS = {"X": X, "w": sd.tensor("w", ("n",)), "A": sd.tensor("A", (3, 4))}
VALUES = {"a": 1.7, "b": -0.6, "c": 2.3}


@pytest.mark.parametrize("text", [
    "a + b * c", "(a + b) * c", "a - b - c", "a - (b - c)", "a / b / c", "a / (b * c)",
    "-a ** 2", "(-a) ** 2", "a ** b ** 2", "2 ** -a", "-a * -b", "+a - -b", "a * b + c / a - b",
    "1e-3 * a + .5", "3 - 2 - 1 + a", "c ** 0.5 * 2", "a*b*c/2**3",
])
def test_precedence_matches_python(text):
    a, b, c = sd.symbols("a b c")
    got = float(sd.evaluate(sd.parse(text), {a: VALUES["a"], b: VALUES["b"], c: VALUES["c"]}))
    with_values = text
    for name, value in VALUES.items():
        with_values = with_values.replace(name, f"({value!r})")
    assert math.isclose(got, _python_arithmetic(with_values), rel_tol=1e-12)


def _python_arithmetic(text):
    # the test's own oracle: Python arithmetic on numbers only (no names can reach it)
    assert set(text) <= set("0123456789.e+-*/() ")
    return eval(text, {"__builtins__": {}}, {})


@pytest.mark.parametrize("text,want", [
    ("a < b", False), ("a <= a", True), ("a > b", True), ("b >= a", False), ("a == a", True), ("a != b", True),
])
def test_comparisons(text, want):
    a, b = sd.symbols("a b")
    node = sd.parse(text)
    assert node.dtype == "bool"
    assert bool(sd.evaluate(node, {a: 1.0, b: 0.5})) is want


@pytest.mark.parametrize("text", [
    "sin(x)*exp(y) + x**2", "sum(X, axis=0) / m", "X[:, 1:]", "transpose(X) @ X", "-x**2", "(-x)**2",
    "tanh(X @ w)", "softmax(A, axis=0)", "logsumexp(A, axis=1, keepdims=True)", "x < y", "where(x > 0, x, y)",
    "maximum(x, 0)", "sigmoid(-x) * (1 - sigmoid(x))", "A[0, ::2]", "reshape(A, (2, 6))", "A[..., None]",
])
def test_round_trips_through_str(text):
    namespace = dict(NS)
    expr = sd.parse(text, namespace)
    if "m" in text and "/ m" in text:
        namespace["m"] = expr.inputs[1].inputs[0] if expr.inputs[1].op.name == "broadcast_to" else expr.inputs[1]
    assert sd.parse(str(expr), namespace) is expr


def test_calls_with_keywords_and_dtypes():
    A = NS["A"]
    assert sd.parse("sum(A, axis=(0, 1), keepdims=True)", NS).shape == (1, 1)
    assert sd.parse("astype(A, dtype=float32)", NS).dtype == "float32"
    assert sd.parse("one_hot(i, 5)", {"i": sd.tensor("i", (3,), "int64")}).shape == (3, 5)
    assert sd.parse("mean(A, 1)", NS) is sd.mean(A, 1)
    assert sd.parse("A[-1, 1:3]", NS) is A[-1, 1:3]


@pytest.mark.parametrize("text,position,message", [
    ("sin(x)+foo(y)", 7, "unknown function 'foo'"),
    ("x.real", 1, "attribute access"),
    ("x +", 3, "unexpected end"),
    ("(x + y", 6, "')' to close the '(' at column 1"),
    ("x + y)", 5, "unmatched ')'"),
    ("x < y <= z", 6, "chained comparisons"),
    ("sum(x, axis=y)", 12, "keyword values must be literals"),
    ("sum(x, bogus=1)", 0, "bad arguments to sum"),
    ("sum(axis=0, x)", 12, "positional argument after a keyword"),
    ("x @@ y", 3, "unexpected '@'"),
    ("sin", 0, "function 'sin' must be called"),
    ("λ + 1", 0, "unexpected character 'λ'"),
    ("", 0, "empty expression"),
])
def test_errors_name_the_problem_and_the_position(text, position, message):
    with pytest.raises(ParseError, match=re.escape(message)) as info:
        sd.parse(text)
    assert info.value.position == position
    assert "^" in str(info.value)


HOSTILE = [
    "__import__('os').system('touch {sentinel}')",
    "__import__",
    "().__class__.__bases__",
    "x.__class__",
    "sin(x)[0].__dict__",
    "lambda: 0",
    "eval('1')",
    "exec('x')",
    "open('f')",
    "getattr(x, 'y')",
    "[x for x in y]",
    "x if y else z",
    "'str'",
    "x; y",
    "x = 1",
    "(x := 1)",
    "import os",
    "x\\\ny",
    "not x",
    "x and y",
    "{x: 1}",
    "f'{x}'",
    "x[__class__]",
    "globals()",
]


@pytest.mark.parametrize("text", HOSTILE)
def test_hostile_text_is_rejected_and_nothing_runs(text, tmp_path):
    sentinel = tmp_path / "pwned"
    text = text.replace("{sentinel}", str(sentinel))
    calls = []

    def forbidden(*args, **kwargs):
        calls.append(args)
        raise AssertionError("the parser must never evaluate Python")

    real_import = builtins.__import__

    dangerous = {"os", "subprocess", "sys", "shutil", "importlib", "builtins", "pty", "socket", "ctypes"}

    def guarded_import(name, globals=None, locals=None, fromlist=(), level=0):
        # the library and numpy import their own modules lazily; text must never reach these
        if level == 0 and name.split(".")[0] in dangerous:
            return forbidden(name)
        return real_import(name, globals, locals, fromlist, level)

    traps = {name: forbidden for name in ("eval", "exec", "compile", "open")}
    traps["__import__"] = guarded_import
    saved = {name: getattr(builtins, name) for name in traps}
    saved_system = os.system
    try:  # armed only while parsing: pytest itself needs these
        for name, trap in traps.items():
            setattr(builtins, name, trap)
        os.system = forbidden
        with pytest.raises(ParseError):
            sd.parse(text)
    finally:
        for name, original in saved.items():
            setattr(builtins, name, original)
        os.system = saved_system
    assert not calls
    assert not sentinel.exists()


def test_deep_nesting_and_huge_inputs_are_clear_errors():
    with pytest.raises(ParseError, match="nested more than 200 levels"):
        sd.parse("(" * 10_000 + "x" + ")" * 10_000)
    with pytest.raises(ParseError, match="nested more than 200 levels"):
        sd.parse("-" * 10_000 + "x")
    with pytest.raises(ParseError, match="the limit is 100,000"):
        sd.parse("x+" * 100_001 + "x")
    long_but_fine = "+".join(["x"] * 5000)
    assert sd.count_ops(sd.parse(long_but_fine)) == 4999


def test_namespace_values_are_checked():
    with pytest.raises(TypeError, match="must be expressions or numbers"):
        sd.parse("x", {"x": "os.system"})
    assert float(sd.evaluate(sd.parse("2*k + x", {"k": 3}), {"x": 1.0})) == 7.0


_names = st.sampled_from(["a", "b", "c"])


@st.composite
def trees(draw, depth=4):
    if depth == 0 or draw(st.integers(0, 3)) == 0:
        return draw(_names)  # numbers alone would fold at parse time: 1 - 2 is the constant -1
    kind = draw(st.sampled_from(["+", "-", "*", "/", "**", "neg", "sin", "exp", "tanh"]))
    left = draw(trees(depth=depth - 1))
    if kind == "neg":
        return f"-({left})"
    if kind in ("sin", "exp", "tanh"):
        return f"{kind}({left})"
    right = draw(trees(depth=depth - 1))
    return f"({left}) {kind} ({right})"


@settings(max_examples=100, deadline=None)
@given(trees())
def test_printing_and_parsing_are_inverse_on_trees(text):
    expr = sd.parse(text)
    # tree-shaped expressions print on one line in the parser's language
    printed = str(expr)
    if "\n" not in printed:
        assert sd.parse(printed) is expr
    values = {sd.symbols(n): v for n, v in VALUES.items()}
    with np.errstate(all="ignore"):
        a = sd.evaluate(expr, values)
        b = sd.evaluate(sd.parse(printed.split("\n")[-1]) if "\n" not in printed else expr, values)
    assert np.array_equal(a, b, equal_nan=True)


# -- literal arithmetic: exact where it fits, bounded, and a clear error otherwise --------------
@pytest.mark.parametrize("text,value,dtype", [
    ("2**63 - 1", 2**63 - 1, "int64"),  # the intermediate 2**63 does not fit; the result does
    ("-2**63", -2**63, "int64"),
    ("-2**62 * 2", -2**63, "int64"),
    ("2**100 / 2**98", 4.0, "float64"),
    ("2**-2", 0.25, "float64"),
    ("3 - -1", 4, "int64"),
    ("1**(10**300)", 1, "int64"),
    ("(-1)**(10**300 + 1)", -1, "int64"),
])
def test_literal_arithmetic_folds_exactly(text, value, dtype):
    node = sd.parse(text)
    assert node.is_constant and node.dtype == dtype
    assert node.attr("value") == value and type(node.attr("value")) is type(value)


def test_negative_literals_are_weak_numbers_like_positive_ones():
    x = sd.symbols("x")
    assert sd.parse("x - -1") is x - (-1.0)
    assert sd.parse(str(x - (-1.0))) is x - (-1.0)


@pytest.mark.parametrize("text,message", [
    ("9**99999999 + x", "overflow"),
    ("9**9**9 + x", "overflow"),
    ("9**9**9*x", "overflow"),
    ("2**63 + x", "does not fit int64"),
    ("x * 2**64", "does not fit int64"),
    ("2**62 * 4", "does not fit int64"),
    ("10**400 + x", "does not fit int64"),
    ("10**400 * 1.0 + x", "overflows float64"),
    ("1e400 + x", "overflows float64"),
    ("10.0**400 + x", "overflows float64"),
    ("1e308 * 10 + x", "overflows float64"),
    ("1" * 5000 + " + x", "too many digits"),
    ("1/0 + x", "division by zero"),
    ("1.0/0 + x", "division by zero"),
    ("0/0", "division by zero"),
    ("0**-1 + x", "division by zero"),
    ("0.0**-1.5 + x", "division by zero"),
    ("(-8)**0.5 + x", "not a real number"),
    ("2.0**(10**400)", "overflows float64"),
])
def test_literal_arithmetic_errors_are_parse_errors(text, message):
    with pytest.raises(ParseError, match=re.escape(message)):
        sd.parse(text)


def test_literal_errors_point_at_the_literal():
    with pytest.raises(ParseError) as info:
        sd.parse("x + 1/0")
    assert info.value.position == 4


@pytest.mark.parametrize("text", ["١٢ + x", "x[١]", "sum(X, axis=٠)", "x**²", "１２"])
def test_digits_are_ascii_only(text):
    with pytest.raises(ParseError, match="unexpected character"):
        sd.parse(text, NS)
