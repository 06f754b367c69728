"""Stage 1, planning: a graph becomes a schedule of kernels over buffers.

:mod:`.schedule` (which nodes are materialized, as which kernel kind, in which order),
:mod:`.inplace` (folding updates and elementwise outputs into the buffers they overwrite),
:mod:`.memory` (arena offsets for the temporaries, reusing dead ones).
"""
