"""The CUDA body of each kernel kind (the translation unit is put together in :mod:`.cuda_unit`).

Fused values come from the same :class:`~.writer.KernelWriter` as on the C++
side, so a fused producer prints the same statements inside a thread as inside an OpenMP
loop. ``RENDER[kind](writer) -> Launch`` says what runs on the device:

* ``loop``, ``concatenate``, ``slice_scatter``, ``scatter_add``: grid-stride loops over the
  flattened output (or the scattered values), the multi-index recovered by division;
* ``reduce``, ``softmax``: one block per output element (row) with warp-shuffle and
  shared-memory reductions, or one thread per output when the reduced axes are not the last
  (adjacent threads then read adjacent addresses);
* ``cross_entropy``: one block, one warp per row, the mean summed in a fixed order;
* ``gemm``: ``symdiff::cuda::gemm_device`` (csrc/cuda/gemm.cu) per batch, or a plain kernel
  for integers and layouts GEMM cannot read.

Every reduction combines in a fixed order, so a program's results are the same on every run;
only ``scatter_add`` (atomic adds) may round differently where indices repeat.
"""

from __future__ import annotations

import dataclasses

from symdiff import dtypes

from ..plan import dims, indexing
from ..plan.dims import NeedsConstantDims
from ..plan.schedule import contiguous_strides
from .scalar import C_TYPE, literal
from .writer import ACC_TYPE, Body, KernelWriter, _prod, gemm_layout

THREADS = 256  # per block for grid-stride loops, and the most for one row's reduction
MAX_BLOCKS = 65535  # grid-stride loops cover the rest
ROW_THREAD_MIN_OUTPUTS = 1024  # reductions along a non-last axis: one thread per output from here


@dataclasses.dataclass
class Launch:
    """What the host does for one schedule kernel: ``body`` is the ``__global__`` function's
    statements (launched ``<<<grid, block>>>`` after ``before``), or None when ``host`` lines
    (library calls on device pointers) do the work."""

    body: list | None
    grid: int = 1
    block: int = THREADS
    before: list = dataclasses.field(default_factory=list)
    host: list = dataclasses.field(default_factory=list)
    bounds: bool = False  # __launch_bounds__(block): the body assumes exactly this block size


@dataclasses.dataclass
class IndexCheck:
    """A ``__global__`` that finds the first out-of-range index (see ``symdiff_check_indices``)."""

    body: list
    grid: int
    what: str
    lo: int
    hi: int


class CudaKernelWriter(KernelWriter):
    """A KernelWriter whose index checks run on the device, before the kernel that needs them."""

    def __init__(self, sched, kernel, index_type="int64_t"):
        super().__init__(sched, kernel)
        self.index_type = index_type
        self.checks: list[IndexCheck] = []

    def unravel(self, var, shape, names) -> list[str]:
        lines = []
        for d, (size, stride) in enumerate(zip(shape, contiguous_strides(shape))):
            expr = var if stride == 1 else f"{var} / {stride}"
            if d > 0:
                expr = f"({expr}) % {size}"
            lines.append(f"const {self.index_type} {names[d]} = {expr};")
        return lines

    def grid_stride(self, count, inner, var="o") -> list[str]:
        """Statements looping ``var`` over ``count`` items, spread over every thread of the grid."""
        t = self.index_type
        head = (f"for ({t} {var} = {t}(blockIdx.x) * {t}(blockDim.x) + {t}(threadIdx.x); {var} < {count}; "
                f"{var} += {t}(gridDim.x) * {t}(blockDim.x)) {{")
        return [head] + ["  " + x for x in inner] + ["}"]

    def validate_indices(self, index_node, n, what, allow_negative=False):
        if id(index_node) in self._validated:
            return
        self._validated.add(id(index_node))
        shape = self.s.shape_of(index_node)
        body = Body()
        names = [f"j{d}" for d in range(len(shape))]
        v = self.value(index_node, names, body)
        lo = -n if allow_negative else 0
        inner = self.unravel("o", shape, names) + body.lines + [
            f"if ({v} < {lo} || {v} >= {n}) symdiff_index_error_at(err, at, o, {v});"]
        count = _prod(shape)
        self.checks.append(IndexCheck(self.grid_stride(count, inner), blocks(count), what, lo, n))


    def validate_exponent(self, exponent_node):
        # on the device, as the index checks are: the first negative exponent stops the program
        self.validate_indices(exponent_node, 2**63 - 1, "power: integers to negative integer powers are not "
                              "allowed; the exponent")


def blocks(count, per_block=THREADS):
    """Blocks for a grid-stride loop over ``count`` items: an int, or for a run-time count the C
    call that computes it when the program runs (``symdiff_blocks``, the same formula)."""
    if dims.is_runtime(count):
        return f"symdiff_blocks({count}, {per_block})"
    return max(1, min(MAX_BLOCKS, -(-int(count) // per_block)))


def _store(w, idx, value, dtype) -> str:
    v = value if isinstance(value, str) else literal(value, dtype)
    return f"{w.k.out.buffer.name}[{w.index_expr(w.k.out, idx)}] = {v};"


def _elementwise(w: CudaKernelWriter, shape, body_fn, before=()) -> Launch:
    """A grid-stride loop over ``shape``; ``body_fn(idx)`` renders one element's statements."""
    count = _prod(shape)
    names = [f"i{d}" for d in range(len(shape))]
    return Launch(w.grid_stride(count, w.unravel("o", shape, names) + body_fn(names)), blocks(count),
                  before=list(before))


def render_loop(w: CudaKernelWriter) -> Launch:
    node = w.k.node

    def body(idx):
        b = Body()
        v = w.value(node, idx, b) if w.k.copy else w._compute(node, idx, b)
        return b.lines + [_store(w, idx, v, node.dtype)]

    return _elementwise(w, w.k.out.shape, body)


# -- reductions --------------------------------------------------------------------------------


def _row_threads(n) -> int:
    """Threads for one row of ``n`` values: whole warps, at most THREADS (THREADS for a row of
    run-time length: the loops stride by blockDim.x, so any row fits)."""
    if dims.is_runtime(n):
        return THREADS
    return max(32, min(THREADS, -(-int(n) // 32) * 32))


def _item_blocks(count):
    """Blocks for a block-per-item loop over ``count`` items (at least one, at most MAX_BLOCKS)."""
    if dims.is_runtime(count):
        return blocks(count, 1)
    return min(count, MAX_BLOCKS) or 1


def _reduce_index(in_shape, axes, keepdims, out_vars, red_vars):
    kept = [d for d in range(len(in_shape)) if d not in axes]
    idx = []
    for d in range(len(in_shape)):
        if d in axes:
            idx.append(red_vars[axes.index(d)])
        else:
            idx.append(out_vars[d] if keepdims else out_vars[kept.index(d)])
    return idx


class _Reduction:
    """One output element of a reduce kernel: ``acc`` over the reduced positions ``r``, split
    over the threads of a block (``per_block``) or walked by one thread."""

    def __init__(self, w, per_block):
        self.w, self.per_block = w, per_block
        node = w.k.node
        (self.a,) = node.inputs
        self.in_shape = w.s.shape_of(self.a)
        self.axes = sorted(node.attr("axis"))
        self.red_shape = [self.in_shape[d] for d in self.axes]
        out_vars = [f"q{d}" for d in range(len(w.k.out.shape))]
        red_vars = [f"r{d}" for d in self.axes]
        self.idx = _reduce_index(self.in_shape, self.axes, node.attr("keepdims"), out_vars, red_vars)
        self.red_vars, self.out_vars = red_vars, out_vars

    def loop(self, inner_fn) -> list[str]:
        """A loop over this thread's share of the reduced positions; ``inner_fn(value)`` -> lines."""
        w, t, count = self.w, self.w.index_type, _prod(self.red_shape)
        b = Body()
        v = w.value(self.a, self.idx, b)
        v = v if isinstance(v, str) else literal(v, self.a.dtype)
        start, step = ("threadIdx.x", "blockDim.x") if self.per_block else ("0", "1")
        head = f"for ({t} r = {start}; r < {count}; r += {step}) {{"
        return [head] + ["  " + x for x in w.unravel("r", self.red_shape, self.red_vars) + b.lines
                         + inner_fn(v)] + ["}"]

    def combine(self, var, op, acc_t, identity) -> list[str]:
        if not self.per_block:
            return []
        return [f"{var} = symdiff_block_reduce<{acc_t}>({var}, {identity}, {op}(), scratch_{acc_t_name(acc_t)});"]


def acc_t_name(acc_t) -> str:
    return acc_t.replace("_t", "").replace(" ", "_")


def render_reduce(w: CudaKernelWriter) -> Launch:
    node = w.k.node
    name, dt = node.op.name, node.dtype
    out_shape, out = w.k.out.shape, w.k.out.buffer.name
    in_shape = w.s.shape_of(node.inputs[0])
    axes = sorted(node.attr("axis"))
    in_dt = node.inputs[0].dtype
    numel_out, count = _prod(out_shape), _prod(in_shape[d] for d in axes)
    # Reducing leading axes (a bias gradient): adjacent outputs are adjacent in memory, so one
    # thread per output reads coalesced; a block per output would stride through memory.
    try:
        many_outputs = numel_out >= ROW_THREAD_MIN_OUTPUTS
    except NeedsConstantDims:  # a run-time number of outputs: one thread each (right for any count)
        many_outputs = True
    per_block = not (axes and axes[-1] != len(in_shape) - 1 and many_outputs)
    red = _Reduction(w, per_block)
    lines = w.unravel("o", out_shape, red.out_vars)
    scratch: list = []
    if name == "sum":
        acc_t = ACC_TYPE[in_dt]
        lines.append(f"{acc_t} acc = 0;")
        lines += red.loop(lambda v: [f"acc += {v};"])
        lines += red.combine("acc", "symdiff_sum", acc_t, "0")
        scratch.append(acc_t)
        result = f"static_cast<{C_TYPE[dt]}>(acc)"
    elif name == "max":
        acc_t = "int" if in_dt == "bool" else C_TYPE[in_dt]
        init = {"bool": "0", "int64": "INT64_MIN"}.get(in_dt, "-INFINITY")
        lines.append(f"{acc_t} acc = {init};")
        lines += red.loop(lambda v: [f"acc = {v} > acc ? {v} : acc;"])
        lines += red.combine("acc", "symdiff_max", acc_t, init)
        scratch.append(acc_t)
        result = f"static_cast<{C_TYPE[dt]}>(acc)"
    elif name == "argmax":
        acc_t = "int" if in_dt == "bool" else C_TYPE[in_dt]
        init = {"bool": "0", "int64": "INT64_MIN"}.get(in_dt, "-INFINITY")
        lines += [f"{acc_t} best = {init};", "int64_t arg = INT64_MAX;  // none yet: the result is then 0"]
        lines += red.loop(lambda v: [f"if ({v} > best) {{ best = {v}; arg = r; }}"])
        if per_block:
            lines.append(f"symdiff_block_argmax<{acc_t}>(best, arg, scratch_{acc_t_name(acc_t)}, scratch_int64);")
            scratch += [acc_t, "int64_t"]
        result = "arg == INT64_MAX ? 0 : arg"
    else:  # logsumexp
        t = C_TYPE[in_dt]
        lines.append(f"{t} m = -INFINITY;")
        lines += red.loop(lambda v: [f"m = {v} > m ? {v} : m;"])
        lines += red.combine("m", "symdiff_max", t, "-INFINITY")
        lines += ["if (!isfinite(m)) m = 0;", "double s = 0;"]
        lines += red.loop(lambda v: [f"s += exp(double({v} - m));"])
        lines += red.combine("s", "symdiff_sum", "double", "0")
        scratch += [t, "double"]
        result = f"static_cast<{C_TYPE[dt]}>(log(s) + m)"
    store = f"{out}[o] = {result};"
    lines.append(f"if (threadIdx.x == 0) {store}" if per_block else store)
    if not per_block:
        return Launch(w.grid_stride(numel_out, lines), blocks(numel_out))
    threads = _row_threads(count)
    body = _scratch(scratch) + _block_per_item(w, numel_out, lines)
    return Launch(body, _item_blocks(numel_out), threads, bounds=True)


def _scratch(types) -> list[str]:
    """Shared memory for block reductions: 32 values (one per warp) of each type used."""
    seen = []
    for t in types:
        if t not in seen:
            seen.append(t)
    return [f"__shared__ {t} scratch_{acc_t_name(t)}[32];" for t in seen]


def _block_per_item(w, count, inner) -> list[str]:
    t = w.index_type
    return [f"for ({t} o = blockIdx.x; o < {count}; o += gridDim.x) {{"] + ["  " + x for x in inner] + ["}"]


def render_softmax(w: CudaKernelWriter) -> Launch:
    node = w.k.node
    (a,) = node.inputs
    shape = w.s.shape_of(a)
    axis = node.attr("axis") % len(shape)
    n, t, it = shape[axis], C_TYPE[node.dtype], w.index_type
    others = [s for d, s in enumerate(shape) if d != axis]
    other_vars = [f"q{d}" for d in range(len(others))]
    out = w.k.out.buffer.name

    def idx_at(j):
        idx = list(other_vars)
        idx.insert(axis, j)
        return idx

    def row_loop(inner_fn):
        b = Body()
        v = w.value(a, idx_at("j"), b)
        return ([f"for ({it} j = threadIdx.x; j < {n}; j += blockDim.x) {{"]
                + ["  " + x for x in b.lines + inner_fn(v)] + ["}"])

    out_at = f"{out}[{w.index_expr(w.k.out, idx_at('j'))}]"
    lines = w.unravel("o", others, other_vars) + [f"{t} m = -INFINITY;"]
    lines += row_loop(lambda v: [f"m = {v} > m ? {v} : m;"])
    lines += [f"m = symdiff_block_reduce<{t}>(m, -INFINITY, symdiff_max(), scratch_{acc_t_name(t)});",
              f"{t} s = 0;"]
    if node.op.name == "softmax":
        # each thread scales the same elements it wrote: no barrier between the passes
        lines += row_loop(lambda v: [f"const {t} e = exp({v} - m);", f"{out_at} = e;", "s += e;"])
        lines += [f"s = symdiff_block_reduce<{t}>(s, {t}(0), symdiff_sum(), scratch_{acc_t_name(t)});",
                  f"const {t} inv = {t}(1) / s;",
                  f"for ({it} j = threadIdx.x; j < {n}; j += blockDim.x) {out_at} *= inv;"]
    else:
        lines += row_loop(lambda v: [f"s += exp({v} - m);"])
        lines += [f"s = symdiff_block_reduce<{t}>(s, {t}(0), symdiff_sum(), scratch_{acc_t_name(t)});",
                  f"const {t} lse = m + log(s);"]
        lines += row_loop(lambda v: [f"{out_at} = {v} - lse;"])
    rows = _prod(others)
    body = _scratch([t]) + _block_per_item(w, rows, lines)
    return Launch(body, _item_blocks(rows), _row_threads(n), bounds=True)


CROSS_ENTROPY_WARPS = 32


def render_cross_entropy(w: CudaKernelWriter) -> Launch:
    """One block; warp ``k`` takes rows k, k + warps, ...; the per-warp totals are added in
    warp order, so the mean is the same on every run."""
    node = w.k.node
    logits, labels = node.inputs
    shape = w.s.shape_of(logits)
    k, rows_shape = shape[-1], shape[:-1]
    rows = _prod(rows_shape)
    w.validate_indices(labels, k, "softmax_cross_entropy: label")
    t, it = C_TYPE[node.dtype], w.index_type
    row_vars = [f"q{d}" for d in range(len(rows_shape))]
    # a run-time number of rows: every warp (those past the last row add nothing)
    warps = CROSS_ENTROPY_WARPS if dims.is_runtime(rows) else max(1, min(CROSS_ENTROPY_WARPS, rows))

    def lane_loop(inner_fn):
        b = Body()
        v = w.value(logits, row_vars + ["j"], b)
        return ([f"for ({it} j = lane; j < {k}; j += 32) {{"] + ["  " + x for x in b.lines + inner_fn(v)]
                + ["}"])

    inner = w.unravel("o", rows_shape, row_vars) + [f"{t} m = -INFINITY;"]
    inner += lane_loop(lambda v: [f"m = {v} > m ? {v} : m;"])
    inner += ["m = symdiff_warp_reduce(m, symdiff_max());", "double s = 0;"]
    inner += lane_loop(lambda v: [f"s += exp(double({v}) - double(m));"])
    inner.append("s = symdiff_warp_reduce(s, symdiff_sum());")
    b3 = Body()
    lab = w.value(labels, row_vars, b3)
    picked = w.value(logits, row_vars + [lab], b3)
    inner += b3.lines + [f"total += log(s) + double(m) - double({picked});"]
    body = ["__shared__ double partial[32];", "const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;",
            "double total = 0;",
            f"for ({it} o = warp; o < {rows}; o += {warps}) {{"] + ["  " + x for x in inner] + ["}"]
    body += ["if (lane == 0) partial[warp] = total;", "__syncthreads();",
             "if (threadIdx.x == 0) {", "  double sum = 0;",
             f"  for (int p = 0; p < {warps}; ++p) sum += partial[p];",
             f"  {w.k.out.buffer.name}[0] = static_cast<{t}>(sum / {rows});", "}"]
    return Launch(body, 1, 32 * warps, bounds=True)


# -- matmul -----------------------------------------------------------------------------------


def render_gemm(w: CudaKernelWriter) -> Launch:
    node = w.k.node
    g = gemm_layout(w)
    m, kk, n, ma, mb = g.m, g.k, g.n, g.a_op, g.b_op
    t = C_TYPE[node.dtype]
    nb = len(g.batch)
    if node.dtype in ("float32", "float64") and ma and mb:
        call = (f"symdiff::cuda::gemm_device({'true' if ma[2] else 'false'}, {'true' if mb[2] else 'false'}, "
                f"{m}, {n}, {kk}, {t}({w.k.alpha!r}), {g.A} + {g.off_a}, {ma[3]}, {g.B} + {g.off_b}, {mb[3]}, "
                f"{t}({w.k.beta!r}), {g.C} + {g.off_c}, {n});")
        host = [f"for (int64_t b{d} = 0; b{d} < {size}; ++b{d})" for d, size in enumerate(g.batch)]
        host = ["  " * d + x for d, x in enumerate(host)] + ["  " * nb + call]
        w.uses_header = "gemm"  # csrc/cuda/gemm.cu
        return Launch(None, host=host)
    # integers, or operands no GEMM layout can read: one thread per element of C
    acc = ACC_TYPE.get(node.dtype, t)
    names = [f"b{d}" for d in range(nb)] + ["i", "j"]
    at_c = f"{g.C}[{g.off_c} + i * {n} + j]"
    inner = [f"{acc} acc = 0;",
             (f"for (int64_t p = 0; p < {kk}; ++p) acc += {g.A}[{g.off_a} + i * {g.a_strides[0]} + p * "
              f"{g.a_strides[1]}] * {g.B}[{g.off_b} + p * {g.b_strides[0]} + j * {g.b_strides[1]}];"),
             f"{at_c} = static_cast<{t}>({w.k.alpha!r} * acc" + (f" + {w.k.beta!r} * {at_c});" if w.k.beta else ");")]
    count = _prod(g.batch + [m, n])
    return Launch(w.grid_stride(count, w.unravel("o", g.batch + [m, n], names) + inner), blocks(count))


# -- concatenate and scatters -------------------------------------------------------------------


def render_concatenate(w: CudaKernelWriter) -> Launch:
    """Every part in one kernel: one grid-stride loop per part (they write disjoint elements)."""
    node = w.k.node
    axis = node.attr("axis") % len(w.k.out.shape)
    lines, offset, most = [], 0, 1
    for part in node.inputs:
        shape = w.s.shape_of(part)
        names = [f"i{d}" for d in range(len(shape))]
        b = Body()
        v = w.value(part, names, b)
        out_idx = list(names)
        out_idx[axis] = f"({names[axis]} + {offset})"
        count = _prod(shape)
        lines += w.grid_stride(count, w.unravel("o", shape, names) + b.lines + [_store(w, out_idx, v, node.dtype)])
        offset += shape[axis]
        most = max(most, count)
    return Launch(lines, blocks(most))


def _zero_fill(w) -> list[str]:
    out = w.k.out
    nbytes = _prod(out.shape) * dtypes.itemsize(out.buffer.dtype)
    return [f"SYMDIFF_CHECK(cudaMemsetAsync({out.buffer.name}, 0, {nbytes}), \"zeroing {out.buffer.name}\");"]


def render_slice_scatter(w: CudaKernelWriter) -> Launch:
    node = w.k.node
    (v,) = node.inputs

    def body(idx):
        b = Body()
        val = w.value(v, idx, b)
        out_idx = indexing.source_index(node.attr("index"), w.s.bindings, idx)
        return b.lines + [_store(w, out_idx, val, node.dtype)]

    return _elementwise(w, w.s.shape_of(v), body, before=_zero_fill(w))


def render_scatter_add(w: CudaKernelWriter) -> Launch:
    def body(idx):
        lines, at, value = w.scatter_add_element(idx)
        return lines + [f"symdiff_atomic_add({w.k.out.buffer.name} + {at}, {value});"]

    return _elementwise(w, w.s.shape_of(w.k.node.inputs[0]), body, before=_zero_fill(w))


# -- windows: convolution and pooling ------------------------------------------------------------
# One thread per output element (a convolution with few outputs and long sums, as a weight
# gradient: one block per output). Inputs are read through the writer, so the pad, dilate and
# flip of the derivative graphs are index arithmetic in the threads' loops. A tap that padding
# puts outside the input is skipped before anything is read: no read leaves a buffer.

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
    store = _store(w, names, f"static_cast<{C_TYPE[node.dtype]}>(acc)", node.dtype)
    if not _few_outputs_long_sums(count, terms):
        taps = _window_taps(w, ("oh", "ow"), ((kh, kw), stride, padding, dilation), in_hw, product)
        inner = [f"{acc_t} acc = 0;", f"for ({t} ci = 0; ci < {cg}; ++ci) {{"] + ["  " + line for line in taps] + ["}"]
        return Launch(w.grid_stride(count, w.unravel("o", out_shape, names) + inner + [store]), blocks(count))
    # thread j of the block takes terms j, j + blockDim.x, ... of the sum ((channel, kp, kq) row-major)
    tap = (_tap(t, "xh", "oh", "kp", stride[0], padding[0], dilation[0], in_hw[0])
           + _tap(t, "xw", "ow", "kq", stride[1], padding[1], dilation[1], in_hw[1]) + product("xh", "xw"))
    inner = [f"{acc_t} acc = 0;", f"for ({t} r = threadIdx.x; r < {terms}; r += blockDim.x) {{"]
    inner += ["  " + line for line in w.unravel("r", [cg, kh, kw], ["ci", "kp", "kq"]) + tap] + ["}"]
    inner += [f"acc = symdiff_block_reduce<{acc_t}>(acc, {acc_t}(0), symdiff_sum(), scratch_{acc_t_name(acc_t)});",
              f"if (threadIdx.x == 0) {store}"]
    body = _scratch([acc_t]) + _block_per_item(w, count, w.unravel("o", out_shape, names) + inner)
    return Launch(body, _item_blocks(count), _row_threads(terms), bounds=True)


def _pool_window(node):
    return node.attr("kernel_size"), node.attr("stride"), node.attr("padding"), (1, 1)


def _argmax_lines(w, x, lead, out_hw, in_hw) -> list[str]:
    """``best`` and its window position (``bp``, ``bq``): the first maximum in row-major order, or
    the first NaN (numpy's max and argmax); (0, 0) when nothing beats -inf, as numpy's argmax of
    a window of -inf whose first place may be padding."""
    node, t = w.k.node, w.index_type

    def better(xh, xw):
        lines, v = _read(w, x, lead + [xh, xw])
        return lines + [f"if (best == best && ({v} > best || {v} != {v})) {{ best = {v}; bp = kp; bq = kq; }}"]

    return ([f"{C_TYPE[x.dtype]} best = -INFINITY;", f"{t} bp = 0, bq = 0;"]
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
        lines = _argmax_lines(w, x, lead, hw, in_hw)
        if node.op.name == "max_pool2d":
            return lines + [_store(w, lead + hw, "best", node.dtype)]
        lines += [f"const {t} ah = {_at(hw[0], 'bp', sh, ph)}, aw = {_at(hw[1], 'bq', sw, pw)};"]
        lines += _guarded_value(w, node.inputs[1], lead + ["ah", "aw"], _inside("ah", "aw", in_hw), "got")
        return lines + [_store(w, lead + hw, "got", node.dtype)]

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
                + [_store(w, lead + hw, f"static_cast<{C_TYPE[node.dtype]}>(acc)", node.dtype)])

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
                + [_store(w, lead + hw, f"static_cast<{C_TYPE[node.dtype]}>(acc / {kh * kw})", node.dtype)])

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
                + [_store(w, lead + hw, f"static_cast<{C_TYPE[node.dtype]}>(acc / {kh * kw})", node.dtype)])

    return _per_output(w, element)


RENDER = {
    "loop": render_loop,
    "reduce": render_reduce,
    "softmax": render_softmax,
    "cross_entropy": render_cross_entropy,
    "gemm": render_gemm,
    "concatenate": render_concatenate,
    "slice_scatter": render_slice_scatter,
    "scatter_add": render_scatter_add,
    "conv2d": render_conv2d,
    "max_pool2d": render_max_pool2d,
    "max_pool2d_scatter": render_max_pool2d_scatter,
    "avg_pool2d": render_avg_pool2d,
    "avg_pool2d_scatter": render_avg_pool2d_scatter,
}
