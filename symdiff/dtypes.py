"""Dtypes of symdiff graphs and their numpy-like promotion.

symdiff knows four dtypes, named as numpy names them. Promotion follows numpy
between tensors (``int64 + float32 -> float64``); Python numbers are *weak*:
they take the dtype of the tensor they meet (``x32 * 2.0`` stays float32),
which :func:`symdiff.node.as_node` arranges when it turns them into constants.

>>> promote("float32", "int64")
'float64'
>>> promote("bool", "float32")
'float32'
"""

from __future__ import annotations

import numpy as np

DTYPES = ("bool", "int64", "float32", "float64")
FLOAT_DTYPES = ("float32", "float64")


def check_dtype(dtype) -> str:
    """Return the canonical dtype name, or raise naming the accepted ones.

    >>> check_dtype(np.float32)
    'float32'
    """
    try:
        name = np.dtype(dtype).name
    except TypeError:
        name = str(dtype)
    if name not in DTYPES:
        raise TypeError(f"unsupported dtype {dtype!r}; symdiff supports {', '.join(DTYPES)}")
    return name


def is_float(dtype: str) -> bool:
    return dtype in FLOAT_DTYPES


def promote(*dtypes: str) -> str:
    """numpy's result type for tensors of these dtypes (no value-based casting)."""
    return np.result_type(*[np.dtype(d) for d in dtypes]).name


def to_float(dtype: str) -> str:
    """The dtype a transcendental function returns: floats stay, others become float64."""
    return dtype if is_float(dtype) else "float64"


def itemsize(dtype: str) -> int:
    return np.dtype(dtype).itemsize


def can_cast_value(value_dtype, dtype: str) -> bool:
    """Whether an array of ``value_dtype`` may be given for a leaf of ``dtype``.

    Same-kind casting: int -> float and float64 -> float32 are fine; a float for
    an integer leaf or anything for a bool leaf but bools is not.
    """
    value_dtype = np.dtype(value_dtype)
    if value_dtype.kind not in "biuf":
        return False
    return bool(np.can_cast(value_dtype, np.dtype(dtype), casting="same_kind"))
