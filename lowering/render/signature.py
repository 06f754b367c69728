"""What a specialized program reads and writes, as one line of text both sides can produce.

A generated program exports ``symdiff_program_signature()`` returning this line, built from
its schedule; the caller builds the same line from the graph and the call's arrays and refuses
a library whose line differs. So the sizes of the buffers native code writes into come from
the library and the graph together, never from a cache file alone. A program compiled for
every size of its run-time dimensions writes its counts as expressions in ``D0, D1, …``
(:mod:`symdiff.lowering.plan.dims`).

>>> program_signature([("float32", 6)], [("float64", 1)], 100)
'in float32*6; out float64*1; arena 100'
>>> program_signature([("float32", numel((2, 3)))], [], 0)
'in float32*6; out ; arena 0'
"""

from __future__ import annotations

import math

from ..plan import dims


def numel(shape) -> int:
    return math.prod(int(d) for d in shape)


def _count(n) -> str:
    return str(n) if dims.is_runtime(n) else str(int(n))


def program_signature(inputs, outputs, arena_bytes) -> str:
    """``inputs`` and ``outputs`` are (dtype, element count) pairs; ``arena_bytes`` the host arena."""
    def part(buffers):
        return " ".join(f"{dtype}*{_count(count)}" for dtype, count in buffers)

    return f"in {part(inputs)}; out {part(outputs)}; arena {_count(arena_bytes)}"


def signature_function(signature: str) -> str:
    """The C++ definition that exports ``signature`` (which holds only [a-zA-Z0-9*;:<>,()+ -])."""
    return f'extern "C" const char* symdiff_program_signature(void) {{ return "{signature}"; }}'
