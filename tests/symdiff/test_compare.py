"""sd.compare: every mode agrees, sizes and costs are reported, and the report renders."""

import json

import numpy as np
import pytest
import sympy

import symdiff as sd
from symdiff import symbolic
from symdiff.memory import peak_bytes


@pytest.fixture
def softmax_regression():
    X, W = sd.tensor("X", ("m", "n")), sd.tensor("W", ("n", "k"))
    y = sd.tensor("y", ("m",), "int64")
    rng = np.random.default_rng(0)
    at = {X: rng.normal(size=(6, 4)), W: rng.normal(size=(4, 3)), y: rng.integers(0, 3, 6)}
    return sd.softmax_cross_entropy(X @ W, y), W, at


def test_all_modes_agree_on_softmax_regression(softmax_regression):
    loss, W, at = softmax_regression
    report = sd.compare(loss, [W], at=at)
    assert [r.mode for r in report.rows] == ["symbolic", "symbolic-cse", "forward", "reverse", "numeric"]
    assert all(r.values is not None for r in report.rows if r.mode != "numeric")
    assert report.max_disagreement(exact_only=True) < 1e-12
    assert report.row("numeric").error < 1e-7
    assert report.inputs == 12 and report.outputs == 1


def test_costs_are_formulas_in_the_dims(softmax_regression):
    loss, W, at = softmax_regression
    report = sd.compare(loss, [W], at=at, modes=("forward", "reverse"))
    m, n, k = (sd.shapes.dim(d) for d in "mnk")
    reverse = report.row("reverse")
    assert reverse.flops.free_symbols == {m, n, k}
    assert reverse.flops_value == int(reverse.flops.subs({m: 6, n: 4, k: 3}))
    forward = report.row("forward")
    # forward mode carries n·k tangents through the X·W product: a factor of n·k more work there
    assert forward.flops_value > 3 * reverse.flops_value
    assert "reverse" in report.summary and "12 input elements" in report.summary


def test_expression_swell_is_measured_on_the_logistic_map():
    x = sd.symbols("x")
    l = x
    for _ in range(6):
        l = 4 * l * (1 - l)
    report = sd.compare(l, [x], at={x: 0.3}, modes=("symbolic", "reverse"))
    sym, rev = report.row("symbolic"), report.row("reverse")
    assert sym.tree_size > 10 * rev.dag_size
    assert rev.dag_size <= 3 * sd.count_ops(l)
    assert "expression swell" in report.summary


def test_forward_reverse_crossover_is_solved_for_symbolic_dims():
    A, x = sd.tensor("A", ("m", "n")), sd.tensor("x", ("n",))
    rng = np.random.default_rng(1)
    report = sd.compare(sd.tanh(A @ x), [x], at={A: rng.normal(size=(5, 3)), x: rng.normal(size=3)},
                        modes=("forward", "reverse"))
    assert "cross where m = n" in report.crossover or "cross where n = m" in report.crossover
    assert report.max_disagreement() < 1e-12


def test_report_renders_as_markdown_html_dict_and_plot(tmp_path, softmax_regression):
    loss, W, at = softmax_regression
    report = sd.compare(loss, [W], at=at, modes=("forward", "reverse", "numeric"))
    md = report.to_markdown()
    assert md.count("\n|") >= 4 and "| reverse |" in md
    assert "<table>" in report._repr_html_()
    json.dumps(report.to_dict())  # serializable
    pytest.importorskip("matplotlib")
    out = report.plot(tmp_path / "modes.png")
    assert out.stat().st_size > 5000


def test_peak_memory_follows_liveness():
    X = sd.tensor("X", (100, 10))
    # exp(X) and exp(X)*2 are live together (2 × 8000 bytes); the sum is 8 bytes
    assert peak_bytes(sd.sum(sd.exp(X) * 2.0)) == 16000
    # a chain frees as it goes: never more than two 8000-byte buffers
    chain = X
    for _ in range(10):
        chain = sd.tanh(chain)
    assert peak_bytes(chain) == 16000
    # views cost nothing
    assert peak_bytes(sd.reshape(sd.exp(X), (1000,)).T) == 8000
    m = sd.shapes.dim("m")
    V = sd.tensor("V", ("m", 10))
    assert sympy.simplify(peak_bytes(sd.exp(V)) - 80 * m) == 0


# -- symbolic_limit: sympy's work is bounded before it starts ----------------------------
# (no timing is asserted: that scalarize never runs is what keeps the call to a fraction of a
# second, 0.3-0.8 s measured here, where it took more than 300 s)


def _large_problem(which):
    X, W = sd.tensor("X", (64, 32)), sd.tensor("W", (32, 10))
    y = sd.tensor("y", (64,), "int64")
    rng = np.random.default_rng(2)
    at = {X: rng.normal(size=(64, 32)), W: rng.normal(size=(32, 10)), y: rng.integers(0, 10, 64)}
    f = sd.softmax_cross_entropy(X @ W, y) if which == "softmax regression" else sd.sum(sd.tanh(X @ W))
    return f, [X, W], at


@pytest.mark.parametrize("which", ["softmax regression", "tanh layer"])
def test_default_compare_of_a_large_problem_skips_the_symbolic_rows_with_a_note(which, monkeypatch):
    """64x32 @ 32x10: 2,368 wrt elements times a 20,000-operation function would keep sympy busy
    for many minutes; the default call says so instead, and never scalarizes."""
    def scalarize(*args, **kwargs):
        raise AssertionError("scalarized past the limit")

    monkeypatch.setattr(symbolic, "scalarize", scalarize)
    f, wrt, at = _large_problem(which)
    report = sd.compare(f, wrt, at=at)
    markdown = report.to_markdown()
    for mode in ("symbolic", "symbolic-cse"):
        row = report.row(mode)
        assert row.values is None and row.note.startswith("skipped: ") and "symbolic_limit" in row.note
        assert row.note in markdown
    assert report.row("reverse").values is not None and report.row("forward").values is not None
    assert report.max_disagreement(exact_only=True) < 1e-10


def test_symbolic_limit_bounds_the_derivative_work_exactly(softmax_regression):
    loss, W, at = softmax_regression
    work = symbolic.differentiate(loss, [W], at=at, max_operations=10**9).operations
    assert work >= symbolic.derivative_estimate(loss, [W], at)
    modes = ("symbolic", "symbolic-cse", "reverse")
    just_under = sd.compare(loss, [W], at=at, modes=modes, symbolic_limit=work)
    assert all(just_under.row(m).values is not None for m in modes)
    assert just_under.max_disagreement() < 1e-12
    just_over = sd.compare(loss, [W], at=at, modes=modes, symbolic_limit=work - 1)
    for mode in ("symbolic", "symbolic-cse"):
        assert just_over.row(mode).values is None and f"limit {work - 1:,}" in just_over.row(mode).note
