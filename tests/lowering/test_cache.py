"""The on-disk program cache: hits, misses, damaged entries, concurrency (real compiler and files)."""

import hashlib
import json
import multiprocessing
import os
import threading
import time

import numpy as np
import pytest
from symdiff.lowering.compiler import cache, toolchain

SOURCE = """#include <cstdint>
extern "C" const char* symdiff_program_abi(void) { return "symdiff-abi-1"; }
extern "C" int symdiff_program(void* const* buffers, const int64_t* dims, char* error, int64_t error_size) {
  const double* a = static_cast<const double*>(buffers[0]);
  double* out = static_cast<double*>(buffers[1]);
  #pragma omp parallel for
  for (int64_t i = 0; i < dims[0]; ++i) out[i] = a[i] * 2 + dims[1];
  return 0;
}
"""


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("SYMDIFF_CACHE_DIR", str(tmp_path))
    cache.forget_loaded()
    yield tmp_path
    cache.forget_loaded()


def _check(program, n=1000, c=3):
    a = np.linspace(-1, 1, n)
    out = np.empty(n)
    program([a, out], [n, c])
    np.testing.assert_array_equal(out, a * 2 + c)


def _entry_files(root):
    return sorted(p.name for p in root.iterdir())


def test_miss_then_memory_hit_then_disk_hit(private_cache, monkeypatch):
    program, info = cache.load_or_build(SOURCE)
    key = info["key"]
    assert info["cache"] == "miss" and not info["hit"] and info["compile_seconds"] > 0
    assert info["path"] == str(private_cache / f"{key}.so")
    assert _entry_files(private_cache) == [f"{key}.json", f"{key}.lock", f"{key}.so"]  # no temporaries left
    meta = json.loads((private_cache / f"{key}.json").read_text())
    data = (private_cache / f"{key}.so").read_bytes()
    assert meta["key"] == key and meta["size"] == len(data)
    assert meta["sha256"] == hashlib.sha256(data).hexdigest()
    assert meta["compiler"] == toolchain.cxx() and meta["flags"] == toolchain.cxx_flags() and meta["created"]
    _check(program)

    def no_compiler(*args, **kwargs):
        raise AssertionError("the compiler ran on a cache hit")

    monkeypatch.setattr(cache, "compile_shared", no_compiler)
    t0 = time.perf_counter()
    again, info = cache.load_or_build(SOURCE)
    warm = time.perf_counter() - t0
    assert again is program and info["cache"] == "memory" and info["hit"] and info["compile_seconds"] == 0.0
    assert warm < 0.05

    cache.forget_loaded()
    from_disk, info = cache.load_or_build(SOURCE)
    assert info["cache"] == "disk" and info["hit"] and info["key"] == key
    _check(from_disk, n=10, c=-4)


def test_the_key_covers_source_kind_flags_compiler_and_abi(monkeypatch):
    key = cache.cache_key(SOURCE)
    assert key == cache.cache_key(SOURCE, "cpu") and len(key) == 64
    assert cache.cache_key(SOURCE + " ") != key
    with monkeypatch.context() as mp:
        mp.setenv("SYMDIFF_CXXFLAGS", "-DEXTRA=1")
        assert cache.cache_key(SOURCE) != key
    with monkeypatch.context() as mp:
        mp.setattr(toolchain, "compiler_version", lambda path: "c++ (Imaginary) 99.1")
        toolchain._toolchain_id.cache_clear()
        assert cache.cache_key(SOURCE) != key
    toolchain._toolchain_id.cache_clear()
    assert cache.cache_key(SOURCE) == key
    monkeypatch.setattr(cache, "KERNEL_ABI_VERSION", "symdiff-abi-1/kernels-999")
    assert cache.cache_key(SOURCE) != key


def test_the_key_covers_the_kind():
    try:
        toolchain.nvcc()
    except toolchain.CompilerNotFound:
        pytest.skip("nvcc not found")
    assert cache.cache_key(SOURCE, "cuda") != cache.cache_key(SOURCE, "cpu")


def test_cache_dir_defaults(monkeypatch, tmp_path):
    monkeypatch.setenv("SYMDIFF_CACHE_DIR", "~/somewhere")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert cache.cache_dir() == tmp_path / "somewhere"
    monkeypatch.delenv("SYMDIFF_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache.cache_dir() == tmp_path / "xdg" / "symdiff"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert cache.cache_dir() == tmp_path / ".cache" / "symdiff"


def _truncate(lib, manifest):
    _replace(lib, lib.read_bytes()[:100])


def _flip_bytes(lib, manifest):
    data = bytearray(lib.read_bytes())
    data[len(data) // 2:len(data) // 2 + 8] = bytes(b ^ 0xFF for b in data[len(data) // 2:len(data) // 2 + 8])
    _replace(lib, bytes(data))


def _delete_library(lib, manifest):
    lib.unlink()


def _delete_manifest(lib, manifest):
    manifest.unlink()


def _garbage_manifest(lib, manifest):
    manifest.write_text("{not json")


def _foreign_manifest(lib, manifest):
    # another entry's manifest, whole (its checksum right): it names another key
    meta = dict(json.loads(manifest.read_text()), key="0" * 64)
    manifest.write_text(json.dumps(dict(meta, checksum=cache.checksum(meta))))


def _replace(path, data):
    # a new file renamed over the old one: the library may still be mapped in this process, and
    # shrinking a mapped file in place is a SIGBUS there, not something the cache can catch
    tmp = path.with_suffix(".damaged")
    tmp.write_bytes(data)
    tmp.replace(path)


DAMAGE = {  # how an entry is damaged, and what the warning says about it
    "truncated": (_truncate, "bytes, the manifest says"),
    "flipped": (_flip_bytes, "checksum"),
    "no-library": (_delete_library, "library is missing"),
    "no-manifest": (_delete_manifest, "unreadable"),
    "garbage-manifest": (_garbage_manifest, "unreadable"),
    "foreign-manifest": (_foreign_manifest, "another"),
}


@pytest.mark.parametrize("damage", list(DAMAGE))
def test_a_damaged_entry_is_rebuilt_with_a_warning(private_cache, damage):
    harm, reason = DAMAGE[damage]
    _, info = cache.load_or_build(SOURCE)
    lib, manifest = private_cache / f"{info['key']}.so", private_cache / f"{info['key']}.json"
    cache.forget_loaded()
    harm(lib, manifest)
    with pytest.warns(RuntimeWarning, match=f"damaged.*{reason}"):
        program, info = cache.load_or_build(SOURCE)
    assert info["cache"] == "miss"
    _check(program)
    meta = json.loads(manifest.read_text())
    assert meta["sha256"] == hashlib.sha256(lib.read_bytes()).hexdigest()
    assert cache.load_by_key(info["key"]) is not None


def test_a_damaged_entry_is_not_loaded_by_key(private_cache):
    _, info = cache.load_or_build(SOURCE)
    cache.forget_loaded()
    _truncate(private_cache / f"{info['key']}.so", None)
    assert cache.load_by_key(info["key"]) is None


def test_a_compile_error_leaves_no_entry(private_cache):
    with pytest.raises(toolchain.CompileError, match="not_declared"):
        cache.load_or_build(SOURCE.replace("dims[1]", "not_declared"))
    assert not [p for p in private_cache.iterdir() if p.suffix != ".lock"]


def test_clear_cache(private_cache):
    cache.load_or_build(SOURCE)
    cache.clear_cache()
    assert _entry_files(private_cache) == []
    _, info = cache.load_or_build(SOURCE)
    assert info["cache"] == "miss"


def test_threads_of_one_process_compile_once():
    results = []
    threads = [threading.Thread(target=lambda: results.append(cache.load_or_build(SOURCE))) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(info["cache"] for _, info in results) == ["memory"] * 3 + ["miss"]
    assert len({id(program) for program, _ in results}) == 1


def _load_in_child(cache_dir, barrier, queue):
    os.environ["SYMDIFF_CACHE_DIR"] = cache_dir
    import numpy as np
    from symdiff.lowering.compiler import cache

    barrier.wait()  # both processes ask for the program at the same moment
    program, info = cache.load_or_build(SOURCE)
    out = np.empty(4)
    program([np.arange(4.0), out], [4, 1])
    queue.put((info["cache"], out.tolist()))


def test_two_processes_compile_one_program_once(private_cache):
    ctx = multiprocessing.get_context("spawn")
    barrier, queue = ctx.Barrier(2), ctx.Queue()
    args = (str(private_cache), barrier, queue)
    children = [ctx.Process(target=_load_in_child, args=args) for _ in range(2)]
    for child in children:
        child.start()
    results = [queue.get(timeout=120) for _ in children]
    for child in children:
        child.join(timeout=60)
        assert child.exitcode == 0
    assert sorted(r[0] for r in results) == ["disk", "miss"]  # the compiler ran once
    assert all(r[1] == [1.0, 3.0, 5.0, 7.0] for r in results)
    assert len(list(private_cache.glob("*.so"))) == 1 and not list(private_cache.glob("tmp-*"))
