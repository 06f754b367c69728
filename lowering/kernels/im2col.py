"""2-D convolution by im2col + GEMM on the native kernels (``csrc/include/symdiff/cpu/im2col.hpp``).

``im2col`` turns a C-contiguous (N, C, H, W) float32/float64 array into columns of shape
(N, C*KH*KW, OH*OW), so a convolution with weights (K, C, KH, KW) is one matrix product per
image; ``col2im`` is its adjoint (it sums overlapping windows back onto the input), which is
what the VJP of a convolution with respect to its input needs. ``kernel_size``, ``stride``,
``padding`` and ``dilation`` are an int or a pair (rows, columns).

>>> import numpy as np
>>> from symdiff.lowering import conv
>>> x = np.arange(16, dtype=np.float32).reshape(1, 1, 4, 4)
>>> conv.im2col(x, 2, stride=2)[0].tolist()
[[0.0, 2.0, 8.0, 10.0], [1.0, 3.0, 9.0, 11.0], [4.0, 6.0, 12.0, 14.0], [5.0, 7.0, 13.0, 15.0]]
"""

from __future__ import annotations

import numpy as np

from .gemm import gemm_batched
from .native import compiled


def _pair(value, name: str) -> tuple[int, int]:
    """An int or a pair of ints as (rows, columns); the C++ side checks the ranges."""
    items = (value, value) if isinstance(value, (int, np.integer)) and not isinstance(value, bool) else value
    if (
        not isinstance(items, (tuple, list))
        or len(items) != 2
        or not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in items)
    ):
        raise TypeError(f"{name}: expected an int or a pair of ints, got {value!r}")
    return int(items[0]), int(items[1])


def output_size(size: int, kernel_size: int, stride: int = 1, padding: int = 0, dilation: int = 1) -> int:
    """Output length along one axis: ``(size + 2 p - d (k - 1) - 1) // s + 1``.

    >>> output_size(32, 3, stride=2, padding=1)
    16
    """
    return (size + 2 * padding - dilation * (kernel_size - 1) - 1) // stride + 1


def im2col(x: np.ndarray, kernel_size, stride=1, padding=0, dilation=1) -> np.ndarray:
    """Patches of ``x`` (N, C, H, W) as columns (N, C*KH*KW, OH*OW); padding reads as zero.

    >>> import numpy as np
    >>> x = np.ones((2, 3, 5, 5))
    >>> im2col(x, (3, 3), padding=1).shape
    (2, 27, 25)
    """
    return compiled.im2col(
        x,
        _pair(kernel_size, "im2col(kernel_size)"),
        _pair(stride, "im2col(stride)"),
        _pair(padding, "im2col(padding)"),
        _pair(dilation, "im2col(dilation)"),
    )


def col2im(cols: np.ndarray, input_shape, kernel_size, stride=1, padding=0, dilation=1) -> np.ndarray:
    """The adjoint of ``im2col``: a new (N, C, H, W) array where each pixel sums its column entries.

    >>> import numpy as np
    >>> cols = np.ones((1, 4, 9), np.float32)  # 2 x 2 windows of a 4 x 4 image, stride 1
    >>> col2im(cols, (1, 1, 4, 4), 2)[0, 0].tolist()
    [[1.0, 2.0, 2.0, 1.0], [2.0, 4.0, 4.0, 2.0], [2.0, 4.0, 4.0, 2.0], [1.0, 2.0, 2.0, 1.0]]
    """
    shape = tuple(input_shape)
    if len(shape) != 4 or not all(isinstance(v, (int, np.integer)) for v in shape):
        raise TypeError(f"col2im(input_shape): expected four ints (N, C, H, W), got {input_shape!r}")
    return compiled.col2im(
        cols,
        tuple(int(v) for v in shape),
        _pair(kernel_size, "col2im(kernel_size)"),
        _pair(stride, "col2im(stride)"),
        _pair(padding, "col2im(padding)"),
        _pair(dilation, "col2im(dilation)"),
    )


def conv2d(x: np.ndarray, weight: np.ndarray, stride=1, padding=0, dilation=1) -> np.ndarray:
    """Cross-correlation of ``x`` (N, C, H, W) with ``weight`` (K, C, KH, KW): (N, K, OH, OW).

    >>> import numpy as np
    >>> x = np.ones((1, 2, 4, 4)); w = np.ones((3, 2, 3, 3))
    >>> conv2d(x, w, padding=1)[0, 0].tolist()
    [[8.0, 12.0, 12.0, 8.0], [12.0, 18.0, 18.0, 12.0], [12.0, 18.0, 18.0, 12.0], [8.0, 12.0, 12.0, 8.0]]
    """
    if not isinstance(weight, np.ndarray) or weight.ndim != 4:
        raise ValueError(
            f"conv2d(weight): expected a 4-D (K, C, KH, KW) array, got {type(weight).__name__} "
            f"of shape {getattr(weight, 'shape', None)}"
        )
    if not isinstance(x, np.ndarray) or x.ndim != 4 or x.shape[1] != weight.shape[1]:
        raise ValueError(
            f"conv2d(x): expected (N, {weight.shape[1]}, H, W) for weight of shape {weight.shape}, "
            f"got {getattr(x, 'shape', None)}"
        )
    k, c, kh, kw = weight.shape
    s, p, d = (
        _pair(stride, "conv2d(stride)"),
        _pair(padding, "conv2d(padding)"),
        _pair(dilation, "conv2d(dilation)"),
    )
    cols = im2col(x, (kh, kw), s, p, d)
    oh, ow = (output_size(x.shape[2 + i], weight.shape[2 + i], s[i], p[i], d[i]) for i in (0, 1))
    out = gemm_batched(np.ascontiguousarray(weight).reshape(1, k, c * kh * kw), cols)  # one W for every image
    return out.reshape(x.shape[0], k, oh, ow)
