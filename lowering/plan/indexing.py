"""Basic indexing (``getitem``, ``slice_scatter``) as the lowering sees it: one decoder.

An op's ``index`` attribute is a tuple of entries (:func:`symdiff.ops.movement.getitem`):
``("int", i)``, ``("slice", start, stop, step, length)`` or ``("newaxis",)``. Lowering needs
two things of it — the strided view it makes of a buffer, and for an index into the result
the index into the source — and both come from :func:`decode`.

>>> entries = (("int", 2), ("newaxis",), ("slice", 1, 7, 2, 3))
>>> view_strides(entries, {}, 0, (40, 8, 1))   # source (5, 5, 8) → result (1, 3, 8)
(88, (0, 16, 1))
>>> source_index(entries, {}, ["i0", "i1", "i2"])
['2', '(1 + i1 * 2)', 'i2']
"""

from __future__ import annotations

import dataclasses

from . import dims


@dataclasses.dataclass(frozen=True)
class SourceAxis:
    """One source axis an index entry covers: its position ``start + step·k`` for result index
    ``k`` on result axis ``out_axis`` (None: an integer index, the axis is dropped)."""

    start: object  # int or dims.RuntimeDim
    step: object
    out_axis: int | None


@dataclasses.dataclass(frozen=True)
class Decoded:
    axes: tuple  # SourceAxis per source axis the entries cover, in order
    new_axes: tuple  # result axes that are new (size 1, stride 0)
    result_axes: int  # result axes the entries account for (slices and new axes)


def decode(entries, bindings) -> Decoded:
    """``entries`` with their symbolic values resolved (``bindings``: graph symbol -> int or D<k>)."""
    axes, new_axes, out = [], [], 0
    for entry in entries:
        if entry[0] == "newaxis":
            new_axes.append(out)
            out += 1
        elif entry[0] == "int":
            axes.append(SourceAxis(_value(entry[1], bindings), 0, None))
        else:
            axes.append(SourceAxis(_value(entry[1], bindings), _value(entry[3], bindings), out))
            out += 1
    return Decoded(tuple(axes), tuple(new_axes), out)


def _value(v, bindings):
    return v if isinstance(v, int) else dims.resolve_dim(v, bindings)


def view_strides(entries, bindings, offset, strides) -> tuple:
    """(offset, strides) of the result viewing a source with element ``offset`` and ``strides``."""
    d = decode(entries, bindings)
    out = [0] * d.result_axes
    for axis, a in enumerate(d.axes):
        offset = offset + a.start * strides[axis]
        if a.out_axis is not None:
            out[a.out_axis] = strides[axis] * a.step
    return offset, tuple(out) + tuple(strides[len(d.axes):])


def source_index(entries, bindings, idx) -> list:
    """C index expressions into the source for the result index variables ``idx``."""
    d = decode(entries, bindings)
    out = []
    for a in d.axes:
        if a.out_axis is None:
            out.append(str(a.start))
        else:
            i = idx[a.out_axis]
            out.append(f"({a.start} + {i} * {a.step})" if a.step != 1 else f"({a.start} + {i})")
    return out + list(idx[d.result_axes:])
