"""The CUDA kernels (``csrc/cuda``) on numpy arrays: each call copies its inputs to the GPU, runs
one kernel and copies the result back. For tests and checks against the CPU kernels; generated
programs call the device-pointer forms in ``symdiff/cuda/api.hpp`` instead.

Arguments are checked before CUDA is touched, so a wrong array is a clear error on any machine.
Only then does a build without CUDA, or a machine without a device, raise RuntimeError.

>>> from symdiff.lowering import cuda
>>> sorted(cuda.info())
['built', 'device_count', 'devices']
>>> import numpy as np
>>> cuda.gemm(np.ones((2, 3)), np.ones((2, 3)))
Traceback (most recent call last):
...
ValueError: cuda_gemm(b): inner dimensions differ: op(a) is 2 x 3 (a (2, 3)) but op(b) is 2 x 3 (b (2, 3))
"""

from __future__ import annotations

import numpy as np

from .native import compiled, cuda_info


def info() -> dict:
    """{"built": bool, "device_count": int, "devices": [names]}; never raises.

    >>> info()["device_count"] >= 0
    True
    """
    return cuda_info()


def device_available() -> bool:
    """Whether the kernels were built and a device is present (every function below then runs).

    >>> device_available() == (info()["device_count"] > 0)
    True
    """
    return info()["device_count"] > 0


def _array(x, fn: str, arg: str) -> np.ndarray:
    # The binding would silently convert a list; only arrays are accepted, as in native.py.
    if not isinstance(x, np.ndarray):
        raise TypeError(f"{fn}({arg}): expected a numpy array, got {type(x).__name__}")
    return x


def _axis(axis, fn: str) -> int:
    if not isinstance(axis, (int, np.integer)) or isinstance(axis, bool):
        raise TypeError(f"{fn}(axis): expected an int, got {type(axis).__name__}")
    return int(axis)


def gemm(a: np.ndarray, b: np.ndarray, c: np.ndarray | None = None, trans_a: bool = False,
         trans_b: bool = False, alpha: float = 1.0, beta: float = 0.0) -> np.ndarray:
    """``alpha * op(a) @ op(b) + beta * c`` written into ``c`` (or a new array), which is returned.

    Same contract as ``symdiff.lowering.gemm.gemm`` for C-contiguous 2-D float32/float64 arrays;
    ``c`` is not read when ``beta == 0``.

    >>> import numpy as np
    >>> a = np.arange(6, dtype=np.float32).reshape(2, 3)
    >>> want = [[5.0, 14.0], [14.0, 50.0]]
    >>> not device_available() or gemm(a, a, trans_b=True).tolist() == want
    True
    """
    if c is not None:
        _array(c, "cuda_gemm", "c")
    return compiled.cuda_gemm(_array(a, "cuda_gemm", "a"), _array(b, "cuda_gemm", "b"), c, bool(trans_a),
                             bool(trans_b), float(alpha), float(beta))


def sum_axis(a: np.ndarray, axis: int, keepdims: bool = False) -> np.ndarray:
    """Sum along ``axis`` (double accumulation).

    >>> import numpy as np
    >>> not device_available() or sum_axis(np.ones((3, 4)), 1).tolist() == [4.0, 4.0, 4.0]
    True
    """
    return compiled.cuda_sum_axis(_array(a, "cuda_sum_axis", "a"), _axis(axis, "cuda_sum_axis"), bool(keepdims))


def max_axis(a: np.ndarray, axis: int, keepdims: bool = False) -> np.ndarray:
    """Max along ``axis``; NaN propagates as in ``numpy.max``; an empty axis is a ValueError.

    >>> import numpy as np
    >>> x = np.array([[1.0, 5.0], [7.0, 2.0]])
    >>> not device_available() or max_axis(x, 0).tolist() == [7.0, 5.0]
    True
    """
    return compiled.cuda_max_axis(_array(a, "cuda_max_axis", "a"), _axis(axis, "cuda_max_axis"), bool(keepdims))


def mean_axis(a: np.ndarray, axis: int, keepdims: bool = False) -> np.ndarray:
    """Mean along ``axis`` (double accumulation; NaN for an empty axis).

    >>> import numpy as np
    >>> x = np.array([[1.0, 5.0], [7.0, 2.0]], np.float32)
    >>> not device_available() or mean_axis(x, 1, keepdims=True).tolist() == [[3.0], [4.5]]
    True
    """
    return compiled.cuda_mean_axis(_array(a, "cuda_mean_axis", "a"), _axis(axis, "cuda_mean_axis"),
                                  bool(keepdims))


def softmax_rows(a: np.ndarray) -> np.ndarray:
    """``exp(a) / sum(exp(a))`` along the last axis, computed with the row max subtracted.

    >>> import numpy as np
    >>> x = np.array([[0.0, 0.0], [1e4, 1e4]], np.float32)
    >>> not device_available() or softmax_rows(x).tolist() == [[0.5, 0.5], [0.5, 0.5]]
    True
    """
    return compiled.cuda_softmax_rows(_array(a, "cuda_softmax_rows", "a"))


def log_softmax_rows(a: np.ndarray) -> np.ndarray:
    """``a - logsumexp(a)`` along the last axis (finite even where softmax underflows to 0).

    >>> import numpy as np
    >>> x = np.array([[0.0, -1e4]])
    >>> not device_available() or log_softmax_rows(x).tolist() == [[0.0, -1e4]]
    True
    """
    return compiled.cuda_log_softmax_rows(_array(a, "cuda_log_softmax_rows", "a"))


def logsumexp_rows(a: np.ndarray) -> np.ndarray:
    """``log(sum(exp(a)))`` along the last axis, which is dropped; ``-inf`` for an empty row.

    >>> import numpy as np
    >>> x = np.array([[1e4, 1e4], [0.0, -np.inf]])
    >>> not device_available() or np.allclose(logsumexp_rows(x), [1e4 + np.log(2), 0.0])
    True
    """
    return compiled.cuda_logsumexp_rows(_array(a, "cuda_logsumexp_rows", "a"))
