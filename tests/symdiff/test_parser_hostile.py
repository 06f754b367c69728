"""sd.parse on random and hostile text: every input ends in an expression or a clear error, quickly.

"Clear" means a ParseError (with a position inside the text) or an op's own error about shapes,
dtypes or indices; never RecursionError, OverflowError, MemoryError, ZeroDivisionError or another
exception that only says Python itself gave up. Each input must finish within a wall-clock bound
that is generous for a loaded two-core machine (parsing takes milliseconds); Hypothesis's own
deadline is off so that a slow moment of the machine is not reported as a flaky failure, and a
hard alarm turns a hang into a failure instead of a stuck test run.
"""

import contextlib
import signal
import string
import sys
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import symdiff as sd
from symdiff.parser import MAX_DEPTH, ParseError, _expression_function
from symdiff.shapes import ShapeError

NS = {"X": sd.tensor("X", ("m", "n")), "w": sd.tensor("w", ("n",)), "A": sd.tensor("A", (3, 4)),
      "i": sd.tensor("i", (3,), "int64"), "k": 3}
CLEAR = (ParseError, ShapeError, TypeError, ValueError, IndexError)
WALL_S = 2.0  # per input; parsing takes milliseconds
ALARM_S = 10  # a hang ends the test instead of the run

CALLABLE = sorted(f for f in sd.FUNCTIONS if _expression_function(f))
TOKENS = ["x", "y", "X", "w", "A", "i", "k", "0", "1", "2", "9", "1.5", ".5", "1e308", "1e-5", "1e400",
          "99999999999999999999", "+", "-", "*", "/", "@", "**", "(", ")", "[", "]", ",", ":", "...",
          "None", "True", "False", "=", "<", "<=", "==", "!=", ">", ">=", "axis", "keepdims", "dtype",
          "float32", "int64", "lambda", "__class__", ".", "'", "\\", "١", "²", *CALLABLE]


class TookTooLong(Exception):
    pass


@contextlib.contextmanager
def alarm(seconds):
    def ring(signum, frame):
        raise TookTooLong(f"no result after {seconds} s")

    previous = signal.signal(signal.SIGALRM, ring)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def ends_clearly(text):
    start = time.perf_counter()
    with alarm(ALARM_S):
        try:
            result = sd.parse(text, NS)
        except ParseError as error:
            assert 0 <= error.position <= len(text) and "parse error at column" in str(error)
        except CLEAR as error:
            assert "Exceeds the limit" not in str(error), "Python's own integer digit limit escaped"
        else:  # one formula, or a list where the text has several lines of results
            assert isinstance(result, sd.Node) or (isinstance(result, list) and result
                                                   and all(isinstance(r, sd.Node) for r in result))
    elapsed = time.perf_counter() - start
    assert elapsed < WALL_S, f"{elapsed:.2f} s for {text[:200]!r}"


sd.parse("sum(tanh(A @ transpose(A)), axis=0)[0] + 2**-1", NS)  # warm the lazy imports up once

PROPERTY = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PROPERTY
@given(st.text(max_size=300))
def test_random_unicode_text(text):
    ends_clearly(text)


@PROPERTY
@given(st.text(alphabet=string.printable, max_size=300))
def test_random_printable_text(text):
    ends_clearly(text)


@PROPERTY
@given(st.lists(st.sampled_from(TOKENS), max_size=60), st.sampled_from([" ", ""]))
def test_token_soups(tokens, sep):
    ends_clearly(sep.join(tokens))


_numbers = st.one_of(
    st.integers(0, 2**70).map(str),
    st.floats(min_value=0, allow_nan=False, allow_infinity=False).map(repr),
    st.integers(1, 6000).map(lambda n: "7" * n),  # past Python's 4300-digit limit for int()
    st.integers(300, 5000).map(lambda e: f"1e{e}"),
    st.sampled_from(["0", "1", "2", "9", "10", "0.0", "1e308", "2**63", "2**64", "9**9**9"]),
)
_atoms = st.one_of(_numbers, st.sampled_from(["x", "X", "w", "A", "i", "k", "True"]))


def _extend(inner):
    binary = st.tuples(inner, st.sampled_from(["+", "-", "*", "/", "**", "@", "<", "=="]), inner)
    call = st.tuples(st.sampled_from(CALLABLE), st.lists(inner, max_size=3),
                     st.sampled_from(["", ", axis=0", ", axis=-1", ", axis=(0, 1)", ", keepdims=True"]))
    index = st.tuples(inner, st.sampled_from(["0", "-1", "1:", "::2", "None", "...", "5", ":, 0", "10**30"]))
    return st.one_of(
        binary.map(lambda t: f"({t[0]}) {t[1]} ({t[2]})"),
        inner.map(lambda t: f"-({t})"),
        call.map(lambda t: f"{t[0]}({', '.join(t[1])}{t[2] if t[1] else ''})"),
        index.map(lambda t: f"({t[0]})[{t[1]}]"),
    )


@PROPERTY
@given(st.recursive(_atoms, _extend, max_leaves=12))
def test_grammatical_expressions_with_hostile_numbers(text):
    ends_clearly(text)


@PROPERTY
@given(st.lists(_numbers, min_size=2, max_size=8), st.sampled_from(["**", "**-", " ** -(", "*"]))
def test_long_exponent_towers(numbers, op):
    text = op.join(numbers) + ")" * (op.count("(") * (len(numbers) - 1))
    ends_clearly(text + " + x")


NESTINGS = {  # construct -> (opening, closing) repeated around x
    "parentheses": ("(", ")"),
    "negations": ("-", ""),
    "calls": ("sin(", ")"),
    "calls with keywords": ("sum(", ", axis=None)"),
    "negated parentheses": ("-(", ")"),
    "power tower": ("2**", ""),
    "negative exponents": ("2**-", ""),
    "indexed parentheses": ("(", ")[...]"),
}


@settings(max_examples=60, deadline=None)
@given(st.sampled_from(sorted(NESTINGS)), st.integers(1, 3 * MAX_DEPTH))
def test_deep_nesting_of_every_construct(construct, depth):
    opening, closing = NESTINGS[construct]
    ends_clearly(opening * depth + "x" + closing * depth)


@pytest.mark.parametrize("construct", sorted(NESTINGS))
def test_nesting_up_to_the_limit_parses(construct):
    opening, closing = NESTINGS[construct]
    deepest = max(d for d in range(1, MAX_DEPTH + 1) if _parses(opening * d + "x" + closing * d))
    assert deepest >= 60  # the limit is not so low that ordinary formulas hit it
    with pytest.raises(ParseError, match="nested more than"):
        sd.parse(opening * (deepest + 1) + "x" + closing * (deepest + 1))


def _parses(text):
    try:
        sd.parse(text, NS)
    except ParseError as error:
        assert "nested more than" in str(error)
        return False
    return True


@pytest.mark.parametrize("text", [
    "9**99999999 + x", "9**9**9**9 + x", "(-9)**99999999 + x", "2**2**2**2**2**2 + x",
    "1" * 100_000, "1" * 99_990 + ".5", "0." + "0" * 99_990 + "1", "x" + "*2" * 5_000,
    "-" * 99_999 + "1", "((((" * 10_000, "x[" * 20_000,
])
def test_huge_inputs_end_quickly(text):
    ends_clearly(text)


def test_a_caller_deep_in_its_own_recursion_gets_a_parse_error():
    text = "sin(" * 90 + "x" + ")" * 90  # within MAX_DEPTH, but the caller leaves little stack

    def recurse(n):
        return recurse(n - 1) if n else sd.parse(text)

    depth, frame = 0, sys._getframe()
    while frame is not None:
        depth, frame = depth + 1, frame.f_back
    with pytest.raises(ParseError, match="nested too deeply"):
        recurse(sys.getrecursionlimit() - depth - 300)  # 300 frames left: 90 calls need about 720


# -- defects outside the parser that hostile text reached -------------------------------------
def test_stack_of_a_symbolic_tensor_is_a_clear_error():
    with alarm(2), pytest.raises(CLEAR):
        sd.parse("stack(X)", NS)


def test_slice_scatter_of_numbers_is_a_clear_error():
    with pytest.raises(CLEAR):
        sd.parse("slice_scatter(1, 0, 0.0)", NS)



@pytest.mark.parametrize("text", [
    "pad(A, pad_width=" + "(" * 5000 + "1" + ")" * 5000 + ")",  # nested far deeper than one level
    "pad(A, pad_width=(" + "(0, 0), " * 11000 + "(1, 1)))",  # long, and wrong for A: a clear error
    "pad(A, pad_width=((0, 0), (1, 2)), value=((1, 2), (3, 4)))",  # a tuple where a number goes
    "dilate(A, dilation=((1, 1),), axes=0)",
])
def test_tuples_of_tuples_in_keyword_values_end_clearly(text):
    ends_clearly(text)
