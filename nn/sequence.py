"""Layers of the sequence models (issue 16), with PyTorch's signatures and parameter layouts:
``Embedding``, ``LayerNorm`` over any trailing shape, ``GELU``.

>>> import symdiff as sd
>>> from symdiff import nn
>>> ids = sd.tensor("ids", ("T", "B"), "int64")
>>> h = nn.Embedding(100, 16)(ids)
>>> h.shape, nn.LayerNorm(16)(nn.GELU()(h)).shape
((T, B, 16), (T, B, 16))
"""

from __future__ import annotations

import numpy as np

import symdiff as sd

from . import init
from .module import Module, Parameter


class Embedding(Module):
    """``weight[indices]`` for int64 indices of any shape, as ``torch.nn.Embedding``: weight
    (num_embeddings, embedding_dim) drawn from N(0, 1) as PyTorch's default. An index out of
    range is an error (``IndexError`` evaluated, a checked error compiled), never a wrong read.

    >>> import symdiff as sd
    >>> Embedding(10, 3).weight.data.shape
    (10, 3)
    """

    def __init__(self, num_embeddings: int, embedding_dim: int, dtype: str = "float32"):
        super().__init__()
        for name, v in (("num_embeddings", num_embeddings), ("embedding_dim", embedding_dim)):
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise ValueError(f"Embedding: {name} must be a positive int, got {v!r}")
        self.num_embeddings, self.embedding_dim = num_embeddings, embedding_dim
        self.weight = Parameter(init.normal((num_embeddings, embedding_dim), dtype=dtype), "E")

    def forward(self, indices):
        if indices.dtype != "int64":
            raise TypeError(f"Embedding takes int64 indices, got {indices.dtype}")
        return sd.embedding(self.weight.leaf, indices)


class LayerNorm(Module):
    """Normalize over the trailing ``normalized_shape`` (an int or a tuple), then scale and shift
    elementwise, as ``torch.nn.LayerNorm``: γ ⊙ (x − μ)/√(σ² + ε) + β with the biased variance;
    γ ones and β zeros of ``normalized_shape`` (``elementwise_affine=False``: neither; ``bias=False``:
    no β, as PyTorch).

    >>> import symdiff as sd
    >>> LayerNorm((4, 5))(sd.tensor("x", ("B", 4, 5))).shape
    (B, 4, 5)
    """

    def __init__(self, normalized_shape, eps: float = 1e-5, elementwise_affine: bool = True,
                 bias: bool = True, dtype: str = "float32"):
        super().__init__()
        shape = (normalized_shape,) if isinstance(normalized_shape, int) else tuple(normalized_shape)
        if not shape or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 1 for d in shape):
            raise ValueError(f"LayerNorm: normalized_shape must be positive ints, got {normalized_shape!r}")
        self.normalized_shape, self.eps = shape, float(eps)
        self.weight = Parameter(np.ones(shape, dtype), "gamma") if elementwise_affine else None
        self.bias = Parameter(np.zeros(shape, dtype), "beta") if elementwise_affine and bias else None

    def forward(self, x):
        k = len(self.normalized_shape)
        if tuple(x.shape[x.ndim - k:]) != self.normalized_shape:
            raise sd.ShapeError(f"LayerNorm{self.normalized_shape} normalizes the trailing shape "
                                f"{self.normalized_shape}, got an input of shape {tuple(x.shape)}")
        axes = tuple(range(x.ndim - k, x.ndim))
        mean = sd.mean(x, axis=axes, keepdims=True)
        centered = x - mean
        var = sd.mean(centered * centered, axis=axes, keepdims=True)
        y = centered / sd.sqrt(var + self.eps)
        if self.weight is not None:
            y = y * self.weight.leaf
        if self.bias is not None:
            y = y + self.bias.leaf
        return y


class GELU(Module):
    """``x·Φ(x)``, PyTorch's ``nn.GELU()`` (the exact form, approximate="none")."""

    def forward(self, x):
        return sd.gelu(x)
