"""Stage 1, planning: a graph becomes a schedule of kernels over buffers.

:mod:`.dims` (symbolic dimensions resolved once: ints, or run-time dimensions),
:mod:`.indexing` (basic-index entries decoded, for views and scatters),
:mod:`.schedule` (which nodes are materialized, as which kernel kind, in which order),
:mod:`.inplace` (folding updates and elementwise outputs into the buffers they overwrite),
:mod:`.memory` (arena offsets for the temporaries, reusing dead ones).

The programs run them in that order: ``memory`` from the renderers, after ``inplace.fold``.
"""
