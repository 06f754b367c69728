"""The on-disk program cache: compile each generated program once, load it forever after.

Entries live in :func:`cache_dir` (``$SYMDIFF_CACHE_DIR``, else
``$XDG_CACHE_HOME/symdiff`` or ``~/.cache/symdiff``), named by a SHA-256 key over the
source, the compiler and its version, the flags and the kernel ABI version:
``<key>.so`` and a ``<key>.json`` manifest holding the library's own SHA-256 and
size. Writes are atomic (temporary file, fsync, rename); a per-key file lock makes
two processes compiling the same program compile it once; an entry whose bytes
do not match its manifest (truncated, corrupted, half-written) is rebuilt with a
warning. Loaded programs are memoized in the process, so a warm hit is a dict lookup.

>>> import os
>>> str(cache_dir()).endswith("symdiff") or "SYMDIFF_CACHE_DIR" in os.environ
True
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import tempfile
import time
import warnings
from pathlib import Path

from . import _native
from .toolchain import KERNEL_ABI_VERSION, compile_shared, toolchain_id

_LOADED: dict = {}


def cache_dir() -> Path:
    """Where compiled programs are kept (created on first use)."""
    env = os.environ.get("SYMDIFF_CACHE_DIR")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "symdiff"


def cache_key(source: str, kind: str = "cpp") -> str:
    """Content address of a program: source + toolchain (compiler, version, flags, ABI)."""
    h = hashlib.sha256()
    for part in (toolchain_id(kind), KERNEL_ABI_VERSION, source):
        h.update(part.encode())
        h.update(b"\0")
    return h.hexdigest()


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _atomic_write(path: Path, data: bytes):
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


@contextlib.contextmanager
def _locked(path: Path):
    with open(path, "a+") as f:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)


def _entry_problem(key: str, lib: Path, manifest: Path) -> str | None:
    """Why the entry is unusable (None when it is sound, '' when it is simply absent)."""
    if not lib.exists() and not manifest.exists():
        return ""
    try:
        meta = json.loads(manifest.read_text())
    except (OSError, ValueError) as e:
        return f"its manifest is unreadable ({e.__class__.__name__})"
    if not isinstance(meta, dict) or meta.get("key") != key:
        return "its manifest belongs to another program"
    if not lib.exists():
        return "the library is missing"
    if lib.stat().st_size != meta.get("size"):
        return f"the library has {lib.stat().st_size} bytes, the manifest says {meta.get('size')}"
    if _sha256(lib) != meta.get("sha256"):
        return "the library's checksum does not match its manifest"
    return None


def load_or_build(source: str, kind: str = "cpp"):
    """The loaded program for ``source``, compiling it on a miss. Returns (program, info) where
    info has ``cache`` ("memory", "disk" or "miss"), ``key``, ``path`` and ``compile_seconds``."""
    key = cache_key(source, kind)
    if key in _LOADED:
        program, path = _LOADED[key]
        return program, {"cache": "memory", "key": key, "path": str(path), "compile_seconds": 0.0}
    root = cache_dir()
    root.mkdir(parents=True, exist_ok=True)
    lib, manifest = root / f"{key}.so", root / f"{key}.json"
    status, seconds = "disk", 0.0
    with _locked(root / f"{key}.lock"):
        problem = _entry_problem(key, lib, manifest)
        if problem:
            warnings.warn(f"symdiff program cache: entry {key[:12]} in {root} is damaged ({problem}); "
                          "rebuilding it", RuntimeWarning, stacklevel=2)
            for p in (lib, manifest):
                with contextlib.suppress(FileNotFoundError):
                    p.unlink()
        if problem is not None:
            status = "miss"
            t0 = time.perf_counter()
            work = Path(tempfile.mkdtemp(prefix="tmp-", dir=root))
            try:
                built = compile_shared(source, kind, work)
                data = built.read_bytes()
            finally:
                shutil.rmtree(work, ignore_errors=True)
            seconds = time.perf_counter() - t0
            _atomic_write(lib, data)
            meta = {"key": key, "sha256": hashlib.sha256(data).hexdigest(), "size": len(data), "kind": kind,
                    "toolchain": toolchain_id(kind), "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
                    "compile_seconds": round(seconds, 3)}
            _atomic_write(manifest, json.dumps(meta, indent=1).encode())
        program = _native.native_program(str(lib))
    _LOADED[key] = (program, lib)
    return program, {"cache": status, "key": key, "path": str(lib), "compile_seconds": seconds}


def load_by_key(key: str):
    """The program cached under ``key`` if its entry is sound, else None (nothing is built)."""
    if key in _LOADED:
        program, path = _LOADED[key]
        return program, {"cache": "memory", "key": key, "path": str(path), "compile_seconds": 0.0}
    root = cache_dir()
    lib, manifest = root / f"{key}.so", root / f"{key}.json"
    if not lib.exists() or _entry_problem(key, lib, manifest) is not None:
        return None
    program = _native.native_program(str(lib))
    _LOADED[key] = (program, lib)
    return program, {"cache": "disk", "key": key, "path": str(lib), "compile_seconds": 0.0}


def load_graph_entry(graph_key: str):
    """(program, info, meta) for a graph compiled before, or None. The graph entry maps a graph
    fingerprint and argument shapes to the library's key plus what calling it needs."""
    path = cache_dir() / f"graph-{graph_key}.json"
    try:
        meta = json.loads(path.read_text())
        source_key = meta["source_key"]
        meta["arena_bytes"], meta["out_shapes"], meta["out_dtypes"]  # noqa: B018 (all present)
    except (OSError, ValueError, KeyError, TypeError):
        return None
    loaded = load_by_key(source_key)
    if loaded is None:
        return None
    program, info = loaded
    info["graph_cache"] = True
    return program, info, meta


def store_graph_entry(graph_key: str, source_key: str, meta: dict):
    root = cache_dir()
    root.mkdir(parents=True, exist_ok=True)
    entry = dict(meta, source_key=source_key)
    _atomic_write(root / f"graph-{graph_key}.json", json.dumps(entry).encode())


def forget_loaded():
    """Drop the in-process memo (the next load reads the disk cache again)."""
    _LOADED.clear()


def clear_cache():
    """Delete every cached program on disk and the in-process memo."""
    forget_loaded()
    root = cache_dir()
    if root.is_dir():
        for p in root.iterdir():
            if p.suffix in (".so", ".json", ".lock") or p.name.startswith(("tmp-", "graph-")):
                if p.is_dir():
                    shutil.rmtree(p, ignore_errors=True)
                else:
                    with contextlib.suppress(FileNotFoundError):
                        p.unlink()
