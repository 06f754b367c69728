"""Data augmentation as in the course (needle's ``RandomFlipHorizontal`` and
``RandomCrop``), vectorized over a batch: a transform takes a batch of images (N, ..., H, W)
and a numpy ``Generator`` and returns the changed batch, drawing one random choice per image.
Give them to :class:`~symdiff.nn.data.DataLoader` (``transforms=[...]``), which draws each
batch's generator from ``(seed, epoch, batch)``: an epoch's augmented batches are the same
whenever it is run, so a resumed run replays them.

Features kept flat (an MLP's (N, 784) rows) are augmented as images with ``shape=``:

>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> X = np.arange(2 * 9, dtype=np.float32).reshape(2, 9)
>>> RandomCrop(1, shape=(3, 3))(X, rng).shape
(2, 9)
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view


class Transform:
    """Base: ``shape`` (one sample as an image, e.g. (1, 28, 28) or (28, 28)) lets a
    transform read flat rows as images; without it the last two axes are H and W."""

    def __init__(self, shape=None):
        self.shape = None if shape is None else tuple(int(d) for d in shape)
        if self.shape is not None and len(self.shape) < 2:
            raise ValueError(f"{type(self).__name__}: shape must be (H, W) or (C, H, W), got {shape!r}")

    def __call__(self, X, rng: np.random.Generator) -> np.ndarray:
        X = np.asarray(X)
        images = X if self.shape is None else X.reshape(len(X), *self.shape)
        if images.ndim < 3:
            raise ValueError(f"{type(self).__name__}: a batch of images (N, ..., H, W) is needed, got shape "
                             f"{X.shape} (give shape= for flat rows)")
        return self.apply(images, rng).reshape(X.shape)

    def apply(self, images, rng) -> np.ndarray:
        raise NotImplementedError

    def __repr__(self):
        return f"{type(self).__name__}({self.extra_repr()})"


class RandomFlipHorizontal(Transform):
    """Mirror each image left to right with probability ``p`` (wrong for digits: a mirrored
    2 is no digit; use it for natural images).

    >>> X = np.arange(4.0).reshape(1, 1, 2, 2)
    >>> RandomFlipHorizontal(p=1.0)(X, np.random.default_rng(0))[0, 0].tolist()
    [[1.0, 0.0], [3.0, 2.0]]
    """

    def __init__(self, p: float = 0.5, shape=None):
        super().__init__(shape)
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"RandomFlipHorizontal: p must be in [0, 1], got {p}")
        self.p = float(p)

    def apply(self, images, rng):
        flip = rng.random(len(images)) < self.p
        out = images.copy()
        out[flip] = images[flip, ..., ::-1]
        return out

    def extra_repr(self):
        return f"p={self.p}"


class RandomCrop(Transform):
    """Shift each image by a random (dy, dx), each uniform in −padding..padding, filling with
    zeros: ``out[..., i, j] = X[..., i + dy, j + dx]`` (0 outside), which is needle's
    ``RandomCrop``: pad by ``padding`` zeros on every side and crop the original size at a
    random offset.

    >>> X = np.arange(1.0, 10.0).reshape(1, 1, 3, 3)
    >>> RandomCrop(1).shift(X, np.array([1]), np.array([-1]))[0, 0].tolist()
    [[0.0, 4.0, 5.0], [0.0, 7.0, 8.0], [0.0, 0.0, 0.0]]
    """

    def __init__(self, padding: int = 3, shape=None):
        super().__init__(shape)
        if not isinstance(padding, (int, np.integer)) or padding < 0:
            raise ValueError(f"RandomCrop: padding must be an int >= 0, got {padding!r}")
        self.padding = int(padding)

    def apply(self, images, rng):
        p, n = self.padding, len(images)
        return self.shift(images, rng.integers(-p, p + 1, n), rng.integers(-p, p + 1, n))

    def shift(self, images, dy, dx) -> np.ndarray:
        """The images shifted by the given per-image (dy, dx), each within ±padding."""
        p = self.padding
        h, w = images.shape[-2:]
        padded = np.zeros((*images.shape[:-2], h + 2 * p, w + 2 * p), images.dtype)
        padded[..., p:p + h, p:p + w] = images
        windows = sliding_window_view(padded, (h, w), axis=(-2, -1))  # (N, ..., 2p+1, 2p+1, h, w), a view
        # one gather copies each image's window: the per-image index pairs with the sample axis
        return windows[np.arange(len(images)), ..., p + np.asarray(dy), p + np.asarray(dx), :, :]

    def extra_repr(self):
        return f"padding={self.padding}"
