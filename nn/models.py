"""Convolutional models of the course: LeNet-5 and the ResNet9 of needle's homework 4, for
(N, C, H, W) images such as MNIST's 1×28×28 (and scikit-learn's 1×8×8 digits).

>>> import symdiff as sd
>>> from symdiff import nn
>>> X = sd.tensor("X", ("m", 1, 28, 28), "float32")
>>> nn.LeNet5()(X).shape, nn.ResNet9().eval()(X).shape
((m, 10), (m, 10))
>>> nn.LeNet5(image_size=8)(sd.tensor("X", ("m", 1, 8, 8), "float32")).shape
(m, 10)
"""

from __future__ import annotations

from .conv import Conv2d, MaxPool2d
from .layers import BatchNorm2d, Flatten, Identity, Linear, ReLU, Residual, Sequential


def _size(image_size) -> tuple:
    pair = tuple(image_size) if isinstance(image_size, (tuple, list)) else (image_size, image_size)
    if len(pair) != 2 or not all(isinstance(s, int) and s >= 1 for s in pair):
        raise ValueError(f"image_size must be a positive int or a pair of them, got {image_size!r}")
    return pair


def _conv_out(size: int, kernel: int, stride: int = 1, padding: int = 0) -> int:
    return (size + 2 * padding - kernel) // stride + 1


class LeNet5(Sequential):
    """LeNet-5 as usually written for MNIST, with optional BatchNorm2d after each convolution:

    ============================================  ===========  =========
    layer                                         28×28 input  8×8 input
    ============================================  ===========  =========
    Conv2d(C, 6, 5, padding=2) [BN] ReLU          6×28×28      6×8×8
    MaxPool2d(2)                                  6×14×14      6×4×4
    Conv2d(6, 16, 5, padding=p) [BN] ReLU         16×10×10     16×4×4
    MaxPool2d(2)                                  16×5×5       16×2×2
    Flatten, Linear(·, 120) ReLU                  400 → 120    64 → 120
    Linear(120, 84) ReLU, Linear(84, classes)
    ============================================  ===========  =========

    p is 0, except for images under 12 pixels (the 8×8 digits), whose second convolution pads
    by 2 so that every layer keeps a positive size.

    >>> LeNet5(batchnorm=True).layers[1]
    BatchNorm2d(6)
    """

    def __init__(self, in_channels: int = 1, num_classes: int = 10, image_size=28, batchnorm: bool = False):
        h, w = _size(image_size)
        small = min(h, w) < 12
        p2 = 2 if small else 0
        h, w = _conv_out(h // 2, 5, 1, p2) // 2, _conv_out(w // 2, 5, 1, p2) // 2
        if h < 1 or w < 1:
            raise ValueError(f"LeNet5: images of {image_size} pixels are too small for two convolutions "
                             "and two 2x2 pools")

        def norm(channels):
            return BatchNorm2d(channels) if batchnorm else Identity()

        layers = [Conv2d(in_channels, 6, 5, padding=2), norm(6), ReLU(), MaxPool2d(2),
                  Conv2d(6, 16, 5, padding=p2), norm(16), ReLU(), MaxPool2d(2),
                  Flatten(), Linear(16 * h * w, 120), ReLU(), Linear(120, 84), ReLU(), Linear(84, num_classes)]
        super().__init__(*[layer for layer in layers if not isinstance(layer, Identity)])
        self.batchnorm = bool(batchnorm)


class ConvBN(Sequential):
    """Conv2d (padding k//2, no bias: the BatchNorm's mean would cancel it), BatchNorm2d, ReLU:
    needle's ConvBN block.

    >>> ConvBN(16, 32, 3, 2).layers[0].padding
    (1, 1)
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1):
        super().__init__(Conv2d(in_channels, out_channels, kernel_size, stride, padding=kernel_size // 2,
                                bias=False),
                         BatchNorm2d(out_channels), ReLU())


class ResNet9(Sequential):
    """The ResNet9 of the course (needle hw4), for 1×28×28 inputs (shapes at 28×28):

    ==============================================  ========
    ConvBN(C, 16, 7, stride 4)  (the stem)          16×7×7
    ConvBN(16, 32, 3, stride 2)                     32×4×4
    Residual(ConvBN(32, 32, 3) → ConvBN(32, 32, 3))  32×4×4
    ConvBN(32, 64, 3, stride 2)                     64×2×2
    ConvBN(64, 128, 3, stride 2)                    128×1×1
    Residual(ConvBN(128, 128, 3) ×2)                128×1×1
    Flatten, Linear(128, 128), ReLU, Linear(128, classes)
    ==============================================  ========

    Images under 16 pixels (the 8×8 digits) get a stem of kernel 3, stride 1, so the spatial
    size is 8, 4, 4, 2, 1, 1. Other sizes keep the course's stem, and the first Linear takes
    128·h·w features where the last stage is h×w.

    >>> [layer.layers[0].stride for layer in ResNet9(image_size=8).layers[:2]]
    [(1, 1), (2, 2)]
    """

    def __init__(self, in_channels: int = 1, num_classes: int = 10, image_size=28):
        h, w = _size(image_size)
        k, s = (3, 1) if min(h, w) < 16 else (7, 4)
        for stride, kernel in ((s, k), (2, 3), (2, 3), (2, 3)):
            h, w = _conv_out(h, kernel, stride, kernel // 2), _conv_out(w, kernel, stride, kernel // 2)
        super().__init__(
            ConvBN(in_channels, 16, k, s), ConvBN(16, 32, 3, 2),
            Residual(Sequential(ConvBN(32, 32, 3), ConvBN(32, 32, 3))),
            ConvBN(32, 64, 3, 2), ConvBN(64, 128, 3, 2),
            Residual(Sequential(ConvBN(128, 128, 3), ConvBN(128, 128, 3))),
            Flatten(), Linear(128 * h * w, 128), ReLU(), Linear(128, num_classes))
