"""Rich display: derivative lists render as LaTeX and stay lists; nodes render as HTML."""

import symdiff as sd
from symdiff.names import Labelled


def test_grad_result_is_a_list_with_latex():
    x, y = sd.symbols("x y")
    g = sd.grad(sd.sin(x) * y, [x, y])
    gx, gy = g
    assert isinstance(g, list) and isinstance(g, Labelled) and g[0] is gx and len(g) == 2
    assert repr(g) == repr(list(g))  # list repr unchanged
    latex = g._repr_latex_()
    assert latex.startswith("$\\begin{aligned}") and latex.count("&=") == 2
    assert "\\frac{\\partial f}{\\partial x}" in latex and "\\cos" in latex
    assert sd.pretty(g).splitlines()[0].startswith("∂f/∂x")
    assert len(sd.optimize(g)) == 2


def test_hessian_and_jacobian_render_every_entry():
    x, y = sd.symbols("x y")
    H = sd.hessian(x**2 * y, [x, y])
    assert len(H) == 2 and len(H[0]) == 2
    latex = H._repr_latex_()
    assert latex.count("&=") == 4 and "\\partial^2 f" in latex
    v = sd.tensor("v", (3,))
    A = sd.tensor("A", (2, 3))
    J = sd.jacobian(sd.tanh(A @ v), [A, v])
    assert J.mode_note.startswith("reverse mode") and "text{reverse mode" in J._repr_latex_()


def test_node_html_shows_formula_shape_and_dtype():
    X = sd.tensor("X", ("m", "n"), "float32")
    html = (sd.exp(X) + 1)._repr_html_()
    assert "\\exp" in html and "(m, n)" in html and "float32" in html
