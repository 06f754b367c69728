"""Matrix products on the native GEMM kernel (``csrc/include/symdiff/cpu/gemm.hpp``).

``C = alpha * op(a) @ op(b) + beta * C`` for float32/float64, where ``op`` transposes when
``trans_a`` / ``trans_b`` is set (the transpose is read in place, never copied). Inputs may be
C-contiguous or row-strided views (unit column stride); anything else is a ValueError naming
the argument. As in BLAS, ``c`` is not read when ``beta == 0``.

>>> import numpy as np
>>> from symdiff.lowering import gemm
>>> a = np.arange(6, dtype=np.float32).reshape(2, 3)
>>> gemm.gemm(a, a, trans_b=True).tolist()
[[5.0, 14.0], [14.0, 50.0]]
"""

from __future__ import annotations

import numpy as np

from .native import compiled

ISAS = ("auto", "avx512", "avx2", "scalar")


def gemm(a: np.ndarray, b: np.ndarray, c: np.ndarray | None = None, trans_a: bool = False,
         trans_b: bool = False, alpha: float = 1.0, beta: float = 0.0) -> np.ndarray:
    """``alpha * op(a) @ op(b) + beta * c`` written into ``c`` (or a new array), which is returned.

    >>> import numpy as np
    >>> x = np.ones((2, 4)); w = np.full((4, 3), 0.5)
    >>> gemm(x, w, alpha=2.0).tolist()
    [[4.0, 4.0, 4.0], [4.0, 4.0, 4.0]]
    """
    return compiled.gemm(a, b, c, trans_a, trans_b, alpha, beta)  # the binding checks every argument


def gemm_batched(a: np.ndarray, b: np.ndarray, c: np.ndarray | None = None, trans_a: bool = False,
                 trans_b: bool = False, alpha: float = 1.0, beta: float = 0.0) -> np.ndarray:
    """``gemm`` over the first axis of 3-D arrays; a batch of 1 in ``a`` or ``b`` is shared.

    >>> import numpy as np
    >>> x = np.ones((5, 2, 4), np.float32); w = np.ones((1, 4, 3), np.float32)
    >>> gemm_batched(x, w).shape
    (5, 2, 3)
    """
    return compiled.gemm_batched(a, b, c, trans_a, trans_b, alpha, beta)


def current_gemm_isa() -> str:
    """The kernel family in use: ``"avx512"``, ``"avx2"`` or ``"scalar"``.

    The default is the best family the CPU runs, or the one ``$SYMDIFF_GEMM_ISA`` names
    (``avx512``, ``avx2``, ``scalar``; read once per process), which stands in for a CPU without
    the wider ones. A name the CPU can not run makes every GEMM raise ValueError.
    """
    return compiled.current_gemm_isa()


def gemm_kernel() -> dict[str, str]:
    """The general kernels in use: family, the CPU's best family, register tiles (rows x columns).

    >>> info = gemm_kernel()
    >>> sorted(info), info["isa"] == current_gemm_isa()
    (['cpu_isa', 'float32', 'float64', 'isa'], True)
    """
    return dict(compiled.gemm_kernel())


def set_gemm_isa(name: str) -> None:
    """Pin the kernel family (``"auto"`` restores the process's default, see ``current_gemm_isa``)."""
    if name not in ISAS:
        raise ValueError(f"set_gemm_isa: name must be one of {ISAS}, got {name!r}")
    compiled.set_gemm_isa(name)
