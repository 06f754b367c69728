"""Stage 4, programs: what ``sd.compile`` returns for ``backend="cpu"`` and ``backend="cuda"``.

:mod:`.cpu` (:class:`~.cpu.CpuProgram`: the pipeline plan → render → build, one specialization
per shape signature, ``explain`` and ``stats``) and :mod:`.cuda` (the same, rendered as CUDA).
"""
