"""Data augmentation: what the transforms do to pixels, and that the DataLoader's augmented
epochs are reproducible from (seed, epoch) and new every epoch."""

import numpy as np
import pytest
from symdiff.nn.data import ArrayDataset, DataLoader
from symdiff.nn.transforms import RandomCrop, RandomFlipHorizontal


def _images(n=6, c=2, h=5, w=7):
    return (np.arange(n * c * h * w, dtype=np.float32) + 1).reshape(n, c, h, w)


def test_a_shift_moves_every_pixel_exactly_and_fills_zeros():
    X = _images()
    crop = RandomCrop(2)
    dy, dx = np.array([0, 1, -2, 2, 0, -1]), np.array([0, -1, 2, 0, -2, 1])
    out = crop.shift(X, dy, dx)
    assert out.shape == X.shape and out.dtype == X.dtype
    for k in range(len(X)):
        for i in range(5):
            for j in range(7):
                si, sj = i + dy[k], j + dx[k]
                want = X[k, :, si, sj] if 0 <= si < 5 and 0 <= sj < 7 else 0.0
                np.testing.assert_array_equal(out[k, :, i, j], want)
    np.testing.assert_array_equal(out[0], X[0])  # (0, 0) leaves an image alone
    assert (out[3, :, 3:, :] == 0).all() and (out[3, :, :3] == X[3, :, 2:]).all()


def test_random_crop_draws_every_shift_within_the_padding():
    X = np.zeros((4000, 1, 5, 5), np.float32)
    X[:, 0, 2, 2] = 1  # one lit pixel: where it lands tells the shift
    out = RandomCrop(2)(X, np.random.default_rng(0))
    lit = np.argwhere(out[:, 0] == 1)
    assert len(lit) == 4000 and (out.sum(axis=(1, 2, 3)) == 1).all()  # nothing falls out at ±2 from the centre
    shifts = {(int(i) - 2, int(j) - 2) for _, i, j in lit}
    assert shifts == {(a, b) for a in range(-2, 3) for b in range(-2, 3)}
    assert (RandomCrop(0)(X, np.random.default_rng(0)) == X).all()


def test_flip_mirrors_the_chosen_images():
    X = _images()
    out = RandomFlipHorizontal(p=0.5)(X, np.random.default_rng(3))
    flipped = [bool((out[k] == X[k, :, :, ::-1]).all()) for k in range(len(X))]
    kept = [bool((out[k] == X[k]).all()) for k in range(len(X))]
    assert all(f != k for f, k in zip(flipped, kept)) and 0 < sum(flipped) < len(X)
    assert (RandomFlipHorizontal(p=1.0)(X, np.random.default_rng(0)) == X[..., ::-1]).all()
    assert (RandomFlipHorizontal(p=0.0)(X, np.random.default_rng(0)) == X).all()


def test_flat_rows_are_augmented_as_images():
    X = _images(3, 1, 4, 4)
    flat = X.reshape(3, 16)
    out = RandomCrop(1, shape=(1, 4, 4))(flat, np.random.default_rng(5))
    assert out.shape == (3, 16)
    np.testing.assert_array_equal(out, RandomCrop(1)(X, np.random.default_rng(5)).reshape(3, 16))
    with pytest.raises(ValueError, match="give shape= for flat rows"):
        RandomCrop(1)(flat, np.random.default_rng(0))
    with pytest.raises(ValueError, match="padding must be an int >= 0"):
        RandomCrop(-1)
    with pytest.raises(ValueError, match=r"p must be in \[0, 1\]"):
        RandomFlipHorizontal(p=2)


def _epoch(loader):
    return [(X.copy(), y.copy()) for X, y in loader]


def test_the_loader_augments_each_epoch_anew_and_replays_an_epoch_exactly():
    X = np.random.default_rng(0).uniform(size=(50, 1, 6, 6)).astype(np.float32)
    ds = ArrayDataset(X, np.arange(50))
    make = lambda seed=7: DataLoader(ds, batch_size=16, shuffle=True, seed=seed,
                                     transforms=[RandomCrop(2), RandomFlipHorizontal()])
    loader = make()
    first, second = _epoch(loader), _epoch(loader)
    again = make()
    again.set_epoch(1)
    replay = _epoch(again)
    assert all((a[0] == b[0]).all() and (a[1] == b[1]).all() for a, b in zip(second, replay))
    assert not all((a[0] == b[0]).all() for a, b in zip(first, second))
    assert not all((a[0] == b[0]).all() for a, b in zip(_epoch(make(8)), first))
    # every augmented image is one of the 25 shifts of the original, mirrored or not
    crop = RandomCrop(2)
    for Xb, yb in first:
        for image, label in zip(Xb, yb):
            original = X[label][None]
            candidates = [crop.shift(v, [a], [b])[0] for v in (original, original[..., ::-1])
                          for a in range(-2, 3) for b in range(-2, 3)]
            assert any((image == c).all() for c in candidates)
    assert (ds.X == X).all()  # the dataset itself is never changed
    plain = DataLoader(ds, batch_size=16, shuffle=True, seed=7)
    assert all((a[1] == b[1]).all() for a, b in zip(_epoch(plain), first))  # same order as without transforms
    with pytest.raises(TypeError, match="transforms must be callables"):
        DataLoader(ds, transforms=[3])
