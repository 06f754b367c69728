"""Every public module's >>> examples run as tests."""

import doctest
import importlib
import pkgutil

import pytest

import symdiff


def _modules():
    names = ["symdiff"]
    for info in pkgutil.walk_packages(symdiff.__path__, "symdiff."):
        if info.name.startswith(("symdiff.lowering._native",)):
            continue
        names.append(info.name)
    return sorted(names)


@pytest.mark.parametrize("name", _modules())
def test_doctests(name):
    module = importlib.import_module(name)
    failures, _ = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE,
                                  verbose=False)
    assert failures == 0
