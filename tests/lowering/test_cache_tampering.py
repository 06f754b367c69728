"""Cache entries are checked before native code trusts them (issue 13, item 2; the cache folder, item 13).

Each field of a graph entry and of a library manifest is tampered with, in two ways: an edit
that leaves the checksum stale, and one that recomputes it (what the checks behind the checksum
must still catch). Every case must warn, rebuild and return the right values."""

import json
import os
import warnings

import numpy as np
import pytest
from symdiff.lowering.compiler import cache

import symdiff as sd


@pytest.fixture(scope="module")
def compiled_once(tmp_path_factory):
    """The libraries the tests use, compiled once (each test tampers with its own copy)."""
    root = tmp_path_factory.mktemp("template")
    mp = pytest.MonkeyPatch()
    mp.setenv("SYMDIFF_CACHE_DIR", str(root))
    cache.forget_loaded()
    for scale, n in ((3.0, 1000), (4.0, 1000), (3.0, 10)):
        _program(scale, n)(np.zeros(n))
    mp.undo()
    cache.forget_loaded()
    return {p.name: p.read_bytes() for p in root.iterdir()
            if p.suffix == ".so" or p.suffix == ".json" and not p.name.startswith("graph-")}


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch, compiled_once):
    for name, data in compiled_once.items():  # libraries and manifests: each test makes its graph entries
        (tmp_path / name).write_bytes(data)
    monkeypatch.setattr(cache, "compile_shared", _copying_compiler(compiled_once, cache.compile_shared))
    monkeypatch.setenv("SYMDIFF_CACHE_DIR", str(tmp_path))
    cache.forget_loaded()
    yield tmp_path
    cache.forget_loaded()


def _copying_compiler(libraries, compile_shared):
    """The compiler, except that a library compiled before from the same source is copied."""
    def compile_or_copy(source, kind, work):
        data = libraries.get(f"{cache.cache_key(source, kind)}.so")
        if data is None:
            return compile_shared(source, kind, work)
        out = work / "program.so"
        out.write_bytes(data)
        return out

    return compile_or_copy


def _program(scale=3.0, n=1000):
    x = sd.tensor("x", (n,))
    return sd.compile([x * scale, sd.sum(x)], [x])


def _run(scale=3.0, n=1000):
    x = np.linspace(-1, 1, n)
    out, total = _program(scale, n)(x)
    np.testing.assert_array_equal(out, x * scale)
    np.testing.assert_allclose(total, x.sum(), atol=1e-12)


def _graph_entries(root):
    return sorted(root.glob("graph-*.json"))


def _manifest_used(root):
    """The manifest of the library the one graph entry points to."""
    (entry,) = _graph_entries(root)
    return root / f"{json.loads(entry.read_text())['source_key']}.json"


def _edit(path, change, reseal):
    meta = json.loads(path.read_text())
    change(meta)
    if reseal:
        meta["checksum"] = cache.checksum(meta)
    path.write_text(json.dumps(meta))


def _fresh_process_state():
    cache.forget_loaded()


GRAPH_TAMPERING = {
    "out_shapes": lambda m: m.update(out_shapes=[[10], []]),
    "out_shapes_kind": lambda m: m.update(out_shapes="[[1000]]"),
    "out_dtypes": lambda m: m.update(out_dtypes=["float32", "float64"]),
    "dropped_output": lambda m: m.update(out_shapes=m["out_shapes"][:1], out_dtypes=m["out_dtypes"][:1]),
    "arena_bytes": lambda m: m.update(arena_bytes=m["arena_bytes"] + 4096),
    "negative_arena": lambda m: m.update(arena_bytes=-1),
    "source_key_missing": lambda m: m.update(source_key="0" * 64),
    "source_key_not_a_key": lambda m: m.update(source_key="../../etc/passwd"),
    "graph_key": lambda m: m.update(graph_key="1" * 64),
    "extra_field": lambda m: m.update(extra=1),
    "missing_field": lambda m: m.pop("out_dtypes"),
}


@pytest.mark.parametrize("reseal", [False, True], ids=["stale checksum", "recomputed checksum"])
@pytest.mark.parametrize("field", list(GRAPH_TAMPERING))
def test_a_tampered_graph_entry_is_rebuilt_with_a_warning(private_cache, field, reseal):
    _run()
    (entry,) = _graph_entries(private_cache)
    _edit(entry, GRAPH_TAMPERING[field], reseal)
    _fresh_process_state()
    with pytest.warns(RuntimeWarning, match="graph entry .* is damaged"):
        _run()
    meta = json.loads(entry.read_text())  # rewritten whole
    assert meta["checksum"] == cache.checksum(meta) and meta["out_shapes"] == [[1000], []]
    _fresh_process_state()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _run()  # and sound again: no warning


def test_a_checksum_removed_or_garbled_is_caught(private_cache):
    _run()
    (entry,) = _graph_entries(private_cache)
    for damage in ('{"source_key": ', "[]", json.dumps({k: v for k, v in json.loads(entry.read_text()).items()
                                                       if k != "checksum"})):
        entry.write_text(damage)
        _fresh_process_state()
        with pytest.warns(RuntimeWarning, match="graph entry .* is damaged"):
            _run()


def test_source_keys_swapped_between_two_entries_are_caught(private_cache):
    _run(3.0)
    _run(4.0)  # same signature, other code: the dangerous swap
    first, second = _graph_entries(private_cache)
    a, b = json.loads(first.read_text()), json.loads(second.read_text())
    _edit(first, lambda m: m.update(source_key=b["source_key"]), reseal=False)
    _edit(second, lambda m: m.update(source_key=a["source_key"]), reseal=False)
    _fresh_process_state()
    with pytest.warns(RuntimeWarning, match="damaged"):
        _run(3.0)
        _run(4.0)


def test_an_entry_copied_under_another_graph_name_is_caught(private_cache):
    _run(3.0)
    (entry,) = _graph_entries(private_cache)
    text = entry.read_text()
    _run(4.0)
    other = next(p for p in _graph_entries(private_cache) if p != entry)
    other.write_text(text)  # a whole, sealed entry of another graph
    _fresh_process_state()
    with pytest.warns(RuntimeWarning, match="belongs to another graph"):
        _run(4.0)


def test_a_library_of_another_signature_behind_a_sound_entry_is_caught(private_cache):
    _run(3.0, n=1000)
    (small,) = _graph_entries(private_cache)
    _run(3.0, n=10)
    other = next(p for p in _graph_entries(private_cache) if p != small)
    ten = json.loads(other.read_text())["source_key"]
    # point the n=1000 graph at the n=10 library, with its own sizes left and the checksum redone
    _edit(small, lambda m: m.update(source_key=ten), reseal=True)
    _fresh_process_state()
    with pytest.warns(RuntimeWarning, match="its library expects 'in float64\\*10;"):
        _run(3.0, n=1000)


MANIFEST_FIELDS = ["key", "sha256", "size", "kind", "compiler", "compiler_version", "flags", "abi", "created",
                   "compile_seconds", "checksum"]


def _tamper_manifest_field(meta, field):
    value = meta[field]
    if isinstance(value, (int, float)):
        meta[field] = value + 1
    elif isinstance(value, list):
        meta[field] = value + ["-DTAMPERED"]
    else:
        meta[field] = value[::-1] + "x"
    return meta[field]


@pytest.mark.parametrize("field", MANIFEST_FIELDS)
def test_a_tampered_manifest_field_is_rebuilt_with_a_warning(private_cache, field):
    _run()
    manifest = _manifest_used(private_cache)
    tampered = []
    _edit(manifest, lambda m: tampered.append(_tamper_manifest_field(m, field)), reseal=False)
    _fresh_process_state()
    with pytest.warns(RuntimeWarning, match="damaged"):
        _run()
    meta = json.loads(manifest.read_text())
    assert meta["checksum"] == cache.checksum(meta) and meta[field] != tampered[0]


@pytest.mark.parametrize("field", ["key", "sha256", "size", "abi"])
def test_a_manifest_resealed_after_tampering_is_still_caught(private_cache, field):
    _run()
    manifest = _manifest_used(private_cache)
    _edit(manifest, lambda m: _tamper_manifest_field(m, field), reseal=True)
    _fresh_process_state()
    with pytest.warns(RuntimeWarning, match="damaged"):
        _run()


def test_a_foreign_library_behind_a_sound_manifest_is_rebuilt(private_cache):
    _run()
    manifest = _manifest_used(private_cache)
    lib = manifest.with_suffix(".so")
    data = b"\x7fELF not really a library" * 10
    tmp = lib.with_suffix(".new")
    tmp.write_bytes(data)
    tmp.replace(lib)  # a new inode: the loaded library stays mapped
    import hashlib

    _edit(manifest, lambda m: m.update(sha256=hashlib.sha256(data).hexdigest(), size=len(data)), reseal=True)
    _fresh_process_state()
    with pytest.warns(RuntimeWarning):
        _run()


# -- the cache folder itself (item 13) -------------------------------------------------------

def _fallback_run(monkeypatch, configured):
    monkeypatch.setenv("SYMDIFF_CACHE_DIR", str(configured))
    cache.forget_loaded()
    with pytest.warns(RuntimeWarning, match="SYMDIFF_CACHE_DIR") as record:
        _run()
    assert str(configured) in str(record[0].message)
    used = cache.cache_dir()
    assert used != configured and any(used.glob("*.so"))
    return used


def test_a_file_where_the_cache_folder_should_be_falls_back_to_a_temporary_folder(tmp_path, monkeypatch):
    blocker = tmp_path / "cache"
    blocker.write_text("not a folder")
    _fallback_run(monkeypatch, blocker)
    assert blocker.read_text() == "not a folder"


def test_a_cache_folder_under_a_file_falls_back_to_a_temporary_folder(tmp_path, monkeypatch):
    (tmp_path / "file").write_text("x")
    _fallback_run(monkeypatch, tmp_path / "file" / "cache")


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders: nothing to fall back from")
def test_a_read_only_cache_folder_falls_back_to_a_temporary_folder(tmp_path, monkeypatch):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        _fallback_run(monkeypatch, ro)
    finally:
        ro.chmod(0o700)
