"""The documentation's >>> examples run, and their printed outputs are golden."""

import doctest
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = sorted((ROOT / "docs").glob("*.md")) + [ROOT / "README.md"]


@pytest.mark.parametrize("path", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_documentation_examples(path):
    result = doctest.testfile(str(path), module_relative=False, optionflags=doctest.ELLIPSIS)
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples in {path.name} failed"


def test_every_doc_page_has_examples():
    assert len(DOCS) > 1, "docs/ has no pages"
    for path in DOCS:
        assert ">>>" in path.read_text(), f"{path.name} has no runnable examples"
