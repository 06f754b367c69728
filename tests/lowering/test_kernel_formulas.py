"""explain() and the kernel comments: a source map from the formula, in the user's names, to the
generated code, which the user's names (arbitrary text, as far as the comments go) never leave."""

import re

import numpy as np
from symdiff.lowering.programs.cuda import CudaProgram
from symdiff.lowering.render.formula import comment, one_line

import symdiff as sd
import symdiff.node

# a newline and a */ to end the comment, a backslash to splice the next line into it, a trigraph,
# a right-to-left override to hide code, quotes; and a backslash last, where a splice would be
HOSTILE = 'W\n*/ int pwned = 1; /* "q" \\ ??/ \u202e \u2028\\'


def _mlp_step():
    X, y = sd.tensor("X", ("m", 4), "float32"), sd.tensor("y", ("m",), "int64")
    W0, b0 = sd.tensor("W0", (4, 8), "float32"), sd.tensor("b0", (8,), "float32")
    W1, b1 = sd.tensor("W1", (8, 3), "float32"), sd.tensor("b1", (3,), "float32")
    L = sd.name(sd.softmax_cross_entropy(sd.relu(X @ W0 + b0) @ W1 + b1, y), "L")
    params = [W0, b0, W1, b1]
    updates = {p: p - 0.1 * g for p, g in zip(params, sd.grad(L, params))}
    return sd.compile([L], [X, y, *params], updates=updates)


def _arrays(m=16):
    rng = np.random.default_rng(3)
    return [rng.standard_normal((m, 4)).astype(np.float32), rng.integers(0, 3, m)] + [
        rng.standard_normal(s).astype(np.float32) for s in [(4, 8), (8,), (8, 3), (3,)]]


def _code(source):
    """What the compiler reads as code: the source without its comment lines."""
    return [line for line in source.splitlines() if not line.lstrip().startswith("//")]


def test_explain_shows_a_training_step_in_the_users_names():
    lines = _mlp_step().explain(m=16).splitlines()
    formulas = [line.split(": ", 1)[1].split("  (fused")[0] for line in lines[:-1]]
    assert formulas[0] == "t0[16,8] = X·W0"
    assert re.fullmatch(r"t[0-9]+\[16,8\] = t[0-9]+ \+ b0", formulas[1]), formulas
    assert any(re.fullmatch(r"out0\[\] = L = CE\(t[0-9]+, y\)", f) for f in formulas), formulas
    assert any(re.fullmatch(r"t[0-9]+\[16,3\] = \(t[0-9]+ − onehot\(y\)\) / m", f) for f in formulas), formulas
    # the gradients' GEMMs accumulate into the weights: the update, then what the gradient is
    assert any(re.fullmatch(r"in2\[4,8\] = 1·W0 \+ -0\.1·∂L/∂W0, ∂L/∂W0 = Xᵀ·t[0-9]+", f) for f in formulas)
    assert any(re.fullmatch(r"in4\[8,3\] = 1·W1 \+ -0\.1·∂L/∂W1, ∂L/∂W1 = t[0-9]+ᵀ·t[0-9]+", f) for f in formulas)
    assert any(re.fullmatch(r"in3\[8\] = b0 − 0\.1·t[0-9]+", f) for f in formulas), formulas
    # the inputs print by your names only; the last line says which buffer holds which
    assert not [f for f in formulas if re.search(r"\bin[0-9]+\b", f.split(" = ", 1)[1])]
    assert lines[-1] == "inputs: in0 = X, in1 = y, in2 = W0, in3 = b0, in4 = W1, in5 = b1"


def test_each_kernel_carries_its_formula_as_a_comment_deterministically():
    step = _mlp_step()
    step(*_arrays())
    source = step.source.splitlines()
    kernels = step.explain().splitlines()[:-1]
    assert len(kernels) == len([line for line in source if line.startswith("static int k_")])
    for line in kernels:
        name, formula = line.split(": ", 1)
        at = next(i for i, text in enumerate(source) if text.startswith(f"static int {name}("))
        written, shape_and_formula = formula.split("  (fused")[0].split("[", 1)
        # the same buffer and formula (the source writes run-time dimensions as D0, explain the sizes)
        assert source[at - 1].startswith(f"// {written}[")
        assert source[at - 1].endswith("] = " + shape_and_formula.split("] = ", 1)[1])
    assert "// inputs: in0 = X, in1 = y, in2 = W0, in3 = b0, in4 = W1, in5 = b1" in source
    again = _mlp_step()
    again(*_arrays())
    assert again.source == step.source  # same graph and shapes, same bytes


def test_a_hostile_name_cannot_leave_its_comment(monkeypatch):
    def program(weight_name, backend="cpu"):
        X, W = sd.tensor("X", (5, 4)), sd.tensor(weight_name, (4, 3))
        return sd.compile([sd.tanh(X @ W) - W[0]], [X, W], backend=backend)

    plain = program("W")
    monkeypatch.setattr(symdiff.node, "check_name", lambda name: name)  # as if a name could be any text
    hostile = program(HOSTILE)
    rng = np.random.default_rng(0)
    x, w = rng.standard_normal((5, 4)), rng.standard_normal((4, 3))
    [got] = hostile(x, w)  # it compiles and runs
    np.testing.assert_allclose(got, np.tanh(x @ w) - w[0], rtol=1e-12)
    plain(x, w)
    assert _code(hostile.source) == _code(plain.source)  # nothing of the name became code
    changed = [line for line in hostile.source.splitlines() if line not in plain.source.splitlines()]
    assert changed and all(line.lstrip().startswith("//") for line in changed)
    for line in changed:
        assert "*/" not in line and "/*" not in line and "??" not in line and "\u202e" not in line
        assert all(ch.isprintable() for ch in line) and not re.search(r"\\\s*$", line)
    assert any("W\\x0a* / int pwned = 1; / * \"q\" \\x5c \\x3f\\x3f/ \\u202e \\u2028\\x5c" in line for line in changed)
    assert len(hostile.explain().splitlines()) == len(plain.explain().splitlines())  # one line each still
    # the CUDA program is written by the same comment function
    X, W = sd.tensor("X", (5, 4)), sd.tensor(HOSTILE, (4, 3))
    cuda = CudaProgram([sd.tanh(X @ W)], [X, W]).translate({}).source
    assert "pwned = 1; / *" in cuda and all(ch.isprintable() for line in cuda.splitlines() for ch in line)
    assert not [line for line in cuda.splitlines() if "pwned" in line and not line.lstrip().startswith("//")]


def test_comments_and_lines_escape_what_could_end_them():
    assert one_line("a\nb\\c\u2028d\U0001f600é") == "a\\x0ab\\x5cc\\u2028d\U0001f600é"  # printable stays
    assert comment("x */ y /* z ?? \\") == "// x * / y / * z \\x3f\\x3f \\x5c"
    assert comment("a*/*/b//c") == "// a* / * /b/ /c"
