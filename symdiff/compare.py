"""``sd.compare``: one function differentiated every way, checked against each other and costed.

One row per mode (symbolic, symbolic-cse, forward, reverse, numeric): the
largest error against the float64 reference (reverse mode evaluated in
float64) and against every other mode; the derivative's size as an expression
tree versus as a shared DAG (the expression-swell meter); its operation count;
its FLOPs as a formula in the dimensions and their value at the given sizes;
peak live memory; and the time to derive and to evaluate it.

>>> import symdiff as sd
>>> x, y = sd.symbols("x y")
>>> report = sd.compare(sd.sin(x) * sd.exp(y) + x**2, [x, y], at={x: 0.3, y: -0.7})
>>> [row.mode for row in report.rows]
['symbolic', 'symbolic-cse', 'forward', 'reverse', 'numeric']
>>> report.max_disagreement() < 1e-8
True
"""

from __future__ import annotations

import dataclasses
import html
import math
import time

import numpy as np
import sympy

from . import shapes
from .autodiff import _check_wrt, grad, jacobian
from .evaluate import _resolve_env, as_leaf_value, bind_dims, evaluate
from .graph import cost, count_ops, leaves, tree_size
from .memory import peak_bytes
from .node import as_node
from .numeric import numeric_grad
from .ops.registry import function
from .symbolic import TooLarge, derive, differentiate

ALL_MODES = ("symbolic", "symbolic-cse", "forward", "reverse", "numeric")
# sympy builds some 15,000 scalar operations a second (diff, cse, rebuilding the graphs): the
# symbolic rows of a default call then take a few seconds, never minutes
SYMBOLIC_LIMIT = 50_000


@dataclasses.dataclass
class Row:
    mode: str
    values: list | None = None
    error: float | None = None  # max |this − reference|
    tree_size: int | None = None  # operations if nothing were shared
    dag_size: int | None = None  # distinct operations (count_ops)
    flops: object = None  # sympy formula in the dims
    flops_value: float | None = None
    peak_bytes: int | None = None
    derive_s: float | None = None
    evaluate_s: float | None = None
    note: str = ""


@dataclasses.dataclass
class Report:
    function: str
    wrt: list
    sizes: dict
    inputs: int  # n: input elements
    outputs: int  # m: output elements
    function_ops: int
    rows: list
    errors: dict  # (mode, mode) -> max abs difference
    summary: str
    crossover: str = ""

    def row(self, mode) -> Row:
        return next(r for r in self.rows if r.mode == mode)

    def max_disagreement(self, exact_only: bool = False) -> float:
        pairs = [(a, b) for a, b in self.errors if not exact_only or "numeric" not in (a, b)]
        return max((self.errors[p] for p in pairs), default=0.0)

    def to_dict(self) -> dict:
        rows = []
        for r in self.rows:
            d = {k: v for k, v in dataclasses.asdict(r).items() if k != "values"}
            d["flops"] = None if r.flops is None else str(r.flops)
            rows.append(d)
        return {"function": self.function, "wrt": self.wrt, "sizes": {str(k): v for k, v in self.sizes.items()},
                "inputs": self.inputs, "outputs": self.outputs, "function_ops": self.function_ops,
                "rows": rows, "errors": {f"{a} vs {b}": e for (a, b), e in self.errors.items()},
                "summary": self.summary, "crossover": self.crossover}

    def _table(self):
        head = ["mode", "max error", "tree size", "DAG ops", "FLOPs (formula)", "FLOPs", "peak bytes",
                "derive", "evaluate", "note"]
        body = []
        for r in self.rows:
            body.append([r.mode, _fmt_err(r.error), _fmt(r.tree_size), _fmt(r.dag_size),
                         "" if r.flops is None else str(r.flops), _fmt(r.flops_value), _fmt(r.peak_bytes),
                         _fmt_time(r.derive_s), _fmt_time(r.evaluate_s), r.note])
        return head, body

    def to_markdown(self) -> str:
        head, body = self._table()
        lines = [(f"**{self.function}** w.r.t. {', '.join(self.wrt)}: n = {self.inputs} inputs, "
                  f"m = {self.outputs} outputs, function: {self.function_ops} operations"), "",
                 "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in body]
        lines += ["", self.summary]
        if self.crossover:
            lines.append(self.crossover)
        return "\n".join(lines)

    def __str__(self):
        return self.to_markdown()

    def _repr_html_(self) -> str:
        head, body = self._table()
        cells = "".join(f"<th>{html.escape(h)}</th>" for h in head)
        rows = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>" for row in body)
        extra = f"<p>{html.escape(self.crossover)}</p>" if self.crossover else ""
        return (f"<p><b>{html.escape(self.function)}</b></p><table><tr>{cells}</tr>{rows}</table>"
                f"<p>{html.escape(self.summary)}</p>{extra}")

    def plot(self, path):
        """Bar charts of operations, FLOPs, peak memory and time per mode (needs matplotlib)."""
        try:
            import matplotlib

            matplotlib.use("Agg")
            import matplotlib.pyplot as plt
        except ImportError as error:
            raise ImportError("Report.plot needs matplotlib: pip install 'symdiff[plot]'") from error
        metrics = [("DAG operations", "dag_size"), ("FLOPs", "flops_value"), ("peak bytes", "peak_bytes"),
                   ("evaluate (s)", "evaluate_s")]
        fig, axes = plt.subplots(1, len(metrics), figsize=(4 * len(metrics), 3.2))
        for ax, (title, key) in zip(axes, metrics):
            modes = [r.mode for r in self.rows if getattr(r, key) is not None]
            vals = [float(getattr(r, key)) for r in self.rows if getattr(r, key) is not None]
            ax.bar(modes, vals, color="#4c72b0")
            ax.set_title(title)
            ax.tick_params(axis="x", rotation=45)
            if vals and max(vals) / max(min(v for v in vals if v > 0) if any(v > 0 for v in vals) else 1, 1e-30) > 100:
                ax.set_yscale("log")
        fig.suptitle(self.function[:80])
        fig.tight_layout()
        fig.savefig(path, dpi=110)
        plt.close(fig)
        return path


def _fmt(v):
    if v is None:
        return ""
    if isinstance(v, float):
        return f"{v:.4g}"
    return f"{v:,}" if isinstance(v, int) else str(v)


def _fmt_err(v):
    return "" if v is None else f"{v:.1e}"


def _fmt_time(v):
    if v is None:
        return ""
    return f"{v * 1e3:.2f} ms" if v < 1 else f"{v:.2f} s"


def _timed_evaluate(exprs, at, repeat=3):
    best = math.inf
    values = None
    for _ in range(repeat):
        start = time.perf_counter()
        values = evaluate(exprs, at)
        best = min(best, time.perf_counter() - start)
    return values, best


def _bindings(f, wrt, at):
    """Concrete sizes of the symbolic dims, read from the values in ``at``."""
    leaf_nodes = leaves([f] + list(wrt))
    given = _resolve_env(at, leaf_nodes)
    arrays = {id(leaf): as_leaf_value(leaf, given[id(leaf)]) for leaf in leaf_nodes}
    return bind_dims(leaf_nodes, arrays)


def _flops_value(formula, bindings):
    value = sympy.sympify(formula).xreplace(bindings)
    return int(value) if value.is_Integer else (float(value) if value.is_number else None)


def _winner(report_rows, n, m, swell):
    exact = [r for r in report_rows if r.mode != "numeric" and r.evaluate_s is not None]
    if not exact:
        return ""
    fastest = min(exact, key=lambda r: r.evaluate_s)
    if m == 1 and n > 1:
        why = (f"one output and {n} input elements: reverse mode gets every partial from one backward "
               f"pass, while forward mode carries {n} tangents")
    elif n < m:
        why = f"{n} input elements < {m} output elements: forward mode needs fewer passes than reverse"
    elif n > m:
        why = f"{m} output elements < {n} input elements: reverse mode needs fewer passes than forward"
    else:
        why = f"as many inputs as outputs ({n})"
    text = f"Fastest to evaluate: {fastest.mode} ({_fmt_time(fastest.evaluate_s)}). {why[0].upper() + why[1:]}."
    if swell:
        text += f" Without sharing, the symbolic derivative is {swell:.1f}× the size of its shared graph (expression swell)."
    return text


def _plausible_size(root) -> bool:
    """A root that is at least 1 at typical sizes (the other dims set to 10)."""
    value = sympy.sympify(root).subs({t: 10 for t in sympy.sympify(root).free_symbols})
    return bool(value.is_real and value >= 1)


def _crossover(forward_flops, reverse_flops):
    diff = sympy.expand(sympy.sympify(forward_flops) - sympy.sympify(reverse_flops))
    symbols = sorted(diff.free_symbols, key=lambda s: s.name)
    if not symbols:
        return ""
    for s in symbols:
        roots = [r for r in sympy.solve(diff, s) if _plausible_size(r)]
        if roots:
            return (f"Forward and reverse FLOPs cross where {s} = {roots[0]} "
                    f"(forward − reverse = {sympy.factor(diff)}).")
    return f"Forward − reverse FLOPs = {sympy.factor(diff)}: no crossover for positive sizes."


class _Symbolic:
    """sympy's derivatives, computed once for both symbolic rows (or the reason there are none)."""

    def __init__(self, f, nodes, at, limit):
        self.f, self.nodes, self.at, self.limit = f, nodes, at, limit
        self.done, self.error = None, None

    def graphs(self, row, cse):
        if self.done is None and self.error is None:
            try:
                self.done = differentiate(self.f, self.nodes, at=self.at, max_operations=self.limit)
            except TooLarge as error:
                self.error = error
        if self.error is not None:
            raise self.error
        info = derive(self.done, cse=cse)
        row.derive_s = info.derive_s
        row.tree_size = info.tree_ops
        row.note = f"sympy: {info.tree_ops:,} ops as trees" + (f", {info.dag_ops:,} after cse" if cse else "")
        return info.graphs


def _numeric_row(row, f, nodes, at, n, bindings):
    start = time.perf_counter()
    result = numeric_grad(f, nodes, at)
    result = result if isinstance(result, list) else [result]
    row.evaluate_s = time.perf_counter() - start
    row.flops = sympy.expand(2 * n * cost(f)["flops"])
    row.flops_value = _flops_value(row.flops, bindings)
    row.note = f"2n = {2 * n} evaluations of f"
    return [np.asarray(v, np.float64) for v in result]


def _graph_row(row, exprs, at, bindings, repeat):
    row.dag_size = count_ops(exprs)
    row.flops = cost(exprs)["flops"]
    row.flops_value = _flops_value(row.flops, bindings)
    row.peak_bytes = peak_bytes(exprs, bindings)
    result, row.evaluate_s = _timed_evaluate(exprs, at, repeat)
    row.values = result
    return [np.asarray(v, np.float64) for v in result]


def _row(mode, f, nodes, at, sizes, repeat, symbolic):
    """One mode's row and its values (None where the mode does not apply)."""
    n, bindings = sizes
    row, scalar = Row(mode), f.shape == ()
    if mode == "numeric":
        if not scalar:
            row.note = "numeric mode here is for scalar functions"
            return row, None
        return row, _numeric_row(row, f, nodes, at, n, bindings)
    if mode.startswith("symbolic"):
        if not scalar:
            row.note = "symbolic mode here differentiates scalar functions"
            return row, None
        exprs = symbolic.graphs(row, cse=mode == "symbolic-cse")
    else:
        start = time.perf_counter()
        exprs = grad(f, nodes, mode=mode) if scalar else jacobian(f, nodes, mode=mode)
        exprs = exprs if isinstance(exprs, list) else [exprs]
        row.derive_s = time.perf_counter() - start
        row.tree_size = tree_size(exprs)
    return row, _graph_row(row, exprs, at, bindings, repeat)


def _max_error(xs, ys) -> float:
    return max(float(np.max(np.abs(x - y))) if x.size else 0.0 for x, y in zip(xs, ys))


@function
def compare(f, wrt, at, modes=ALL_MODES, repeat: int = 3, symbolic_limit: int = SYMBOLIC_LIMIT) -> Report:
    """Differentiate ``f`` in every mode at the point ``at`` and report agreement and cost.

    For a scalar ``f`` the rows are gradients; for a vector ``f`` Jacobians (the
    symbolic rows then need a scalar function and are skipped with a note).
    ``symbolic_limit`` bounds sympy's work, about (wrt elements) × (f's size as a
    tree) scalar operations, before it starts: past it the symbolic rows are
    skipped with a note that gives the size.
    """
    f = as_node(f)
    nodes = _check_wrt(wrt)
    bindings = _bindings(f, nodes, at)
    n = int(sum(shapes.substitute(w.shape, bindings) and np.prod(shapes.substitute(w.shape, bindings)) or 1
                for w in nodes))
    m = int(np.prod(shapes.substitute(f.shape, bindings))) if f.shape else 1
    symbolic = _Symbolic(f, nodes, at, symbolic_limit)
    rows, values = [], {}
    for mode in modes:
        try:
            row, result = _row(mode, f, nodes, at, (n, bindings), repeat, symbolic)
            if result is not None:
                values[mode] = result
        except TooLarge as error:
            row = Row(mode, note=f"skipped: {error}")
        except (ValueError, TypeError, NotImplementedError, ImportError) as error:
            row = Row(mode, note=f"not available: {error}")
        rows.append(row)
    reference = values.get("reverse") or next(iter(values.values()), None)
    names = list(values)
    errors = {(a, b): _max_error(values[a], values[b]) for i, a in enumerate(names) for b in names[i + 1:]}
    for r in rows:
        if r.mode in values and reference is not None:
            r.error = _max_error(values[r.mode], reference)
    sym = next((r for r in rows if r.mode == "symbolic" and r.tree_size), None)
    rev = next((r for r in rows if r.mode == "reverse" and r.dag_size), None)
    swell = sym.tree_size / rev.dag_size if sym and rev else None
    fwd = next((r for r in rows if r.mode == "forward" and r.flops is not None), None)
    crossover = _crossover(fwd.flops, rev.flops) if fwd and rev and (
        sympy.sympify(fwd.flops).free_symbols or sympy.sympify(rev.flops).free_symbols) else ""
    return Report(function=str(f).replace("\n", "; "), wrt=[w.name for w in nodes],
                  sizes={str(k): v for k, v in bindings.items()}, inputs=n, outputs=m,
                  function_ops=count_ops(f), rows=rows, errors=errors,
                  summary=_winner(rows, n, m, swell), crossover=crossover)
