"""Layers for images: convolution and pooling on (N, C, H, W) inputs, with PyTorch's
signatures, parameter shapes and default initialization, so weights compare one to one
with ``torch.nn`` (the tests copy them across).

>>> import symdiff as sd
>>> from symdiff import nn
>>> X = sd.tensor("X", ("m", 1, 28, 28), "float32")
>>> conv = nn.Conv2d(1, 6, 5, padding=2)
>>> conv.weight.shape, conv.bias.shape, conv(X).shape
((6, 1, 5, 5), (6,), (m, 6, 28, 28))
>>> nn.MaxPool2d(2)(conv(X)).shape
(m, 6, 14, 14)
"""

from __future__ import annotations

import math

import symdiff as sd

from . import init
from .module import Module, Parameter


def _pair(value, what: str, layer: str, minimum: int) -> tuple:
    """An int or a pair of ints, each >= minimum, as a pair."""
    pair = tuple(value) if isinstance(value, (tuple, list)) else (value, value)
    if len(pair) != 2 or not all(isinstance(v, int) and not isinstance(v, bool) for v in pair):
        raise TypeError(f"{layer}: {what} must be an int or a pair of ints, got {value!r}")
    if any(v < minimum for v in pair):
        raise ValueError(f"{layer}: {what} must be >= {minimum}, got {value!r}")
    return pair


def _check_image(layer: str, x, channels: int | None = None):
    """Refuse anything but (N, C, H, W), naming the layer (and both channel counts)."""
    if x.ndim != 4:
        raise sd.ShapeError(f"{layer} takes images of shape (N, C, H, W), got shape {tuple(x.shape)}")
    c = x.shape[1]
    if channels is not None and isinstance(c, int) and c != channels:
        raise sd.ShapeError(f"{layer} expects {channels} input channels, but the input {tuple(x.shape)} "
                            f"has {c}")


class Conv2d(Module):
    """``conv2d(x, W) + b``: W of shape (out, in/groups, kH, kW), b of shape (out,), both
    U(−1/√fan_in, 1/√fan_in) with fan_in = in/groups·kH·kW (PyTorch's default,
    ``kaiming_uniform_(a=√5)``). ``padding`` may also be ``"same"`` or ``"valid"``.

    >>> Conv2d(4, 6, 3, groups=4)
    Traceback (most recent call last):
    ...
    ValueError: Conv2d: out_channels 6 is not divisible by groups 4
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0, dilation=1,
                 groups: int = 1, bias: bool = True, dtype: str = "float32"):
        super().__init__()
        name = "Conv2d"
        for what, value in (("in_channels", in_channels), ("out_channels", out_channels), ("groups", groups)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name}: {what} must be an int >= 1, got {value!r}")
        for what, value in (("in_channels", in_channels), ("out_channels", out_channels)):
            if value % groups:
                raise ValueError(f"{name}: {what} {value} is not divisible by groups {groups}")
        self.in_channels, self.out_channels, self.groups = in_channels, out_channels, groups
        self.kernel_size = _pair(kernel_size, "kernel_size", name, 1)
        self.stride = _pair(stride, "stride", name, 1)
        self.dilation = _pair(dilation, "dilation", name, 1)
        self.padding = padding if padding in ("same", "valid") else _pair(padding, "padding", name, 0)
        fan_in = in_channels // groups * math.prod(self.kernel_size)
        bound = 1.0 / math.sqrt(fan_in)
        self.weight = Parameter(init.uniform((out_channels, in_channels // groups, *self.kernel_size),
                                             -bound, bound, dtype), "W")
        self.bias = Parameter(init.uniform((out_channels,), -bound, bound, dtype), "b") if bias else None

    def forward(self, x):
        _check_image(f"Conv2d({self.in_channels}, {self.out_channels})", x, self.in_channels)
        y = sd.conv2d(x, self.weight.leaf, stride=self.stride, padding=self.padding, dilation=self.dilation,
                      groups=self.groups)
        if self.bias is not None:
            y = y + self.bias.leaf.reshape((1, self.out_channels, 1, 1))
        index = self.weight.name[len(self.weight.short):]  # Z₁ = conv2d(X, W₁) + b₁, as Linear's
        return sd.name(y, f"Z{index}") if index.isdigit() else y


class _Pool2d(Module):
    function = None

    def __init__(self, kernel_size, stride=None, padding=0):
        super().__init__()
        name = type(self).__name__
        self.kernel_size = _pair(kernel_size, "kernel_size", name, 1)
        self.stride = self.kernel_size if stride is None else _pair(stride, "stride", name, 1)
        self.padding = _pair(padding, "padding", name, 0)
        if any(2 * p > k for p, k in zip(self.padding, self.kernel_size)):
            # PyTorch's rule: a window must never lie wholly in the padding
            raise ValueError(f"{name}: padding {padding!r} must be at most half of kernel_size {kernel_size!r}")

    def forward(self, x):
        _check_image(type(self).__name__, x)
        return type(self).function(x, self.kernel_size, self.stride, self.padding)


class MaxPool2d(_Pool2d):
    """The maximum of each window (``stride`` defaults to ``kernel_size``; padding is −∞).

    >>> import symdiff as sd
    >>> MaxPool2d(2)(sd.tensor("X", ("m", 3, 7, 7))).shape
    (m, 3, 3, 3)
    """

    function = staticmethod(sd.max_pool2d)


class AvgPool2d(_Pool2d):
    """The mean of each window; padding counts as zeros (PyTorch's ``count_include_pad=True``).

    >>> import symdiff as sd
    >>> AvgPool2d(3, stride=1, padding=1)(sd.tensor("X", ("m", 3, 7, 7))).shape
    (m, 3, 7, 7)
    """

    function = staticmethod(sd.avg_pool2d)


class AdaptiveAvgPool2d(Module):
    """The global average pool, (N, C, H, W) → (N, C, 1, 1): only ``output_size=1`` is
    supported (the form ResNets end with).

    >>> AdaptiveAvgPool2d(2)
    Traceback (most recent call last):
    ...
    ValueError: AdaptiveAvgPool2d: only output_size 1 (a global average) is supported, got 2
    """

    def __init__(self, output_size=1):
        super().__init__()
        if output_size not in (1, (1, 1), [1, 1]):
            raise ValueError(f"AdaptiveAvgPool2d: only output_size 1 (a global average) is supported, "
                             f"got {output_size!r}")
        self.output_size = 1

    def forward(self, x):
        _check_image("AdaptiveAvgPool2d", x)
        return sd.global_avg_pool2d(x)
