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
import re
import tempfile
import zipfile
import zlib

import numpy as np

FORMAT = "symdiff.nn checkpoint"
VERSION = 1


class CheckpointError(ValueError):
    """A checkpoint that cannot be read: truncated, foreign, or of another format version."""


def check_output_path(path, what: str = "output") -> None:
    """Refuse, before any work is done, a path that a file cannot be written to: a directory,
    a path in a missing or unwritable folder, or something that is not a regular file (renaming
    over /dev/null would replace the device). ``what`` names the path in the message.

    >>> import tempfile
    >>> folder = tempfile.mkdtemp()
    >>> try:
    ...     check_output_path(folder, "--checkpoint")
    ... except IsADirectoryError as e:
    ...     print(str(e).replace(folder, "FOLDER"))
    --checkpoint: FOLDER is a directory, not a file name
    """
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    if os.path.isdir(path):
        raise IsADirectoryError(f"{what}: {path} is a directory, not a file name")
    if os.path.lexists(path) and not os.path.isfile(path):
        raise OSError(f"{what}: {path} exists and is not a regular file")
    if not os.path.isdir(folder):
        existing = folder  # the nearest existing ancestor tells a missing folder from a file in the way
        while not os.path.exists(existing):
            existing = os.path.dirname(existing)
        if os.path.isdir(existing):
            raise FileNotFoundError(f"{what}: {path}: the folder {folder} does not exist")
        raise NotADirectoryError(f"{what}: {path}: {existing} is not a folder")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise PermissionError(f"{what}: {path}: the folder {folder} is not writable")


# A temporary is ``.<target name>.tmp-<pid>-<8 random characters>`` beside its target: the pid
# tells a killed writer's leftovers from a running writer's file, and the target name keeps the
# cleanup to this target's temporaries (never other programs' files or other checkpoints').
_TEMPORARY = r"\.{name}\.tmp-(\d+)-[a-z0-9_]{{8}}"


def _running(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)  # signal 0: only asks whether the process exists
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, under another user
        return True
    return True


def remove_stale_temporaries(path) -> list:
    """Delete the temporaries that writers of ``path`` killed mid-write (SIGKILL, a crash, a
    lost machine) left beside it; those of running processes are kept. The removed paths."""
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    pattern = re.compile(_TEMPORARY.format(name=re.escape(os.path.basename(path))))
    removed = []
    for entry in os.scandir(folder):
        match = pattern.fullmatch(entry.name)
        if match and entry.is_file(follow_symlinks=False) and not _running(int(match[1])):
            with contextlib.suppress(FileNotFoundError):  # another writer removed it first
                os.unlink(entry.path)
                removed.append(entry.path)
    return removed


def write_atomically(path, write) -> None:
    """Call ``write(file)`` on a temporary file beside ``path``, then rename it over ``path``:
    readers see the old file or the new one, never half of one. Stale temporaries of earlier,
    killed writes of ``path`` are removed first."""
    path = os.fspath(path)
    check_output_path(path)
    remove_stale_temporaries(path)
    folder = os.path.dirname(os.path.abspath(path))
    prefix = f".{os.path.basename(path)}.tmp-{os.getpid()}-"
    fd, tmp = tempfile.mkstemp(prefix=prefix, dir=folder)
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
    if os.path.isdir(path):
        raise CheckpointError(f"{path} is a directory, not a checkpoint file")
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
