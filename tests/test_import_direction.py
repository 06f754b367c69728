"""Imports flow one way: symdiff (core) <- symdiff.lowering <- symdiff.nn."""

import subprocess
import sys


def _loaded_after(statement):
    code = f"import sys; {statement}; print(' '.join(sorted(m for m in sys.modules if m.startswith('symdiff'))))"
    return subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout.split()


def test_core_pulls_in_neither_lowering_nor_nn():
    loaded = _loaded_after("import symdiff")
    assert "symdiff" in loaded
    assert not [m for m in loaded if m.startswith(("symdiff.lowering", "symdiff.nn"))], loaded


def test_lowering_does_not_pull_in_nn():
    loaded = _loaded_after("import symdiff.lowering")
    assert "symdiff.lowering._native" in loaded
    assert not [m for m in loaded if m.startswith("symdiff.nn")], loaded


def test_the_cli_module_is_not_imported_by_the_core():
    assert "symdiff.cli" not in _loaded_after("import symdiff")
