"""The on-disk program cache: compile each generated program once, load it forever after.

Entries live in :func:`cache_dir` (``$SYMDIFF_CACHE_DIR``, else
``$XDG_CACHE_HOME/symdiff`` or ``~/.cache/symdiff``), named by a SHA-256 key over the
source and :func:`~symdiff.lowering.compiler.toolchain.toolchain_id` (kind, compiler, its version
line, flags, kernel ABI version): ``<key>.so`` and a ``<key>.json`` manifest holding the
library's own SHA-256 and size, the compiler and the flags, and a checksum over the
manifest's own fields. Writes are atomic (temporary file in the same folder, fsync, rename);
a per-key file lock (``<key>.lock``) makes two processes compiling the same program compile
it once; an entry whose bytes do not match its manifest, or whose manifest does not match its
checksum (truncated, corrupted, half-written, edited, manifest lost) is removed and rebuilt
with a warning. Loaded programs are memoized in the process, so a warm hit is a hash and
a dict lookup.

Graph entries (``graph-<key>.json``) map a graph and its argument shapes to a library key,
so a warm process skips rewriting and rendering; they are checksummed the same way, and
:class:`~symdiff.lowering.programs.cpu.CpuProgram` checks what they say against the graph and the
library's own signature before a buffer is sized from them.

The cache folder is trusted like any folder of programs you run: checksums catch damage
and careless edits, not someone who can write libraries into it. A folder that cannot be
used (read-only, a file in its place) is replaced, with one warning, by a private temporary
folder for the rest of the process.

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
import re
import shutil
import tempfile
import threading
import time
import warnings
from pathlib import Path

from ..kernels import native
from .toolchain import KERNEL_ABI_VERSION, compile_shared, compiler_and_flags, compiler_version, toolchain_id

_LOADED: dict = {}  # key -> (native_program, path of its library)
_KEY = re.compile(r"[0-9a-f]{64}")
_FALLBACK: dict = {}  # unusable configured folder -> the private temporary folder used instead
_FALLBACK_LOCK = threading.Lock()


def configured_cache_dir() -> Path:
    """The folder the environment names: ``$SYMDIFF_CACHE_DIR``, else the XDG cache folder.

    >>> import os
    >>> str(configured_cache_dir()).endswith("symdiff") or "SYMDIFF_CACHE_DIR" in os.environ
    True
    """
    env = os.environ.get("SYMDIFF_CACHE_DIR")
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "symdiff"


def cache_dir() -> Path:
    """Where compiled programs are kept: :func:`configured_cache_dir` when it exists or can be
    made and is writable, else (with one warning) a private temporary folder.

    >>> import os
    >>> str(cache_dir()).endswith("symdiff") or "SYMDIFF_CACHE_DIR" in os.environ
    True
    """
    root = configured_cache_dir()
    if root in _FALLBACK:
        return _FALLBACK[root]
    problem = _unusable(root)
    if problem is None:
        return root
    with _FALLBACK_LOCK:
        if root not in _FALLBACK:
            _FALLBACK[root] = Path(tempfile.mkdtemp(prefix="symdiff-cache-"))
            warnings.warn(f"symdiff program cache: {root} {problem}; compiled programs go to "
                          f"{_FALLBACK[root]} for this process (set SYMDIFF_CACHE_DIR to a writable folder "
                          "to keep them)", RuntimeWarning, stacklevel=3)
    return _FALLBACK[root]


def _unusable(root: Path) -> str | None:
    """Why ``root`` cannot hold the cache (None when it can)."""
    try:
        root.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        return "is not a folder"
    except OSError as e:
        return f"cannot be created ({e.strerror or e.__class__.__name__})"
    if not root.is_dir():
        return "is not a folder"
    if not os.access(root, os.W_OK | os.X_OK):
        return "is not writable"
    return None


def cache_key(source: str, kind: str = "cpu") -> str:
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


def checksum(fields: dict) -> str:
    """SHA-256 over a JSON object's fields (canonical form), the ``checksum`` field left out.

    >>> checksum({"a": 1, "b": [2]}) == checksum({"b": [2], "a": 1, "checksum": "x"})
    True
    """
    body = {k: v for k, v in fields.items() if k != "checksum"}
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def _sealed(fields: dict) -> bytes:
    return json.dumps(dict(fields, checksum=checksum(fields)), indent=1).encode()


def _unsealed(path: Path):
    """The fields of a checksummed JSON file, or a predicate saying why it is unusable."""
    try:
        meta = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        return f"is unreadable ({e.__class__.__name__})"
    if not isinstance(meta, dict):
        return "is not a JSON object"
    if meta.get("checksum") != checksum(meta):
        return "does not match its checksum"
    return meta


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
    meta = _unsealed(manifest)
    if isinstance(meta, str):
        return "its manifest " + meta
    if meta.get("key") != key:
        return "its manifest belongs to another program"
    if meta.get("abi") != KERNEL_ABI_VERSION:
        return f"its manifest names ABI {meta.get('abi')!r}, not {KERNEL_ABI_VERSION!r}"
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


def load_or_build(source: str, kind: str = "cpu"):
    """The loaded program for ``source``, compiling it on a miss.

    Returns ``(program, info)``: ``program`` is a loaded library (:func:`~symdiff.lowering.kernels.native.load_program`); ``info`` has
    ``cache`` ("memory", "disk" or "miss"), ``hit`` (False only when this call compiled),
    ``key``, ``path`` and ``compile_seconds``. See the module's example.
    """
    key = cache_key(source, kind)
    if key in _LOADED:
        return _memo_hit(key)
    root = cache_dir()
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
        try:
            program = native.load_program(str(lib))
        except RuntimeError as e:  # sound bytes that do not load (another ABI, a foreign file)
            if status == "miss":
                raise
            warnings.warn(f"symdiff program cache: entry {key[:12]} in {root} does not load ({e}); "
                          "rebuilding it", RuntimeWarning, stacklevel=2)
            status = "miss"
            seconds = _build(source, kind, key, root, lib, manifest)
            program = native.load_program(str(lib))
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
    _atomic_write(manifest, _sealed(meta))
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
    try:
        program = native.load_program(str(lib))
    except RuntimeError:
        return None
    _LOADED[key] = (program, lib)
    return program, {"cache": "disk", "hit": True, "key": key, "path": str(lib), "compile_seconds": 0.0}


def discard(key: str):
    """Remove the library entry ``key`` from the disk and the memo (the next load rebuilds it).

    >>> discard("0" * 64)  # absent: nothing to do
    """
    _LOADED.pop(key, None)
    if not _KEY.fullmatch(key):
        return
    root = cache_dir()
    for p in (root / f"{key}.so", root / f"{key}.json"):
        with contextlib.suppress(FileNotFoundError):
            p.unlink()


GRAPH_FIELDS = {"graph_key": str, "source_key": str, "arena_bytes": int, "out_shapes": list, "out_dtypes": list,
                "checksum": str}


def _graph_entry_problem(graph_key: str, meta) -> str | None:
    """Why a graph entry's fields are unusable on their own (None when they are sound)."""
    if isinstance(meta, str):
        return "it " + meta
    if set(meta) != set(GRAPH_FIELDS):
        return f"its fields are {sorted(meta)}, not {sorted(GRAPH_FIELDS)}"
    for field, kind in GRAPH_FIELDS.items():
        if not isinstance(meta[field], kind) or isinstance(meta[field], bool):
            return f"its {field} is not a {kind.__name__}"
    if meta["graph_key"] != graph_key:
        return "it belongs to another graph"
    if not _KEY.fullmatch(meta["source_key"]):
        return "its source_key is not a cache key"
    if meta["arena_bytes"] < 0 or len(meta["out_shapes"]) != len(meta["out_dtypes"]):
        return "its sizes are inconsistent"
    return None


def load_graph_entry(graph_key: str):
    """(program, info, meta) for a graph compiled before, or None. The graph entry maps a graph
    fingerprint and argument shapes to the library's key plus what calling it needs. An entry
    whose checksum or fields are wrong, or whose library is missing or damaged, is removed with
    a warning (the caller then builds the program as on a miss).

    >>> load_graph_entry("no such graph") is None
    True
    """
    path = cache_dir() / f"graph-{graph_key}.json"
    if not path.exists():
        return None
    meta = _unsealed(path)
    problem = _graph_entry_problem(graph_key, meta)
    loaded = load_by_key(meta["source_key"]) if problem is None else None
    if problem is None and loaded is None:
        problem = f"its library {meta['source_key'][:12]} is missing or damaged"
    if problem is not None:
        warnings.warn(f"symdiff program cache: graph entry {graph_key[:12]} in {path.parent} is damaged "
                      f"({problem}); rebuilding it", RuntimeWarning, stacklevel=3)
        discard_graph_entry(graph_key)
        return None
    program, info = loaded
    info["graph_cache"] = True
    return program, info, meta


def store_graph_entry(graph_key: str, source_key: str, meta: dict):
    """Record that graph ``graph_key`` compiles to the library ``source_key`` (see load_graph_entry).

    >>> import os, shutil, tempfile, warnings
    >>> from unittest import mock
    >>> with mock.patch.dict(os.environ, SYMDIFF_CACHE_DIR=tempfile.mkdtemp()), warnings.catch_warnings():
    ...     warnings.simplefilter("ignore")
    ...     store_graph_entry("g", "0" * 64, {"arena_bytes": 0, "out_shapes": [], "out_dtypes": []})
    ...     print([p.name for p in cache_dir().iterdir()], load_graph_entry("g"))  # its library is missing
    ...     shutil.rmtree(cache_dir())
    ['graph-g.json'] None
    """
    root = cache_dir()
    entry = {"graph_key": graph_key, "source_key": source_key, "arena_bytes": int(meta["arena_bytes"]),
             # a dimension is an int, or the text of a run-time one ("D0"): compared, never evaluated
             "out_shapes": [[d if isinstance(d, str) else int(d) for d in s] for s in meta["out_shapes"]],
             "out_dtypes": [str(d) for d in meta["out_dtypes"]]}
    _atomic_write(root / f"graph-{graph_key}.json", _sealed(entry))


def discard_graph_entry(graph_key: str):
    """Remove a graph entry (its library stays).

    >>> discard_graph_entry("no such graph")
    """
    with contextlib.suppress(FileNotFoundError):
        (cache_dir() / f"graph-{graph_key}.json").unlink()


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
