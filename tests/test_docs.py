"""The documentation's >>> examples run, and their printed outputs are golden."""

import doctest
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = sorted((ROOT / "docs").glob("*.md")) + [ROOT / "README.md"]
# a fenced block after this comment is code quoted from that file of the tree
QUOTED = re.compile(r"<!-- quoted from (\S+) -->\n```python\n(.*?)```", re.DOTALL)


@pytest.mark.parametrize("path", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_documentation_examples(path):
    result = doctest.testfile(str(path), module_relative=False, optionflags=doctest.ELLIPSIS)
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples in {path.name} failed"


def test_every_doc_page_has_examples():
    assert len(DOCS) > 1, "docs/ has no pages"
    for path in DOCS:
        assert ">>>" in path.read_text(), f"{path.name} has no runnable examples"


def test_quoted_code_is_the_code_in_its_file():
    """A page that quotes code shows it as it is: each quoted block is in its file, verbatim."""
    quoted = {}
    for path in DOCS:
        for source, block in QUOTED.findall(path.read_text()):
            assert block in (ROOT / source).read_text(), \
                f"{path.name}: a block quoted from {source} is not in that file:\n{block}"
            quoted[path.name] = quoted.get(path.name, 0) + 1
    assert quoted.get("extending.md", 0) >= 4, quoted


@pytest.mark.slow
def test_a_broken_step_fails_the_extending_page(monkeypatch):
    """extending.md checks what it shows: with flip's VJP made wrong, its examples fail."""
    from symdiff.ops.movement import flip_op

    monkeypatch.setattr(flip_op, "vjp", lambda node, ct, nb, needed=None: [ct])  # the identity, not a flip
    result = doctest.testfile(str(ROOT / "docs" / "extending.md"), module_relative=False,
                              optionflags=doctest.ELLIPSIS, report=False)
    assert result.failed >= 3, result
