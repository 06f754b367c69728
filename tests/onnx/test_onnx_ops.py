"""Every registered op exports to ONNX or says why not, and ONNX Runtime computes what symdiff's
compiled program computes on the registry's examples (float32, rtol 1e-5)."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx_cases import exportable_cases

import symdiff as sd

SOURCES = ("leaf", "constant")  # graph inputs / initializers / Constant nodes, not rules
RTOL = 1e-5
# Sums of products (matmul, conv, reductions, det) are rounded in another order by ONNX Runtime
# than by our kernels: their float32 results agree to ~1e-7 of the magnitude of the terms, so a
# result near zero (a cancellation) differs by ~1e-7 absolutely and by any amount relatively.
# The inputs are O(1) (|x| ≤ 2) and sums have at most ~50 terms: 1e-5 absolute covers it.
ATOL = 1e-5


def test_every_registered_op_has_a_rule_or_a_reason():
    missing, both = [], []
    for op in sd.OPS.values():
        if op.name in SOURCES:
            continue
        has_rule, has_reason = op in sd.onnx.RULES, op in sd.onnx.NOT_EXPORTABLE
        if has_rule == has_reason:
            (both if has_rule else missing).append(op.name)
    assert not missing, f"ops with neither an ONNX export rule nor a NOT_EXPORTABLE reason: {missing}"
    assert not both, f"ops with both a rule and a NOT_EXPORTABLE reason: {both}"
    for op, why in sd.onnx.NOT_EXPORTABLE.items():
        assert isinstance(why, str) and len(why) > 20, (op, why)


def test_the_exportable_ops_listed():
    """The table of what exports, printed in the test log (pytest -s), and spot checks of it."""
    exported = sorted(op.name for op in sd.onnx.RULES)
    refused = {op.name: why for op, why in sd.onnx.NOT_EXPORTABLE.items()}
    print("exported:", ", ".join(exported))
    print("not exportable:", refused)
    for name in ("matmul", "conv2d", "max_pool2d", "avg_pool2d", "softmax", "sum", "take", "scan", "gelu",
                 "where", "astype", "pad", "concatenate", "transpose", "reshape", "broadcast_to", "getitem"):
        assert name in exported


def test_every_rule_is_checked_by_a_registry_example():
    checked = {op for _, op, *_ in exportable_cases()}
    unchecked = sorted(op.name for op in sd.onnx.RULES if op.name not in checked)
    assert not unchecked, f"export rules no registry example exercises: {unchecked}"


def _session(model):
    return ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])


def _compare(label, got, want, failures):
    want = np.asarray(want)
    if got.shape != want.shape or got.dtype != want.dtype:
        failures.append(f"{label}: ONNX Runtime gives {got.dtype}{got.shape}, symdiff {want.dtype}{want.shape}")
    elif want.dtype.kind == "f":
        if not np.allclose(got, want, rtol=RTOL, atol=ATOL, equal_nan=True):
            err = np.max(np.abs(got.astype(np.float64) - want) / (ATOL + RTOL * np.abs(want)))
            failures.append(f"{label}: values differ ({err:.2f} times the tolerance)")
    elif not np.array_equal(got, want):
        failures.append(f"{label}: values differ")


def test_onnx_runtime_equals_the_compiled_program():
    """All examples as one ONNX model and one compiled cpu program (one compile, one session);
    the few ops the cpu backend does not lower yet are compared with the numpy reference."""
    examples = exportable_cases()
    lowered = [e for e in examples if "cpu" in e[5]]
    reference_only = [e for e in examples if "cpu" not in e[5]]
    outputs = [e[2] for e in examples]
    leaves = [leaf for e in examples for leaf in e[3]]
    feed = {leaf.name: value for e in examples for leaf, value in zip(e[3], e[4])}
    model = sd.onnx.to_model(outputs, leaves, output_names=[f"out{k}" for k in range(len(examples))])
    got = _session(model).run(None, feed)
    by_example = dict(zip(map(id, examples), got))
    program = sd.compile([e[2] for e in lowered], [leaf for e in lowered for leaf in e[3]], backend="cpu")
    compiled = program(*[value for e in lowered for value in e[4]])
    failures = []
    for e, want in zip(lowered, compiled):
        _compare(e[0], by_example[id(e)], want, failures)
    for e in reference_only:
        _compare(e[0], by_example[id(e)], sd.evaluate(e[2], dict(zip(e[3], e[4]))), failures)
    assert not failures, "\n".join(failures)
    assert len(lowered) > 100


def test_each_example_exports_as_a_model_of_its_own_that_passes_the_full_check():
    """Exported one by one (as a user would), each model passes onnx.checker's full check."""
    for label, _, expr, leaves, _, _ in exportable_cases()[::7]:
        model = sd.onnx.to_model([expr], leaves, check=False)
        onnx.checker.check_model(model, full_check=True)
        assert model.opset_import[0].version >= 17, label


def test_ops_without_a_rule_are_refused_by_name():
    A = sd.tensor("A", (3, 3), "float32")
    with pytest.raises(sd.onnx.ExportError, match="op inv .*no matrix inverse"):
        sd.onnx.to_model([sd.inv(A)], [A])


@pytest.mark.parametrize("op", ["max_pool2d_gather", "max_pool2d_scatter"])
def test_max_pool_derivatives_route_ties_to_the_first_maximum(op):
    """Windows full of ties (small integers, padding): the JVP and VJP of max pooling pick the
    first maximum in row-major window order in ONNX Runtime as in symdiff."""
    from symdiff.node import make

    window = {"kernel_size": (3, 2), "stride": (2, 1), "padding": (1, 1)}
    x, other = sd.tensor("x", (2, 3, 5, 4), "float32"), sd.tensor("t", (2, 3, 5, 4) if op.endswith("gather")
                                                                   else (2, 3, 3, 5), "float32")
    expr = make(sd.OPS[op], (x, other), **window)
    rng = np.random.default_rng(0)
    values = {x: rng.integers(0, 3, size=x.shape).astype(np.float32),
              other: rng.normal(size=other.shape).astype(np.float32)}
    (got,) = _session(sd.onnx.to_model([expr], [x, other])).run(None, {k.name: v for k, v in values.items()})
    np.testing.assert_allclose(got, sd.evaluate(expr, values), rtol=RTOL, atol=ATOL)
