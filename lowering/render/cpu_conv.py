"""conv2d on the cpu backend: im2col + the module's GEMM (``cpu/conv.hpp``), or direct loops.

Three GEMM forms, each a loop over work items that ``conv_items`` runs in threads:

- **im2col** (any convolution): per (image, group), the image's columns packed into a slot,
  then ``out[n, g] = K[g] · cols``. The packing is generated code that reads the input
  through ``writer.value``, so a transposed, reshaped or elementwise-produced input is read in
  place; a zero pad of the input's spatial axes is folded into the window arithmetic (its
  rows and columns are known zeros, written without a read).
- **transposed** (the input gradient, a convolution of a padded, dilated cotangent): per
  image, ``P = Kᵀ · ct[n]`` over the cotangent's own pixels, then scattered back (col2im) —
  the zeros that the pad and the dilate add are never multiplied.
- **big kernel** (the weight gradient ``conv(transpose(x), transpose(ct))``, whose kernel is
  the cotangent, with more taps than output pixels): per chunk of input channels,
  ``Σₙ K[:, n] · cols(x[:, n])ᵀ`` into the chunk's partial sum, the chunks then added in order:
  the kernel is read in place (a cotangent's planes), only one channel's columns are packed
  at a time.

Scratch memory (column slots, packed kernels, partial sums) is placed in the arena by the
memory plan like any temporary (:func:`scratch`), so ``program.stats["arena_bytes"]`` counts
it. A kernel with one output channel per group and none of the special forms is a GEMV per
image, where packing costs more than it saves: it keeps the direct loops of
:func:`.cpu_windows.render_conv2d_direct`.
"""

from __future__ import annotations

from ..plan import dims
from ..plan.schedule import Buffer
from .cpu_windows import conv_geometry, render_conv2d_direct
from .scalar import C_TYPE, literal
from .writer import Body, KernelWriter, more_than_one

SLOT_BUDGET = 4 << 20  # bytes of column slots per convolution kernel (the waves' width follows)
MAX_SLOTS = 16
WEIGHT_GRAD_CHUNKS = 16  # partial sums of the weight gradient: a constant, so sums do not depend on threads


def scratch(w: KernelWriter, key: str, dtype: str, numel) -> str:
    """A temporary only this kernel uses, placed by the memory plan like the others (it lives
    during this kernel alone): a C expression of a writable pointer to it.

    The kernel receives it as one of the buffers it reads (a ``const`` parameter): the pointer
    casts the const away, which is sound, as the arena is the program's own writable memory."""
    buffer = w.k.scratch.get(key)
    if buffer is None:  # the same buffer if the schedule is rendered again
        buffer = Buffer(f"t{len(w.s.temps)}", "temp", dtype, numel)
        w.s.temps.append(buffer)
        w.k.scratch[key] = buffer
    w.reads[buffer.name] = buffer
    return f"const_cast<{C_TYPE[dtype]}*>({buffer.name})"


def _pointer(w: KernelWriter, view) -> str:
    w.reads[view.buffer.name] = view.buffer
    return view.buffer.name + (f" + {view.offset}" if view.offset else "")


def _contiguous(w: KernelWriter, node):
    view = w.s.views.get(id(node))
    return view if view is not None and view.is_contiguous else None


def _value(w, node, idx, body) -> str:
    v = w.value(node, idx, body)
    return v if isinstance(v, str) else literal(v, node.dtype)


def _indent(lines, n):
    return ["  " * n + line for line in lines]


def _peel_zero_pad(w: KernelWriter, x):
    """(node, top, left, pads): ``x``, or where ``x`` is a zero pad of the spatial axes that no
    buffer holds, the padded node and the widths before it along H and W."""
    if w.s.views.get(id(x)) is not None or x.op.name != "pad" or x.attr("value") != 0:
        return x, 0, 0, []
    widths = x.attr("pad_width")
    if any(b or a for b, a in widths[:2]) or any(b < 0 or a < 0 for b, a in widths):
        return x, 0, 0, []
    return x.inputs[0], widths[2][0], widths[3][0], [x]


def _peel_dilates(w: KernelWriter, x):
    """(node, (step along H, step along W), dilates): ``x`` undilated along the spatial axes."""
    steps, peeled = [1, 1], []
    while w.s.views.get(id(x)) is None and x.op.name == "dilate" and set(x.attr("axes")) <= {2, 3}:
        for a in x.attr("axes"):
            steps[a - 2] *= x.attr("dilation") + 1
        peeled.append(x)
        x = x.inputs[0]
    return x, tuple(steps), peeled


def _mark(w: KernelWriter, nodes):
    for n in nodes:
        w._mark_fused(n)


def _slots(items, slot_numel, itemsize) -> int:
    if dims.is_runtime(slot_numel):
        return 1
    fit = max(1, SLOT_BUDGET // max(int(slot_numel) * itemsize, 1))
    return min(fit, MAX_SLOTS) if dims.is_runtime(items) else min(fit, MAX_SLOTS, int(items))


def _im2col_rows(w, src, plane, rows, kernel, out_hw, stride, dilation, top_left, in_hw, cols, t):
    """Lines that write ``rows`` = (channels, kH, kW) rows of columns into ``cols``: row
    (c·kH + i)·kW + j holds the plane ``src[plane("ci")]`` at (oy·sh − top + i·dh, ox·sw − left
    + j·dw) for every output pixel, zero outside the input. Each row's valid columns are a
    range computed once per row, so no read is ever out of bounds and no test is per element."""
    channels, (kh, kw), (oh, ow), (sh, sw), (dh, dw), (pt, pl), (h, wd) = rows, kernel, out_hw, stride, dilation, \
        top_left, in_hw
    b = Body()
    v = _value(w, src, plane("ci") + ["iy", "ix"], b)
    count = channels * kh * kw
    lines = [f"#pragma omp parallel for schedule(static) if(parallel: "
             f"symdiff::cpu::conv_loop_in_parallel({count * oh * ow}))",
             f"for (int64_t r = 0; r < {count}; ++r) {{",
             f"  const int64_t ci = r / {kh * kw};",
             f"  const int64_t ki = (r / {kw}) % {kh};",
             f"  const int64_t kj = r % {kw};",
             f"  const int64_t off = kj * {dw} - {pl};  // output column ox reads input column ox * {sw} + off",
             f"  const int64_t lo = off >= 0 ? 0 : (-off + {sw} - 1) / {sw};",
             f"  int64_t hi = {wd} - 1 - off < 0 ? 0 : ({wd} - 1 - off) / {sw} + 1;",
             f"  hi = hi < {ow} ? hi : {ow};",
             "  const int64_t mid = lo < hi ? lo : hi;",
             f"  {t}* row = {cols} + r * {oh * ow};",
             f"  for (int64_t oy = 0; oy < {oh}; ++oy, row += {ow}) {{",
             f"    const int64_t iy = oy * {sh} - {pt} + ki * {dh};",
             f"    if (iy < 0 || iy >= {h}) {{",
             f"      for (int64_t ox = 0; ox < {ow}; ++ox) row[ox] = 0;",
             "      continue;",
             "    }",
             "    for (int64_t ox = 0; ox < mid; ++ox) row[ox] = 0;",
             "    for (int64_t ox = mid; ox < hi; ++ox) {",
             f"      const int64_t ix = ox * {sw} + off;"]
    lines += _indent(b.lines, 3) + [f"      row[ox] = {v};", "    }",
                                    f"    for (int64_t ox = hi > mid ? hi : mid; ox < {ow}; ++ox) row[ox] = 0;",
                                    "  }", "}"]
    return lines


def _packed(w, node, shape, order, name, t) -> tuple[list[str], str]:
    """(lines, pointer): ``node`` (4-D) as a contiguous array, its axes in ``order`` — its own
    buffer where it already is one in that order, else a copy into scratch."""
    view = _contiguous(w, node)
    if view is not None and order == (0, 1, 2, 3):
        return [], _pointer(w, view)
    ptr = scratch(w, name, node.dtype, shape[0] * shape[1] * shape[2] * shape[3])
    packed = [shape[a] for a in order]
    b = Body()
    v = _value(w, node, ["a0", "a1", "a2", "a3"], b)
    at = f"a{order[0]}"
    for a in order[1:]:
        at = f"({at}) * {shape[a]} + a{a}"
    var = f"{name}_ptr"
    lines = [f"{t}* {var} = {ptr};",
             f"#pragma omp parallel for schedule(static) if(parallel: {_numel(packed)} >= 32768)",
             f"for (int64_t a0 = 0; a0 < {shape[0]}; ++a0) {{",
             f"  for (int64_t a1 = 0; a1 < {shape[1]}; ++a1) {{",
             f"    for (int64_t a2 = 0; a2 < {shape[2]}; ++a2) {{",
             f"      for (int64_t a3 = 0; a3 < {shape[3]}; ++a3) {{"]
    lines += _indent(b.lines, 4) + [f"        {var}[{at}] = {v};", "      }", "    }", "  }", "}"]
    return lines, var


def _numel(shape):
    out = 1
    for d in shape:
        out = out * d
    return out


def _items(t, items, slots, flops, body) -> list[str]:
    return ([f"symdiff::cpu::conv_items({items}, {slots}, double({flops}), [&](const int64_t item, const int64_t slot) {{"]
            + _indent(["(void)slot;"] + body, 1) + ["});"])


# -- the forms ----------------------------------------------------------------------------------


def _render_im2col(w: KernelWriter, t: str) -> list[str]:
    node = w.k.node
    x, k = node.inputs
    (n, _, _, _), (o, cg, kh, kw), (oh, ow), stride, (ph, pw), dilation, groups = conv_geometry(w)
    src, top, left, pads = _peel_zero_pad(w, x)
    _mark(w, pads)
    og, ckg, ohw = o // groups, cg * kh * kw, oh * ow
    items = n * groups
    slots = _slots(items, ckg * ohw, 4 if t == "float" else 8)
    k_lines, kmat = _packed(w, k, w.s.shape_of(k), (0, 1, 2, 3), "kmat", t)
    cols = scratch(w, "columns", node.dtype, slots * ckg * ohw)
    body = [f"{t}* cols = {cols} + slot * {ckg * ohw};",
            f"const int64_t qn = item / {groups};",
            f"const int64_t g = item % {groups};"]
    body += _im2col_rows(w, src, lambda ci: ["qn", f"(g * {cg} + {ci})"], cg, (kh, kw), (oh, ow), stride, dilation,
                         (ph + top, pw + left), w.s.shape_of(src)[2:], "cols", t)
    body.append(f"symdiff::cpu::gemm<{t}>(false, false, {og}, {ohw}, {ckg}, {t}(1), {kmat} + g * {og * ckg}, "
                f"{ckg}, cols, {ohw}, {t}(0), {_pointer(w, w.k.out)} + item * {og * ohw}, {ohw});")
    return k_lines + _items(t, items, slots, 2 * items * og * ckg * ohw, body)


def _transposed_form(w: KernelWriter):
    """(S, top, left, steps, fused) where the kernel is the input gradient's form: stride 1, no
    padding, one group, and its input a zero pad and/or dilate of S over fewer pixels than the
    output has (else None)."""
    node = w.k.node
    if node.attr("stride") != (1, 1) or node.attr("padding") != (0, 0) or node.attr("groups") != 1:
        return None
    src, top, left, pads = _peel_zero_pad(w, node.inputs[0])
    src, steps, dilates = _peel_dilates(w, src)
    if not pads + dilates:
        return None
    hs, ws = w.s.shape_of(src)[2:]
    oh, ow = w.k.out.shape[2:]
    try:
        fewer = hs * ws <= oh * ow
    except dims.NeedsConstantDims:
        return None
    return (src, top, left, steps, pads + dilates) if fewer else None


def _render_transposed(w: KernelWriter, t: str, form) -> list[str]:
    """out[n] = col2im(Kᵀ · S[n]): the products over S's own pixels, each added at the output
    pixels its window touches; one image per item, its planes zeroed and summed by one thread
    in a fixed order."""
    node = w.k.node
    src, top, left, (sy, sx), fused = form
    _mark(w, fused)
    k = node.inputs[1]
    (n, o, _, _), (c, _, kh, kw), (oh, ow), _, _, (dh, dw), _ = conv_geometry(w)
    hs, ws = w.s.shape_of(src)[2:]
    m, hws = c * kh * kw, hs * ws
    a_lines, amat = _packed(w, k, (c, o, kh, kw), (0, 2, 3, 1), "amat", t)  # (C·kH·kW, O)
    slots = _slots(n, m * hws + (0 if _contiguous(w, src) else o * hws), 4 if t == "float" else 8)
    prods = scratch(w, "products", node.dtype, slots * m * hws)
    body = [f"{t}* p = {prods} + slot * {m * hws};"]
    view = _contiguous(w, src)
    if view is not None:
        body.append(f"const {t}* s = {_pointer(w, view)} + item * {o * hws};")
    else:  # the cotangent of this image, packed
        spack = scratch(w, "source", node.dtype, slots * o * hws)
        b = Body()
        v = _value(w, src, ["item", "so", "sa", "sb"], b)
        body += [f"{t}* s = {spack} + slot * {o * hws};",
                 f"for (int64_t so = 0; so < {o}; ++so)",
                 f"  for (int64_t sa = 0; sa < {hs}; ++sa)",
                 f"    for (int64_t sb = 0; sb < {ws}; ++sb) {{"]
        body += _indent(b.lines, 3) + [f"      s[(so * {hs} + sa) * {ws} + sb] = {v};", "    }"]
    body.append(f"symdiff::cpu::gemm<{t}>(false, false, {m}, {hws}, {o}, {t}(1), {amat}, {o}, s, {hws}, {t}(0), p, "
                f"{hws});")
    out = _pointer(w, w.k.out)
    body += [f"#pragma omp parallel for schedule(static) if(parallel: "
             f"symdiff::cpu::conv_loop_in_parallel({m * hws}))",
             f"for (int64_t ci = 0; ci < {c}; ++ci) {{",
             f"  {t}* plane = {out} + (item * {c} + ci) * {oh * ow};",
             f"  for (int64_t e = 0; e < {oh * ow}; ++e) plane[e] = 0;",
             f"  for (int64_t ki = 0; ki < {kh}; ++ki) {{",
             f"    for (int64_t kj = 0; kj < {kw}; ++kj) {{",
             f"      const {t}* row = p + ((ci * {kh} + ki) * {kw} + kj) * {hws};",
             f"      const int64_t off = {left} - kj * {dw};  // S column sb lands on output column sb * {sx} + off",
             f"      const int64_t lo = off >= 0 ? 0 : (-off + {sx} - 1) / {sx};",
             f"      int64_t hi = {ow} - 1 - off < 0 ? 0 : ({ow} - 1 - off) / {sx} + 1;",
             f"      hi = hi < {ws} ? hi : {ws};",
             f"      for (int64_t sa = 0; sa < {hs}; ++sa) {{",
             f"        const int64_t y = sa * {sy} + {top} - ki * {dh};",
             f"        if (y < 0 || y >= {oh}) continue;",
             f"        const int64_t base = y * {ow} + off;  // an index: with off < 0 it starts before the row",
             f"        const {t}* from = row + sa * {ws};",
             f"        for (int64_t sb = lo; sb < hi; ++sb) plane[base + sb * {sx}] += from[sb];",
             "      }", "    }", "  }", "}"]
    return a_lines + _items(t, n, slots, 2 * n * m * hws * o, body)


def _big_kernel_form(w: KernelWriter):
    """The kernel's view where the kernel has more taps than the output has pixels (the weight
    gradient, conv(transpose(x), transpose(ct)), whose kernel is the cotangent), one group,
    and each of its (output channel, input channel) planes is rows of unit stride that GEMM can
    read: then the products run over the kernel's taps (else None)."""
    node = w.k.node
    k = node.inputs[1]
    o, _, kh, kw = w.s.shape_of(k)
    oh, ow = w.k.out.shape[2:]
    view = w.s.views.get(id(k))
    if node.attr("groups") != 1 or view is None:
        return None
    s_o, _, s_h, s_w = view.strides
    try:
        if not kh * kw > oh * ow:
            return None
        rows = (kw == 1 or s_w == 1) and (kh == 1 or s_h == kw)
        return view if rows and (o == 1 or s_o >= kh * kw) else None
    except dims.NeedsConstantDims:
        return None


def _render_big_kernel(w: KernelWriter, t: str, view) -> list[str]:
    """y[c, o] = Σₙ K[o, n] · cols(x[c, n])ᵀ, the columns being the windows with the roles of
    taps and output pixels swapped. Per input channel n one product (O, kH·kW) × (kH·kW, C·OH·OW)
    for all of x's images c at once; the channels split into a fixed number of chunks, each
    summed into its own partial product, and the chunks added in order (a constant split: the
    sums do not depend on the thread count)."""
    node = w.k.node
    x = node.inputs[0]
    (c, n, h, wd), (o, _, kh, kw), (oh, ow), stride, (ph, pw), dilation, _ = conv_geometry(w)
    taps, pixels = kh * kw, oh * ow
    chunks = WEIGHT_GRAD_CHUNKS if dims.is_runtime(n) else max(1, min(WEIGHT_GRAD_CHUNKS, int(n)))
    width = c * pixels  # the columns of one channel: every image's output pixels
    slots = _slots(chunks, width * taps, 4 if t == "float" else 8)
    cols = scratch(w, "columns", node.dtype, slots * width * taps)
    partial = scratch(w, "partials", node.dtype, chunks * o * width)
    lda = view.strides[0] if more_than_one(o) else taps
    body = [f"{t}* cols = {cols} + slot * {width * taps};",
            f"{t}* part = {partial} + item * {o * width};",
            f"const int64_t first = item * {n} / {chunks}, last = (item + 1) * {n} / {chunks};",
            f"for (int64_t e = 0; e < {o * width}; ++e) part[e] = 0;",
            "for (int64_t qn = first; qn < last; ++qn) {"]
    # rows: (image, output pixel), the pixels strided by the dilation; columns: the taps,
    # strided by the stride
    body += _indent(_im2col_rows(w, x, lambda ci: [ci, "qn"], c, (oh, ow), (kh, kw), dilation, stride, (ph, pw),
                                 (h, wd), "cols", t), 1)
    body += [f"  symdiff::cpu::gemm<{t}>(false, true, {o}, {width}, {taps}, {t}(1), {_pointer(w, view)} + qn * "
             f"{view.strides[1]}, {lda}, cols, {taps}, {t}(1), part, {width});", "}"]
    out = _pointer(w, w.k.out)
    lines = _items(t, chunks, slots, 2 * c * n * o * pixels * taps, body)
    lines += [f"{t}* partials = {partial};",
              f"#pragma omp parallel for schedule(static) if(parallel: {c * o * pixels * chunks} >= 32768)",
              f"for (int64_t e = 0; e < {c * o * pixels}; ++e) {{  // e = (qc * O + o) * pixels + q",
              f"  const int64_t qc = e / {o * pixels}, ko = (e / {pixels}) % {o}, q = e % {pixels};",
              f"  const int64_t at = ko * {width} + qc * {pixels} + q;",
              f"  {t} acc = 0;",
              f"  for (int64_t chunk = 0; chunk < {chunks}; ++chunk) acc += partials[chunk * {o * width} + at];",
              f"  {out}[e] = acc;",
              "}"]
    return lines


def render_conv2d(w: KernelWriter) -> list[str]:
    """The GEMM form that fits the kernel, or the direct loops (integers cannot reach here:
    conv2d takes floats)."""
    node = w.k.node
    t = C_TYPE[node.dtype]
    if not w.k.out.is_contiguous:
        return render_conv2d_direct(w)
    form = _big_kernel_form(w)
    if form is not None:
        w.uses_header = "conv"
        return _render_big_kernel(w, t, form)
    form = _transposed_form(w)
    if form is not None:
        w.uses_header = "conv"
        return _render_transposed(w, t, form)
    o, groups = w.s.shape_of(node.inputs[1])[0], node.attr("groups")
    if o // groups == 1:
        return render_conv2d_direct(w)
    w.uses_header = "conv"
    return _render_im2col(w, t)
