"""Checkpoint files: ``.npz`` archives of plain arrays (no pickle), written atomically.

A checkpoint holds ``format`` (the text ``symdiff.nn checkpoint``), ``version``, ``meta``
(JSON text: model and optimizer descriptions, counters, history) and one array per
model state (``model/<path>``) and optimizer state (``optimizer/<key>``).

>>> import os, tempfile
>>> import numpy as np
>>> path = os.path.join(tempfile.mkdtemp(), "c.npz")
>>> write(path, {"format": np.array(FORMAT), "version": np.array(VERSION)})
>>> sorted(read(path))
['format', 'version']
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import zipfile
import zlib

import numpy as np

FORMAT = "symdiff.nn checkpoint"
VERSION = 1


class CheckpointError(ValueError):
    """A checkpoint that cannot be read: truncated, foreign, or of another format version."""


def write_atomically(path, write) -> None:
    """Call ``write(file)`` on a temporary file beside ``path``, then rename it over ``path``:
    readers see the old file or the new one, never half of one."""
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=os.path.splitext(path)[1], dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def write(path, arrays: dict) -> None:
    write_atomically(path, lambda f: np.savez(f, **arrays))


def read(path) -> dict:
    """Every array of the archive, with the format and version checked."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"no such checkpoint: {path}")
    try:
        archive = np.load(path, allow_pickle=False)
        if not hasattr(archive, "files"):
            raise CheckpointError(f"{path}: a single .npy array, not a symdiff checkpoint")
        with archive:
            arrays = {k: archive[k] for k in archive.files}
    except CheckpointError:
        raise
    except (zipfile.BadZipFile, ValueError, OSError, EOFError, zlib.error, KeyError) as e:
        raise CheckpointError(f"{path}: not a readable checkpoint (truncated, damaged or not an .npz "
                              f"archive: {e})") from None
    if "format" not in arrays or arrays["format"].shape != () or str(arrays["format"]) != FORMAT:
        raise CheckpointError(f"{path}: an .npz archive, but not a symdiff.nn checkpoint")
    version = int(arrays.get("version", -1))
    if version != VERSION:
        raise CheckpointError(f"{path}: checkpoint format version {version}; this symdiff reads version {VERSION}")
    return arrays


def meta_of(path, arrays) -> dict:
    try:
        return json.loads(str(arrays["meta"]))
    except (KeyError, ValueError) as e:
        raise CheckpointError(f"{path}: the checkpoint's description is missing or damaged ({e})") from None
