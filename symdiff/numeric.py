"""Numeric differentiation (float64 central differences) and ``check_grads``, the test oracle.

``check_grads`` follows JAX's: finite differences along a random direction
against forward mode (J·v) and reverse mode (vᵀ·Jᵀu via the identity
⟨J·t, c⟩ = ⟨t, Jᵀ·c⟩), repeated on the derivative itself for higher orders.

>>> import symdiff as sd
>>> x, y = sd.symbols("x y")
>>> [round(float(g), 6) for g in sd.numeric_grad(sd.sin(x) * y, [x, y], at={x: 0.5, y: 2.0})]
[1.755165, 0.479426]
>>> sd.check_grads(sd.sin(x) * sd.exp(y), [x, y], at={x: 0.5, y: 2.0}, order=2)
"""

from __future__ import annotations

import numpy as np

from .autodiff import _check_wrt, grad, jvp, vjp
from .evaluate import evaluate
from .node import Node, as_node, tensor
from .ops.registry import function


def _value_of(env, leaf):
    for k, v in env.items():
        if k is leaf or (isinstance(k, str) and k == leaf.name):
            return v
    raise KeyError(f"no value for {leaf.name} in `at`")


@function
def numeric_grad(f, wrt, at, eps: float | None = None):
    """Gradient of scalar ``f`` by central differences: arrays, one per leaf of ``wrt``.

    Each element is perturbed by ``eps·max(1, |x|)`` (default 1e-6, or 1e-3 when the graph
    computes in float32); cost: two evaluations per element.
    """
    f = as_node(f)
    if eps is None:
        eps = 1e-3 if f.dtype == "float32" else 1e-6
    if f.shape != ():
        raise ValueError("numeric_grad needs a scalar function; use check_grads for others")
    nodes = _check_wrt(wrt)
    env = {k: v for k, v in at.items()}
    results = []
    for w in nodes:
        base = np.array(_value_of(env, w), dtype=np.float64)
        g = np.zeros_like(base)
        for index in np.ndindex(base.shape):
            h = eps * max(1.0, abs(base[index]))
            values = []
            for sign in (1.0, -1.0):
                shifted = base.copy()
                shifted[index] += sign * h
                values.append(float(evaluate(f, _with(env, w, shifted))))
            g[index] = (values[0] - values[1]) / (2 * h)
        results.append(g)
    return results[0] if isinstance(wrt, Node) else results


def _with(env, leaf, value):
    out = {k: v for k, v in env.items() if not (k is leaf or (isinstance(k, str) and k == leaf.name))}
    out[leaf] = value
    return out


def _directional(f, nodes, env, direction, eps):
    """(f(x + h·v) − f(x − h·v)) / 2h in float64."""
    plus, minus = dict(env), dict(env)
    for w, v in zip(nodes, direction):
        x = np.asarray(_value_of(env, w), dtype=np.float64)
        plus, minus = _with(plus, w, x + eps * v), _with(minus, w, x - eps * v)
    hi, lo = evaluate(f, plus), evaluate(f, minus)
    return (np.asarray(hi, np.float64) - np.asarray(lo, np.float64)) / (2 * eps)


def _close(a, b, rtol, atol, what):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    scale = max(1.0, float(np.max(np.abs(b))) if b.size else 1.0)
    if not np.allclose(a, b, rtol=rtol, atol=atol * scale, equal_nan=False):
        err = float(np.max(np.abs(a - b))) if a.size else 0.0
        raise AssertionError(f"{what}: max abs error {err:.3e}\n got  {a}\n want {b}")


@function
def check_grads(f, wrt, at, order: int = 2, modes=("forward", "reverse"), eps: float | None = None,
                rtol: float | None = None, atol: float | None = None, seed: int = 0):
    """Check ``f``'s derivatives at ``at`` like JAX's ``check_grads``; raise AssertionError if off.

    Compares central differences along a random direction with forward mode
    (J·v) and reverse mode (uᵀJ·v through vjp), checks ⟨J·t, c⟩ = ⟨t, Jᵀ·c⟩,
    then repeats on a scalar derivative function up to ``order``. The direction
    and cotangent enter as leaves, so symbolic shapes work. Float32 graphs get
    float32-sized steps and tolerances.
    """
    f = as_node(f)
    nodes = _check_wrt(wrt)
    single = "float32" in (f.dtype, *[w.dtype for w in nodes])
    eps = eps if eps is not None else (1e-3 if single else 1e-5)
    rtol = rtol if rtol is not None else (2e-2 if single else 1e-5)
    atol = atol if atol is not None else (2e-2 if single else 1e-6)
    rng = np.random.default_rng(seed)
    env = dict(at)
    direction = [rng.standard_normal(np.shape(_value_of(env, w))) for w in nodes]
    u_value = rng.standard_normal(np.shape(evaluate(f, env)))
    tangents = [tensor(f"check_t{seed}_{i}", w.shape, w.dtype) for i, w in enumerate(nodes)]
    u = tensor(f"check_u{seed}", f.shape, f.dtype)
    env.update(zip(tangents, direction))
    env[u] = u_value
    numeric = _directional(f, nodes, env, direction, eps)
    if "forward" in modes:
        _close(evaluate(jvp(f, nodes, tangents), env), numeric, rtol, atol,
               f"forward mode J·v of {f} differs from central differences")
    if "reverse" in modes:
        pulled = evaluate(vjp(f, nodes, u), env)
        projected = sum(float(np.sum(p * v)) for p, v in zip(pulled, direction))
        _close(projected, float(np.sum(u_value * numeric)), rtol, atol,
               f"reverse mode uᵀJ·v of {f} differs from central differences")
    if "forward" in modes and "reverse" in modes:
        lhs = float(np.sum(np.asarray(evaluate(jvp(f, nodes, tangents), env), np.float64) * u_value))
        rhs = sum(float(np.sum(p * v)) for p, v in zip(evaluate(vjp(f, nodes, u), env), direction))
        _close(lhs, rhs, 1e-4 if single else 1e-9, 1e-4 if single else 1e-12,
               f"<J·t, c> != <t, Jᵀ·c> for {f}")
    if order > 1:
        # the next order: differentiate the scalar uᵀ·J·v, itself built by reverse mode
        gs = grad((u * f).sum(), nodes, mode="reverse")
        inner = sum(((g * t).sum() for g, t in zip(gs[1:], tangents[1:])), (gs[0] * tangents[0]).sum())
        check_grads(inner, nodes, env, order - 1, modes, eps, rtol, atol, seed + 1)
