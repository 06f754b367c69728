"""The matrix ops of :mod:`symdiff.ops.matrix` on the cpu backend.

Kernel kind ``linalg`` (inv, solve, det, logdet, slogdet's sign) calls the LU kernels of
``cpu/linalg.hpp``; kind ``linalg_index`` (diag_embed, diagonal, kron, norm) is generated loops.

**Why our own LU, not LAPACK.** numpy's LAPACK is the OpenBLAS it bundles, whose symbols are
renamed per wheel (``scipy_openblas64_``-style prefixes, 64-bit integers) and documented as
private: a generated program linking them would depend on one numpy build's internals, break
on the next, and could not be built where numpy came from a distribution linking another
LAPACK. A system LAPACK would be a new link dependency of every program. A right-looking LU
with partial pivoting (unblocked: the matrices these ops meet are small or batched) in ~150
lines of C++ is exact about what it computes, agrees with numpy's LAPACK to rounding
(float64 1e-10 on well-conditioned inputs), and reports a singular matrix with the numpy
evaluator's message instead of returning garbage. Blocking the trailing update (for n in the
hundreds) is left for when a model needs it.

The operands are first gathered by generated loops into a double work buffer (the arena's,
placed by the memory plan), reading them through ``writer.value``: a transposed, broadcast
or elementwise-produced operand is read in place, and float32 programs factorize in double.

>>> import symdiff as sd
>>> from symdiff.lowering.plan.schedule import schedule
>>> from symdiff.lowering.render import cpu_unit
>>> A = sd.tensor("A", (3, 3))
>>> unit = cpu_unit.generate(schedule([sd.inv(A)], [A]))
>>> "symdiff::cpu::lu_solve_batch<double>(" in unit.source and '#include "symdiff/cpu/linalg.hpp"' in unit.source
True
"""

from __future__ import annotations

import hashlib

from ..compiler.toolchain import include_dir
from ..plan.schedule import contiguous_strides
from .cpu_conv import scratch
from .scalar import C_TYPE, literal
from .writer import Body, KernelWriter, _prod, loop_nest

HEADER = "linalg"  # cpu/linalg.hpp


def _header_digest() -> str:
    """A digest of cpu/linalg.hpp, written into each kernel: the cache key is the source text,
    so an edited header must change the source of the programs that include it."""
    path = include_dir() / "symdiff" / "cpu" / f"{HEADER}.hpp"
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]


def _value(w: KernelWriter, node, idx, body) -> str:
    v = w.value(node, idx, body)
    return v if isinstance(v, str) else literal(v, node.dtype)


def _broadcast_index(shape, target, idx):
    """The index into an operand of ``shape`` that broadcasts to ``target`` at ``idx``."""
    lead = len(target) - len(shape)
    return ["0" if (isinstance(d, int) and d == 1) else i for d, i in zip(shape, idx[lead:])]


def _flat(idx, shape) -> str:
    terms = [f"{i} * {s}" if s != 1 else str(i) for i, s, d in zip(idx, contiguous_strides(shape), shape)
             if not (isinstance(d, int) and d == 1)]
    return " + ".join(terms) or "0"


def _gather(w: KernelWriter, node, target, dest: str) -> list[str]:
    """Loops writing ``node`` broadcast to ``target`` into ``dest`` (double, contiguous)."""
    shape = w.s.shape_of(node)

    def body(idx):
        b = Body()
        v = _value(w, node, _broadcast_index(shape, target, idx), b)
        return b.lines + [f"{dest}[{_flat(idx, target)}] = static_cast<double>({v});"]

    return loop_nest(target, body)


def _out_pointer(w: KernelWriter) -> str:
    view = w.k.out
    return view.buffer.name + (f" + {view.offset}" if view.offset else "")


def _shape_array(shape) -> list[str]:
    return [f"const int64_t shape[{max(len(shape), 1)}] = {{{', '.join(str(d) for d in shape) or '0'}}};"]


def render_linalg(w: KernelWriter) -> list[str]:
    node = w.k.node
    name = node.op.name
    w.uses_header = HEADER
    t = C_TYPE[node.dtype]
    lines = [f"// {HEADER}.hpp sha256:{_header_digest()}"]
    a = node.inputs[0]
    a_shape = w.s.shape_of(a)
    if name == "solve":
        b_shape = w.s.shape_of(node.inputs[1])
        out_shape = w.s.shape_of(node)
        batch_shape, n, k = tuple(out_shape[:-2]), out_shape[-2], out_shape[-1]
        a_shape = batch_shape + (n, n)  # A broadcast to the batch of x, as the evaluator reports it
    else:
        batch_shape, n = tuple(a_shape[:-2]), a_shape[-1]
        k = n
    batch = _prod(batch_shape)
    work = scratch(w, "lu", "float64", _prod(a_shape))
    piv = scratch(w, "pivots", "int64", _prod(batch_shape + (n,)))
    lines += _gather(w, a, a_shape, work)
    if name in ("det", "logdet", "slogdet_sign"):
        what = {"det": "value", "logdet": "log_abs", "slogdet_sign": "sign"}[name]
        call = (f"symdiff::cpu::lu_determinant_batch<{t}>({work}, {piv}, {_out_pointer(w)}, {batch}, {n}, "
                f"symdiff::cpu::Determinant::{what});")
        return [*lines, call]
    rhs = scratch(w, "rhs", "float64", _prod(batch_shape + (n, k)))
    identity = name == "inv"
    if not identity:
        lines += _gather(w, node.inputs[1], batch_shape + tuple(b_shape[-2:]), rhs)
    lines += _shape_array(a_shape)
    lines.append(f"if (symdiff::cpu::lu_solve_batch<{t}>({work}, {rhs}, {piv}, {_out_pointer(w)}, {batch}, {n}, {k}, "
                 f"{'true' if identity else 'false'}, error, error_size, \"{name}\", shape, {len(a_shape)})) "
                 "return 1;")
    return lines


def _store(w: KernelWriter, idx, value: str) -> str:
    at = w.index_expr(w.k.out, idx)
    w.stores.add(at)
    return f"{w.k.out.buffer.name}[{at}] = {value};"


def render_linalg_index(w: KernelWriter) -> list[str]:
    node = w.k.node
    name = node.op.name
    out_shape = w.s.shape_of(node)
    t = C_TYPE[node.dtype]
    if name == "norm":
        (x,) = node.inputs

        def square(idx):
            b = Body()
            v = _value(w, x, idx, b)
            return b.lines + [f"acc += static_cast<double>({v}) * static_cast<double>({v});"]

        loops = loop_nest(w.s.shape_of(x), square, parallel=False, simd=False)  # one order: deterministic
        return ["double acc = 0;"] + loops + [_store(w, [], f"static_cast<{t}>(std::sqrt(acc))")]

    def body(idx):
        b = Body()
        if name == "diag_embed":
            v = _value(w, node.inputs[0], idx[:-1], b)
            value = f"({idx[-2]} == {idx[-1]} ? {v} : static_cast<{t}>(0))"
        elif name == "diagonal":
            value = _value(w, node.inputs[0], list(idx[:-1]) + [idx[-1], idx[-1]], b)
        else:  # kron: block (r / p, c / q) of A times entry (r % p, c % q) of B
            a, bb = node.inputs
            a_shape, b_shape = w.s.shape_of(a), w.s.shape_of(bb)
            p, q = b_shape[-2], b_shape[-1]
            r, c = idx[-2], idx[-1]
            batch = out_shape[:-2]
            ai = _broadcast_index(a_shape[:-2], batch, idx[:-2]) + [f"({r} / {p})", f"({c} / {q})"]
            bi = _broadcast_index(b_shape[:-2], batch, idx[:-2]) + [f"({r} % {p})", f"({c} % {q})"]
            value = f"{_value(w, a, ai, b)} * {_value(w, bb, bi, b)}"
        return b.lines + [_store(w, idx, value)]

    return loop_nest(out_shape, body)


RENDER = {"linalg": render_linalg, "linalg_index": render_linalg_index}
