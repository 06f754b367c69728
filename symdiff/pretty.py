"""Formulas that read like the textbook: Unicode (``sd.pretty``) and LaTeX (``sd.latex``).

Matrix notation: Xᵀ, · for matrix products only, ⊙ for elementwise products of
tensors (a scalar factor stays juxtaposed: 2x, 2·Xᵀ·r), σ for the sigmoid, 1[·]
for indicators, Σ with the axis for sums, softmax/logsumexp by name. No printed
operation hides one that changes the meaning: vectors are columns, so a vector
reshaped to a row prints vᵀ and an outer product a·bᵀ; a vector broadcast against
the identity or along a matrix's rows is diag(v) (I ⊙ v, M·diag(v)); Σ(A ⊙ I) is
tr(A); the identity is I, or Iₙ where no other factor gives its size; a reshape
that moves entries prints as reshape(…). Broadcasting along rows stays implicit,
as in numpy (a column spread along the rows is v·1ᵀ). A subexpression used more
than once is named once (t₁ = …) before the formulas; nodes the user named
(``sd.name``) print by name with their definition listed first. Derivatives
made by ``sd.grad`` print as ∂L/∂W; a list that labels its positions
(``names.Labelled``) prints each position with its own label, even where two
positions hold the same node.

>>> import symdiff as sd
>>> X, W = sd.tensor("X", ("m", "n")), sd.tensor("W", ("n", "k"))
>>> y = sd.tensor("y", ("m",), "int64")
>>> L = sd.name(sd.softmax_cross_entropy(X @ W, y), "L")
>>> print(sd.pretty(sd.optimize(sd.grad(L, W))))
∂L/∂W = Xᵀ·(softmax(X·W) − onehot(y)) / m
"""

from __future__ import annotations

from .ops.registry import function
from .printing import notes
from .printing.driver import walk
from .printing.notation import LATEX, UNICODE


@function
def pretty(exprs, show_shapes: bool = False) -> str:
    """Unicode formulas, one per line (shared and named pieces defined first)."""
    return "\n".join(walk(exprs, UNICODE, show_shapes) + notes.lines(exprs))  # + "stabilized: …" lines


@function
def latex(exprs, show_shapes: bool = False) -> str:
    """LaTeX: one expression as a formula; several as an ``aligned`` block.

    >>> import symdiff as sd
    >>> x = sd.symbols("x")
    >>> sd.latex(sd.sigmoid(x) / 2)
    '\\\\frac{\\\\sigma\\\\left(x\\\\right)}{2}'
    """
    lines = walk(exprs, LATEX, show_shapes)
    if len(lines) == 1:
        return lines[0].replace(" &= ", " = ")
    return "\\begin{aligned}\n" + " \\\\\n".join(
        line if "&=" in line else "&" + line for line in lines) + "\n\\end{aligned}"
