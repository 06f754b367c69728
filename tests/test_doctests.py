"""Every public module's >>> examples run as tests (core, lowering and nn)."""

import doctest
import importlib
from pathlib import Path

import pytest

PACKAGES = {"symdiff": "symdiff", "symdiff.lowering": "lowering", "symdiff.nn": "nn"}
ROOT = Path(__file__).resolve().parents[1]


def _modules():
    names = []
    for package, folder in PACKAGES.items():
        for path in sorted((ROOT / folder).rglob("*.py")):
            parts = path.relative_to(ROOT / folder).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            names.append(".".join((package, *parts)))
    return names


@pytest.mark.parametrize("name", _modules())
def test_doctests(name):
    module = importlib.import_module(name)
    failures, _ = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert failures == 0
