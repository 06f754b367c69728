"""The on-disk program cache: compile each generated program once, load it forever after.

Entries live in :func:`cache_dir` (``$SYMDIFF_CACHE_DIR``, else
``$XDG_CACHE_HOME/symdiff`` or ``~/.cache/symdiff``), named by a SHA-256 key over the
source and :func:`~symdiff.lowering.toolchain.toolchain_id` (kind, compiler, its version
line, flags, kernel ABI version): ``<key>.so`` and a ``<key>.json`` manifest holding the
library's own SHA-256 and size, the compiler and the flags. Writes are atomic (temporary
file in the same folder, fsync, rename); a per-key file lock (``<key>.lock``) makes two
processes compiling the same program compile it once; an entry whose bytes do not match
its manifest (truncated, corrupted, half-written, manifest lost) is removed and rebuilt
with a warning. Loaded programs are memoized in the process, so a warm hit is a hash and
a dict lookup.

>>> import os, shutil, tempfile
>>> from unittest import mock
>>> import numpy as np
>>> SOURCE = '''
... #include <cstdint>
... extern "C" const char* symdiff_program_abi(void) { return "symdiff-abi-1"; }
... extern "C" int symdiff_program(void* const* buffers, const int64_t* dims, char*, int64_t) {
...   double* x = static_cast<double*>(buffers[0]);
...   for (int64_t i = 0; i < dims[0]; ++i) x[i] *= 2;
...   return 0;
... }'''
>>> with mock.patch.dict(os.environ, SYMDIFF_CACHE_DIR=tempfile.mkdtemp()):
...     program, info = load_or_build(SOURCE)
...     x = np.arange(3.0)
...     program([x], [3])
...     print(x.tolist(), info["cache"], load_or_build(SOURCE)[1]["cache"])
...     clear_cache()
...     shutil.rmtree(cache_dir())
[0.0, 2.0, 4.0] miss memory
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
from .toolchain import KERNEL_ABI_VERSION, compile_shared, compiler_and_flags, compiler_version, toolchain_id

_LOADED: dict = {}  # key -> (native_program, path of its library)


def cache_dir() -> Path:
    """Where compiled programs are kept (created by the first build).

    >>> import os
    >>> str(cache_dir()).endswith("symdiff") or "SYMDIFF_CACHE_DIR" in os.environ
    True
    """
    env = os.environ.get("SYMDIFF_CACHE_DIR")
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "symdiff"


def cache_key(source: str, kind: str = "cpp") -> str:
    """Content address of a program: source + toolchain (kind, compiler, version, flags, ABI).

    >>> key = cache_key("int x;")
    >>> len(key), key == cache_key("int x;"), key == cache_key("int y;")
    (64, True, False)
    """
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


def _memo_hit(key: str):
    program, path = _LOADED[key]
    return program, {"cache": "memory", "hit": True, "key": key, "path": str(path), "compile_seconds": 0.0}


def load_or_build(source: str, kind: str = "cpp"):
    """The loaded program for ``source``, compiling it on a miss.

    Returns ``(program, info)``: ``program`` is a ``_native.native_program``; ``info`` has
    ``cache`` ("memory", "disk" or "miss"), ``hit`` (False only when this call compiled),
    ``key``, ``path`` and ``compile_seconds``. See the module's example.
    """
    key = cache_key(source, kind)
    if key in _LOADED:
        return _memo_hit(key)
    root = cache_dir()
    root.mkdir(parents=True, exist_ok=True)
    lib, manifest = root / f"{key}.so", root / f"{key}.json"
    status, seconds = "disk", 0.0
    with _locked(root / f"{key}.lock"):
        if key in _LOADED:  # another thread of this process built it while we waited
            return _memo_hit(key)
        problem = _entry_problem(key, lib, manifest)
        if problem:
            warnings.warn(f"symdiff program cache: entry {key[:12]} in {root} is damaged ({problem}); "
                          "rebuilding it", RuntimeWarning, stacklevel=2)
            for p in (lib, manifest):
                with contextlib.suppress(FileNotFoundError):
                    p.unlink()
        if problem is not None:
            status = "miss"
            seconds = _build(source, kind, key, root, lib, manifest)
        program = _native.native_program(str(lib))
        _LOADED[key] = (program, lib)
    return program, {"cache": status, "hit": status != "miss", "key": key, "path": str(lib),
                     "compile_seconds": seconds}


def _build(source: str, kind: str, key: str, root: Path, lib: Path, manifest: Path) -> float:
    """Compile into the entry (library first, manifest last: an entry with a manifest is whole)."""
    t0 = time.perf_counter()
    work = Path(tempfile.mkdtemp(prefix="tmp-", dir=root))
    try:
        data = compile_shared(source, kind, work).read_bytes()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    seconds = time.perf_counter() - t0
    compiler, flags = compiler_and_flags(kind)
    _atomic_write(lib, data)
    meta = {"key": key, "sha256": hashlib.sha256(data).hexdigest(), "size": len(data), "kind": kind,
            "compiler": compiler, "compiler_version": compiler_version(compiler), "flags": flags,
            "abi": KERNEL_ABI_VERSION, "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "compile_seconds": round(seconds, 3)}
    _atomic_write(manifest, json.dumps(meta, indent=1).encode())
    return seconds


def load_by_key(key: str):
    """The program cached under ``key`` if its entry is sound, else None (nothing is built).

    >>> load_by_key("0" * 64) is None
    True
    """
    if key in _LOADED:
        return _memo_hit(key)
    root = cache_dir()
    lib, manifest = root / f"{key}.so", root / f"{key}.json"
    if not lib.exists() or _entry_problem(key, lib, manifest) is not None:
        return None
    program = _native.native_program(str(lib))
    _LOADED[key] = (program, lib)
    return program, {"cache": "disk", "hit": True, "key": key, "path": str(lib), "compile_seconds": 0.0}


def load_graph_entry(graph_key: str):
    """(program, info, meta) for a graph compiled before, or None. The graph entry maps a graph
    fingerprint and argument shapes to the library's key plus what calling it needs.

    >>> load_graph_entry("no such graph") is None
    True
    """
    path = cache_dir() / f"graph-{graph_key}.json"
    try:
        meta = json.loads(path.read_text())
        source_key = meta["source_key"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if not {"arena_bytes", "out_shapes", "out_dtypes"} <= meta.keys():
        return None
    loaded = load_by_key(source_key)
    if loaded is None:
        return None
    program, info = loaded
    info["graph_cache"] = True
    return program, info, meta


def store_graph_entry(graph_key: str, source_key: str, meta: dict):
    """Record that graph ``graph_key`` compiles to the library ``source_key`` (see load_graph_entry).

    >>> import os, shutil, tempfile
    >>> from unittest import mock
    >>> with mock.patch.dict(os.environ, SYMDIFF_CACHE_DIR=tempfile.mkdtemp()):
    ...     store_graph_entry("g", "0" * 64, {"arena_bytes": 0, "out_shapes": [], "out_dtypes": []})
    ...     print([p.name for p in cache_dir().iterdir()], load_graph_entry("g"))  # its library is missing
    ...     shutil.rmtree(cache_dir())
    ['graph-g.json'] None
    """
    root = cache_dir()
    root.mkdir(parents=True, exist_ok=True)
    entry = dict(meta, source_key=source_key)
    _atomic_write(root / f"graph-{graph_key}.json", json.dumps(entry).encode())


def forget_loaded():
    """Drop the in-process memo (the next load reads the disk cache again).

    >>> forget_loaded(); len(_LOADED)
    0
    """
    _LOADED.clear()


def clear_cache():
    """Delete every cached program on disk and the in-process memo (programs already loaded
    keep working: their libraries stay mapped).

    >>> import os, tempfile
    >>> from unittest import mock
    >>> with mock.patch.dict(os.environ, SYMDIFF_CACHE_DIR=tempfile.mkdtemp()):
    ...     _ = (cache_dir() / "0.json").write_text("{}")
    ...     clear_cache()
    ...     print(list(cache_dir().iterdir()))
    ...     os.rmdir(cache_dir())
    []
    """
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
