"""sd.elementwise (a registered op from a sympy form) and sd.custom_vjp (a hand-written reverse rule)."""

import numpy as np
import pytest
import sympy

import symdiff as sd

T = sympy.Symbol("t", real=True)
# registered at import, before the registry-driven tests (tests/symdiff/test_ops.py) list the ops
SOFTSIGN = sd.elementwise("soft_sign", T / (1 + sympy.Abs(T)))
V = np.array([-1.5, -0.2, 0.3, 2.0])


def test_softsign_gradients_modes_printing_and_parse():
    x = sd.tensor("x", (4,))
    f = sd.sum(SOFTSIGN(x) ** 2)
    sd.check_grads(f, [x], {x: V})
    g = sd.grad(f, x)
    want = 2 * (V / (1 + abs(V))) / (1 + abs(V)) ** 2
    np.testing.assert_allclose(sd.evaluate(g, {x: V}), want, rtol=1e-12)
    np.testing.assert_allclose(sd.evaluate(sd.grad(f, x, mode="forward"), {x: V}), want, rtol=1e-12)
    np.testing.assert_allclose(sd.numeric_grad(f, x, {x: V}), want, rtol=1e-6)
    assert str(SOFTSIGN(x)) == "soft_sign(x)"
    assert sd.parse("soft_sign(x)", {"x": x}) is SOFTSIGN(x)


def test_softsign_compiled_equals_numpy():
    x = sd.tensor("x", (4,))
    program = sd.compile([SOFTSIGN(x), sd.grad(sd.sum(SOFTSIGN(x)), x)], [x])
    value, grad = program(V)
    np.testing.assert_allclose(value, V / (1 + abs(V)), rtol=1e-12)
    np.testing.assert_allclose(grad, 1 / (1 + abs(V)) ** 2, rtol=1e-12)


def test_names_are_validated_and_redeclaring_is_idempotent():
    assert sd.elementwise("soft_sign", T / (1 + sympy.Abs(T))) is SOFTSIGN
    with pytest.raises(ValueError, match="with form"):
        sd.elementwise("soft_sign", T / (2 + sympy.Abs(T)))
    with pytest.raises(ValueError, match="of symdiff"):
        sd.elementwise("exp", T)
    for bad in ("1x", "a-b", "double", "for", "x y", ""):
        with pytest.raises(ValueError, match="safe op name"):
            sd.elementwise(bad, T)
    with pytest.raises(ValueError, match="one symbol"):
        sd.elementwise("two_symbols", T * sympy.Symbol("u"))


def _sin_rule(ins, out, ct):
    return [sd.cos(ins[0]) * ct]


def test_custom_vjp_through_grad_optimize_compile_and_jacobian():
    x = sd.tensor("x", (4,))
    csin = sd.custom_vjp(sd.sin, _sin_rule)
    f = sd.sum(csin(x) * x)
    sd.check_grads(f, [x], {x: V})
    g = sd.optimize(sd.grad(f, x))
    np.testing.assert_allclose(sd.evaluate(g, {x: V}), np.sin(V) + V * np.cos(V), rtol=1e-12)
    assert "cos(x)" in sd.pretty(g)
    value, grad = sd.compile([f, g], [x])(V)
    np.testing.assert_allclose(value, np.sum(np.sin(V) * V), rtol=1e-12)
    np.testing.assert_allclose(grad, np.sin(V) + V * np.cos(V), rtol=1e-12)
    J = sd.evaluate(sd.jacobian(csin(x), x, mode="reverse"), {x: V})
    np.testing.assert_allclose(J, np.diag(np.cos(V)), atol=1e-14)


def test_a_wrong_hand_written_vjp_is_reported():
    x = sd.tensor("x", (4,))
    wrong = sd.custom_vjp(sd.sin, lambda ins, out, ct: [-sd.cos(ins[0]) * ct])
    with pytest.raises(AssertionError, match="reverse mode"):
        sd.check_grads(sd.sum(wrong(x)), [x], {x: V})
    badly_shaped = sd.custom_vjp(sd.sin, lambda ins, out, ct: [sd.sum(ct)])
    with pytest.raises(ValueError, match="cotangent of input 0 has shape"):
        sd.grad(sd.sum(badly_shaped(x) * x), x)
