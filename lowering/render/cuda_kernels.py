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
  for integers and layouts GEMM cannot read;
* ``conv2d`` and the pooling kinds: :mod:`.cuda_windows`.

The writer, the launch record and the block helpers every entry shares are in :mod:`.cuda_writer`.

Every reduction combines in a fixed order, so a program's results are the same on every run;
only ``scatter_add`` (atomic adds) may round differently where indices repeat.
"""

from __future__ import annotations

from symdiff import dtypes

from ..plan import dims, indexing
from ..plan.dims import NeedsConstantDims
from . import cuda_windows
from .cuda_writer import (
    THREADS,
    CudaKernelWriter,
    IndexCheck,
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
from .writer import ACC_TYPE, Body, _prod, gemm_layout

__all__ = ["RENDER", "THREADS", "CudaKernelWriter", "IndexCheck", "Launch", "blocks"]

ROW_THREAD_MIN_OUTPUTS = 1024  # reductions along a non-last axis: one thread per output from here


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
        return b.lines + [store(w, idx, v, node.dtype)]

    return _elementwise(w, w.k.out.shape, body)


# -- reductions --------------------------------------------------------------------------------


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
    threads = row_threads(count)
    body = shared_scratch(scratch) + block_per_item(w, numel_out, lines)
    return Launch(body, item_blocks(numel_out), threads, bounds=True)


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
    body = shared_scratch([t]) + block_per_item(w, rows, lines)
    return Launch(body, item_blocks(rows), row_threads(n), bounds=True)


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
        lines += w.grid_stride(count, w.unravel("o", shape, names) + b.lines + [store(w, out_idx, v, node.dtype)])
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
        return b.lines + [store(w, out_idx, val, node.dtype)]

    return _elementwise(w, w.s.shape_of(v), body, before=_zero_fill(w))


def render_scatter_add(w: CudaKernelWriter) -> Launch:
    def body(idx):
        lines, at, value = w.scatter_add_element(idx)
        return lines + [f"symdiff_atomic_add({w.k.out.buffer.name} + {at}, {value});"]

    return _elementwise(w, w.s.shape_of(w.k.node.inputs[0]), body, before=_zero_fill(w))


def render_scan(w) -> list[str]:
    """Not yet on this backend: say so, and what works today."""
    from ..plan.schedule import LoweringError
    raise LoweringError("the cuda backend cannot lower sd.scan yet (the cpu backend can); for recurrent layers "
                        "on cuda build them unrolled: nn.LSTM(..., unroll=True), nn.RNN(..., unroll=True)")


RENDER = {
    "scan": render_scan,
    "loop": render_loop,
    "reduce": render_reduce,
    "softmax": render_softmax,
    "cross_entropy": render_cross_entropy,
    "gemm": render_gemm,
    "concatenate": render_concatenate,
    "slice_scatter": render_slice_scatter,
    "scatter_add": render_scatter_add,
    **cuda_windows.RENDER,  # conv2d and the pooling family
}
