"""Fixtures shared by every test folder."""

import os

import pytest

# A renderer that fails on run-time dimensions for any reason but NeedsConstantDims is a bug:
# the tests see it raised instead of the program quietly specializing (symdiff.lowering.plan.dims)
os.environ.setdefault("SYMDIFF_STRICT_RUNTIME_DIMS", "1")


@pytest.fixture(scope="module")
def module_program_cache(tmp_path_factory):
    """A program cache of the test module's own (SYMDIFF_CACHE_DIR), and no programs loaded before
    it: a module's compiles neither see nor leave entries for another's."""
    from symdiff.lowering.compiler import cache

    mp = pytest.MonkeyPatch()
    mp.setenv("SYMDIFF_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))
    cache.forget_loaded()
    yield
    mp.undo()
    cache.forget_loaded()
