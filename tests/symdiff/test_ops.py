"""Registry-driven: every op's reference evaluation against an independent reference."""

import zlib

import numpy as np
import pytest

import symdiff as sd
from symdiff.ops.elementwise import ElementwiseOp
from symdiff.testing import cases, extreme_cases, scalar_reference

CASES = list(cases())
TOL = {"float64": {"rtol": 1e-10, "atol": 1e-12}, "float32": {"rtol": 2e-5, "atol": 2e-6}}


def test_every_op_has_an_example():
    covered = {c.op for c in CASES}
    missing = set(sd.OPS) - covered - {"leaf", "constant"}
    assert not missing, f"ops without an example in symdiff.testing: {sorted(missing)}"


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("case", CASES, ids=str)
def test_evaluation_matches_reference(case, dtype):
    rng = np.random.default_rng(zlib.crc32(repr((str(case), dtype)).encode()))
    expr, values = case.instantiate(rng, dtype)
    got = sd.evaluate(expr, values)
    want = np.asarray(case.reference(*[np.asarray(v, dtype=np.float64) if v.dtype.kind == "f" else v
                                       for v in values.values()]))
    assert got.shape == want.shape
    assert got.dtype.name == expr.dtype
    if got.dtype.kind == "f":
        if case.op not in ("astype",):
            assert expr.dtype == dtype or not any(l.dtype.startswith("float") for l in values)
        np.testing.assert_allclose(got, want, **TOL[got.dtype.name])
    else:
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("case", extreme_cases(), ids=str)
def test_evaluation_at_extremes_matches_reference(case):
    """±1e4, ±50 and 0 where the op is finite: the numpy references are the stable forms."""
    expr, values = case.instantiate(None)
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        got = sd.evaluate(expr, values)
    np.testing.assert_allclose(got, case.reference(*values.values()), rtol=1e-12, atol=1e-300)


@pytest.mark.parametrize("op", [op for op in sd.OPS.values()
                                if isinstance(op, ElementwiseOp) and op.name != "astype"], ids=str)
def test_numpy_function_matches_scalar_form(op):
    """The numpy reference and the sympy scalar form declare the same function."""
    rng = np.random.default_rng(1)
    args = []
    for p, (lo, hi) in zip(op.params, op.domain):
        args.append(rng.random(50) < 0.5 if p.name == "c" else rng.uniform(lo, hi, 50))
    np.testing.assert_allclose(op.numpy_fn(*args), scalar_reference(op)(*args), rtol=1e-12, atol=1e-14)


def test_sigmoid_and_softplus_are_stable_at_extremes():
    x = sd.tensor("x", (4,))
    v = np.array([-1e4, -50.0, 50.0, 1e4])
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        s = sd.evaluate(sd.sigmoid(x), {x: v})
        p = sd.evaluate(sd.softplus(x), {x: v})
    np.testing.assert_allclose(s, [0.0, 1.9287498479639178e-22, 1.0, 1.0])
    np.testing.assert_allclose(p, [0.0, 1.9287498479639178e-22, 50.0, 1e4])


def test_logsumexp_softmax_and_cross_entropy_do_not_overflow():
    z = sd.tensor("z", (2, 3))
    y = sd.tensor("y", (2,), "int64")
    v = np.array([[1e4, 0.0, -1e4], [-1e4, -1e4, -1e4]])
    with np.errstate(over="raise"):
        lse, sm, ce = sd.evaluate([sd.logsumexp(z, axis=1), sd.softmax(z), sd.softmax_cross_entropy(z, y)],
                                  {z: v, y: [0, 2]})
    np.testing.assert_allclose(lse, [1e4, -1e4 + np.log(3)])
    np.testing.assert_allclose(sm[0], [1, 0, 0])
    np.testing.assert_allclose(ce, np.log(3) / 2)


def test_labels_out_of_range_are_a_clear_error():
    z = sd.tensor("z", (2, 3))
    y = sd.tensor("y", (2,), "int64")
    with pytest.raises(ValueError, match="label 3 is out of range for 3 classes"):
        sd.evaluate(sd.softmax_cross_entropy(z, y), {z: np.zeros((2, 3)), y: [0, 3]})
    with pytest.raises(ValueError, match="label -1 is out of range"):
        sd.evaluate(sd.one_hot(y, 3), {y: [-1, 0]})


def test_cost_formulas_are_polynomials_in_the_dims():
    X, W = sd.tensor("X", ("m", "n")), sd.tensor("W", ("n", "k"))
    m, n, k = (sd.shapes.dim(d) for d in "mnk")
    assert sd.cost(X @ W)["flops"] == 2 * m * n * k
    assert sd.cost(sd.exp(X))["flops"] == m * n
    assert sd.cost(sd.sigmoid(X))["flops"] == 4 * m * n  # 1/(1+exp(-x)): neg, exp, add, div
    assert sd.cost(sd.sum(X, axis=0))["flops"] == m * n
    assert sd.cost(X @ W)["bytes"] == 8 * (m * n + n * k + m * k)


# -- properties and rules live on the op -------------------------------------------------------
def test_every_differentiable_op_registers_its_rules_on_itself():
    missing = [op.name for op in sd.OPS.values() if op.differentiable and op.name != "leaf"
               and (op.jvp is None or op.vjp is None)]
    assert not missing, f"differentiable ops without @op.defjvp / @op.defvjp: {missing}"


def test_groups_are_derived_from_the_registry():
    from symdiff.ops.registry import ops_with
    from symdiff.rewrite import COMMUTATIVE

    assert COMMUTATIVE == ops_with(commutative=True)
    assert {op.name for op in ops_with(view=True)} == {"broadcast_to", "reshape", "transpose", "flip", "getitem",
                                                           "stop_gradient", "scan_part"}
    assert all(op.kernel == "reduce" for op in ops_with(has_identity=False))


def test_printed_attributes_are_attributes_of_the_op():
    for case in CASES:
        node = case.build(*case.leaves())
        for shown in node.op.print_attrs if node.op.name == case.op else ():
            assert shown.name in node.attrs, f"{case}: prints {shown.name!r}, which its nodes do not have"


def test_a_new_op_is_one_declaration(monkeypatch):
    """An op declared with its properties and rules prints, differentiates and scalarizes."""
    from symdiff.node import make
    from symdiff.ops import registry
    from symdiff.ops.registry import Op, Shown

    monkeypatch.setattr(registry, "OPS", dict(registry.OPS))  # a test-only registry
    flip = Op("toy_flip", infer=lambda inputs, attrs: (inputs[0].shape, inputs[0].dtype),
              evaluate=lambda v, attrs, shape, b: np.flip(v[0], attrs["axis"]),
              print_attrs=(Shown("axis", default=0),))

    @flip.defjvp
    def _flip_jvp(node, ts, nb):
        return make(flip, (ts[0],), axis=node.attr("axis") + nb)

    @flip.defvjp
    def _flip_vjp(node, ct, nb, needed=None):
        return [make(flip, (ct,), axis=node.attr("axis") + nb)]

    v = sd.tensor("v", (3,))
    f = sd.sum(make(flip, (v,), axis=0) * sd.constant(np.array([1.0, 2.0, 3.0])))
    assert str(make(flip, (v,), axis=0)) == "toy_flip(v)"
    at = {v: np.array([0.5, -1.0, 2.0])}
    for mode in ("reverse", "forward", "symbolic"):
        np.testing.assert_allclose(sd.evaluate(sd.grad(f, v, mode=mode, at=at), at), [3.0, 2.0, 1.0])
