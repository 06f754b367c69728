"""The CUDA bodies of the sliding-window kernels: ``conv2d`` and the pooling family.

One thread per output element (a convolution with few outputs and long sums, as a weight
gradient: one block per output). Every input is read through ``writer.value``, so the pad,
dilate, flip and transpose of the derivative graphs are index arithmetic in the threads' loops.
A tap that padding puts outside the input is skipped before anything is read: no read leaves a
buffer. The scatters are gathers (each input position sums the windows that contain it): no
atomics, and every sum is taken in one fixed order, so results are the same on every run.

>>> import symdiff as sd
>>> from symdiff.lowering.plan.schedule import schedule
>>> from symdiff.lowering.render.cuda_unit import generate
>>> X, K = sd.tensor("X", (1, 2, 5, 5)), sd.tensor("K", (3, 2, 3, 3))
>>> source = generate(schedule([sd.conv2d(X, K, padding=1)], [X, K])).source
>>> print(source[source.index("const int xh"):source.index("const int xw")].strip())
const int xh = oh - 1 + kp;
      if (xh < 0 || xh >= 5) continue;
      for (int kq = 0; kq < 3; ++kq) {
"""

from __future__ import annotations

from ..plan.dims import NeedsConstantDims
from .cuda_writer import (
    CudaKernelWriter,
    Launch,
    acc_t_name,
    block_per_item,
    blocks,
    item_blocks,
    row_threads,
    shared_scratch,
    store,
)
from .scalar import C_TYPE, literal
from .writer import ACC_TYPE, Body, _prod


CONV_BLOCK_MAX_OUTPUTS = 1 << 15  # below this many outputs (known when generating), a block each ...
CONV_BLOCK_MIN_TERMS = 512  # ... when each sums at least this many products (or a run-time number)


def _at(out_var, k_var, stride, padding, dilation=1) -> str:
    """The input coordinate of tap ``k_var`` of window ``out_var`` along one axis."""
    at = out_var if stride == 1 else f"{out_var} * {stride}"
    at += f" - {padding}" if padding else ""
    return at + (f" + {k_var}" if dilation == 1 else f" + {k_var} * {dilation}")


def _c_value(v, dtype) -> str:
    return v if isinstance(v, str) else literal(v, dtype)


def _read(w, node, idx):
    """(lines, C value) of ``node`` at ``idx``, in a body of their own."""
    b = Body()
    return b.lines, _c_value(w.value(node, idx, b), node.dtype)


def _tap(t, name, out_var, k_var, stride, padding, dilation, size) -> list[str]:
    """``name`` = the tap's input coordinate, and a ``continue`` where padding can put it outside
    ``[0, size)`` (without padding a window never leaves the input)."""
    lines = [f"const {t} {name} = {_at(out_var, k_var, stride, padding, dilation)};"]
    if padding:
        lines.append(f"if ({name} < 0 || {name} >= {size}) continue;")
    return lines


def _window_taps(w, out_hw, window, in_hw, inner_fn, names=("xh", "xw")) -> list[str]:
    """Loops ``kp``, ``kq`` over the window of output position ``out_hw``; ``window`` is (kernel,
    stride, padding, dilation) pairs; ``inner_fn(xh, xw)`` gives the lines at each tap inside."""
    t = w.index_type
    kernel, stride, padding, dilation = window
    rows = _tap(t, names[0], out_hw[0], "kp", stride[0], padding[0], dilation[0], in_hw[0])
    cols = _tap(t, names[1], out_hw[1], "kq", stride[1], padding[1], dilation[1], in_hw[1])
    return ([f"for ({t} kp = 0; kp < {kernel[0]}; ++kp) {{"] + ["  " + line for line in rows]
            + [f"  for ({t} kq = 0; kq < {kernel[1]}; ++kq) {{"] + ["    " + line for line in cols + inner_fn(*names)]
            + ["  }", "}"])


def _few_outputs_long_sums(outputs, terms) -> bool:
    try:
        if not outputs < CONV_BLOCK_MAX_OUTPUTS:
            return False
    except NeedsConstantDims:  # a run-time number of outputs (a batch): one thread each
        return False
    try:
        return bool(terms >= CONV_BLOCK_MIN_TERMS)
    except NeedsConstantDims:
        return True


def render_conv2d(w: CudaKernelWriter) -> Launch:
    """out[n, o, oh, ow] = Σ over the group's channels and the window of x · w, accumulated in
    ACC_TYPE; with few outputs and long sums a block per output, its threads' shares combined in
    a fixed order."""
    node = w.k.node
    x, k = node.inputs
    stride, padding, dilation, groups = (node.attr(a) for a in ("stride", "padding", "dilation", "groups"))
    in_hw = w.s.shape_of(x)[2:]
    o_count, cg, kh, kw = w.s.shape_of(k)
    out_shape = w.k.out.shape
    t, acc_t = w.index_type, ACC_TYPE[node.dtype]
    names = ["n", "oc", "oh", "ow"]
    channel = "ci" if groups == 1 else f"((oc / {o_count // groups}) * {cg} + ci)"  # the group's channels

    def product(xh, xw):
        b = Body()
        xv, kv = (_c_value(w.value(a, idx, b), node.dtype) for a, idx in ((x, ["n", channel, xh, xw]),
                                                                          (k, ["oc", "ci", "kp", "kq"])))
        return b.lines + [f"acc += {acc_t}({xv}) * {acc_t}({kv});"]

    count, terms = _prod(out_shape), _prod([cg, kh, kw])
    result = store(w, names, f"static_cast<{C_TYPE[node.dtype]}>(acc)", node.dtype)
    if not _few_outputs_long_sums(count, terms):
        taps = _window_taps(w, ("oh", "ow"), ((kh, kw), stride, padding, dilation), in_hw, product)
        inner = [f"{acc_t} acc = 0;", f"for ({t} ci = 0; ci < {cg}; ++ci) {{"] + ["  " + line for line in taps] + ["}"]
        return Launch(w.grid_stride(count, w.unravel("o", out_shape, names) + inner + [result]), blocks(count))
    # thread j of the block takes terms j, j + blockDim.x, ... of the sum ((channel, kp, kq) row-major)
    tap = (_tap(t, "xh", "oh", "kp", stride[0], padding[0], dilation[0], in_hw[0])
           + _tap(t, "xw", "ow", "kq", stride[1], padding[1], dilation[1], in_hw[1]) + product("xh", "xw"))
    inner = [f"{acc_t} acc = 0;", f"for ({t} r = threadIdx.x; r < {terms}; r += blockDim.x) {{"]
    inner += ["  " + line for line in w.unravel("r", [cg, kh, kw], ["ci", "kp", "kq"]) + tap] + ["}"]
    inner += [f"acc = symdiff_block_reduce<{acc_t}>(acc, {acc_t}(0), symdiff_sum(), scratch_{acc_t_name(acc_t)});",
              f"if (threadIdx.x == 0) {result}"]
    body = shared_scratch([acc_t]) + block_per_item(w, count, w.unravel("o", out_shape, names) + inner)
    return Launch(body, item_blocks(count), row_threads(terms), bounds=True)


def _pool_window(node):
    return node.attr("kernel_size"), node.attr("stride"), node.attr("padding"), (1, 1)


def _argmax_lines(w, x, lead, out_hw, in_hw, where=True) -> list[str]:
    """``best`` and (``where``) its window position (``bp``, ``bq``): the first maximum in
    row-major order, or the first NaN (numpy's max and argmax); (0, 0) when nothing beats -inf,
    as numpy's argmax of a window of -inf whose first place may be padding."""
    node, t = w.k.node, w.index_type
    keep = " bp = kp; bq = kq;" if where else ""

    def better(xh, xw):
        lines, v = _read(w, x, lead + [xh, xw])
        return lines + [f"if (best == best && ({v} > best || {v} != {v})) {{ best = {v};{keep} }}"]

    return ([f"{C_TYPE[x.dtype]} best = -INFINITY;"] + ([f"{t} bp = 0, bq = 0;"] if where else [])
            + _window_taps(w, out_hw, _pool_window(node), in_hw, better, ("xh", "xw")))


def _inside(h, w_, in_hw) -> str:
    return f"{h} >= 0 && {h} < {in_hw[0]} && {w_} >= 0 && {w_} < {in_hw[1]}"


def _per_output(w, inner_fn) -> Launch:
    """A grid-stride loop over the output; ``inner_fn(lead, hw)`` gives an element's lines."""
    shape = w.k.out.shape
    names = [f"i{d}" for d in range(len(shape))]
    count = _prod(shape)
    return Launch(w.grid_stride(count, w.unravel("o", shape, names) + inner_fn(names[:-2], names[-2:])),
                  blocks(count))




def _guarded_value(w, node, idx, condition, var) -> list[str]:
    """``var`` = ``node`` at ``idx`` where ``condition`` holds (read inside it), else 0."""
    lines, v = _read(w, node, idx)
    return ([f"{C_TYPE[node.dtype]} {var} = 0;", f"if ({condition}) {{"] + ["  " + line for line in lines]
            + [f"  {var} = {v};", "}"])


def render_max_pool2d(w: CudaKernelWriter) -> Launch:
    """max_pool2d: each window's maximum; max_pool2d_gather: the tangent at its argmax (0 where
    that is padding)."""
    node = w.k.node
    x = node.inputs[0]
    in_hw = w.s.shape_of(x)[-2:]
    _, (sh, sw), (ph, pw), _ = _pool_window(node)
    t = w.index_type

    def element(lead, hw):
        if node.op.name == "max_pool2d":
            return _argmax_lines(w, x, lead, hw, in_hw, where=False) + [store(w, lead + hw, "best", node.dtype)]
        lines = _argmax_lines(w, x, lead, hw, in_hw)
        lines += [f"const {t} ah = {_at(hw[0], 'bp', sh, ph)}, aw = {_at(hw[1], 'bq', sw, pw)};"]
        lines += _guarded_value(w, node.inputs[1], lead + ["ah", "aw"], _inside("ah", "aw", in_hw), "got")
        return lines + [store(w, lead + hw, "got", node.dtype)]

    return _per_output(w, element)


def _windows_over(t, hw, window, out_hw, inner) -> list[str]:
    """Loops ``wh``, ``ww`` over the windows (of a pooling without dilation) that contain input
    position ``hw``: those of ``wh·s − p ≤ h ≤ wh·s − p + k − 1`` inside the output."""
    kernel, stride, padding, _ = window
    lines, heads = [], []
    for axis, var in enumerate(("wh", "ww")):
        k, s, p, n = kernel[axis], stride[axis], padding[axis], out_hw[axis]
        low, high = f"{var}_lo", f"{var}_hi"
        first = f"{hw[axis]}" + (f" + {p}" if p else "")
        lines += [f"const {t} {var}_a = {first} - {k - 1};",
                  f"const {t} {low} = {var}_a <= 0 ? 0 : ({var}_a + {s - 1}) / {s};",
                  f"const {t} {var}_b = ({first}) / {s};",
                  f"const {t} {high} = {var}_b < {n} - 1 ? {var}_b : {n} - 1;"]
        heads.append(f"for ({t} {var} = {low}; {var} <= {high}; ++{var}) {{")
    return (lines + [heads[0], "  " + heads[1]] + ["    " + line for line in inner] + ["  }", "}"])


def render_max_pool2d_scatter(w: CudaKernelWriter) -> Launch:
    """Each input position adds the cotangents of the windows whose argmax it is (each window's
    argmax recomputed): a gather, no atomics, the same sum on every run."""
    node = w.k.node
    x, ct = node.inputs
    in_hw, out_hw = w.s.shape_of(x)[-2:], w.s.shape_of(ct)[-2:]
    window = _pool_window(node)
    _, (sh, sw), (ph, pw), _ = window
    acc_t, t = ACC_TYPE[node.dtype], w.index_type

    def element(lead, hw):
        read, c = _read(w, ct, lead + ["wh", "ww"])
        inner = _argmax_lines(w, x, lead, ["wh", "ww"], in_hw)
        inner += [f"if ({_at('wh', 'bp', sh, ph)} == {hw[0]} && {_at('ww', 'bq', sw, pw)} == {hw[1]}) {{"]
        inner += ["  " + line for line in read] + [f"  acc += {acc_t}({c});", "}"]
        return ([f"{acc_t} acc = 0;"] + _windows_over(t, hw, window, out_hw, inner)
                + [store(w, lead + hw, f"static_cast<{C_TYPE[node.dtype]}>(acc)", node.dtype)])

    return _per_output(w, element)


def render_avg_pool2d(w: CudaKernelWriter) -> Launch:
    """The window's sum over kH·kW (padding counts as zeros, as PyTorch's count_include_pad)."""
    node = w.k.node
    x = node.inputs[0]
    in_hw = w.s.shape_of(x)[-2:]
    window = _pool_window(node)
    (kh, kw), acc_t = window[0], ACC_TYPE[node.dtype]

    def element(lead, hw):
        def add(xh, xw):
            lines, v = _read(w, x, lead + [xh, xw])
            return lines + [f"acc += {v};"]

        return ([f"{acc_t} acc = 0;"] + _window_taps(w, hw, window, in_hw, add)
                + [store(w, lead + hw, f"static_cast<{C_TYPE[node.dtype]}>(acc / {kh * kw})", node.dtype)])

    return _per_output(w, element)


def render_avg_pool2d_scatter(w: CudaKernelWriter) -> Launch:
    """Each input position adds the cotangents of the windows that contain it, over kH·kW."""
    node = w.k.node
    (ct,) = node.inputs
    out_hw = w.s.shape_of(ct)[-2:]
    window = _pool_window(node)
    (kh, kw), acc_t = window[0], ACC_TYPE[node.dtype]

    def element(lead, hw):
        read, c = _read(w, ct, lead + ["wh", "ww"])
        return ([f"{acc_t} acc = 0;"] + _windows_over(w.index_type, hw, window, out_hw, read + [f"acc += {c};"])
                + [store(w, lead + hw, f"static_cast<{C_TYPE[node.dtype]}>(acc / {kh * kw})", node.dtype)])

    return _per_output(w, element)


RENDER = {
    "conv2d": render_conv2d,
    "max_pool2d": render_max_pool2d,  # max_pool2d_gather too
    "max_pool2d_scatter": render_max_pool2d_scatter,
    "avg_pool2d": render_avg_pool2d,
    "avg_pool2d_scatter": render_avg_pool2d_scatter,
}
