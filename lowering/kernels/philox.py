"""Counter-based random numbers: Philox4x32-10 (``csrc/include/symdiff/cpu/philox.hpp``).

Each value is a pure function of ``(seed, offset + i)``, so results are the same for any
thread count, and a program can draw a slice of a stream without drawing what comes before
it: ``uniform(seed, k, n - k)`` equals ``uniform(seed, 0, n)[k:]``. ``seed`` and ``offset`` are
ints in ``[0, 2**64)``; ``shape`` is an int or a tuple; ``dtype`` float32 (24 random bits per
uniform) or float64 (53 bits). The three distributions share one stream per seed: use a
different seed (or offset range) for values that must be independent.

>>> import numpy as np
>>> from symdiff.lowering import random
>>> a = random.uniform(seed=7, offset=0, shape=10)
>>> bool(np.array_equal(random.uniform(seed=7, offset=4, shape=6), a[4:]))
True
"""

from __future__ import annotations

import numpy as np

from .native import compiled


def philox4x32(counter, key) -> tuple[int, int, int, int]:
    """The raw Philox4x32-10 block: four 32-bit words from a counter of four and a key of two.

    >>> [f"{w:08x}" for w in philox4x32((0, 0, 0, 0), (0, 0))]
    ['6627e8d5', 'e169c58d', 'bc57ac4c', '9b00dbd8']
    """
    return compiled.philox4x32(counter, key)


def uniform(seed: int, offset: int, shape, dtype=np.float32) -> np.ndarray:
    """Values in [0, 1).

    >>> x = uniform(seed=0, offset=0, shape=(2, 3), dtype=np.float64)
    >>> x.shape, x.dtype, bool(((0 <= x) & (x < 1)).all())
    ((2, 3), dtype('float64'), True)
    """
    return compiled.uniform(seed, offset, shape, dtype)


def normal(seed: int, offset: int, shape, dtype=np.float32) -> np.ndarray:
    """Standard normal values (Box-Muller on pairs of uniforms).

    >>> z = normal(seed=1, offset=0, shape=100_000)
    >>> bool(abs(z.mean()) < 0.02 and abs(z.std() - 1) < 0.02)
    True
    """
    return compiled.normal(seed, offset, shape, dtype)


def bernoulli_mask(seed: int, offset: int, shape, p: float, dtype=np.float32) -> np.ndarray:
    """1 with probability ``p`` (dropout's keep probability), else 0; the same mask for both dtypes.

    >>> bernoulli_mask(seed=3, offset=0, shape=8, p=1.0).tolist()
    [1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0]
    >>> float(bernoulli_mask(seed=3, offset=0, shape=100_000, p=0.25).mean())  # doctest: +ELLIPSIS
    0.2...
    """
    return compiled.bernoulli_mask(seed, offset, shape, float(p), dtype)
