"""Parameter initialization, reproducible: every draw comes from the counter-based Philox
stream of :mod:`symdiff.lowering.random`, so values depend only on the seed and on the
order of the draws, never on threads or on numpy's global state.

Conventions as in the course notes (needle): a weight of shape ``(fan_in, fan_out)``;
Kaiming with ReLU's gain √2 gives N(0, 2/fan_in).

>>> from symdiff.nn import init
>>> init.manual_seed(0)
>>> W = init.kaiming_normal(784, 256)
>>> W.shape, W.dtype, round(float(W.std() * 784**0.5 / 2**0.5), 1)
((784, 256), dtype('float32'), 1.0)
"""

from __future__ import annotations

import math

import numpy as np
from symdiff.lowering import random

_GAINS = {"linear": 1.0, "sigmoid": 1.0, "tanh": 5.0 / 3.0, "relu": math.sqrt(2.0)}
_stream = {"seed": 0, "offset": 0}


def manual_seed(seed: int) -> None:
    """Restart the initialization stream at ``seed`` (models built after it are reproducible)."""
    if not 0 <= int(seed) < 2**64:
        raise ValueError(f"seed must be in [0, 2**64), got {seed}")
    _stream.update(seed=int(seed), offset=0)


def get_state() -> tuple[int, int]:
    """(seed, offset) of the stream: pass to :func:`set_state` to replay the next draws."""
    return _stream["seed"], _stream["offset"]


def set_state(state) -> None:
    seed, offset = state
    _stream.update(seed=int(seed), offset=int(offset))


def _draw(kind, shape, dtype):
    shape = tuple(int(d) for d in shape)
    size = math.prod(shape)
    values = getattr(random, kind)(_stream["seed"], _stream["offset"], shape, np.dtype(dtype))
    _stream["offset"] += 2 * size  # normal consumes pairs of uniforms: keep the two kinds disjoint
    return np.ascontiguousarray(values)


def _gain(nonlinearity: str) -> float:
    if nonlinearity not in _GAINS:
        raise ValueError(f"unknown nonlinearity {nonlinearity!r}; choose one of {sorted(_GAINS)}")
    return _GAINS[nonlinearity]


def uniform(shape, low=0.0, high=1.0, dtype="float32") -> np.ndarray:
    """Values uniform in [low, high).

    >>> bool((uniform((3, 4), -1, 1) < 1).all())
    True
    """
    u = _draw("uniform", shape, dtype)
    return (low + (high - low) * u).astype(dtype)


def normal(shape, mean=0.0, std=1.0, dtype="float32") -> np.ndarray:
    """Values from N(mean, std²).

    >>> normal((2, 2)).shape
    (2, 2)
    """
    z = _draw("normal", shape, dtype)
    return (mean + std * z).astype(dtype)


def zeros(shape, dtype="float32") -> np.ndarray:
    return np.zeros(shape, dtype)


def ones(shape, dtype="float32") -> np.ndarray:
    return np.ones(shape, dtype)


def xavier_uniform(fan_in: int, fan_out: int, gain: float = 1.0, shape=None, dtype="float32") -> np.ndarray:
    """U(−a, a) with a = gain·√(6 / (fan_in + fan_out)) (Glorot & Bengio).

    >>> float(abs(xavier_uniform(10, 20)).max()) <= (6 / 30) ** 0.5
    True
    """
    a = gain * math.sqrt(6.0 / (fan_in + fan_out))
    return uniform(shape or (fan_in, fan_out), -a, a, dtype)


def xavier_normal(fan_in: int, fan_out: int, gain: float = 1.0, shape=None, dtype="float32") -> np.ndarray:
    """N(0, std²) with std = gain·√(2 / (fan_in + fan_out)).

    >>> xavier_normal(3, 5).shape
    (3, 5)
    """
    return normal(shape or (fan_in, fan_out), 0.0, gain * math.sqrt(2.0 / (fan_in + fan_out)), dtype)


def kaiming_uniform(fan_in: int, fan_out: int, nonlinearity: str = "relu", shape=None,
                    dtype="float32") -> np.ndarray:
    """U(−b, b) with b = gain·√(3 / fan_in) (He et al.; gain √2 for ReLU).

    >>> float(abs(kaiming_uniform(6, 4)).max()) <= 1.0
    True
    """
    bound = _gain(nonlinearity) * math.sqrt(3.0 / fan_in)
    return uniform(shape or (fan_in, fan_out), -bound, bound, dtype)


def kaiming_normal(fan_in: int, fan_out: int, nonlinearity: str = "relu", shape=None,
                   dtype="float32") -> np.ndarray:
    """N(0, gain²/fan_in): for ReLU, N(0, 2/n) as in the notes.

    >>> kaiming_normal(4, 2, shape=(8,)).shape
    (8,)
    """
    return normal(shape or (fan_in, fan_out), 0.0, _gain(nonlinearity) / math.sqrt(fan_in), dtype)
