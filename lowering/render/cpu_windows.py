"""The C++ bodies of the sliding-window kernels: ``conv2d`` and the pooling family.

Every input is read through ``writer.value``, so an input that is a view the schedule could not
stride (a flip, a reshape of a transpose), a pad or a dilate, is computed at the element read:
the derivative graphs of a convolution (the cotangent dilated and padded, the kernel flipped
and transposed) need no copies. A window position in the padding is never read: the bounds
are tested first, and the read sits inside the test (:func:`guarded`).

Loops run over (image, output channel) or over planes (the pooled axes' leading indices) in
OpenMP threads; each thread writes only its own outputs, so there are no races, and every
output is summed in one fixed order, whatever the thread count.
"""

from __future__ import annotations

from .scalar import C_TYPE, literal
from .writer import (
    ACC_TYPE,
    Body,
    KernelWriter,
    _prod,
    all_of,
    enough_work,
    flat_loop,
    more_than_one,
    unravel,
)


def guarded(w: KernelWriter, node, idx, inside: list[str], fill, body: Body) -> str:
    """``node`` at ``idx`` where every condition in ``inside`` holds, else ``fill``: the read is
    inside the test, so a position in the padding reads nothing."""
    got_body = Body()
    got_body.memo = dict(body.memo)
    got = w.value(node, idx, got_body)
    got = got if isinstance(got, str) else literal(got, node.dtype)
    if not inside:
        body.lines += got_body.lines
        body.memo.update(got_body.memo)
        return got
    var = w.fresh()
    body.lines.append(f"{C_TYPE[node.dtype]} {var} = {fill};")
    body.lines.append(f"if ({' && '.join(f'({c})' for c in inside)}) {{")
    body.lines += ["  " + line for line in got_body.lines] + [f"  {var} = {got};", "}"]
    return var


def _in_range(var: str, size, low_possible: bool, high_possible: bool) -> list[str]:
    out = []
    if low_possible:
        out.append(f"{var} >= 0")
    if high_possible:
        out.append(f"{var} < {size}")
    return out


def _store(w: KernelWriter, idx, value: str) -> str:
    return f"{w.k.out.buffer.name}[{w.index_expr(w.k.out, idx)}] = {value};"


def _indent(lines, n=1):
    return ["  " * n + line for line in lines]


# -- conv2d ------------------------------------------------------------------------------------


def conv_geometry(w: KernelWriter):
    """The sizes of a conv2d kernel: (N, C, H, W), (O, Cg, kH, kW), (OH, OW), attrs."""
    node = w.k.node
    x, k = node.inputs
    return (w.s.shape_of(x), w.s.shape_of(k), tuple(w.k.out.shape[2:]),
            node.attr("stride"), node.attr("padding"), node.attr("dilation"), node.attr("groups"))


def render_conv2d_direct(w: KernelWriter) -> list[str]:
    """One output at a time: the sum over the window's channels and taps, in double for
    float32 (a reference-quality kernel for any input; :mod:`.cpu_conv` has the fast paths)."""
    node = w.k.node
    x, k = node.inputs
    (n, _, h, wd), (o, cg, kh, kw), (oh, ow), (sh, sw), (ph, pw), (dh, dw), groups = conv_geometry(w)
    og = o // groups
    t, acc_t = C_TYPE[node.dtype], ACC_TYPE[node.dtype]

    def per_pair(q):
        lines = [f"const int64_t qn = {q} / {o};", f"const int64_t qo = {q} % {o};",
                 f"const int64_t cb = (qo / {og}) * {cg};"]
        inner = Body()
        xv = guarded(w, x, ["qn", "(cb + ci)", "iy", "ix"],
                     _in_range("iy", h, ph > 0, ph > 0) + _in_range("ix", wd, pw > 0, pw > 0), "0", inner)
        kv = w.value(k, ["qo", "ci", "ki", "kj"], inner)
        kv = kv if isinstance(kv, str) else literal(kv, k.dtype)
        taps = [f"for (int64_t ci = 0; ci < {cg}; ++ci) {{",
                f"  for (int64_t ki = 0; ki < {kh}; ++ki) {{",
                f"    const int64_t iy = oy * {sh} - {ph} + ki * {dh};",
                f"    for (int64_t kj = 0; kj < {kw}; ++kj) {{",
                f"      const int64_t ix = ox * {sw} - {pw} + kj * {dw};"]
        taps += _indent(inner.lines + [f"acc += {acc_t}({xv}) * {acc_t}({kv});"], 3) + ["    }", "  }", "}"]
        lines += [f"for (int64_t oy = 0; oy < {oh}; ++oy) {{", f"  for (int64_t ox = 0; ox < {ow}; ++ox) {{",
                  f"    {acc_t} acc = 0;"]
        lines += _indent(taps, 2)
        lines += ["    " + _store(w, ["qn", "qo", "oy", "ox"], f"static_cast<{t}>(acc)"), "  }", "}"]
        return lines

    pairs = n * o
    work = _prod((n, o, oh, ow, cg, kh, kw))
    return flat_loop(pairs, per_pair, parallel=all_of(more_than_one(pairs), enough_work(work)), var="q")


# -- pooling -----------------------------------------------------------------------------------


def _pool_geometry(w: KernelWriter, pooled_shape, full_shape):
    node = w.k.node
    (kh, kw), (sh, sw), (ph, pw) = node.attr("kernel_size"), node.attr("stride"), node.attr("padding")
    lead = tuple(full_shape[:-2])
    return lead, tuple(full_shape[-2:]), tuple(pooled_shape[-2:]), (kh, kw), (sh, sw), (ph, pw)


def _per_plane(w: KernelWriter, lead, plane_work, per_plane) -> list[str]:
    planes = _prod(lead)
    names = [f"p{d}" for d in range(len(lead))]

    def body(p):
        return (unravel(p, lead, names) if lead else []) + per_plane(names)

    work = planes * plane_work
    return flat_loop(planes, body, parallel=all_of(more_than_one(planes), enough_work(work)), var="plane")


def _window_argmax(w: KernelWriter, x, t, lead_names, size, window, fill_x: str) -> list[str]:
    """Lines that leave in ``best`` the window's maximum of ``x`` and in ``at_y``/``at_x`` its
    position (the first maximum in row-major order, a NaN first of all, as numpy's argmax;
    padding positions count as -inf), and in ``tv`` the value of ``t`` there (0 in padding)."""
    (h, wd), (kh, kw), (sh, sw), (ph, pw) = size, *window
    b = Body()
    inside = _in_range("iy", h, ph > 0, ph > 0) + _in_range("ix", wd, pw > 0, pw > 0)
    xv = guarded(w, x, lead_names + ["iy", "ix"], inside, fill_x, b)
    t_x = C_TYPE[x.dtype]
    lines = [f"{t_x} best = {fill_x};", "int64_t at_y = 0, at_x = 0;", "bool found = false;"]
    if t is not None:
        lines.insert(1, f"{C_TYPE[t.dtype]} tv = 0;")
    lines += [f"for (int64_t ki = 0; ki < {kh}; ++ki) {{",
              f"  const int64_t iy = oy * {sh} - {ph} + ki;",
              f"  for (int64_t kj = 0; kj < {kw}; ++kj) {{",
              f"    const int64_t ix = ox * {sw} - {pw} + kj;"]
    lines += _indent(b.lines, 2)
    # selects, not branches: which element wins is data, and a mispredicted branch per element
    # cost more than the whole window
    take = ["found = true;", f"best = take ? {xv} : best;", "at_y = take ? iy : at_y;", "at_x = take ? ix : at_x;"]
    lines.append(f"    const bool take = !found || {xv} > best || ({xv} != {xv} && best == best);")
    lines += _indent(take, 2)
    if t is not None:
        tb = Body()
        tv = guarded(w, t, lead_names + ["iy", "ix"], inside, "0", tb)
        lines += _indent(tb.lines + [f"tv = take ? {tv} : tv;"], 2)
    lines += ["  }", "}"]
    return lines


def render_max_pool2d(w: KernelWriter) -> list[str]:
    """max_pool2d (the window maximum) and max_pool2d_gather (the tangent at the argmax)."""
    node = w.k.node
    x = node.inputs[0]
    t = node.inputs[1] if len(node.inputs) == 2 else None
    lead, size, (oh, ow), *window = _pool_geometry(w, w.k.out.shape, w.s.shape_of(x))

    def per_plane(names):
        lines = [f"for (int64_t oy = 0; oy < {oh}; ++oy) {{", f"  for (int64_t ox = 0; ox < {ow}; ++ox) {{"]
        lines += _indent(_window_argmax(w, x, t, names, size, window, "-INFINITY"), 2)
        lines += ["    " + _store(w, names + ["oy", "ox"], "tv" if t is not None else "best"), "  }", "}"]
        return lines

    return _per_plane(w, lead, oh * ow * window[0][0] * window[0][1], per_plane)


def render_max_pool2d_scatter(w: KernelWriter) -> list[str]:
    """Each window's cotangent added at the argmax of x: one thread per plane zeroes the plane and
    visits its windows in order, so overlapping windows never race and sum in a fixed order."""
    node = w.k.node
    x, ct = node.inputs
    lead, (h, wd), _, *window = _pool_geometry(w, w.s.shape_of(ct), w.s.shape_of(x))
    oh, ow = w.s.shape_of(ct)[-2:]
    out = w.k.out.buffer.name
    (kh, kw), (sh, sw), (ph, pw) = window
    if (kh, kw) == (sh, sw) and (ph, pw) == (0, 0) and (h, wd) == (oh * kh, ow * kw):
        return _max_pool2d_scatter_tiled(w, x, ct, lead, (oh, ow), (kh, kw))

    def per_plane(names):
        lines = [f"for (int64_t zy = 0; zy < {h}; ++zy)", f"  for (int64_t zx = 0; zx < {wd}; ++zx)",
                 "    " + _store(w, names + ["zy", "zx"], "0")]
        b = Body()
        cv = w.value(ct, names + ["oy", "ox"], b)
        cv = cv if isinstance(cv, str) else literal(cv, ct.dtype)
        lines += [f"for (int64_t oy = 0; oy < {oh}; ++oy) {{", f"  for (int64_t ox = 0; ox < {ow}; ++ox) {{"]
        lines += _indent(_window_argmax(w, x, None, names, (h, wd), window, "-INFINITY"), 2)
        # the argmax is in the padding only when the whole window is -inf there and NaN nowhere:
        # its cotangent then goes nowhere, as numpy's reference drops padding
        at = w.index_expr(w.k.out, names + ["at_y", "at_x"])
        lines.append(f"    if (at_y >= 0 && at_y < {h} && at_x >= 0 && at_x < {wd}) {{")
        lines += _indent(b.lines + [f"{out}[{at}] += {cv};"], 3)
        lines += ["    }", "  }", "}"]
        return lines

    return _per_plane(w, lead, (h * wd + oh * ow * window[0][0] * window[0][1]), per_plane)


def _max_pool2d_scatter_tiled(w: KernelWriter, x, ct, lead, pooled, kernel) -> list[str]:
    """The windows tile the plane (stride = kernel, no padding): every input pixel is in one
    window, so each window writes its own pixels, the cotangent at the argmax and zeros elsewhere,
    with no zeroing pass and no sum."""
    (oh, ow), (kh, kw) = pooled, kernel
    out = w.k.out.buffer.name

    def per_plane(names):
        b = Body()
        cv = w.value(ct, names + ["oy", "ox"], b)
        cv = cv if isinstance(cv, str) else literal(cv, ct.dtype)
        lines = [f"for (int64_t oy = 0; oy < {oh}; ++oy) {{", f"  for (int64_t ox = 0; ox < {ow}; ++ox) {{"]
        lines += _indent(_window_argmax(w, x, None, names, (oh * kh, ow * kw), ((kh, kw), (kh, kw), (0, 0)),
                                        "-INFINITY"), 2)
        lines += _indent(b.lines, 2)
        at = w.index_expr(w.k.out, names + [f"(oy * {kh} + ki)", f"(ox * {kw} + kj)"])
        lines += [f"    for (int64_t ki = 0; ki < {kh}; ++ki)",
                  f"      for (int64_t kj = 0; kj < {kw}; ++kj)",
                  f"        {out}[{at}] = (oy * {kh} + ki == at_y && ox * {kw} + kj == at_x) ? {cv} : 0;",
                  "  }", "}"]
        return lines

    return _per_plane(w, lead, 2 * oh * ow * kh * kw, per_plane)


def render_avg_pool2d(w: KernelWriter) -> list[str]:
    """The window sum over kH·kW, padding counted as zeros (PyTorch's count_include_pad)."""
    node = w.k.node
    (x,) = node.inputs
    lead, (h, wd), (oh, ow), (kh, kw), (sh, sw), (ph, pw) = _pool_geometry(w, w.k.out.shape, w.s.shape_of(x))
    t, acc_t = C_TYPE[node.dtype], ACC_TYPE[node.dtype]

    def per_plane(names):
        b = Body()
        xv = guarded(w, x, names + ["iy", "ix"],
                     _in_range("iy", h, ph > 0, ph > 0) + _in_range("ix", wd, pw > 0, pw > 0), "0", b)
        lines = [f"for (int64_t oy = 0; oy < {oh}; ++oy) {{", f"  for (int64_t ox = 0; ox < {ow}; ++ox) {{",
                 f"    {acc_t} acc = 0;",
                 f"    for (int64_t ki = 0; ki < {kh}; ++ki) {{",
                 f"      const int64_t iy = oy * {sh} - {ph} + ki;",
                 f"      for (int64_t kj = 0; kj < {kw}; ++kj) {{",
                 f"        const int64_t ix = ox * {sw} - {pw} + kj;"]
        lines += _indent(b.lines + [f"acc += {xv};"], 4) + ["      }", "    }"]
        lines += ["    " + _store(w, names + ["oy", "ox"], f"static_cast<{t}>(acc / {kh * kw})"), "  }", "}"]
        return lines

    return _per_plane(w, lead, oh * ow * kh * kw, per_plane)


def render_avg_pool2d_scatter(w: KernelWriter) -> list[str]:
    """Each input pixel gathers the cotangents of the windows over it, divided by kH·kW: a
    gather, so every output is written once by one thread."""
    node = w.k.node
    (ct,) = node.inputs
    lead, (h, wd), _, (kh, kw), (sh, sw), (ph, pw) = _pool_geometry(w, w.s.shape_of(ct), w.k.out.shape)
    oh, ow = w.s.shape_of(ct)[-2:]
    t, acc_t = C_TYPE[node.dtype], ACC_TYPE[node.dtype]

    def per_plane(names):
        b = Body()
        cv = w.value(ct, names + ["oy", "ox"], b)
        cv = cv if isinstance(cv, str) else literal(cv, ct.dtype)
        lines = [f"for (int64_t iy = 0; iy < {h}; ++iy) {{", f"  for (int64_t ix = 0; ix < {wd}; ++ix) {{",
                 f"    {acc_t} acc = 0;",
                 f"    for (int64_t ki = 0; ki < {kh}; ++ki) {{",
                 f"      const int64_t ty = iy + {ph} - ki;  // oy * {sh} for the window whose row ki is iy",
                 f"      if (ty < 0 || ty % {sh} != 0 || ty / {sh} >= {oh}) continue;",
                 f"      const int64_t oy = ty / {sh};",
                 f"      for (int64_t kj = 0; kj < {kw}; ++kj) {{",
                 f"        const int64_t tx = ix + {pw} - kj;",
                 f"        if (tx < 0 || tx % {sw} != 0 || tx / {sw} >= {ow}) continue;",
                 f"        const int64_t ox = tx / {sw};"]
        lines += _indent(b.lines + [f"acc += {cv};"], 4) + ["      }", "    }"]
        lines += ["    " + _store(w, names + ["iy", "ix"], f"static_cast<{t}>(acc / {kh * kw})"), "  }", "}"]
        return lines

    return _per_plane(w, lead, h * wd * kh * kw, per_plane)


RENDER = {
    "conv2d": render_conv2d_direct,
    "max_pool2d": render_max_pool2d,
    "max_pool2d_scatter": render_max_pool2d_scatter,
    "avg_pool2d": render_avg_pool2d,
    "avg_pool2d_scatter": render_avg_pool2d_scatter,
}
