"""The layers: each ``forward`` is a few ``sd`` ops on graph nodes.

Shapes follow the course (needle): ``X`` is (batch, features), ``Linear`` computes
``X·W + b`` with ``W`` of shape (in, out). ``LayerNorm1d`` and ``BatchNorm1d`` work on the
feature axis of (batch, features) inputs, ``BatchNorm2d`` on the channel axis of images
(N, C, H, W) (the convolution and pooling layers are in :mod:`symdiff.nn.conv`).

>>> import numpy as np
>>> import symdiff as sd
>>> from symdiff import nn
>>> X = sd.tensor("X", (2, 3), "float32")
>>> ln = nn.LayerNorm1d(3)
>>> out = sd.evaluate(ln(X), {X: np.array([[1, 2, 3], [0, 0, 6]], np.float32), **ln.feed()})
>>> np.round(out.mean(axis=1), 5).tolist()
[0.0, 0.0]
"""

from __future__ import annotations

import math

import numpy as np

import symdiff as sd

from . import init
from .module import Buffer, Module, Parameter, current_trace


class Linear(Module):
    """``X·W + b``; W Kaiming-uniform (ReLU gain), b zeros.

    >>> import symdiff as sd
    >>> Linear(3, 2)(sd.tensor("X", ("m", 3), "float32")).shape
    (m, 2)
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True, dtype: str = "float32"):
        super().__init__()
        self.in_features, self.out_features = int(in_features), int(out_features)
        self.weight = Parameter(init.kaiming_uniform(in_features, out_features, dtype=dtype), "W")
        self.bias = Parameter(init.zeros((out_features,), dtype), "b") if bias else None

    def forward(self, x):
        y = x @ self.weight.leaf
        y = y + self.bias.leaf if self.bias is not None else y
        # the layer's output is named after its weight (W2 -> Z2), so printed formulas read like
        # the course's Z₁ = X·W₁ + b₁ instead of t₁ = ...
        index = self.weight.name[len(self.weight.short):]
        return sd.name(y, f"Z{index}") if index.isdigit() else y


class ReLU(Module):
    def forward(self, x):
        return sd.relu(x)


class Sigmoid(Module):
    def forward(self, x):
        return sd.sigmoid(x)


class Tanh(Module):
    def forward(self, x):
        return sd.tanh(x)


class Identity(Module):
    def forward(self, x):
        return x


class Sequential(Module):
    """Modules applied in order.

    >>> Sequential(Linear(2, 2), ReLU())
    Sequential(
      Linear(2, 2)
      ReLU()
    )
    """

    def __init__(self, *modules):
        super().__init__()
        for m in modules:
            if not isinstance(m, Module):
                raise TypeError(f"Sequential takes modules, got {type(m).__name__}")
        self.layers = list(modules)

    def forward(self, x):
        index = ""
        for layer in self.layers:
            x = layer(x)
            weight = getattr(layer, "weight", None)
            if isinstance(weight, Parameter) and weight.short == "W":  # Linear, Conv2d: Z₁ = ...
                index = weight.name[len(weight.short):]
            elif isinstance(layer, (ReLU, Sigmoid, Tanh)) and index.isdigit():
                x = sd.name(x, f"A{index}")  # A₁ = relu(Z₁): the activation of layer 1
        return x


class Residual(Module):
    """``fn(x) + x``."""

    def __init__(self, fn: Module):
        super().__init__()
        self.fn = fn

    def forward(self, x):
        return self.fn(x) + x


class Flatten(Module):
    """(batch, d1, d2, ...) -> (batch, d1·d2·...), in C order as PyTorch's ``nn.Flatten``.

    >>> import symdiff as sd
    >>> Flatten()(sd.tensor("X", ("m", 16, 5, 5))).shape
    (m, 400)
    """

    def forward(self, x):
        return x.reshape((x.shape[0], math.prod(x.shape[1:])))


class Dropout(Module):
    """Zero each value with probability ``p`` in training, scaling the rest by 1/(1 − p);
    the identity in eval mode. The keep-mask is an input of the compiled step (one leaf
    per Dropout call, registered in :func:`~symdiff.nn.module.current_trace`), drawn by the
    trainer from the counter-based RNG, so a run replays exactly from its seed and step."""

    def __init__(self, p: float = 0.5):
        super().__init__()
        if not 0.0 <= p < 1.0:
            raise ValueError(f"Dropout: p must be in [0, 1), got {p}")
        self.p = float(p)

    def forward(self, x):
        if not self.training or self.p == 0.0:
            return x
        t = current_trace()
        if t is None:
            raise RuntimeError("Dropout in training mode needs its mask as an input: build the graph "
                               "inside `with nn.trace() as t:` (t.masks lists them) or call model.eval()")
        mask = sd.tensor(f"mask{len(t.masks) + 1}", x.shape, x.dtype)
        t.masks.append((mask, 1.0 - self.p))
        return x * mask * (1.0 / (1.0 - self.p))


def _normalize(x, mean, var, eps):
    return (x - mean) / sd.sqrt(var + eps)


def _batchnorm_states(layer, n: int, dtype: str) -> None:
    """γ ones and β zeros (trained), running mean zeros and variance ones (buffers), each (n,)."""
    layer.weight = Parameter(np.ones(n, dtype), "gamma")
    layer.bias = Parameter(np.zeros(n, dtype), "beta")
    layer.running_mean = Buffer(np.zeros(n, dtype), "mu")
    layer.running_var = Buffer(np.ones(n, dtype), "var")


def _trace_for_updates(layer: str):
    """The trace that collects a training-mode layer's new running statistics."""
    t = current_trace()
    if t is None:
        raise RuntimeError(
            f"{layer} in training mode gives its running statistics new values: build the "
            "graph inside `with nn.trace() as t:` and pass t.updates to sd.compile(..., updates=...) "
            "(nn.Trainer does both), or call model.eval() to normalize with the running statistics")
    return t


class LayerNorm1d(Module):
    """Normalize each row over its features: γ·(x − μ)/√(σ² + ε) + β."""

    def __init__(self, dim: int, eps: float = 1e-5, dtype: str = "float32"):
        super().__init__()
        self.dim, self.eps = int(dim), float(eps)
        self.weight = Parameter(np.ones(dim, dtype), "gamma")
        self.bias = Parameter(np.zeros(dim, dtype), "beta")

    def forward(self, x):
        mean = sd.mean(x, axis=1, keepdims=True)
        var = sd.mean(sd.square(x - mean), axis=1, keepdims=True)
        return self.weight.leaf * _normalize(x, mean, var, self.eps) + self.bias.leaf


class BatchNorm1d(Module):
    """Normalize each feature over the batch in training (biased variance, as in needle) and
    move the running statistics: r ← (1 − momentum)·r + momentum·batch statistic, written in
    place by the compiled step. Eval mode normalizes with the running statistics.

    A graph only describes the update; a compiled step writes it. So training mode needs
    :func:`~symdiff.nn.module.trace` to collect the update (``nn.Trainer`` does this), and is
    refused without one rather than leaving the statistics at their initial values:

    >>> import symdiff as sd
    >>> from symdiff import nn
    >>> X = sd.tensor("X", ("m", 2), "float32")
    >>> try:
    ...     nn.BatchNorm1d(2)(X)
    ... except RuntimeError as e:
    ...     print(str(e).split(":")[0])
    BatchNorm1d in training mode gives its running statistics new values
    >>> with nn.trace() as t:
    ...     out = nn.BatchNorm1d(2)(X)
    >>> sorted(leaf.name for leaf in t.updates)
    ['mu1', 'var1']
    """

    def __init__(self, dim: int, eps: float = 1e-5, momentum: float = 0.1, dtype: str = "float32"):
        super().__init__()
        self.dim, self.eps, self.momentum = int(dim), float(eps), float(momentum)
        _batchnorm_states(self, self.dim, dtype)

    def forward(self, x):
        rm, rv = self.running_mean.leaf, self.running_var.leaf
        if self.training:
            mean = sd.mean(x, axis=0)
            var = sd.mean(sd.square(x - mean), axis=0)
            t = _trace_for_updates("BatchNorm1d")
            t.updates[rm] = (1.0 - self.momentum) * rm + self.momentum * mean
            t.updates[rv] = (1.0 - self.momentum) * rv + self.momentum * var
        else:
            mean, var = rm, rv
        return self.weight.leaf * _normalize(x, mean, var, self.eps) + self.bias.leaf



class BatchNorm2d(Module):
    """Normalize each channel of (N, C, H, W) images over (N, H, W), then scale by γ and
    shift by β (each of shape (C,)). Training mode normalizes with the batch's biased
    variance and moves the running statistics as PyTorch does: r ← (1 − momentum)·r +
    momentum·batch statistic, where the running variance takes the *unbiased* batch variance
    (times n/(n − 1), n = N·H·W; BatchNorm1d follows needle and keeps the biased one), so
    running statistics compare one to one with ``torch.nn.BatchNorm2d``. The update is an
    in-place ``updates=`` entry of the compiled step, as for BatchNorm1d. Eval mode
    normalizes with the running statistics.

    >>> import symdiff as sd
    >>> from symdiff import nn
    >>> with nn.trace() as t:
    ...     out = nn.BatchNorm2d(3)(sd.tensor("X", ("m", 3, 4, 4), "float32"))
    >>> out.shape, sorted(leaf.name for leaf in t.updates)
    ((m, 3, 4, 4), ['mu1', 'var1'])
    """

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float = 0.1, dtype: str = "float32"):
        super().__init__()
        self.num_features, self.eps, self.momentum = int(num_features), float(eps), float(momentum)
        _batchnorm_states(self, self.num_features, dtype)

    def forward(self, x):
        c = self.num_features
        if x.ndim != 4 or (isinstance(x.shape[1], int) and x.shape[1] != c):
            raise sd.ShapeError(f"BatchNorm2d({c}) takes images of shape (N, {c}, H, W), got shape "
                                f"{tuple(x.shape)}")
        per_channel = (1, c, 1, 1)
        rm, rv = self.running_mean.leaf, self.running_var.leaf
        if self.training:
            mean = sd.mean(x, axis=(0, 2, 3), keepdims=True)
            var = sd.mean(sd.square(x - mean), axis=(0, 2, 3), keepdims=True)
            n = x.shape[0] * x.shape[2] * x.shape[3]  # a sympy expression when N is symbolic
            if n == 1:
                raise sd.ShapeError(f"BatchNorm2d({c}) in training mode needs more than one value per "
                                    f"channel, got input {tuple(x.shape)}")
            t = _trace_for_updates("BatchNorm2d")
            unbiased = sd.constant(n / (n - 1), x.dtype) * var.reshape((c,))
            t.updates[rm] = (1.0 - self.momentum) * rm + self.momentum * mean.reshape((c,))
            t.updates[rv] = (1.0 - self.momentum) * rv + self.momentum * unbiased
        else:
            mean, var = rm.reshape(per_channel), rv.reshape(per_channel)
        return (self.weight.leaf.reshape(per_channel) * _normalize(x, mean, var, self.eps)
                + self.bias.leaf.reshape(per_channel))
