"""Memory plan: temporaries placed in one arena, reusing the space of dead buffers.

A temporary lives from the kernel that writes it to the last kernel that reads it
(update values live to the end, when they are copied into their inputs). Buffers
are placed first-fit at 64-byte aligned offsets; two buffers share bytes only when
their lifetimes do not overlap.

>>> import symdiff as sd
>>> from symdiff.lowering.plan.schedule import schedule
>>> from symdiff.lowering.render.cpu_unit import generate
>>> x = sd.tensor("x", (1000,))
>>> y = sd.softmax(sd.softmax(sd.softmax(x)))   # three temporaries in a row
>>> plan = generate(schedule([sd.sum(y)], [x])).memory
>>> plan.temp_bytes, plan.arena_bytes            # the third reuses the first one's bytes
(24000, 16000)
"""

from __future__ import annotations

import dataclasses

from . import dims

ALIGN = 64


@dataclasses.dataclass
class MemoryPlan:
    arena_bytes: int  # bytes of temporaries after reuse (a dims.RuntimeDim when sizes are run-time)
    temp_bytes: int  # bytes of temporaries without reuse
    io_bytes: int  # inputs + outputs + constants
    lifetimes: dict  # temp name -> (first kernel, last kernel)
    inplace: dict = dataclasses.field(default_factory=dict)  # kernel index -> input whose bytes its output reuses

    @property
    def peak_bytes(self) -> int:
        return self.arena_bytes + self.io_bytes


def _round(n: int) -> int:
    return (n + ALIGN - 1) // ALIGN * ALIGN


def plan_memory(sched, reads: list, inplace_candidates: dict | None = None) -> MemoryPlan:
    """Assign ``offset`` to each temp of ``sched``; ``reads[i]`` are the buffer names kernel i reads.

    ``inplace_candidates[i]`` names temporaries kernel i reads only at the element it writes:
    when one of them dies at kernel i and is large enough, the output takes its bytes (in place)."""
    end = len(sched.kernels)
    first, last = _lifetimes(sched, reads)
    if any(dims.is_runtime(b.nbytes) for b in sched.temps):
        return _plan_slots(sched, first, last, inplace_candidates)
    by_name = {b.name: b for b in sched.temps}
    writer = {k.out.buffer.name: i for i, k in reversed(list(enumerate(sched.kernels)))}
    placed = {}  # name -> [offset, size, first, last]
    inplace = {}
    arena = 0
    for buf in sorted(sched.temps, key=lambda b: (first.get(b.name, 0), b.name)):
        lo, hi = first.get(buf.name, 0), last.get(buf.name, end)
        size = _round(max(buf.nbytes, 1))
        i = writer.get(buf.name)
        donor = next((t for t in (inplace_candidates or {}).get(i, [])
                      if t in placed and last.get(t) == i and placed[t][1] >= size
                      and by_name[t].dtype == buf.dtype), None)
        if donor is not None:
            offset = placed[donor][0]
            placed[donor][3] = hi  # the donor's bytes stay taken for the output's lifetime
            inplace[i] = donor
        else:
            busy = sorted((o, s) for o, s, f, l in placed.values() if not (l < lo or f > hi))
            offset = 0
            for o, s in busy:
                if offset + size <= o:
                    break
                offset = max(offset, o + s)
        buf.offset = offset
        placed[buf.name] = [offset, size, lo, hi]
        arena = max(arena, offset + size)
    io = sum(b.nbytes for b in sched.inputs + sched.outputs + sched.consts)
    return MemoryPlan(arena, sum(_round(b.nbytes) for b in sched.temps), io,
                      {b.name: (first.get(b.name, 0), last.get(b.name, end)) for b in sched.temps}, inplace)


def _lifetimes(sched, reads):
    """(first, last): the kernel index each buffer is first written at and last read at."""
    end = len(sched.kernels)
    first, last = {}, {}
    for i, kernel in enumerate(sched.kernels):
        name = kernel.out.buffer.name
        first.setdefault(name, i)
        last[name] = max(last.get(name, i), i)
        for r in reads[i]:
            first.setdefault(r, i)  # a kernel's scratch: no kernel writes it, it lives where it is read
            last[r] = max(last.get(r, i), i)
    for _, view in sched.updates:
        last[view.buffer.name] = end
    return first, last


def _plan_slots(sched, first, last, inplace_candidates) -> MemoryPlan:
    """The plan when sizes are known only at run time: temporaries whose lifetimes do not
    overlap share a slot as large as the largest of them (a ``std::max`` in the generated
    code), and slots follow each other; offsets are expressions in the run-time dimensions."""
    end = len(sched.kernels)
    by_name = {b.name: b for b in sched.temps}
    writer = {k.out.buffer.name: i for i, k in reversed(list(enumerate(sched.kernels)))}
    slots = []  # [size, [(first, last), ...]]
    slot_of, inplace = {}, {}
    for buf in sorted(sched.temps, key=lambda b: (first.get(b.name, 0), b.name)):
        lo, hi = first.get(buf.name, 0), last.get(buf.name, end)
        size = dims.maximum(buf.nbytes, 1)  # rounded up to the alignment once the slot is sized
        i = writer.get(buf.name)
        donor = next((t for t in (inplace_candidates or {}).get(i, [])
                      if t in slot_of and last.get(t) == i and by_name[t].dtype == buf.dtype
                      and by_name[t].nbytes == buf.nbytes), None)
        if donor is not None:
            k = slot_of[donor]
            inplace[i] = donor
            slots[k][1].append((i, hi))  # the donor's bytes stay taken for the output's lifetime
        else:
            k = next((k for k, (_, spans) in enumerate(slots)
                      if all(l < lo or f > hi for f, l in spans)), None)
            if k is None:
                slots.append([size, []])
                k = len(slots) - 1
            slots[k][0] = dims.maximum(slots[k][0], size)
            slots[k][1].append((lo, hi))
        slot_of[buf.name] = k
    offsets, arena = [], 0
    for size, _ in slots:
        offsets.append(arena)
        arena = arena + dims.round_up64(size)
    for buf in sched.temps:
        buf.offset = offsets[slot_of[buf.name]]
    io = sum((b.nbytes for b in sched.inputs + sched.outputs + sched.consts), 0)
    return MemoryPlan(arena, sum((dims.round_up64(b.nbytes) for b in sched.temps), 0), io,
                      {b.name: (first.get(b.name, 0), last.get(b.name, end)) for b in sched.temps}, inplace)
