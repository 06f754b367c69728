"""conv2d on the cpu backend: im2col + the module's GEMM (``cpu/conv.hpp``), or direct loops.

GEMM forms, each a loop over work items that ``conv_items`` runs in threads:

- **batched im2col** (one group, constant spatial sizes: the forward pass and the weight
  gradient of ResNet9 and LeNet-5): one product for a chunk of images, the chunk's input planes
  first copied with their padding so that the columns are gathered with constant bounds; taps
  and output pixels that see only padding are dropped at code generation. A weight gradient,
  whose channels are the batch, sums its chunks of channels into the product in a fixed order.
  :func:`_render_batched` has the details.
- **im2col** (grouped convolutions, run-time spatial sizes): per (image, group), the image's columns packed into a slot,
  then ``out[n, g] = K[g] · cols``. The packing is generated code that reads the input
  through ``writer.value``, so a transposed, reshaped or elementwise-produced input is read in
  place; a zero pad of the input's spatial axes is folded into the window arithmetic (its
  rows and columns are known zeros, written without a read).
- **transposed** (the input gradient, a convolution of a padded, dilated cotangent): per
  chunk of images, ``P = Kᵀ · ct[chunk]`` over the cotangent's own pixels, then scattered back
  (col2im) — the zeros that the pad and the dilate add are never multiplied, and taps whose
  products land outside the output are dropped.
- **big kernel** (a weight gradient the batched form does not take ``conv(transpose(x), transpose(ct))``, whose kernel is
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
from .writer import Body, KernelWriter, loop_nest, more_than_one

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
    lines = [(f"#pragma omp parallel for schedule(static) if(parallel: "
             f"symdiff::cpu::conv_loop_in_parallel({count * oh * ow}))"),
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
    """out[n] = col2im(Kᵀ · S[n]) for a chunk of images at once: one product over the chunk's
    pixels of S side by side, each product then added at the output pixels its window touches.
    Taps whose products land outside the output for every pixel of S are dropped. Each output
    plane is zeroed and summed by one thread, in a fixed order."""
    node = w.k.node
    src, top, left, (sy, sx), fused = form
    _mark(w, fused)
    k = node.inputs[1]
    (n, o, _, _), (c, _, kh, kw), (oh, ow), _, _, (dh, dw), _ = conv_geometry(w)
    hs, ws = w.s.shape_of(src)[2:]
    ki0, ki1 = _live(kh, hs, lambda ki, sa: 0 <= sa * sy + top - ki * dh < oh) or (0, kh)
    kj0, kj1 = _live(kw, ws, lambda kj, sb: 0 <= sb * sx + left - kj * dw < ow) or (0, kw)
    nki, nkj = ki1 - ki0, kj1 - kj0
    m, hws = c * nki * nkj, hs * ws
    nb = max(1, min(-(-COLUMN_TARGET // hws), COLUMN_BUDGET // (m * hws)))
    nb = nb if dims.is_runtime(n) else min(nb, int(n))
    chunks = _chunks(n, nb)
    view = _contiguous(w, src)
    in_place = view is not None and (nb == 1 or hws == 1)  # S[chunk] is (O, pixels) or (images, O)
    itemsize = 4 if t == "float" else 8
    slots = _slots(n if isinstance(chunks, str) else chunks, m * nb * hws + (0 if in_place else o * nb * hws), itemsize)
    amat = scratch(w, "amat", node.dtype, m * o)  # (C·live taps, O)
    b = Body()
    v = _value(w, k, ["ci", "ko", f"({ki0} + a)", f"({kj0} + bj)"], b)
    lines = [f"{t}* amat_ptr = {amat};",
             f"#pragma omp parallel for schedule(static) if(parallel: {m * o} >= 32768)",
             f"for (int64_t ci = 0; ci < {c}; ++ci) {{",
             f"  for (int64_t a = 0; a < {nki}; ++a) {{",
             f"    for (int64_t bj = 0; bj < {nkj}; ++bj) {{",
             f"      for (int64_t ko = 0; ko < {o}; ++ko) {{"]
    lines += _indent(b.lines, 4)
    lines += [f"        amat_ptr[((ci * {nki} + a) * {nkj} + bj) * {o} + ko] = {v};", "      }", "    }", "  }", "}"]
    prods = scratch(w, "products", node.dtype, slots * m * nb * hws)
    body = [f"{t}* p = {prods} + slot * {m * nb * hws};",
            f"const int64_t i0 = item * {nb};",
            f"const int64_t nbc = {n} - i0 < {nb} ? {n} - i0 : {nb};"]
    if in_place and hws == 1:
        body.append(f"symdiff::cpu::gemm<{t}>(false, true, {m}, nbc, {o}, {t}(1), amat_ptr, {o}, "
                    f"{_pointer(w, view)} + i0 * {o}, {o}, {t}(0), p, nbc);")
    else:
        if in_place:
            body.append(f"const {t}* s = {_pointer(w, view)} + i0 * {o * hws};")
        else:  # the chunk's cotangent as (O, image·pixel)
            spack = scratch(w, "source", node.dtype, slots * o * nb * hws)
            sb = Body()
            sv = _value(w, src, ["(i0 + il)", "so", "sa", "sb"], sb)
            body += [f"{t}* s = {spack} + slot * {o * nb * hws};",
                     (f"#pragma omp parallel for schedule(static) if(parallel: "
                     f"symdiff::cpu::conv_loop_in_parallel(nbc * {o * hws}))"),
                     f"for (int64_t so = 0; so < {o}; ++so)",
                     "  for (int64_t il = 0; il < nbc; ++il)",
                     f"    for (int64_t sa = 0; sa < {hs}; ++sa)",
                     f"      for (int64_t sb = 0; sb < {ws}; ++sb) {{"]
            body += _indent(sb.lines, 4) + [f"        s[(so * nbc + il) * {hws} + sa * {ws} + sb] = {sv};", "      }"]
        body.append(f"symdiff::cpu::gemm<{t}>(false, false, {m}, nbc * {hws}, {o}, {t}(1), amat_ptr, {o}, s, "
                    f"nbc * {hws}, {t}(0), p, nbc * {hws});")
    out = _pointer(w, w.k.out)
    body += [(f"#pragma omp parallel for schedule(static) if(parallel: "
             f"symdiff::cpu::conv_loop_in_parallel(nbc * {m * hws}))"),
             f"for (int64_t e = 0; e < nbc * {c}; ++e) {{",
             f"  const int64_t il = e / {c}, ci = e % {c};",
             f"  {t}* plane = {out} + ((i0 + il) * {c} + ci) * {oh * ow};",
             f"  for (int64_t q = 0; q < {oh * ow}; ++q) plane[q] = 0;",
             f"  for (int64_t a = 0; a < {nki}; ++a) {{",
             f"    for (int64_t bj = 0; bj < {nkj}; ++bj) {{",
             f"      const {t}* row = p + ((ci * {nki} + a) * {nkj} + bj) * (nbc * {hws}) + il * {hws};",
             f"      const int64_t off = {left} - ({kj0} + bj) * {dw};  // S column sb lands on output column sb * {sx} + off",
             f"      const int64_t lo = off >= 0 ? 0 : (-off + {sx} - 1) / {sx};",
             f"      int64_t hi = {ow} - 1 - off < 0 ? 0 : ({ow} - 1 - off) / {sx} + 1;",
             f"      hi = hi < {ws} ? hi : {ws};",
             f"      for (int64_t sa = 0; sa < {hs}; ++sa) {{",
             f"        const int64_t y = sa * {sy} + {top} - ({ki0} + a) * {dh};",
             f"        if (y < 0 || y >= {oh}) continue;",
             f"        const int64_t base = y * {ow} + off;  // an index: with off < 0 it starts before the row",
             f"        const {t}* from = row + sa * {ws};",
             f"        for (int64_t sb = lo; sb < hi; ++sb) plane[base + sb * {sx}] += from[sb];",
             "      }", "    }", "  }", "}"]
    return lines + _items(t, chunks, slots, 2 * n * m * hws * o, body)


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
    body += [(f"  symdiff::cpu::gemm<{t}>(false, true, {o}, {width}, {taps}, {t}(1), {_pointer(w, view)} + qn * "
             f"{view.strides[1]}, {lda}, cols, {taps}, {t}(1), part, {width});"), "}"]
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


# -- batched forms: one GEMM over many images ----------------------------------------------------
#
# A GEMM per image is tiny where the images are small (ResNet9's 4x4, 2x2 and 1x1 stages: a
# GEMV per image at 1x1). These forms multiply once for a chunk of images: the columns of all
# its images side by side, then one pass writing the output from the product. Taps that read
# only padding for every output pixel, and output pixels that read only padding, are dropped at
# code generation (a 3x3, padding-1 convolution of a 1x1 image is its centre tap: a matmul).

COLUMN_TARGET = 1024  # columns of a batched product: images per chunk = this / pixels per image
COLUMN_BUDGET = 1 << 20  # elements of one chunk's columns (4 MiB of float32)


def _live(count, out_count, reads):
    """(first, end) of the taps (or output pixels) along one axis that read inside the input for
    some output pixel (tap): ``reads(tap, pixel)``; the whole axis where the live ones are not
    one range (never dropping what is read)."""
    live = [a for a in range(count) if any(reads(a, q) for q in range(out_count))]
    if not live:
        return None
    if live != list(range(live[0], live[-1] + 1)):
        return 0, count
    return live[0], live[-1] + 1


def _valid_range(off: str, step, size, count, lo="lo", hi="hi") -> list[str]:
    """Lines setting [lo, hi) to the v in [0, count) with 0 <= v * step + off < size."""
    return [f"const int64_t {lo} = {off} >= 0 ? 0 : (-({off}) + {step} - 1) / {step};",
            f"int64_t {hi} = {size} - 1 - ({off}) < 0 ? 0 : ({size} - 1 - ({off})) / {step} + 1;",
            f"{hi} = {hi} < {count} ? {hi} : {count};",
            f"const int64_t mid_{lo} = {lo} < {hi} ? {lo} : {hi};"]


def _segment(dst, count, lo, hi, var, body_lines, value) -> list[str]:
    """dst[0, count) = value at var in [lo, hi), zero elsewhere (lo, hi from _valid_range)."""
    return ([f"for (int64_t {var} = 0; {var} < mid_{lo}; ++{var}) {dst}[{var}] = 0;",
             f"for (int64_t {var} = mid_{lo}; {var} < {hi}; ++{var}) {{"]
            + _indent(body_lines, 1) + [f"  {dst}[{var}] = {value};", "}",
                                        (f"for (int64_t {var} = {hi} > mid_{lo} ? {hi} : mid_{lo}; {var} < {count}; "
                                        f"++{var}) {dst}[{var}] = 0;")])


def _chunks(count, size):
    """The number of chunks of ``size`` in ``count``: an int, or the C expression of it."""
    if dims.is_runtime(count):
        return f"(({count}) + {size - 1}) / {size}"
    return -(-int(count) // size)


def _batched_geometry(w: KernelWriter):
    """The batched im2col form's sizes, or None where it does not apply (groups, run-time
    spatial sizes, one output channel, a convolution of padding only)."""
    node = w.k.node
    x = node.inputs[0]
    (_, c, _, _), (o, _, kh, kw), (oh, ow), (sh, sw), (ph, pw), (dh, dw), groups = conv_geometry(w)
    src, top, left, pads = _peel_zero_pad(w, x)
    h, wd = w.s.shape_of(src)[2:]
    if groups != 1 or any(dims.is_runtime(d) for d in (h, wd, kh, kw, oh, ow, o)) or o == 1:
        return None
    if dims.is_runtime(c) and dims.is_runtime(w.s.shape_of(x)[0]):
        return None
    pt, pl = ph + top, pw + left
    rows = _live(kh, oh, lambda ki, oy: 0 <= oy * sh - pt + ki * dh < h)
    cols = _live(kw, ow, lambda kj, ox: 0 <= ox * sw - pl + kj * dw < wd)
    if rows is None or cols is None:
        return None
    oys = _live(oh, kh, lambda oy, ki: rows[0] <= ki < rows[1] and 0 <= oy * sh - pt + ki * dh < h)
    oxs = _live(ow, kw, lambda ox, kj: cols[0] <= kj < cols[1] and 0 <= ox * sw - pl + kj * dw < wd)
    return src, pads, (pt, pl), (h, wd), rows, cols, oys, oxs


def _render_batched(w: KernelWriter, t: str, geometry) -> list[str]:
    """out[n, :, pixels] for a chunk of images from one product Y = K · cols: cols' rows are
    (input channel, live tap), its columns (image, live output pixel). Images per chunk: enough
    for about COLUMN_TARGET columns; with a run-time channel count (the weight gradient, whose
    channels are the batch) the channels go in chunks too, each product added into Y (beta 1),
    in a fixed order. cols is stored row-major (its rows contiguous, the inner loop over output
    pixels) or transposed (the inner loop over taps) as the longer loop is: a weight gradient's
    taps are the forward output's columns."""
    node = w.k.node
    k = node.inputs[1]
    src, pads, (pt, pl), (h, wd), (ki0, ki1), (kj0, kj1), (oy0, oy1), (ox0, ox1) = geometry
    _mark(w, pads)
    (images, c, _, _), (o, _, kh, kw), (oh, ow), (sh, sw), _, (dh, dw), _ = conv_geometry(w)
    nki, nkj, nqy, nqx = ki1 - ki0, kj1 - kj0, oy1 - oy0, ox1 - ox0
    taps, q = nki * nkj, nqy * nqx
    itemsize = 4 if t == "float" else 8
    whole_c = not dims.is_runtime(c)
    if whole_c:
        nb = max(1, min(-(-COLUMN_TARGET // q), COLUMN_BUDGET // (int(c) * taps * q)))
        nb = nb if dims.is_runtime(images) else min(nb, int(images))
        cb = int(c)
    else:  # the images are a constant count: all of them, the channels in chunks
        nb = int(images)
        cb = max(1, COLUMN_BUDGET // (taps * nb * q))
    chunks = _chunks(images, nb)
    transposed = nkj > nqx
    direct = nb == 1 and q == oh * ow  # the product is the image's output: no copy
    col_numel, y_numel = cb * taps * nb * q, (0 if direct else o * nb * q)
    xp_numel = nb * cb * ((nqy - 1) * sh + (nki - 1) * dh + 1) * ((nqx - 1) * sw + (nkj - 1) * dw + 1)
    slots = _slots(images if isinstance(chunks, str) else chunks, col_numel + y_numel + xp_numel + (0 if whole_c else o * cb * taps), itemsize)
    cols_base = scratch(w, "columns", node.dtype, slots * col_numel)
    lines = []
    kview = _contiguous(w, k)
    if whole_c and kview is not None and taps == kh * kw:
        kmat, lda = _pointer(w, kview), cb * taps
    elif whole_c:
        kmat, lda = "kmat_ptr", cb * taps
        lines += [f"{t}* kmat_ptr = {scratch(w, 'kmat', node.dtype, o * cb * taps)};"]
        lines += _pack_kernel(w, k, o, "0", cb, (ki0, nki), (kj0, nkj), "kmat_ptr", cb * taps)
    body = [f"{t}* cols = {cols_base} + slot * {col_numel};",
            f"{t}* xp = {scratch(w, 'planes', node.dtype, slots * xp_numel)} + slot * {xp_numel};",
            f"const int64_t i0 = item * {nb};",
            f"const int64_t nbc = {images} - i0 < {nb} ? {images} - i0 : {nb};"]
    out = _pointer(w, w.k.out)
    if direct:
        body.append(f"{t}* y = {out} + i0 * {o * oh * ow};")
    else:
        body.append(f"{t}* y = {scratch(w, 'product', node.dtype, slots * y_numel)} + slot * {y_numel};")
    if not whole_c:
        body += [f"{t}* kc = {scratch(w, 'kmat', node.dtype, slots * o * cb * taps)} + slot * {o * cb * taps};"]
    body += [f"for (int64_t c0 = 0; c0 < {c}; c0 += {cb}) {{",
             f"  const int64_t cbc = {c} - c0 < {cb} ? {c} - c0 : {cb};"]
    inner = []
    if not whole_c:
        inner += _pack_kernel(w, k, o, "c0", "cbc", (ki0, nki), (kj0, nkj), "kc", f"cbc * {taps}")
        a_ptr, a_ld = "kc", f"cbc * {taps}"
    else:
        a_ptr, a_ld = f"{kmat} + c0 * {taps}", lda
    # the chunk's input planes, copied once with their padding (the rows and columns the live
    # taps reach): the columns are then gathered with constant bounds and no test
    y_lo, x_lo = oy0 * sh - pt + ki0 * dh, ox0 * sw - pl + kj0 * dw
    hp, wp = (nqy - 1) * sh + (nki - 1) * dh + 1, (nqx - 1) * sw + (nkj - 1) * dw + 1
    b = Body()
    v = _value(w, src, ["qn", "ci", "iy", "ix"], b)
    inner += [(f"#pragma omp parallel for schedule(static) if(parallel: "
              f"symdiff::cpu::conv_loop_in_parallel(nbc * cbc * {hp * wp}))"),
              "for (int64_t pl = 0; pl < nbc * cbc; ++pl) {",
              "  const int64_t qn = i0 + pl / cbc, ci = c0 + pl % cbc;",
              f"  {t}* plane = xp + pl * {hp * wp};",
              f"  for (int64_t yy = 0; yy < {hp}; ++yy, plane += {wp}) {{",
              f"    const int64_t iy = yy + {y_lo};",
              f"    if (iy < 0 || iy >= {h}) {{",
              f"      for (int64_t v = 0; v < {wp}; ++v) plane[v] = 0;",
              "      continue;",
              "    }"]
    inner += _indent(_valid_range(str(x_lo), 1, wd, wp), 2)
    inner += _indent(_segment("plane", wp, "lo", "hi", "v", [f"const int64_t ix = v + {x_lo};"] + b.lines, v), 2)
    inner += ["  }", "}"]
    if not transposed:  # rows (channel, tap), contiguous along the output pixels
        inner += [(f"#pragma omp parallel for schedule(static) if(parallel: "
                  f"symdiff::cpu::conv_loop_in_parallel(cbc * {taps} * nbc * {q}))"),
                  f"for (int64_t r = 0; r < cbc * {taps}; ++r) {{",
                  f"  const int64_t cl = r / {taps}, a = (r / {nkj}) % {nki}, bj = r % {nkj};",
                  f"  {t}* row = cols + r * (nbc * {q});",
                  f"  const {t}* from = xp + cl * {hp * wp} + a * {dh * wp} + bj * {dw};",
                  f"  for (int64_t il = 0; il < nbc; ++il, row += {q}, from += cbc * {hp * wp}) {{",
                  f"    for (int64_t qy = 0; qy < {nqy}; ++qy)",
                  f"      for (int64_t qx = 0; qx < {nqx}; ++qx) row[qy * {nqx} + qx] = from[qy * {sh * wp} + qx * {sw}];",
                  "  }", "}"]
        inner.append(f"symdiff::cpu::gemm<{t}>(false, false, {o}, nbc * {q}, cbc * {taps}, {t}(1), {a_ptr}, {a_ld}, "
                     f"cols, nbc * {q}, c0 == 0 ? {t}(0) : {t}(1), y, nbc * {q});")
    else:  # rows (image, output pixel), contiguous along the taps
        inner += [(f"#pragma omp parallel for schedule(static) if(parallel: "
                  f"symdiff::cpu::conv_loop_in_parallel(cbc * {taps} * nbc * {q}))"),
                  f"for (int64_t r = 0; r < nbc * {q}; ++r) {{",
                  f"  const int64_t il = r / {q}, qy = (r / {nqx}) % {nqy}, qx = r % {nqx};",
                  f"  {t}* row = cols + r * (cbc * {taps});",
                  f"  const {t}* from = xp + il * cbc * {hp * wp} + qy * {sh * wp} + qx * {sw};",
                  f"  for (int64_t cl = 0; cl < cbc; ++cl, row += {taps}, from += {hp * wp}) {{",
                  f"    for (int64_t a = 0; a < {nki}; ++a)",
                  f"      for (int64_t bj = 0; bj < {nkj}; ++bj) row[a * {nkj} + bj] = from[a * {dh * wp} + bj * {dw}];",
                  "  }", "}"]
        inner.append(f"symdiff::cpu::gemm<{t}>(false, true, {o}, nbc * {q}, cbc * {taps}, {t}(1), {a_ptr}, {a_ld}, "
                     f"cols, cbc * {taps}, c0 == 0 ? {t}(0) : {t}(1), y, nbc * {q});")
    body += _indent(inner, 1) + ["}"]
    if not direct:  # out[n, o, pixel] from y[o, (image, live pixel)]; dead pixels are zeros
        body += [(f"#pragma omp parallel for schedule(static) if(parallel: "
                 f"symdiff::cpu::conv_loop_in_parallel(nbc * {o * oh * ow}))"),
                 f"for (int64_t e = 0; e < nbc * {o}; ++e) {{",
                 f"  const int64_t il = e / {o}, ko = e % {o};",
                 f"  {t}* plane = {out} + ((i0 + il) * {o} + ko) * {oh * ow};",
                 f"  const {t}* from = y + ko * (nbc * {q}) + il * {q};"]
        if q == oh * ow and w.k.epilogue:  # the chain of elementwise consumers, per pixel
            b = Body()
            v = epilogue_value(w, ["(i0 + il)", "ko", f"(p / {ow})", f"(p % {ow})"], "from[p]", b)
            body += ["  #pragma omp simd", f"  for (int64_t p = 0; p < {q}; ++p) {{"]
            body += _indent(b.lines, 2) + [f"    plane[p] = {v};", "  }"]
            w.epilogue_done = True
        elif q == oh * ow:
            body += [f"  for (int64_t p = 0; p < {q}; ++p) plane[p] = from[p];"]
        else:
            body += [f"  for (int64_t p = 0; p < {oh * ow}; ++p) plane[p] = 0;",
                     f"  for (int64_t qy = 0; qy < {nqy}; ++qy)",
                     (f"    for (int64_t qx = 0; qx < {nqx}; ++qx) plane[({oy0} + qy) * {ow} + {ox0} + qx] = "
                     f"from[qy * {nqx} + qx];")]
        body.append("}")
    return lines + _items(t, chunks, slots, 2 * images * o * c * taps * q, body)


def _pack_kernel(w, k, o, c0, cbc, kis, kjs, dst, ld) -> list[str]:
    """Lines packing the kernel's live taps of channels [c0, c0 + cbc) into dst[o, (channel, tap)]."""
    (ki0, nki), (kj0, nkj) = kis, kjs
    b = Body()
    v = _value(w, k, ["ko", f"({c0} + cl)", f"({ki0} + a)", f"({kj0} + bj)"], b)
    lines = [(f"#pragma omp parallel for schedule(static) if(parallel: "
             f"symdiff::cpu::conv_loop_in_parallel({o} * ({cbc}) * {nki * nkj}))"),
             f"for (int64_t ko = 0; ko < {o}; ++ko) {{",
             f"  for (int64_t cl = 0; cl < {cbc}; ++cl) {{",
             f"    for (int64_t a = 0; a < {nki}; ++a) {{",
             f"      for (int64_t bj = 0; bj < {nkj}; ++bj) {{"]
    lines += _indent(b.lines, 4)
    lines += [f"        {dst}[ko * ({ld}) + (cl * {nki} + a) * {nkj} + bj] = {v};", "      }", "    }", "  }", "}"]
    return lines


def epilogue_value(w: KernelWriter, idx, conv_value: str, body: Body) -> str:
    """The kernel's epilogue (the chain of elementwise consumers the schedule gave it) at
    ``idx``, the convolution's value there being the C expression ``conv_value``."""
    body.memo[(id(w.k.node), tuple(idx))] = conv_value
    last = w.k.epilogue[-1]
    v = w._compute(last, idx, body)  # the last node has the kernel's output as its view: computed, not loaded
    return v if isinstance(v, str) else literal(v, last.dtype)


def _epilogue_pass(w: KernelWriter) -> list[str]:
    """out = epilogue(out), in place: the forms whose last write is not one pass of their own."""
    out = w.k.out

    def body(idx):
        b = Body()
        v = epilogue_value(w, idx, w.load(out, idx, b), b)
        return b.lines + [f"{out.buffer.name}[{w.index_expr(out, idx)}] = {v};"]

    return loop_nest(out.shape, body)


def render_conv2d(w: KernelWriter) -> list[str]:
    """The convolution, then its epilogue where the form's output pass has not computed it."""
    w.epilogue_done = not w.k.epilogue
    lines = _render_forms(w)
    return lines if w.epilogue_done else lines + _epilogue_pass(w)


def _render_forms(w: KernelWriter) -> list[str]:
    """The GEMM form that fits the kernel, or the direct loops (integers cannot reach here:
    conv2d takes floats)."""
    node = w.k.node
    t = C_TYPE[node.dtype]
    if not w.k.out.is_contiguous:
        return render_conv2d_direct(w)
    w.uses_header = "conv"
    # a transposed convolution skips the zeros of the dilation and of a padding that grows the
    # image; where the image keeps its size (a "same" padding), the batched im2col form's
    # branch-free gathering is faster than the scatter (col2im), except from a single pixel:
    # then the transposed form's product reads the cotangent in place
    form = _transposed_form(w)
    geometry = _batched_geometry(w)
    if form is not None and (form[3] != (1, 1) or geometry is None
                             or _numel(w.s.shape_of(form[0])[2:]) not in (_numel(w.k.out.shape[2:]), 1)):
        return _render_transposed(w, t, form)
    if geometry is not None:
        return _render_batched(w, t, geometry)
    form = _big_kernel_form(w)
    if form is not None:
        return _render_big_kernel(w, t, form)
    o, groups = w.s.shape_of(node.inputs[1])[0], node.attr("groups")
    if o // groups == 1:
        w.uses_header = ""
        return render_conv2d_direct(w)
    return _render_im2col(w, t)
