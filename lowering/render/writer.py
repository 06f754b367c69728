"""The kernel writer both backends share, and what each translation unit is made of.

A :class:`KernelWriter` renders one :class:`~symdiff.lowering.plan.schedule.Kernel`: it loads
buffers through their strided views, computes fused producers in place (elementwise ops by
:mod:`.scalar`, movement ops as index arithmetic), emits index and exponent checks, and
records what it read and fused. The per-kind bodies are tables of renderers
(:mod:`.cpu_kernels`, :mod:`.cuda_kernels`; :func:`renderer` looks an entry up); the units
(:mod:`.cpu_unit`, :mod:`.cuda_unit`) name each kernel ``k_<hash8>_<ops>`` (the hash is of its
text, so the same computation always gets the same name) and add the entry point of the
program ABI (:mod:`symdiff.lowering.compiler.toolchain`):

    extern "C" int symdiff_program(void* const* buffers, const int64_t* dims, char* error, int64_t error_size)

Names are deterministic (``in0``, ``out0``, ``t0``, ``c0``, locals ``v0``…): a user's names
are never identifiers; they appear only in the comment above each kernel (:mod:`.formula`).
"""

from __future__ import annotations

import dataclasses
import hashlib

import sympy

from ..plan import dims, indexing
from ..plan.dims import NeedsConstantDims
from ..plan.memory import MemoryPlan
from ..plan.schedule import Kernel, LoweringError, Schedule, contiguous_strides
from .scalar import C_TYPE, c_expression, literal

ABI = "symdiff-abi-1"  # what symdiff_program_abi() returns; csrc/bind_program.cpp checks it
PARALLEL_MIN_ELEMENTS = 32768  # below this an OpenMP fork/join costs more than the loop
ACC_TYPE = {"float32": "double", "float64": "double", "int64": "int64_t", "bool": "int64_t"}


@dataclasses.dataclass
class TranslationUnit:
    """A rendered program: its source, and what the renderer learned on the way."""

    source: str
    kernels: list  # the schedule's kernels, named, with their fused nodes
    reads: list  # per kernel: buffer names read
    memory: MemoryPlan
    schedule: Schedule


def renderer(table: dict, kernel: Kernel, backend: str):
    """The render entry of ``kernel``'s kind in a backend's ``RENDER`` table.

    >>> renderer({}, Kernel(kind="conv", node=None, out=None), "cpu")
    Traceback (most recent call last):
    ...
    symdiff.lowering.plan.schedule.LoweringError: the cpu backend has no renderer for kernel kind 'conv' ...
    """
    try:
        return table[kernel.kind]
    except KeyError:
        op = getattr(getattr(kernel.node, "op", None), "name", "?")
        raise LoweringError(f"the {backend} backend has no renderer for kernel kind {kernel.kind!r} (op {op}); "
                            f"it renders {', '.join(sorted(table))}") from None


def summary(kernel) -> str:
    """The op names a kernel's name ends with (``k_<hash8>_exp_multiply``)."""
    names, chain = [], {id(n) for n in kernel.epilogue}
    before = [n for n in kernel.fused if id(n) not in chain]
    for n in before + [kernel.node] + [n for n in kernel.fused if id(n) in chain]:
        if n.op.name not in names and n.op.name not in ("broadcast_to", "astype", "reshape"):
            names.append(n.op.name)
    if kernel.copy:
        names = ["copy"]
    return "_".join(names[:3]) or kernel.node.op.name


def _prod(xs):
    out = 1
    for x in xs:
        out = out * (x if dims.is_runtime(x) else int(x))
    return out


def more_than_one(d) -> bool:
    """``d > 1`` for a size; a run-time size counts as more than one (code for many rows is
    right for one row too; the callers still check what they need of the strides)."""
    return True if dims.is_runtime(d) else d > 1


def condition(test, text: str):
    """``test()`` when it can be answered now, else ``text``: the C condition the program
    evaluates when it runs (for a choice that only affects speed, such as forking threads)."""
    try:
        return bool(test())
    except NeedsConstantDims:
        return text


def all_of(*conditions):
    """The conjunction of :func:`condition` results: a bool, or a C condition."""
    if any(c is False for c in conditions):
        return False
    left = [c for c in conditions if c is not True]
    return True if not left else " && ".join(f"({c})" for c in left)


def enough_work(count) -> bool | str:
    """Whether ``count`` elements are worth forking OpenMP threads for."""
    return condition(lambda: count >= PARALLEL_MIN_ELEMENTS, f"{count} >= {PARALLEL_MIN_ELEMENTS}")


def omp_parallel(par, construct="parallel for schedule(static)") -> list[str]:
    """The OpenMP pragma line for ``par`` (a :func:`condition`): none, or always, or ``if``."""
    if par is False:
        return []
    return [f"#pragma omp {construct}" + ("" if par is True else f" if(parallel: {par})")]


class Body:
    """Statements of one loop body, with the values already computed in it."""

    def __init__(self):
        self.lines: list[str] = []
        self.memo: dict = {}


class KernelWriter:
    """Renders one kernel; records the buffers it reads and the nodes fused into it."""

    def __init__(self, sched: Schedule, kernel: Kernel):
        self.s = sched
        self.k = kernel
        self.reads: dict = {}
        self.fused: list = []
        self._fused_ids: set = set()
        self.validations: list[str] = []
        self.uses_header = ""  # the kernel header the body calls into (cpu/<name>.hpp, cuda: <name>.cu)
        self.loads: dict = {}  # buffer name -> index expressions it is loaded at
        self.stores: set = set()  # index expressions the output is stored at (loop kernels)
        self._validated: set = set()
        self.counter = 0

    # -- values -------------------------------------------------------------------------------

    def fresh(self) -> str:
        self.counter += 1
        return f"v{self.counter - 1}"

    def index_expr(self, view, idx) -> str:
        terms = [str(view.offset)] if view.offset else []
        for i, stride, dim in zip(idx, view.strides, view.shape):
            if stride == 0 or dim == 1:
                continue
            terms.append(f"{i}" if stride == 1 else f"{i} * {stride}")
        return " + ".join(terms) or "0"

    def load(self, view, idx, body: Body) -> str:
        self.reads[view.buffer.name] = view.buffer
        key = ("load", view.buffer.name, self.index_expr(view, idx))
        self.loads.setdefault(view.buffer.name, set()).add(key[2])
        if key in body.memo:
            return body.memo[key]
        var = self.fresh()
        body.lines.append(f"const {C_TYPE[view.buffer.dtype]} {var} = {view.buffer.name}[{key[2]}];")
        body.memo[key] = var
        return var

    def aligned_temps(self) -> list:
        """Temporaries this loop reads only at the element it writes: candidates for writing
        the output over them (in place) when they die here."""
        if len(self.stores) != 1:
            return []
        return sorted(name for name, at in self.loads.items()
                      if at == self.stores and self.reads[name].role == "temp")

    def value(self, node, idx, body: Body):
        """C variable (or Python number) holding ``node`` at multi-index ``idx``."""
        if node.is_constant and node.shape == ():
            v = node.attr("value")
            if isinstance(v, sympy.Basic):
                v = sympy.sympify(v.xreplace(self.s.bindings))
                if v.free_symbols:  # depends on run-time dimensions (a mean's 1/m): computed in C
                    return f"static_cast<{C_TYPE[node.dtype]}>({dims.c_scalar(v)})"
                v = int(v) if v.is_Integer else float(v)
            return v
        view = self.s.views.get(id(node))
        if view is not None:
            return self.load(view, idx, body)
        key = (id(node), tuple(idx))
        if key in body.memo:
            return body.memo[key]
        result = self._compute(node, idx, body)
        body.memo[key] = result
        return result

    def _mark_fused(self, node):
        if id(node) not in self._fused_ids:
            self._fused_ids.add(id(node))
            self.fused.append(node)

    def _compute(self, node, idx, body: Body):
        """``node`` at ``idx`` from its inputs (the node is not stored in a buffer)."""
        name = node.op.name
        shape_of = self.s.shape_of
        if node.op.view:
            self._mark_fused(node)
            return self.value(node.inputs[0], self._movement_index(node, idx, body), body)
        if name == "eye":
            self._mark_fused(node)
            return self.cast_expr(f"({idx[0]} == {idx[1]})", "bool", node.dtype, body)
        if name == "one_hot":
            self._mark_fused(node)
            labels = node.inputs[0]
            self.validate_indices(labels, int(shape_of(node)[-1]), "one_hot: label")
            lab = self.value(labels, idx[:-1], body)
            return self.cast_expr(f"({lab} == {idx[-1]})", "bool", node.dtype, body)
        if name == "take":
            self._mark_fused(node)
            a, ind = node.inputs
            axis = node.attr("axis")
            n = shape_of(a)[axis]  # an int, or the table's run-time length
            self.validate_indices(ind, n, "take: index", allow_negative=True)
            k = len(shape_of(ind))
            raw = self.value(ind, idx[axis:axis + k], body)
            pos = self.fresh()
            body.lines.append(f"const int64_t {pos} = {raw} < 0 ? {raw} + {n} : {raw};")
            return self.value(a, list(idx[:axis]) + [pos] + list(idx[axis + k:]), body)
        if name in ("pad", "dilate"):
            self._mark_fused(node)
            return self._guarded_read(node, idx, body)
        if getattr(node.op, "kind", "") == "elementwise":
            self._mark_fused(node)
            return self.elementwise(node, [self.value(i, idx, body) for i in node.inputs], body)
        raise AssertionError(f"{name} should have been materialized")

    def _movement_index(self, node, idx, body):
        name = node.op.name
        src = node.inputs[0]
        in_shape, out_shape = self.s.shape_of(src), self.s.shape_of(node)
        if name == "stop_gradient":
            return list(idx)
        if name == "broadcast_to":
            lead = len(out_shape) - len(in_shape)
            return ["0" if d == 1 else i for d, i in zip(in_shape, idx[lead:])]
        if name == "transpose":
            out = [None] * len(in_shape)
            for d, a in enumerate(node.attr("axes")):
                out[a] = idx[d]
            return out
        if name == "flip":
            axes = node.attr("axis")
            return [f"({d - 1} - {i})" if a in axes else i for a, (i, d) in enumerate(zip(idx, in_shape))]
        if name == "reshape":
            strides = contiguous_strides(out_shape)
            lin = self.fresh()
            terms = [f"{i} * {s}" for i, s, d in zip(idx, strides, out_shape) if d != 1] or ["0"]
            body.lines.append(f"const int64_t {lin} = {' + '.join(terms)};")
            in_strides = contiguous_strides(in_shape)
            return [f"(({lin} / {s}) % {d})" if d != 1 else "0" for s, d in zip(in_strides, in_shape)]
        return indexing.source_index(node.attr("index"), self.s.bindings, idx)  # getitem

    def _guarded_read(self, node, idx, body):
        """pad and dilate at ``idx``: the input at the mapped index where the element comes from
        it, else the fill value. The read is inside the condition, so padding never reads out of
        bounds (an empty input included); what it computes stays in that block."""
        in_shape = self.s.shape_of(node.inputs[0])
        mapped, inside = list(idx), []
        if node.op.name == "pad":
            fill = node.attr("value")
            for a, (i, d, (before, after)) in enumerate(zip(idx, in_shape, node.attr("pad_width"))):
                if before:
                    mapped[a] = f"({i} - {before})"
                    inside.append(f"{i} >= {before}")
                if after:
                    inside.append(f"{mapped[a]} < {d}")
        else:  # dilate: every (dilation + 1)-th element along its axes
            fill, step = 0, node.attr("dilation") + 1
            for a in node.attr("axes"):
                mapped[a] = f"({idx[a]} / {step})"
                inside.append(f"{idx[a]} % {step} == 0")
        var, inner = self.fresh(), Body()
        inner.memo = dict(body.memo)  # values computed before are in scope; those computed inside stay there
        got = self.value(node.inputs[0], mapped, inner)
        got = got if isinstance(got, str) else literal(got, node.dtype)
        body.lines.append(f"{C_TYPE[node.dtype]} {var} = {literal(fill, node.dtype)};")
        body.lines.append(f"if ({' && '.join(f'({c})' for c in inside)}) {{")
        body.lines += ["  " + line for line in inner.lines] + [f"  {var} = {got};", "}"]
        return var

    def scatter_add_element(self, idx):
        """(lines, output position, value) for element ``idx`` of a scatter_add kernel's values: the
        index read (and checked once per kernel) and wrapped as numpy wraps a negative one."""
        node = self.k.node
        v, ind = node.inputs
        axis, n = node.attr("axis"), self.k.out.shape[node.attr("axis")]
        self.validate_indices(ind, n, "scatter_add: index", allow_negative=True)
        k = len(self.s.shape_of(ind))
        b = Body()
        val = self.value(v, idx, b)
        raw = self.value(ind, idx[axis:axis + k], b)
        out_idx = list(idx[:axis]) + [f"({raw} < 0 ? {raw} + {n} : {raw})"] + list(idx[axis + k:])
        value = val if isinstance(val, str) else literal(val, node.dtype)
        return b.lines, self.index_expr(self.k.out, out_idx), value

    def cast_expr(self, expr, from_dtype, to_dtype, body):
        var = self.fresh()
        body.lines.append(f"const {C_TYPE[to_dtype]} {var} = static_cast<{C_TYPE[to_dtype]}>({expr});")
        return var

    def elementwise(self, node, args, body: Body):
        op = node.op
        if op.name == "astype":
            (a,) = args
            src, dst = node.inputs[0].dtype, node.dtype
            if not isinstance(a, str):
                return bool(a) if dst == "bool" else (int(a) if dst == "int64" else float(a))
            expr = f"({a} != 0)" if dst == "bool" and src != "bool" else f"static_cast<{C_TYPE[dst]}>({a})"
        else:
            data = node.inputs[1:] if op.name == "where" else node.inputs
            compute_dtype = data[0].dtype
            if op.name == "power" and compute_dtype == "int64":
                self.validate_exponent(node.inputs[1])
            expr = c_expression(op, args, compute_dtype)
            if not isinstance(expr, str):
                return expr
        var = self.fresh()
        body.lines.append(f"const {C_TYPE[node.dtype]} {var} = {expr};")
        return var

    def validate_indices(self, index_node, n, what, allow_negative=False):
        """Emit, once per kernel, a check that every index in ``index_node`` is in range."""
        lo = -n if allow_negative else 0
        if dims.is_runtime(n):  # the bounds are printed when the program runs
            self._validate(index_node, lambda v: f"{v} < {lo} || {v} >= {n}",
                           f"{what} %lld at flat position %lld is out of range [%lld, %lld)",
                           extra=(f"(long long)({lo})", f"(long long)({n})"))
            return
        self._validate(index_node, lambda v: f"{v} < {lo} || {v} >= {n}",
                       f"{what} %lld at flat position %lld is out of range [{lo}, {n})")

    def validate_exponent(self, exponent_node):
        """Emit, once per kernel, a check that no integer exponent is negative (numpy raises)."""
        self._validate(exponent_node, lambda v: f"{v} < 0",
                       "power: integers to negative integer powers are not allowed (exponent %lld at flat "
                       "position %lld); use a float base")

    def _validate(self, node, bad, message, extra=()):
        if id(node) in self._validated:
            return
        self._validated.add(id(node))
        shape = self.s.shape_of(node)
        body = Body()
        idx = [f"j{d}" for d in range(len(shape))]
        v = self.value(node, idx, body)
        lines = []
        for d, size in enumerate(shape):
            lines.append("  " * d + f"for (int64_t j{d} = 0; j{d} < {size}; ++j{d}) {{")
        pad = "  " * len(shape)
        lines += [pad + line for line in body.lines]
        lines.append(pad + f"if ({bad(v)}) {{ std::snprintf(error, error_size, \"{message}\", "
                     f"(long long)({v}), (long long)({_flat(shape, 'j')}){''.join(', ' + e for e in extra)}); "
                     "return 1; }")
        lines += ["  " * d + "}" for d in reversed(range(len(shape)))]
        self.validations.append("\n".join(lines))


def _flat(shape, prefix):
    strides = contiguous_strides(shape)
    return " + ".join(f"{prefix}{d} * {s}" for d, s in enumerate(strides)) or "0"


# -- loops -----------------------------------------------------------------------------------


def loop_nest(shape, body_fn, parallel=True, simd=True) -> list[str]:
    """Loops over ``shape``: the leading axes flattened into one OpenMP loop, the last axis inner
    (vectorizable). ``body_fn(idx) -> list of lines`` renders the body at index variables idx."""
    shape = [d if dims.is_runtime(d) else int(d) for d in shape]
    numel = _prod(shape)
    par = parallel and enough_work(numel)
    if not shape:
        return ["{"] + ["  " + line for line in body_fn([])] + ["}"]
    if len(shape) == 1:
        lines = omp_parallel(par, "parallel for simd schedule(static)") if par else (["#pragma omp simd"]
                                                                                   if simd else [])
        lines.append(f"for (int64_t i0 = 0; i0 < {shape[0]}; ++i0) {{")
        lines += ["  " + line for line in body_fn(["i0"])]
        return lines + ["}"]
    outer = _prod(shape[:-1])
    last = len(shape) - 1
    lines = omp_parallel(par)
    lines.append(f"for (int64_t o = 0; o < {outer}; ++o) {{")
    strides = contiguous_strides(shape[:-1])
    for d in range(last):
        expr = "o" if strides[d] == 1 else f"o / {strides[d]}"
        if d > 0:
            expr = f"({expr}) % {shape[d]}"
        lines.append(f"  const int64_t i{d} = {expr};")
    if simd:
        lines.append("  #pragma omp simd")
    lines.append(f"  for (int64_t i{last} = 0; i{last} < {shape[-1]}; ++i{last}) {{")
    lines += ["    " + line for line in body_fn([f"i{d}" for d in range(len(shape))])]
    lines += ["  }", "}"]
    return lines


def flat_loop(count, body_fn, parallel=True, var="o") -> list[str]:
    """One loop over ``count`` items (OpenMP when large enough)."""
    lines = omp_parallel(all_of(parallel, more_than_one(count))) if parallel is not False else []
    lines.append(f"for (int64_t {var} = 0; {var} < {count}; ++{var}) {{")
    lines += ["  " + line for line in body_fn(var)]
    return lines + ["}"]


def unravel(var, shape, names) -> list[str]:
    strides = contiguous_strides(shape)
    out = []
    for d, (s, size) in enumerate(zip(strides, shape)):
        expr = var if s == 1 else f"{var} / {s}"
        if d > 0:
            expr = f"({expr}) % {size}"
        out.append(f"const int64_t {names[d]} = {expr};")
    return out


def kernel_hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:8]


# -- GEMM operands (both backends) ----------------------------------------------------------


def gemm_operand(shape, strides):
    """(rows, cols, transposed, ld) for a strided 2-D operand, or None if GEMM cannot read it."""
    rows, cols = shape
    s0, s1 = strides
    if s1 == 1 or cols == 1:
        ld = s0 if more_than_one(rows) else cols
        if rows == 1 or ld >= cols:
            return rows, cols, False, dims.maximum(ld, cols)
    if s0 == 1 or rows == 1:
        ld = s1 if more_than_one(cols) else rows
        if cols == 1 or ld >= rows:
            return rows, cols, True, dims.maximum(ld, rows)
    return None


def aligned_batch(x, y):
    """Pairs of batch dimensions of two operands, the shorter padded with leading 1s."""
    n = max(len(x), len(y))
    x = [1] * (n - len(x)) + list(x)
    y = [1] * (n - len(y)) + list(y)
    return list(zip(x, y))


def batch_strides(shape, strides, nb):
    shape = [1] * (nb - len(shape)) + list(shape)
    strides = [0] * (nb - len(strides)) + list(strides)
    return [0 if d == 1 else s for d, s in zip(shape, strides)]


@dataclasses.dataclass
class GemmLayout:
    """A (batched) matmul kernel's operands as both renderers need them: C[b] = A[b]·B[b], m×k by k×n."""

    m: int
    k: int
    n: int
    batch: list  # the broadcast batch dimensions, loop variables b0, b1, ...
    a_strides: list  # the 2-D strides of A and B (after 1-D operands became a row and a column)
    b_strides: list
    a_op: tuple | None  # gemm_operand of A and B: None where no GEMM layout can read it
    b_op: tuple | None
    A: str  # buffer names
    B: str
    C: str
    off_a: str  # element offsets of batch b (C++ expressions in b0, b1, ...)
    off_b: str
    off_c: str


def gemm_layout(w) -> GemmLayout:
    """The layout of kernel writer ``w``'s matmul, recording the buffers it reads."""
    a, b = w.k.node.inputs
    va, vb, vc = w.s.views[id(a)], w.s.views[id(b)], w.k.out
    w.reads[va.buffer.name] = va.buffer
    w.reads[vb.buffer.name] = vb.buffer
    a_shape, a_str = list(va.shape), list(va.strides)
    b_shape, b_str = list(vb.shape), list(vb.strides)
    if len(a_shape) == 1:
        a_shape, a_str = [1] + a_shape, [0] + a_str
    if len(b_shape) == 1:
        b_shape, b_str = b_shape + [1], b_str + [0]
    m, kk, n = a_shape[-2], a_shape[-1], b_shape[-1]
    batch = [max(x, y) for x, y in aligned_batch(a_shape[:-2], b_shape[:-2])]
    nb = len(batch)
    bvars = [f"b{d}" for d in range(nb)]

    def offset(view, strides):
        return " + ".join([str(view.offset)] + [f"{v} * {s}" for v, s in zip(bvars, strides) if s])

    c_bs = list(contiguous_strides(batch + [m, n]))[:nb]
    return GemmLayout(m, kk, n, batch, a_str[-2:], b_str[-2:], gemm_operand((m, kk), a_str[-2:]),
                      gemm_operand((kk, n), b_str[-2:]), va.buffer.name, vb.buffer.name, vc.buffer.name,
                      offset(va, batch_strides(a_shape[:-2], a_str[:-2], nb)),
                      offset(vb, batch_strides(b_shape[:-2], b_str[:-2], nb)), offset(vc, c_bs))
