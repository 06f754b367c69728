"""The only door to the compiled module ``symdiff.lowering._native``.

No other module imports it. The kernel wrappers beside this one (:mod:`.gemm`,
:mod:`.softmax`, :mod:`.im2col`, :mod:`.philox`, :mod:`.cuda`) call its bindings as
``compiled.<name>``; the rest of ``symdiff.lowering`` uses only the names defined here: the
runtime facts (threads, CPU features, CUDA devices), the reductions, and the program loader
(:func:`load_program`, :data:`bound_program`, :data:`ProgramError`, :data:`SignatureMismatch`).

Arguments are checked here (and again in C++) so a wrong array is a clear Python
error naming the argument, never a crash.

>>> import numpy as np
>>> from symdiff.lowering import native
>>> native.sum_axis(np.ones((3, 4), np.float32), axis=1).tolist()
[4.0, 4.0, 4.0]
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .. import _native as compiled

ProgramError = compiled.ProgramError  # a program refused its values: both a ValueError and a RuntimeError
SignatureMismatch = compiled.SignatureMismatch  # arrays that are not the signature a bound program was made for
bound_program = compiled.bound_program  # (library, dtypes, shapes, ...) -> the checked fast call of one signature
FLOAT_DTYPES = (np.float32, np.float64)


def load_program(path: str):
    """Load a generated program's shared library (refused unless it exports the program ABI;
    see :mod:`symdiff.lowering.compiler.toolchain`)."""
    return compiled.native_program(path)


def module_dir() -> Path:
    """The folder of the compiled module (a wheel installs the kernel headers beside it).

    >>> module_dir().is_dir()
    True
    """
    return Path(compiled.__file__).resolve().parent


def cpu_features() -> dict:
    """{"avx2": bool, "fma": bool, "avx512f": bool, ..., "l1d_bytes": int, ...}."""
    return dict(compiled.cpu_features())


def num_threads() -> int:
    return compiled.num_threads()


def set_num_threads(n: int) -> None:
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise ValueError(f"set_num_threads: n must be a positive int, got {n!r}")
    compiled.set_num_threads(n)


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
    return compiled.sum_axis(a, _checked(a, axis, "sum_axis"), bool(keepdims))


def mean_axis(a: np.ndarray, axis: int, keepdims: bool = False) -> np.ndarray:
    """Mean along ``axis`` (double accumulation); an empty axis gives NaN, numpy's value.

    >>> import numpy as np
    >>> mean_axis(np.arange(6, dtype=np.float64).reshape(2, 3), axis=1).tolist()
    [1.0, 4.0]
    """
    return compiled.mean_axis(a, _checked(a, axis, "mean_axis"), bool(keepdims))


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
    return compiled.max_axis(a, axis, bool(keepdims))


def cuda_info() -> dict:
    """{"built": bool, "device_count": int, "devices": [names]}."""
    return dict(compiled.cuda_info())


def cuda_sum_axis(a: np.ndarray, axis: int, keepdims: bool = False) -> np.ndarray:
    """``sum_axis`` on the GPU; a clear error when CUDA is not built or no device exists."""
    return compiled.cuda_sum_axis(a, _checked(a, axis, "cuda_sum_axis"), bool(keepdims))
