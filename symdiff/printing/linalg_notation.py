"""How the matrix notation writes the ops of :mod:`symdiff.ops.matrix`, as in the Matrix
Cookbook: A⁻¹ (and A⁻ᵀ for its transpose), det(A), log|det A|, A⁻¹·b for solve, diag(v),
A ⊗ B, ‖x‖ (‖X‖_F for a matrix); in LaTeX ``A^{-1}``, ``A^{-\\top}``, ``A \\otimes B``,
``\\left\\| x \\right\\|``.

:func:`rules` gives the entries :mod:`.notation` adds to its table (``RULES``): a rule per op,
and a transpose rule that writes (A⁻¹)ᵀ as A⁻ᵀ and hands every other transpose to the rule
it replaces. This module imports nothing of :mod:`.notation` (which imports it), only the
walk's :func:`~.driver.wrap` and the precedence ladder.

>>> import symdiff as sd
>>> X, A, B = (sd.tensor(name, ("n", "n")) for name in "XAB")
>>> print(sd.pretty(sd.optimize(sd.grad(sd.logdet(X), X))))
∂f/∂X = X⁻ᵀ
>>> print(sd.pretty(sd.optimize(sd.grad(sd.det(X), X))))
∂f/∂X = det(X)·X⁻ᵀ
>>> print(sd.pretty(sd.solve(A, B)), "|", sd.latex(sd.kron(A, B)))
A⁻¹·B | A \\otimes B
"""

from __future__ import annotations

from ..ops.registry import ATOM, POSTFIX, PRODUCT
from .driver import wrap


def _swaps_last_two(node):
    k = node.ndim
    return k >= 2 and tuple(node.attr("axes")) == tuple(range(k - 2)) + (k - 1, k - 2)


LATEX_EXPONENTS = {"-1": "-1", "-T": "-\\top"}


def _power(style, base, exponent):
    """base⁻¹ / base⁻ᵀ (Unicode) or {base}^{-1} / {base}^{-\\top} (LaTeX)."""
    if style.unicode:
        return base + {"-1": "⁻¹", "-T": "⁻ᵀ"}[exponent]
    return f"{{{base}}}^{{{LATEX_EXPONENTS[exponent]}}}"


def _inv(node, args, style, seen):
    a, pa = args[0]
    return _power(style, wrap(a, pa, ATOM), "-1"), POSTFIX


def _det_of(style, text, prec):
    """det A inside another function (log|det A|), det(A) on its own."""
    return f"det {wrap(text, prec, ATOM)}" if style.unicode else f"\\operatorname{{det}} {wrap(text, prec, ATOM)}"


def _det(node, args, style, seen):
    return style.func("det", [args[0][0]]), ATOM


def _logdet(node, args, style, seen):
    inner = _det_of(style, *args[0])
    return (f"log|{inner}|", ATOM) if style.unicode else (f"\\log\\left|{inner}\\right|", ATOM)


def _sign(node, args, style, seen):
    return style.func("sign", [_det_of(style, *args[0])]), ATOM


def _solve(node, args, style, seen):
    (a, pa), (b, pb) = args
    return f"{_power(style, wrap(a, pa, ATOM), '-1')}{style.matmul}{wrap(b, pb, PRODUCT + 1)}", PRODUCT


def _diag(node, args, style, seen):
    return style.func("diag", [args[0][0]]), ATOM


def _kron(node, args, style, seen):
    (a, pa), (b, pb) = args
    symbol = " ⊗ " if style.unicode else " \\otimes "
    return f"{wrap(a, pa, PRODUCT)}{symbol}{wrap(b, pb, PRODUCT + 1)}", PRODUCT


def _norm(node, args, style, seen):
    a = args[0][0]
    frobenius = "_F" if node.inputs[0].ndim >= 2 else ""
    return (f"‖{a}‖{frobenius}", ATOM) if style.unicode else (f"\\left\\| {a} \\right\\|{frobenius}", ATOM)


def rules(base: dict) -> dict:
    """The entries for the rule table ``base``: one per op, and a transpose rule around
    ``base``'s own that writes the transpose of an inverse as A⁻ᵀ."""
    plain_transpose = base.get("transpose")

    def transpose(node, args, style, seen):
        source = node.inputs[0]
        if _swaps_last_two(node) and seen.shows(source, "inv"):
            a, pa = seen[source.inputs[0]]
            return _power(style, wrap(a, pa, ATOM), "-T"), POSTFIX
        return plain_transpose(node, args, style, seen) if plain_transpose is not None else None

    return {"inv": _inv, "det": _det, "logdet": _logdet, "slogdet_sign": _sign, "solve": _solve,
            "diag_embed": _diag, "kron": _kron, "norm": _norm, "transpose": transpose}
