"""Golden generated sources: a refactor that changes no generated code shows no diff here.

Regenerate on purpose with SYMDIFF_UPDATE_GOLDEN=1 and review the diff like any code change.
"""

import os
from pathlib import Path

import pytest
from symdiff.lowering.plan.inplace import fold
from symdiff.lowering.plan.schedule import schedule
from symdiff.lowering.render.cpu_unit import generate

import symdiff as sd

GOLDEN = Path(__file__).parent / "golden"


def _fused_chain():
    x = sd.tensor("x", (1000,), "float32")
    return [sd.sigmoid(sd.exp(x) * 2.0 + 1.0) - x], [x], {}


def _softmax_regression_step():
    X, W = sd.tensor("X", (100, 784), "float32"), sd.tensor("W", (784, 10), "float32")
    y = sd.tensor("y", (100,), "int64")
    loss = sd.softmax_cross_entropy(X @ W, y)
    (gW,) = sd.grad(loss, [W])
    outs, new_w = sd.optimize([loss, W - 0.1 * gW])[:1], sd.optimize(W - 0.1 * gW)
    return outs, [X, y, W], {W: new_w}


def _bias_mlp_forward():
    X, W, b = sd.tensor("X", (32, 16)), sd.tensor("W", (16, 8)), sd.tensor("b", (8,))
    h = sd.relu(X @ W + b)
    return [sd.logsumexp(h, axis=1), sd.sum(h, axis=0)], [X, W, b], {}


CASES = {"fused_chain": _fused_chain, "softmax_regression_step": _softmax_regression_step,
         "bias_mlp_forward": _bias_mlp_forward}


@pytest.mark.parametrize("name", sorted(CASES))
def test_generated_source_matches_golden(name):
    outputs, inputs, updates = CASES[name]()
    source = generate(fold(schedule(outputs, inputs, updates))).source  # the program's pipeline
    path = GOLDEN / f"{name}.cpp"
    if os.environ.get("SYMDIFF_UPDATE_GOLDEN"):
        path.write_text(source)
    assert path.exists(), f"no golden file {path}: run with SYMDIFF_UPDATE_GOLDEN=1"
    assert source == path.read_text(), f"generated source for {name} changed; if intended, regenerate the golden"
