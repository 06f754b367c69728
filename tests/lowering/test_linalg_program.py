"""The matrix ops compiled for the cpu backend (lowering/render/cpu_linalg.py, cpu/linalg.hpp):
results equal numpy's, batched, strided and at run-time sizes; singular matrices are an error."""

import numpy as np
import pytest
from symdiff.lowering.plan.schedule import LoweringError, schedule
from symdiff.lowering.render import cpu_unit, cuda_unit

import symdiff as sd

pytestmark = pytest.mark.usefixtures("module_program_cache")  # tests/conftest.py
TOL = {"float64": {"rtol": 1e-10, "atol": 1e-12}, "float32": {"rtol": 1e-4, "atol": 1e-5}}


def _well_conditioned(rng, *shape):
    n = shape[-1]
    return rng.uniform(-1, 1, shape) + n * np.eye(n)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_compiled_results_equal_numpy(dtype):
    rng = np.random.default_rng(3)
    A, b, v = sd.tensor("A", (3, 2, 6, 6), dtype), sd.tensor("b", (6, 4), dtype), sd.tensor("v", (6,), dtype)
    C, D = sd.tensor("C", (4, 5), dtype), sd.tensor("D", (3, 2), dtype)
    outputs = [sd.inv(A), sd.det(A), sd.logdet(A), sd.slogdet_sign(-A), sd.solve(A, b), sd.solve(A[1, 0], v),
               sd.inv(sd.transpose(A, (0, 1, 3, 2)) * 2.0), sd.diag(v), sd.diagonal(C, 1), sd.kron(C, D),
               sd.norm(C), sd.norm(v)]
    a = _well_conditioned(rng, 3, 2, 6, 6)
    at = {A: a.astype(dtype), b: rng.normal(size=(6, 4)).astype(dtype), v: rng.normal(size=6).astype(dtype),
          C: rng.normal(size=(4, 5)).astype(dtype), D: rng.normal(size=(3, 2)).astype(dtype)}
    x = {k: val.astype(np.float64) for k, val in at.items()}
    want = [np.linalg.inv(x[A]), np.linalg.det(x[A]), np.linalg.slogdet(x[A])[1], np.linalg.slogdet(-x[A])[0],
            np.linalg.solve(x[A], np.broadcast_to(x[b], (3, 2, 6, 4))), np.linalg.solve(x[A][1, 0], x[v]),
            np.linalg.inv(np.swapaxes(x[A], -1, -2) * 2), np.diag(x[v]), np.diagonal(x[C], 1), np.kron(x[C], x[D]),
            np.linalg.norm(x[C]), np.linalg.norm(x[v])]
    program = sd.compile(outputs, list(at))
    got = program(*at.values())
    for expr, g, w in zip(outputs, got, want):
        assert g.shape == w.shape and g.dtype == np.dtype(dtype), str(expr)
        np.testing.assert_allclose(g, w, **TOL[dtype], err_msg=str(expr))


def test_gradients_compile_and_equal_the_reference_evaluator():
    rng = np.random.default_rng(4)
    X, b = sd.tensor("X", (5, 5)), sd.tensor("b", (5,))
    f = sd.logdet(X) + sd.sum(sd.solve(X, b) ** 2) + sd.norm(sd.inv(X)) * sd.det(X)
    grads = sd.grad(f, [X, b])
    at = {X: _well_conditioned(rng, 5, 5), b: rng.normal(size=5)}
    got = sd.compile(grads, [X, b])(at[X], at[b])
    for g, w in zip(got, sd.evaluate(grads, at)):
        np.testing.assert_allclose(g, w, rtol=1e-10, atol=1e-12)


def test_run_time_sizes():
    rng = np.random.default_rng(5)
    A, B = sd.tensor("A", ("m", "n", "n")), sd.tensor("B", ("n", "k"))
    outputs = [sd.inv(A), sd.logdet(A), sd.solve(A, B), sd.kron(B, B), sd.norm(A)]
    program = sd.compile(outputs, [A, B])
    for m, n, k in [(2, 3, 2), (4, 7, 1)]:
        at = {A: _well_conditioned(rng, m, n, n), B: rng.normal(size=(n, k))}
        for g, w in zip(program(at[A], at[B]), sd.evaluate(outputs, at)):
            np.testing.assert_allclose(g, w, rtol=1e-10, atol=1e-12)
    assert program.stats["runtime_dims"]


def test_a_singular_matrix_is_an_error_not_garbage():
    A, b = sd.tensor("A", (3, 2, 2)), sd.tensor("b", (2, 1))
    program = sd.compile([sd.inv(A), sd.solve(A, b)], [A, b])
    singular = np.array([np.eye(2), [[1.0, 2.0], [2.0, 4.0]], np.eye(2)])
    message = r"inv: the matrix at batch index 1 of \(3, 2, 2\) is singular"
    with pytest.raises(RuntimeError, match=message):
        program(singular, np.ones((2, 1)))
    with pytest.raises(ValueError, match=message):  # the evaluator says the same
        sd.evaluate(sd.inv(A), {A: singular})
    det_program = sd.compile([sd.det(A), sd.logdet(A), sd.slogdet_sign(A)], [A])
    det, logdet, sign = det_program(singular)
    assert det.tolist() == [1.0, 0.0, 1.0] and logdet.tolist() == [0.0, -np.inf, 0.0] and sign.tolist() == [1, 0, 1]


def test_the_cuda_backend_refuses_them_clearly():
    A = sd.tensor("A", (3, 3), "float32")
    for expr in (sd.inv(A), sd.kron(A, A)):
        with pytest.raises(LoweringError, match="the cuda backend has no renderer for kernel kind 'linalg"):
            cuda_unit.generate(schedule([expr], [A]))


def test_generated_source_names_the_header_and_its_digest():
    A = sd.tensor("A", (4, 4))
    first = cpu_unit.generate(schedule([sd.det(A)], [A])).source
    assert first == cpu_unit.generate(schedule([sd.det(A)], [A])).source
    assert '#include "symdiff/cpu/linalg.hpp"' in first and "// linalg.hpp sha256:" in first
