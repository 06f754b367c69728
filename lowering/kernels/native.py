"""The only door to the compiled module ``symdiff.lowering._native``.

Arguments are checked here (and again in C++) so a wrong array is a clear Python
error naming the argument, never a crash.

>>> import numpy as np
>>> from symdiff.lowering import native
>>> native.sum_axis(np.ones((3, 4), np.float32), axis=1).tolist()
[4.0, 4.0, 4.0]
"""

from __future__ import annotations

import numpy as np

from . import _native

FLOAT_DTYPES = (np.float32, np.float64)


def cpu_features() -> dict:
    """{"avx2": bool, "fma": bool, "avx512f": bool, ..., "l1d_bytes": int, ...}."""
    return dict(_native.cpu_features())


def num_threads() -> int:
    return _native.num_threads()


def set_num_threads(n: int) -> None:
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise ValueError(f"set_num_threads: n must be a positive int, got {n!r}")
    _native.set_num_threads(n)


def _checked(a, axis, name):
    if not isinstance(a, np.ndarray):
        raise TypeError(f"{name}: a must be a numpy array, got {type(a).__name__}")
    if a.dtype not in FLOAT_DTYPES:
        raise TypeError(f"{name}: a must be float32 or float64, got {a.dtype}")
    if a.ndim == 0:
        raise ValueError(f"{name}: a must have at least one dimension")
    if not isinstance(axis, (int, np.integer)) or isinstance(axis, bool) or not -a.ndim <= axis < a.ndim:
        raise ValueError(f"{name}: axis {axis!r} is out of range for an array of shape {a.shape}")
    if not a.flags.c_contiguous:
        raise ValueError(f"{name}: a must be C-contiguous (shape {a.shape}, strides {a.strides}); "
                         "use numpy.ascontiguousarray")
    return int(axis)


def sum_axis(a: np.ndarray, axis: int, keepdims: bool = False) -> np.ndarray:
    """Sum along ``axis`` with the OpenMP kernel (double accumulation)."""
    return _native.sum_axis(a, _checked(a, axis, "sum_axis"), bool(keepdims))


def mean_axis(a: np.ndarray, axis: int, keepdims: bool = False) -> np.ndarray:
    """Mean along ``axis`` (double accumulation); an empty axis gives NaN, numpy's value.

    >>> import numpy as np
    >>> mean_axis(np.arange(6, dtype=np.float64).reshape(2, 3), axis=1).tolist()
    [1.0, 4.0]
    """
    return _native.mean_axis(a, _checked(a, axis, "mean_axis"), bool(keepdims))


def max_axis(a: np.ndarray, axis: int, keepdims: bool = False) -> np.ndarray:
    """Maximum along ``axis``; a NaN in a lane makes that lane's maximum NaN, as in numpy.

    >>> import numpy as np
    >>> max_axis(np.array([[1.0, 5.0], [7.0, np.nan]], np.float32), axis=0, keepdims=True).tolist()
    [[7.0, nan]]
    """
    axis = _checked(a, axis, "max_axis")
    if a.shape[axis] == 0:
        raise ValueError(f"max_axis: axis {axis} of a (shape {a.shape}) has length 0; "
                         "the maximum of nothing is undefined")
    return _native.max_axis(a, axis, bool(keepdims))


def cuda_info() -> dict:
    """{"built": bool, "device_count": int, "devices": [names]}."""
    return dict(_native.cuda_info())


def cuda_sum_axis(a: np.ndarray, axis: int, keepdims: bool = False) -> np.ndarray:
    """``sum_axis`` on the GPU; a clear error when CUDA is not built or no device exists."""
    return _native.cuda_sum_axis(a, _checked(a, axis, "cuda_sum_axis"), bool(keepdims))
