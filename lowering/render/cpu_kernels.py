"""The C++ body of each kernel kind (see :mod:`.writer` for the machinery both backends share).

``RENDER[kind](writer) -> lines`` writes the kernel's statements; values of the node's
inputs come from ``writer.value`` so fused producers are computed in place.
"""

from __future__ import annotations

from ..plan import dims, indexing
from ..plan.schedule import contiguous_strides
from . import cpu_conv, cpu_linalg, cpu_windows
from .scalar import C_TYPE, literal
from .writer import (
    ACC_TYPE,
    Body,
    KernelWriter,
    _prod,
    all_of,
    condition,
    enough_work,
    flat_loop,
    gemm_layout,
    loop_nest,
    more_than_one,
    omp_parallel,
    unravel,
)

HEADER_MIN_ROW = 64  # shorter rows (10 classes) run faster as generated loops: the header blocks per row
SHORT_ROW = 32  # rows up to this long are done a block of rows at a time (see _short_rows)


def _long_rows(n) -> bool:
    """Rows for the header kernels: long ones, and rows whose length is known only at run time
    (the header takes any length; the generated short-row loops are sized when written)."""
    return dims.is_runtime(n) or n >= HEADER_MIN_ROW
ROW_BLOCK = 64


def _store(w: KernelWriter, idx, value, dtype) -> str:
    v = value if isinstance(value, str) else literal(value, dtype)
    at = w.index_expr(w.k.out, idx)
    w.stores.add(at)
    return f"{w.k.out.buffer.name}[{at}] = {v};"


def render_loop(w: KernelWriter) -> list[str]:
    node = w.k.node

    def body(idx):
        b = Body()
        v = w.value(node, idx, b) if w.k.copy else w._compute(node, idx, b)
        return b.lines + [_store(w, idx, v, node.dtype)]

    return loop_nest(w.k.out.shape, body)


def _reduce_index(in_shape, axes, keepdims, out_vars):
    kept = [d for d in range(len(in_shape)) if d not in axes]
    idx = []
    for d in range(len(in_shape)):
        if d in axes:
            idx.append(f"r{d}")
        else:
            idx.append(out_vars[d] if keepdims else out_vars[kept.index(d)])
    return idx


def _reduce_loops(in_shape, axes, inner_lines, pragma=None) -> list[str]:
    lines = []
    axes = sorted(axes)
    for n, d in enumerate(axes):
        if n == len(axes) - 1 and pragma:
            lines.append("  " * n + pragma)
        lines.append("  " * n + f"for (int64_t r{d} = 0; r{d} < {in_shape[d]}; ++r{d}) {{")
    pad = "  " * len(axes)
    lines += [pad + line for line in inner_lines]
    lines += ["  " * n + "}" for n in reversed(range(len(axes)))]
    return lines


def render_reduce(w: KernelWriter) -> list[str]:
    node = w.k.node
    (a,) = node.inputs
    in_shape = w.s.shape_of(a)
    axes = tuple(node.attr("axis"))
    keepdims = node.attr("keepdims")
    out_shape = w.k.out.shape
    name, dt, in_dt = node.op.name, node.dtype, a.dtype
    numel_out = _prod(out_shape)
    work = _prod(in_shape)
    out_vars = [f"q{d}" for d in range(len(out_shape))]

    k = len(axes)
    if name == "sum" and axes == tuple(range(k)) and 0 < k < len(in_shape):
        return _column_sum(w, a, in_shape, k)
    if name == "logsumexp" and axes == (len(in_shape) - 1,) and dt in ("float32", "float64"):
        rows_view = _rows_view(w, a, len(in_shape) - 1)
        if rows_view is not None and _long_rows(rows_view[2]):
            ptr, rows, n, ld = rows_view
            w.uses_header = "softmax"
            return [f"symdiff::cpu::logsumexp_rows<{C_TYPE[dt]}>({ptr}, {w.k.out.buffer.name}, {rows}, {n}, {ld});"]

    def value_body(prefix_lines_target, idx):
        b = Body()
        v = w.value(a, idx, b)
        v = v if isinstance(v, str) else literal(v, in_dt)
        return b, v

    def per_output(o):
        lines = unravel(o, out_shape, out_vars) if out_shape else []
        idx = _reduce_index(in_shape, axes, keepdims, out_vars)
        if name == "sum":
            acc_t = ACC_TYPE[in_dt]
            b, v = value_body(lines, idx)
            lines.append(f"{acc_t} acc = 0;")
            lines += _reduce_loops(in_shape, axes, b.lines + [f"acc += {v};"], "#pragma omp simd reduction(+:acc)")
            result = f"static_cast<{C_TYPE[dt]}>(acc)"
        elif name == "max":
            init = {"bool": "false", "int64": "INT64_MIN"}.get(in_dt, "-INFINITY")
            b, v = value_body(lines, idx)
            lines.append(f"{C_TYPE[in_dt]} acc = {init};")
            lines += _reduce_loops(in_shape, axes, b.lines + [f"acc = {v} > acc ? {v} : acc;"],
                                   "#pragma omp simd reduction(max:acc)" if in_dt != "bool" else None)
            result = "acc"
        elif name == "argmax":
            b, v = value_body(lines, idx)
            init = {"bool": "false", "int64": "INT64_MIN"}.get(in_dt, "-INFINITY")
            (ax,) = axes
            lines += [f"{C_TYPE[in_dt]} best = {init};", "int64_t arg = 0;"]
            lines += _reduce_loops(in_shape, axes, b.lines + [f"if ({v} > best) {{ best = {v}; arg = r{ax}; }}"])
            result = "arg"
        else:  # logsumexp
            b1, v1 = value_body(lines, idx)
            lines.append(f"{C_TYPE[in_dt]} m = -INFINITY;")
            lines += _reduce_loops(in_shape, axes, b1.lines + [f"m = {v1} > m ? {v1} : m;"],
                                   "#pragma omp simd reduction(max:m)")
            lines.append("if (!std::isfinite(m)) m = 0;")
            b2, v2 = value_body(lines, idx)
            lines.append("double s = 0;")
            lines += _reduce_loops(in_shape, axes, b2.lines + [f"s += symdiff_exp({v2} - m);"],
                                   "#pragma omp simd reduction(+:s)")
            result = f"static_cast<{C_TYPE[dt]}>(std::log(s) + m)"
        lines.append(f"{w.k.out.buffer.name}[{o}] = {result};")
        return lines

    parallel = all_of(more_than_one(numel_out), enough_work(work))
    return flat_loop(numel_out, per_output, parallel=parallel)


COLUMN_BLOCK = 256


def _column_sum(w: KernelWriter, a, in_shape, k) -> list[str]:
    """Sum over the leading ``k`` axes (a bias gradient): rows streamed in order, a block of
    columns accumulated in registers/L1, so the input is read once and contiguously."""
    rows, cols = _prod(in_shape[:k]), _prod(in_shape[k:])
    lead, trail = [f"r{d}" for d in range(k)], [f"c{d}" for d in range(len(in_shape) - k)]
    b = Body()
    v = w.value(a, lead + trail, b)
    v = v if isinstance(v, str) else literal(v, a.dtype)
    acc_t, out_t = ACC_TYPE[a.dtype], C_TYPE[w.k.node.dtype]
    par = all_of(enough_work(rows * cols), condition(lambda: cols > COLUMN_BLOCK, f"{cols} > {COLUMN_BLOCK}"))
    lines = omp_parallel(par)
    lines += [f"for (int64_t cb = 0; cb < {cols}; cb += {COLUMN_BLOCK}) {{",
              f"  const int64_t ce = cb + {COLUMN_BLOCK} < {cols} ? cb + {COLUMN_BLOCK} : {cols};",
              f"  {acc_t} acc[{COLUMN_BLOCK}];",
              "  for (int64_t c = cb; c < ce; ++c) acc[c - cb] = 0;",
              f"  for (int64_t r = 0; r < {rows}; ++r) {{"]
    lines += ["    " + x for x in unravel("r", in_shape[:k], lead)]
    lines += ["    #pragma omp simd", "    for (int64_t c = cb; c < ce; ++c) {"]
    lines += ["      " + x for x in unravel("c", in_shape[k:], trail)]
    lines += ["      " + x for x in b.lines] + [f"      acc[c - cb] += {v};", "    }", "  }"]
    lines += [f"  for (int64_t c = cb; c < ce; ++c) {w.k.out.buffer.name}[c] = static_cast<{out_t}>(acc[c - cb]);",
              "}"]
    return lines


def _rows_view(w: KernelWriter, node, axis):
    """(buffer expr, rows, n, ld) when ``node`` lives in a buffer as rows along ``axis`` (the last,
    unit stride) whose leading axes collapse to one row stride: the header kernels can read it."""
    view = w.s.views.get(id(node))
    shape = w.s.shape_of(node)
    if view is None or not shape or axis != len(shape) - 1 or view.strides[-1] != 1 and shape[-1] != 1:
        return None
    n = shape[-1]
    rows = _prod(shape[:-1])
    ld = view.strides[-2] if len(shape) > 1 else n
    for d in range(len(shape) - 2):  # leading axes must step like one flattened axis
        if shape[d] != 1 and view.strides[d] != view.strides[d + 1] * shape[d + 1]:
            return None
    if more_than_one(rows) and ld < n:
        return None
    w.reads[view.buffer.name] = view.buffer
    ptr = view.buffer.name + (f" + {view.offset}" if view.offset else "")
    return ptr, rows, n, dims.maximum(ld, n)


def _short_rows(rows_view, t: str, exps: str, per_row: list[str], prologue=(), local_exps=True) -> list[str]:
    """Rows of n <= SHORT_ROW contiguous values at ``rows_view``, ROW_BLOCK rows at a time: each
    row's max is spread over a block-sized buffer so that exp(x - max) is one vector loop over the
    block (a loop of 10 per row vectorises badly: 100x10 softmax 3.6 -> 1.1 µs). The exps go to
    ``exps``: a local block, or with ``local_exps=False`` a pointer the ``prologue`` declares.
    ``per_row`` then runs for each row r with its max ``m`` and its sum of exps ``s`` (double).

    Each loop only reads what earlier loops wrote: GCC 12's SLP vectoriser miscompiled a row loop
    that read the spread buffer and wrote it back (a wrong row sum in a 8x3 softmax)."""
    ptr, rows, n, _ = rows_view
    par = all_of(condition(lambda: rows > ROW_BLOCK, f"{rows} > {ROW_BLOCK}"), enough_work(rows * n))
    lines = omp_parallel(par)
    lines += [f"for (int64_t o0 = 0; o0 < {rows}; o0 += {ROW_BLOCK}) {{",
              f"  const int64_t nb = {rows} - o0 < {ROW_BLOCK} ? {rows} - o0 : {ROW_BLOCK};",
              f"  const {t}* x = {ptr} + o0 * {n};"]
    lines += ["  " + x for x in prologue]
    lines += [f"  {t} row_max[{ROW_BLOCK}];",
              f"  alignas(64) {t} spread[{ROW_BLOCK * n}];  // row_max at each element of its row"]
    if local_exps:
        lines.append(f"  alignas(64) {t} {exps}[{ROW_BLOCK * n}];")
    lines += ["  for (int64_t r = 0; r < nb; ++r) {",
              f"    {t} m = -INFINITY;",
              f"    for (int64_t j = 0; j < {n}; ++j) m = x[r * {n} + j] > m ? x[r * {n} + j] : m;",
              "    row_max[r] = m;",
              "  }",
              "  for (int64_t r = 0; r < nb; ++r)",
              f"    for (int64_t j = 0; j < {n}; ++j) spread[r * {n} + j] = row_max[r];",
              "  #pragma omp simd",
              f"  for (int64_t f = 0; f < nb * {n}; ++f) {exps}[f] = symdiff_exp(x[f] - spread[f]);",
              "  for (int64_t r = 0; r < nb; ++r) {",
              f"    const {t} m = row_max[r];",
              "    double s = 0;",
              f"    for (int64_t j = 0; j < {n}; ++j) s += {exps}[r * {n} + j];"]
    return lines + ["    " + x for x in per_row] + ["  }", "}"]


def _short_softmax(w: KernelWriter, rows_view, t: str) -> list[str] | None:
    """softmax / log_softmax over short contiguous rows into a contiguous output (_short_rows)."""
    out = w.k.out
    _, _, n, ld = rows_view
    if dims.is_runtime(n) or n > SHORT_ROW or ld != n or list(out.strides) != list(contiguous_strides(out.shape)):
        return None
    y = out.buffer.name + (f" + {out.offset}" if out.offset else "")
    if w.k.node.op.name == "softmax":
        per_row = ["(void)m;", f"const {t} inv = {t}(1.0 / s);",
                   f"for (int64_t j = 0; j < {n}; ++j) y[r * {n} + j] *= inv;"]
    else:  # log_softmax: x - (max + log Σ exp)
        per_row = [f"const {t} lse = m + {t}(std::log(s));",
                   f"for (int64_t j = 0; j < {n}; ++j) y[r * {n} + j] = x[r * {n} + j] - lse;"]
    return _short_rows(rows_view, t, "y", per_row, prologue=[f"{t}* y = {y} + o0 * {n};"], local_exps=False)


def render_softmax(w: KernelWriter) -> list[str]:
    node = w.k.node
    (a,) = node.inputs
    shape = w.s.shape_of(a)
    axis = node.attr("axis") % len(shape)
    rows_view = _rows_view(w, a, axis) if node.dtype in ("float32", "float64") else None
    if rows_view is not None and _long_rows(rows_view[2]):  # the header kernel: one read, one write pass
        ptr, rows, n, ld = rows_view
        w.uses_header = "softmax"
        return [f"symdiff::cpu::{node.op.name}_rows<{C_TYPE[node.dtype]}>({ptr}, {w.k.out.buffer.name}, "
                f"{rows}, {n}, {ld}, {n});"]
    if rows_view is not None and more_than_one(rows_view[1]):
        short = _short_softmax(w, rows_view, C_TYPE[node.dtype])
        if short is not None:
            return short
    n = shape[axis]
    others = [s for d, s in enumerate(shape) if d != axis]
    other_vars = [f"q{d}" for d in range(len(others))]
    t = C_TYPE[node.dtype]
    out = w.k.out.buffer.name

    def idx_at(j):
        idx = list(other_vars)
        idx.insert(axis, j)
        return idx

    def row(o):
        lines = unravel(o, others, other_vars) if others else []
        b1 = Body()
        v1 = w.value(a, idx_at("j"), b1)
        lines.append(f"{t} m = -INFINITY;")
        lines += ["#pragma omp simd reduction(max:m)", f"for (int64_t j = 0; j < {n}; ++j) {{"]
        lines += ["  " + x for x in b1.lines] + [f"  m = {v1} > m ? {v1} : m;", "}"]
        b2 = Body()
        v2 = w.value(a, idx_at("j"), b2)
        out_at = f"{out}[{w.index_expr(w.k.out, idx_at('j'))}]"
        if node.op.name == "softmax":
            lines += [f"{t} s = 0;", "#pragma omp simd reduction(+:s)", f"for (int64_t j = 0; j < {n}; ++j) {{"]
            lines += ["  " + x for x in b2.lines]
            lines += [f"  const {t} e = symdiff_exp({v2} - m);", f"  {out_at} = e;", "  s += e;", "}"]
            lines += [f"const {t} inv = {t}(1) / s;", "#pragma omp simd",
                      f"for (int64_t j = 0; j < {n}; ++j) {out_at} *= inv;"]
        else:
            lines += [f"{t} s = 0;", "#pragma omp simd reduction(+:s)", f"for (int64_t j = 0; j < {n}; ++j) {{"]
            lines += ["  " + x for x in b2.lines] + [f"  s += symdiff_exp({v2} - m);", "}"]
            b3 = Body()
            v3 = w.value(a, idx_at("j"), b3)
            lines += [f"const {t} lse = m + std::log(s);", "#pragma omp simd",
                      f"for (int64_t j = 0; j < {n}; ++j) {{"]
            lines += ["  " + x for x in b3.lines] + [f"  {out_at} = {v3} - lse;", "}"]
        return lines

    rows = _prod(others)
    return flat_loop(rows, row, parallel=all_of(more_than_one(rows), enough_work(rows * n)))


def render_cross_entropy(w: KernelWriter) -> list[str]:
    node = w.k.node
    logits, labels = node.inputs
    shape = w.s.shape_of(logits)
    k = shape[-1]
    rows_shape = shape[:-1]
    rows = _prod(rows_shape)
    w.validate_indices(labels, k, "softmax_cross_entropy: label")
    t = C_TYPE[node.dtype]
    row_vars = [f"q{d}" for d in range(len(rows_shape))]
    lines = ["double total = 0;"]
    rows_view = _rows_view(w, logits, len(shape) - 1) if node.dtype in ("float32", "float64") else None
    if rows_view is not None and more_than_one(rows) and not dims.is_runtime(k) and k <= SHORT_ROW \
            and rows_view[3] == k:
        b = Body()  # the label and the logit it picks, for row o0 + r
        lab = w.value(labels, row_vars, b)
        picked = w.value(logits, row_vars + [lab], b)
        per_row = unravel("(o0 + r)", rows_shape, row_vars) + b.lines
        per_row.append(f"total += std::log(s) + double(m) - double({picked});")
        body = _short_rows(rows_view, t, "e", per_row)
        if body[0].startswith("#pragma omp parallel for"):
            body[0] += " reduction(+:total)"
        return lines + body + [f"{w.k.out.buffer.name}[0] = static_cast<{t}>(total / {rows});"]
    par = all_of(more_than_one(rows), enough_work(rows * k))
    lines += omp_parallel(par, "parallel for schedule(static) reduction(+:total)")
    lines.append(f"for (int64_t o = 0; o < {rows}; ++o) {{")
    inner = unravel("o", rows_shape, row_vars) if rows_shape else []
    b1 = Body()
    v1 = w.value(logits, row_vars + ["j"], b1)
    inner += [f"{t} m = -INFINITY;", "#pragma omp simd reduction(max:m)", f"for (int64_t j = 0; j < {k}; ++j) {{"]
    inner += ["  " + x for x in b1.lines] + [f"  m = {v1} > m ? {v1} : m;", "}"]
    b2 = Body()
    v2 = w.value(logits, row_vars + ["j"], b2)
    inner += ["double s = 0;", "#pragma omp simd reduction(+:s)", f"for (int64_t j = 0; j < {k}; ++j) {{"]
    inner += ["  " + x for x in b2.lines] + [f"  s += symdiff_exp({v2} - m);", "}"]
    b3 = Body()
    lab = w.value(labels, row_vars, b3)
    picked = w.value(logits, row_vars + [lab], b3)
    inner += b3.lines + [f"total += std::log(s) + double(m) - double({picked});"]
    lines += ["  " + x for x in inner] + ["}"]
    lines.append(f"{w.k.out.buffer.name}[0] = static_cast<{t}>(total / {rows});")
    return lines


def render_gemm(w: KernelWriter) -> list[str]:
    node = w.k.node
    g = gemm_layout(w)
    m, kk, n, ma, mb = g.m, g.k, g.n, g.a_op, g.b_op
    t = C_TYPE[node.dtype]
    if node.dtype in ("float32", "float64") and ma and mb:
        # the module's gemm (cpu/gemm_call.hpp): it picks its kernels for m, n, k when it runs
        w.uses_header = "gemm_call"
        call = [f"symdiff::cpu::gemm<{t}>({'true' if ma[2] else 'false'}, {'true' if mb[2] else 'false'}, "
                f"{m}, {n}, {kk}, {t}({dims.coefficient_text(w.k.alpha)}), {g.A} + {g.off_a}, {ma[3]}, {g.B} + "
                f"{g.off_b}, {mb[3]}, {t}({w.k.beta!r}), {g.C} + {g.off_c}, {n});"]
    else:  # integers, or operands no GEMM layout can read: a plain triple loop
        acc = ACC_TYPE.get(node.dtype, t)
        at_c = f"{g.C}[{g.off_c} + i * {n} + j]"
        call = [f"for (int64_t i = 0; i < {m}; ++i)", f"  for (int64_t j = 0; j < {n}; ++j) {{",
                f"    {acc} acc = 0;",
                f"    for (int64_t p = 0; p < {kk}; ++p) acc += {g.A}[{g.off_a} + i * {g.a_strides[0]} + p * "
                f"{g.a_strides[1]}] * {g.B}[{g.off_b} + p * {g.b_strides[0]} + j * {g.b_strides[1]}];",
                f"    {at_c} = static_cast<{t}>({dims.coefficient_text(w.k.alpha)} * acc"
                + (f" + {w.k.beta!r} * {at_c});" if w.k.beta else ");"), "  }"]
    nb = len(g.batch)
    lines = ["  " * d + f"for (int64_t b{d} = 0; b{d} < {size}; ++b{d}) {{" for d, size in enumerate(g.batch)]
    lines += ["  " * nb + x for x in call]
    lines += ["  " * d + "}" for d in reversed(range(nb))]
    return lines


def render_concatenate(w: KernelWriter) -> list[str]:
    node = w.k.node
    axis = node.attr("axis") % len(w.k.out.shape)
    lines, offset = [], 0
    for part in node.inputs:
        shape = w.s.shape_of(part)

        def body(idx, part=part, offset=offset):
            b = Body()
            v = w.value(part, idx, b)
            out_idx = list(idx)
            out_idx[axis] = f"({idx[axis]} + {offset})"
            return b.lines + [_store(w, out_idx, v, node.dtype)]

        lines += loop_nest(shape, body)
        offset += shape[axis]
    return lines


def _zero_fill(w: KernelWriter) -> list[str]:
    out = w.k.out
    return [f"std::memset({out.buffer.name}, 0, sizeof({C_TYPE[out.buffer.dtype]}) * {_prod(out.shape)});"]


def render_slice_scatter(w: KernelWriter) -> list[str]:
    node = w.k.node
    (v,) = node.inputs
    v_shape = w.s.shape_of(v)

    def body(idx):
        b = Body()
        val = w.value(v, idx, b)
        out_idx = indexing.source_index(node.attr("index"), w.s.bindings, idx)
        return b.lines + [_store(w, out_idx, val, node.dtype)]

    return _zero_fill(w) + loop_nest(v_shape, body, parallel=True)


def render_scatter_add(w: KernelWriter) -> list[str]:
    node = w.k.node

    def body(idx):
        lines, at, value = w.scatter_add_element(idx)
        return lines + [f"{w.k.out.buffer.name}[{at}] += {value};"]

    return _zero_fill(w) + loop_nest(w.s.shape_of(node.inputs[0]), body, parallel=False, simd=False)


RENDER = {
    "loop": render_loop,
    "reduce": render_reduce,
    "softmax": render_softmax,
    "cross_entropy": render_cross_entropy,
    "gemm": render_gemm,
    "concatenate": render_concatenate,
    "slice_scatter": render_slice_scatter,
    "scatter_add": render_scatter_add,
    **cpu_windows.RENDER,  # the pooling family, and conv2d's direct loops
    "conv2d": cpu_conv.render_conv2d,  # im2col + GEMM, or those loops
    **cpu_linalg.RENDER,  # inv, solve, det, ... (LU kernels of cpu/linalg.hpp); diag, kron, norm loops
}
