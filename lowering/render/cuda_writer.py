"""The CUDA side of the kernel writer: what a render entry returns (:class:`Launch`), the
:class:`CudaKernelWriter` (grid-stride loops, index checks that run on the device) and the
block shapes and shared-memory helpers the entries of :mod:`.cuda_kernels` and
:mod:`.cuda_windows` share."""

from __future__ import annotations

import dataclasses

from ..plan import dims
from ..plan.schedule import contiguous_strides
from .scalar import literal
from .writer import Body, KernelWriter, _prod

THREADS = 256  # per block for grid-stride loops, and the most for one row's reduction
MAX_BLOCKS = 65535  # grid-stride loops cover the rest


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


def store(w, idx, value, dtype) -> str:
    v = value if isinstance(value, str) else literal(value, dtype)
    return f"{w.k.out.buffer.name}[{w.index_expr(w.k.out, idx)}] = {v};"



def row_threads(n) -> int:
    """Threads for one row of ``n`` values: whole warps, at most THREADS (THREADS for a row of
    run-time length: the loops stride by blockDim.x, so any row fits)."""
    if dims.is_runtime(n):
        return THREADS
    return max(32, min(THREADS, -(-int(n) // 32) * 32))


def item_blocks(count):
    """Blocks for a block-per-item loop over ``count`` items (at least one, at most MAX_BLOCKS)."""
    if dims.is_runtime(count):
        return blocks(count, 1)
    return min(count, MAX_BLOCKS) or 1


def acc_t_name(acc_t) -> str:
    return acc_t.replace("_t", "").replace(" ", "_")


def shared_scratch(types) -> list[str]:
    """Shared memory for block reductions: 32 values (one per warp) of each type used."""
    seen = []
    for t in types:
        if t not in seen:
            seen.append(t)
    return [f"__shared__ {t} scratch_{acc_t_name(t)}[32];" for t in seen]


def block_per_item(w, count, inner) -> list[str]:
    t = w.index_type
    return [f"for ({t} o = blockIdx.x; o < {count}; o += gridDim.x) {{"] + ["  " + x for x in inner] + ["}"]
