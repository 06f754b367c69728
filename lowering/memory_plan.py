"""Memory plan: temporaries placed in one arena, reusing the space of dead buffers.

A temporary lives from the kernel that writes it to the last kernel that reads it
(update values live to the end, when they are copied into their inputs). Buffers
are placed first-fit at 64-byte aligned offsets; two buffers share bytes only when
their lifetimes do not overlap.

>>> import symdiff as sd
>>> from symdiff.lowering.schedule import schedule
>>> from symdiff.lowering.codegen import generate
>>> x = sd.tensor("x", (1000,))
>>> y = sd.softmax(sd.softmax(sd.softmax(x)))   # three temporaries in a row
>>> plan = generate(schedule([sd.sum(y)], [x])).memory
>>> plan.temp_bytes, plan.arena_bytes            # the third reuses the first one's bytes
(24000, 16000)
"""

from __future__ import annotations

import dataclasses

ALIGN = 64


@dataclasses.dataclass
class MemoryPlan:
    arena_bytes: int  # bytes of temporaries after reuse
    temp_bytes: int  # bytes of temporaries without reuse
    io_bytes: int  # inputs + outputs + constants
    lifetimes: dict  # temp name -> (first kernel, last kernel)

    @property
    def peak_bytes(self) -> int:
        return self.arena_bytes + self.io_bytes


def _round(n: int) -> int:
    return (n + ALIGN - 1) // ALIGN * ALIGN


def plan_memory(sched, reads: list) -> MemoryPlan:
    """Assign ``offset`` to each temp of ``sched``; ``reads[i]`` are the buffer names kernel i reads."""
    end = len(sched.kernels)
    first, last = {}, {}
    for i, kernel in enumerate(sched.kernels):
        name = kernel.out.buffer.name
        first.setdefault(name, i)
        last[name] = max(last.get(name, i), i)
        for r in reads[i]:
            last[r] = max(last.get(r, i), i)
    for _, view in sched.updates:
        last[view.buffer.name] = end
    placed = []  # (offset, size, first, last)
    arena = 0
    for buf in sorted(sched.temps, key=lambda b: (first.get(b.name, 0), b.name)):
        lo, hi = first.get(buf.name, 0), last.get(buf.name, end)
        size = _round(max(buf.nbytes, 1))
        busy = sorted((o, s) for o, s, f, l in placed if not (l < lo or f > hi))
        offset = 0
        for o, s in busy:
            if offset + size <= o:
                break
            offset = max(offset, o + s)
        buf.offset = offset
        placed.append((offset, size, lo, hi))
        arena = max(arena, offset + size)
    io = sum(b.nbytes for b in sched.inputs + sched.outputs + sched.consts)
    return MemoryPlan(arena, sum(_round(b.nbytes) for b in sched.temps), io,
                      {b.name: (first.get(b.name, 0), last.get(b.name, end)) for b in sched.temps})
