"""What ``sd.grad``, ``sd.jacobian`` and ``sd.hessian`` return: a real ``list`` that also renders.

:class:`Derivatives` is a :class:`~symdiff.names.Labelled` list (so indexing, unpacking
``gx, gy = sd.grad(...)``, ``sd.optimize``, ``sd.pretty`` and ``repr`` behave exactly as for a
list) with Jupyter's ``_repr_latex_`` (every item, aligned: ∂f/∂x &= …) and a ``mode_note``:
the sentence saying which AD mode built it and why (``sd.jacobian(..., mode="auto")``). A
single expression cannot carry attributes (nodes are immutable and shared), so its note is
kept beside it, by identity, and read with :func:`note_of`.

>>> import symdiff as sd
>>> x, y = sd.symbols("x y")
>>> g = sd.grad(x * y, [x, y])
>>> gx, gy = g
>>> print(gx, gy, isinstance(g, list))
y x True
>>> print(g._repr_latex_())
$\\begin{aligned}
\\frac{\\partial f}{\\partial x} &= y \\\\
\\frac{\\partial f}{\\partial y} &= x
\\end{aligned}$
"""

from __future__ import annotations

from .names import IdentityWeakMap, Labelled, name_of, relabel
from .node import Node
from .pretty import latex
from .rewrite import optimize

_notes = IdentityWeakMap()


def note_of(expr):
    """The mode note recorded for a derivative (a :class:`Derivatives` list or one expression), or ""."""
    if isinstance(expr, Derivatives):
        return expr.mode_note
    return _notes.get(expr, "") if isinstance(expr, Node) else ""


def attach_note(expr, note: str):
    """Record ``note`` for ``expr`` (a :class:`Derivatives` or one node); returns ``expr``."""
    if isinstance(expr, Derivatives):
        expr.mode_note = note
    elif isinstance(expr, Node) and note:
        _notes[expr] = note
    return expr


def _symbol_latex(name: str) -> str:
    head, _, tail = name.partition("_")
    return f"{head}_{{{tail}}}" if tail else name


class Derivatives(Labelled):
    """A list of derivative expressions (or of rows of them, for a Hessian) that renders in Jupyter.

    ``labels[i]`` is ``(of, wrt_name)`` or None; ``kind`` is "grad", "jacobian" or "hessian";
    ``wrt`` the variable names (a Hessian's rows and columns); ``mode_note`` why a mode was used.
    """

    def __init__(self, exprs, labels=None, kind: str = "grad", wrt=(), mode_note: str = ""):
        exprs = list(exprs)
        super().__init__(exprs, labels if labels is not None else [None] * len(exprs))
        self.kind = kind
        self.wrt = tuple(wrt)
        self.mode_note = mode_note

    def _function_name(self, i) -> str:
        label = self.labels[i] if i < len(self.labels) else None
        of = label[0] if label else None
        named = name_of(of) if isinstance(of, Node) else None
        return _symbol_latex(named) if named else "f"

    def _lhs(self, i, j=None) -> str:
        f = self._function_name(i if j is None else 0)
        if self.kind == "hessian":
            a, b = _symbol_latex(self.wrt[i]), _symbol_latex(self.wrt[j])
            return f"\\frac{{\\partial^2 {f}}}{{\\partial {a}\\,\\partial {b}}}"
        label = self.labels[i]
        var = _symbol_latex(label[1]) if label else (_symbol_latex(self.wrt[i]) if i < len(self.wrt) else f"x_{i}")
        return f"\\frac{{\\partial {f}}}{{\\partial {var}}}"

    def _repr_latex_(self) -> str:
        """Every item, aligned, in its simplified (textbook) form; the list itself is unchanged."""
        if self.kind != "hessian" and all(isinstance(e, Node) for e in self):
            body = latex(relabel(self, optimize(list(self))))
            if "aligned" not in body:
                body = "\\begin{aligned}\n" + body.replace(" = ", " &= ", 1) + "\n\\end{aligned}"
        else:
            lines = []
            for i, item in enumerate(self):
                if isinstance(item, (list, tuple)):
                    lines += [f"{self._lhs(i, j)} &= {latex(optimize(e))}" for j, e in enumerate(item)]
                else:
                    lines.append(f"{self._lhs(i)} &= {latex(optimize(item))}")
            body = "\\begin{aligned}\n" + " \\\\\n".join(lines) + "\n\\end{aligned}"
        if self.mode_note:
            body += f"\\\\ \\text{{{_latex_text(self.mode_note)}}}"
        return f"${body}$"


def _latex_text(text: str) -> str:
    for a, b in (("\\", "\\textbackslash{}"), ("_", "\\_"), ("%", "\\%"), ("&", "\\&"), ("#", "\\#"),
                 ("{", "\\{"), ("}", "\\}"), ("$", "\\$"), ("^", "\\^{}")):
        text = text.replace(a, b)
    return text


_origins = IdentityWeakMap()


def record_origin(jacobian_node, f, wrt):
    """Record that ``jacobian_node`` is the Jacobian of ``f`` with respect to leaf ``wrt`` (for
    ``sd.sparsity(J)``, which reads the pattern from ``f``'s graph)."""
    _origins[jacobian_node] = (f, wrt)


def origin_of(node):
    """(f, wrt) if ``node`` was made by ``sd.jacobian`` (or ``sd.hessian``: f is then the gradient), else None."""
    return _origins.get(node) if isinstance(node, Node) else None
