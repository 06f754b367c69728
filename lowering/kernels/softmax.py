"""Row-wise softmax kernels (``csrc/include/symdiff/cpu/softmax.hpp``) over the LAST axis.

Every function takes C-contiguous float32/float64 arrays of any rank >= 1; the rows are the
last axis, computed stably (the row max is subtracted before exp), in parallel over rows, each
row by one thread, so results do not depend on the thread count. Outputs are new arrays of
the input's dtype. Wrong arguments are TypeError/ValueError naming the argument.

>>> import numpy as np
>>> from symdiff.lowering import softmax
>>> x = np.array([[0.0, np.log(3.0)], [1e4, 1e4]])
>>> softmax.softmax_rows(x).round(6).tolist()
[[0.25, 0.75], [0.5, 0.5]]
"""

from __future__ import annotations

import numpy as np

from .native import compiled

FLOAT_DTYPES = (np.float32, np.float64)
ISAS = ("auto", "avx2", "baseline")


def _checked(name: str, arg: str, a) -> np.ndarray:
    if not isinstance(a, np.ndarray):
        raise TypeError(f"{name}: {arg} must be a numpy array, got {type(a).__name__}")
    if a.dtype not in FLOAT_DTYPES:
        raise TypeError(f"{name}: {arg} must be float32 or float64, got {a.dtype}")
    if a.ndim == 0:
        raise ValueError(f"{name}: {arg} must have at least one dimension (rows are along the last axis)")
    if not a.flags.c_contiguous:
        raise ValueError(f"{name}: {arg} must be C-contiguous (shape {a.shape}, strides {a.strides}); "
                         "use numpy.ascontiguousarray")
    return a


def _checked_pair(name: str, y, g) -> None:
    _checked(name, "y", y)
    _checked(name, "g", g)
    if g.dtype != y.dtype:
        raise TypeError(f"{name}: g has dtype {g.dtype} but y has {y.dtype}; they must match")
    if g.shape != y.shape:
        raise ValueError(f"{name}: g has shape {g.shape} but y has shape {y.shape}; they must match")


def softmax_rows(x: np.ndarray) -> np.ndarray:
    """``exp(x - max) / sum(exp(x - max))`` along the last axis.

    >>> import numpy as np
    >>> softmax_rows(np.array([1.0, 1.0, 1.0, 1.0], np.float32)).tolist()
    [0.25, 0.25, 0.25, 0.25]
    """
    return compiled.softmax_rows(_checked("softmax_rows", "x", x))


def log_softmax_rows(x: np.ndarray) -> np.ndarray:
    """``x - logsumexp(x)`` along the last axis, without forming softmax (no log of 0).

    >>> import numpy as np
    >>> log_softmax_rows(np.array([0.0, -np.inf])).tolist()
    [0.0, -inf]
    """
    return compiled.log_softmax_rows(_checked("log_softmax_rows", "x", x))


def logsumexp_rows(x: np.ndarray, keepdims: bool = False) -> np.ndarray:
    """``log(sum(exp(x)))`` along the last axis, which is dropped (kept as 1 with ``keepdims``).

    >>> import numpy as np
    >>> logsumexp_rows(np.array([[1e4, 1e4], [0.0, -np.inf]]), keepdims=True).round(6).tolist()
    [[10000.693147], [0.0]]
    """
    return compiled.logsumexp_rows(_checked("logsumexp_rows", "x", x), bool(keepdims))


def softmax_rows_vjp(y: np.ndarray, g: np.ndarray) -> np.ndarray:
    """The cotangent of ``x`` for ``y = softmax_rows(x)``: ``y * (g - sum(g * y))`` per row.

    >>> import numpy as np
    >>> y = softmax_rows(np.zeros(2))
    >>> softmax_rows_vjp(y, np.array([1.0, -1.0])).tolist()
    [0.5, -0.5]
    """
    _checked_pair("softmax_rows_vjp", y, g)
    return compiled.softmax_rows_vjp(y, g)


def log_softmax_rows_vjp(y: np.ndarray, g: np.ndarray) -> np.ndarray:
    """The cotangent of ``x`` for ``y = log_softmax_rows(x)`` (pass the OUTPUT ``y``):
    ``g - exp(y) * sum(g)`` per row.

    >>> import numpy as np
    >>> y = log_softmax_rows(np.zeros(2))
    >>> log_softmax_rows_vjp(y, np.array([1.0, 0.0])).tolist()
    [0.5, -0.5]
    """
    _checked_pair("log_softmax_rows_vjp", y, g)
    return compiled.log_softmax_rows_vjp(y, g)


def current_softmax_isa() -> str:
    """The code path in use: ``"avx2"`` (AVX2+FMA) or ``"baseline"``.

    >>> current_softmax_isa() in ("avx2", "baseline")
    True
    """
    return compiled.current_softmax_isa()


def set_softmax_isa(name: str) -> None:
    """Pin the code path (tests); ``"auto"`` restores AVX2+FMA where the CPU has it.

    >>> set_softmax_isa("baseline"); current_softmax_isa()
    'baseline'
    >>> set_softmax_isa("auto")
    """
    if name not in ISAS:
        raise ValueError(f"set_softmax_isa: name must be one of {ISAS}, got {name!r}")
    compiled.set_softmax_isa(name)
