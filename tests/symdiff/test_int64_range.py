"""int64 constants hold exactly [-2**63, 2**63 - 1]; folding them never wraps around."""

import time

import numpy as np
import pytest

import symdiff as sd
from symdiff.rewrite import fold_constants


@pytest.mark.parametrize("value", [2**63 - 1, -2**63, 0, np.int64(2**63 - 1), np.uint64(2**63 - 1)],
                         ids=["2**63-1", "-2**63", "0", "np.int64", "np.uint64"])
def test_every_int64_is_a_constant(value):
    node = sd.constant(value)
    assert node.dtype == "int64" and node.attr("value") == int(value)
    assert sd.evaluate(node, {}) == int(value)


@pytest.mark.parametrize("value,dtype", [
    (2**63, None), (-2**63 - 1, None), (2**64, None), (10**400, None), (np.uint64(2**64 - 1), None),
    (1e19, "int64"), (2**64, "int64"),
], ids=["2**63", "-2**63-1", "2**64", "10**400", "np.uint64(2**64-1)", "1e19", "2**64 as int64"])
def test_integers_outside_int64_are_refused(value, dtype):
    with pytest.raises(OverflowError, match="does not fit int64"):
        sd.constant(value, dtype)


def test_unsigned_arrays_outside_int64_are_refused():
    with pytest.raises(OverflowError, match="does not fit int64"):
        sd.constant(np.array([1, 2**63], dtype=np.uint64))
    assert sd.constant(np.array([1, 2**63 - 1], dtype=np.uint64)).dtype == "int64"


def test_a_huge_int_for_a_float_constant_is_a_clear_error():
    with pytest.raises(OverflowError, match="does not fit float64"):
        sd.constant(10**400, "float64")


@pytest.mark.parametrize("build", [
    lambda: sd.constant(2**62) * sd.constant(4),
    lambda: sd.constant(2**63 - 1) + sd.constant(1),
    lambda: sd.constant(-2**63) - sd.constant(1),
    lambda: -sd.constant(-2**63),
    lambda: sd.constant(3) ** sd.constant(40),
    lambda: sd.constant(9) ** sd.constant(9**9),
    lambda: sd.constant(np.array([1, 2**62])) * sd.constant(np.array([1, 4])),
], ids=["multiply", "add", "subtract", "negative", "power", "9**9**9", "array multiply"])
def test_folding_int64_overflow_raises_instead_of_wrapping(build):
    expr = build()
    start = time.perf_counter()
    with pytest.raises(OverflowError, match="overflows int64"):
        fold_constants(expr)
    with pytest.raises(OverflowError, match="overflows int64"):
        sd.optimize(expr)
    assert time.perf_counter() - start < 2


def test_folding_int64_keeps_exact_results_at_the_edges():
    assert fold_constants(sd.constant(2**62) * sd.constant(2) - sd.constant(1)) is None  # inputs not all constant
    assert fold_constants(sd.constant(-2**62) * sd.constant(2)) is sd.constant(-2**63)
    assert fold_constants(sd.constant(3) ** sd.constant(39)) is sd.constant(3**39)
    assert fold_constants(sd.constant(2) ** sd.constant(62)) is sd.constant(2**62)


def test_collecting_constant_factors_does_not_build_an_overflowing_number():
    i = sd.symbols("i", "int64")
    expr = sd.constant(2**40) * (sd.constant(2**40) * i)
    optimized = sd.optimize(expr)  # 2**80 is no int64: the factors stay apart
    assert sd.evaluate(optimized, {i: 0}) == 0
    x = sd.symbols("x")
    expr = 1e200 * (1e200 * x)
    assert sd.evaluate(sd.optimize(expr), {x: 1e-300}) == pytest.approx(1e100)


def test_folding_work_is_bounded_by_the_inputs_too():
    big = sd.constant(np.ones(1 << 20, dtype=np.int64))
    assert fold_constants(sd.sum(big)) is None  # one element out, a million in: left to evaluation
    assert fold_constants(sd.sum(sd.constant(np.arange(10)))) is sd.constant(45)
