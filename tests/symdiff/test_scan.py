"""sd.scan: values equal an unrolled numpy loop; forward, reverse and numeric derivatives agree
(first and second order, batched Jacobians); sd.compare runs every mode; the printers write
the body; bad input is a clear error."""

import numpy as np
import pytest

import symdiff as sd
from symdiff.shapes import ShapeError

T, B, H = 4, 2, 3


def rnn(reverse=False):
    h0, xs = sd.tensor("h0", (B, H)), sd.tensor("xs", (T, B, H))
    W, U = sd.tensor("W", (H, H)), sd.tensor("U", (H, H))
    hT, hs = sd.scan(lambda h, x: (sd.tanh(h @ W + x @ U),) * 2, h0, xs, names="h", reverse=reverse)
    rng = np.random.default_rng(1)
    vals = {h0: rng.normal(size=(B, H)), xs: rng.normal(size=(T, B, H)),
            W: 0.5 * rng.normal(size=(H, H)), U: 0.5 * rng.normal(size=(H, H))}
    return (h0, xs, W, U), hT, hs, vals


def unrolled(vals, leaves, reverse=False):
    h0, xs, W, U = leaves
    h, hs = vals[h0], [None] * T
    for t in (range(T - 1, -1, -1) if reverse else range(T)):
        h = np.tanh(h @ vals[W] + vals[xs][t] @ vals[U])
        hs[t] = h
    return h, np.stack(hs)


@pytest.mark.parametrize("reverse", [False, True])
def test_values_equal_an_unrolled_loop(reverse):
    leaves, hT, hs, vals = rnn(reverse)
    got_h, got_hs = sd.evaluate([hT, hs], vals)
    want_h, want_hs = unrolled(vals, leaves, reverse)
    np.testing.assert_allclose(got_h, want_h, rtol=1e-13, atol=1e-13)
    np.testing.assert_allclose(got_hs, want_hs, rtol=1e-13, atol=1e-13)


@pytest.mark.parametrize("reverse", [False, True])
def test_gradients_forward_reverse_numeric_first_and_second_order(reverse):
    leaves, hT, hs, vals = rnn(reverse)
    loss = sd.sum(hs * hs) + sd.sum(sd.sin(hT))
    sd.check_grads(loss, list(leaves), vals, order=2)  # raises when a mode disagrees with float64 differences


def test_gradient_equals_the_unrolled_graphs():
    (h0, xs, W, U), hT, hs, vals = rnn()
    loss = sd.sum(hs * hs) + sd.sum(hT)
    h, total = h0, 0.0
    for t in range(T):
        h = sd.tanh(h @ W + xs[t] @ U)
        total = total + sd.sum(h * h)
    unrolled_loss = total + sd.sum(h)
    got = sd.evaluate(sd.grad(loss, [W, U, h0, xs]), vals)
    want = sd.evaluate(sd.grad(unrolled_loss, [W, U, h0, xs]), vals)
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=1e-12, atol=1e-12)


def test_batched_jacobians_agree():
    (_, _, W, _), _, hs, vals = rnn()
    rev, fwd = sd.evaluate([sd.jacobian(hs, W, mode="reverse"), sd.jacobian(hs, W, mode="forward")], vals)
    assert rev.shape == (T, B, H, H, H)
    np.testing.assert_allclose(rev, fwd, rtol=1e-12, atol=1e-12)
    assert np.abs(rev).max() > 0.1


def test_two_carries_and_several_outputs_like_an_lstm_cell():
    F = 2
    x = sd.tensor("x", (T, B, F))
    Wx, Wh = sd.tensor("Wx", (F, 4 * H)), sd.tensor("Wh", (H, 4 * H))

    def cell(state, xt):
        h, c = state
        i, f, g, o = sd.split(xt @ Wx + h @ Wh, 4, axis=1)
        c2 = sd.sigmoid(f) * c + sd.sigmoid(i) * sd.tanh(g)
        h2 = sd.sigmoid(o) * sd.tanh(c2)
        return (h2, c2), (h2, c2 * 2.0)

    zeros = sd.constant(np.zeros((B, H)))
    (hT, cT), (hs, cs2) = sd.scan(cell, (zeros, zeros), x, names=("h", "c"))
    rng = np.random.default_rng(2)
    vals = {x: rng.normal(size=(T, B, F)), Wx: 0.4 * rng.normal(size=(F, 4 * H)),
            Wh: 0.4 * rng.normal(size=(H, 4 * H))}
    loss = sd.sum(hs * cs2) + sd.sum(cT * cT) + sd.sum(hT)
    sd.check_grads(loss, [x, Wx, Wh], vals)
    h = c = np.zeros((B, H))
    sig = lambda v: 1 / (1 + np.exp(-v))
    for t in range(T):
        i, f, g, o = np.split(vals[x][t] @ vals[Wx] + h @ vals[Wh], 4, axis=1)
        c = sig(f) * c + sig(i) * np.tanh(g)
        h = sig(o) * np.tanh(c)
    np.testing.assert_allclose(sd.evaluate(hT, vals), h, rtol=1e-13)
    np.testing.assert_allclose(sd.evaluate(cT, vals), c, rtol=1e-13)


def test_compare_runs_every_mode_and_they_agree():
    leaves, _, hs, vals = rnn()
    small = {k: v for k, v in vals.items()}
    report = sd.compare(sd.sum(hs * hs), [leaves[2]], small, repeat=1)
    text = str(report)
    for mode in ("symbolic", "symbolic-cse", "forward", "reverse", "numeric"):
        assert f"| {mode} |" in text
    errors = [float(line.split("|")[2]) for line in text.splitlines() if line.startswith("| ") and "e-" in line.split("|")[2]]
    assert errors and max(errors) < 1e-8


def test_printed_body_and_bptt_formula():
    xs, w = sd.tensor("xs", (5,)), sd.symbols("w")
    _, hs = sd.scan(lambda h, x: (sd.tanh(w * h + x),) * 2, sd.constant(0.0), xs, names="h")
    assert sd.pretty(hs) == "scan(h, xs_t ↦ tanh(w·h + xs_t); h = 0, xs_t ∈ xs).y"
    assert "\\mapsto" in sd.latex(hs) and "\\operatorname{scan}" in sd.latex(hs)
    grad = sd.pretty(sd.grad(sd.sum(hs), w))
    # BPTT: a reverse scan carrying h̄ and the running sum w̄, its result the sum's final value
    assert "reverse_scan(h̄, w̄, h, xs_t" in grad and grad.endswith(".w̄")
    assert "w̄ + " in grad


def test_cost_is_length_times_the_body():
    x = sd.tensor("x", (7, 3))
    _, ys = sd.scan(lambda c, xt: (c + xt * 2.0, c), sd.constant(np.zeros(3)), x)
    flops = sd.cost(ys)["flops"]
    assert flops == 7 * 6  # a multiply and an add per element and step


def test_closure_values_become_inputs_and_their_gradients_flow():
    x, a = sd.tensor("x", (3,)), sd.symbols("a")
    total, _ = sd.scan(lambda s, xt: (s + a * xt, None), sd.constant(0.0), x)
    g = sd.evaluate(sd.grad(total, a), {x: [1.0, 2.0, 3.0], a: 2.0})
    assert float(g) == 6.0


def test_length_without_xs_and_zero_length():
    c, _ = sd.scan(lambda s, _: (s * 2.0, None), sd.constant(1.0), length=5)
    assert float(sd.evaluate(c)) == 32.0
    x = sd.tensor("x", (0, 2))
    c0, ys = sd.scan(lambda s, xt: (s + xt, s), sd.constant(np.ones(2)), x)
    v, y = sd.evaluate([c0, ys], {x: np.zeros((0, 2))})
    np.testing.assert_array_equal(v, [1.0, 1.0])
    assert y.shape == (0, 2)


def test_bad_input_is_a_clear_error():
    xs = sd.tensor("xs", (4, 3))
    with pytest.raises(ShapeError, match="carry of shape \\(3, 3\\).*keeps its shape"):
        sd.scan(lambda h, x: (sd.reshape(x, (3, 1)) * h, None), sd.constant(np.zeros(3)), xs)
    with pytest.raises(ShapeError, match="every sequence in xs must have 4 steps"):
        sd.scan(lambda h, x: (h, None), sd.constant(0.0), (xs, sd.tensor("ys", (5, 3))))
    with pytest.raises(TypeError, match="step must be a function"):
        sd.scan(sd.constant(1.0), sd.constant(0.0), xs)
    with pytest.raises(TypeError, match="pair"):
        sd.scan(lambda h, x: h, sd.constant(0.0), xs)
    with pytest.raises(ValueError, match="give xs or length"):
        sd.scan(lambda h, x: (h, None), sd.constant(0.0))


def test_the_parser_cannot_call_scan_with_python():
    with pytest.raises((sd.ParseError, TypeError)):
        sd.parse("scan(x, x, x)")


# -- lowered: the body compiled once, called per step ------------------------------------------


def _lstm_loss(batch, steps=5, feat=2, hidden=3, reverse=False):
    x = sd.tensor("x", (steps, batch, feat))
    Wx, Wh = sd.tensor("Wx", (feat, 4 * hidden)), sd.tensor("Wh", (hidden, 4 * hidden))
    h0 = sd.tensor("h0", (batch, hidden))

    def cell(state, xt):
        h, c = state
        i, f, g, o = sd.split(xt @ Wx + h @ Wh, 4, axis=1)
        c2 = sd.sigmoid(f) * c + sd.sigmoid(i) * sd.tanh(g)
        h2 = sd.sigmoid(o) * sd.tanh(c2)
        return (h2, c2), h2

    (hT, cT), hs = sd.scan(cell, (h0, h0 * 0.5), x, names=("h", "c"), reverse=reverse)
    loss = sd.sum(hs * hs) + sd.sum(cT) + sd.sum(sd.tanh(hT))
    return loss, [x, Wx, Wh, h0]


@pytest.mark.parametrize("batch,reverse", [(3, False), (3, True), ("m", False)])
def test_compiled_scan_and_its_gradients_equal_the_reference(batch, reverse):
    loss, leaves = _lstm_loss(batch, reverse=reverse)
    grads = sd.grad(loss, leaves)
    program = sd.compile([loss] + grads, leaves)
    rng = np.random.default_rng(5)
    for b in ([3] if batch == 3 else [2, 7]):
        vals = {leaf: 0.5 * rng.normal(size=tuple(d if isinstance(d, int) else b for d in leaf.shape))
                for leaf in leaves}
        got = program(*[vals[leaf] for leaf in leaves])
        want = sd.evaluate([loss] + grads, vals)
        for g, w in zip(got, want):
            np.testing.assert_allclose(g, w, rtol=1e-11, atol=1e-12)


def test_compiled_source_does_not_grow_with_the_number_of_steps():
    sizes = []
    for steps in (4, 32):
        loss, leaves = _lstm_loss(2, steps=steps)
        program = sd.compile([loss] + sd.grad(loss, leaves), leaves)
        program(*[np.zeros(tuple(leaf.shape)) for leaf in leaves])
        sizes.append(len(program.source))
    assert abs(sizes[1] - sizes[0]) < 200, sizes  # only the step count's digits differ
