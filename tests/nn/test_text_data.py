"""Character-level text data: vocabulary, (T, B) windows for truncated BPTT, UTF-8 errors,
and the standard-library corpus."""

import time

import numpy as np
import pytest
from symdiff.nn import text
from symdiff.nn.data import DataError


def test_vocabulary_round_trip_and_unknown():
    vocab = text.Vocabulary("def f(x):\n    return x\n")
    assert vocab.chars == sorted(set("def f(x):\n    return x\n")) and len(vocab) == len(vocab.chars) + 1
    ids = vocab.encode("return f(x)")
    assert ids.dtype == np.int64 and ids.min() >= 1 and vocab.decode(ids) == "return f(x)"
    assert vocab.encode("é").tolist() == [0] and vocab.decode([0]) == text.UNKNOWN
    assert vocab.unknown("xé!") == {"é", "!"}


def test_bptt_windows_shift_by_one():
    ids = np.arange(103)
    batches = list(text.BPTTLoader(ids, seq_len=8, batch_size=4))
    loader = text.BPTTLoader(ids, seq_len=8, batch_size=4)
    assert len(batches) == len(loader) == 3  # 25 rows: 24 targets in windows of 8, 8, 8
    assert [x.shape for x, _ in batches] == [(8, 4)] * 3
    assert [x.shape for x, _ in text.BPTTLoader(ids, seq_len=10, batch_size=4)] == [(10, 4), (10, 4), (4, 4)]
    for x, y in batches:
        assert x.dtype == y.dtype == np.int64 and x.shape == y.shape and x.shape[1] == 4
        np.testing.assert_array_equal(y[:-1], x[1:])  # sequence-first: targets are x[t + 1]
    column = np.concatenate([x[:, 1] for x, _ in batches])
    np.testing.assert_array_equal(column, np.arange(25, 49))  # column b is one contiguous stretch
    np.testing.assert_array_equal(batches[0][1][-1], batches[1][0][0])  # the next batch continues
    with pytest.raises(DataError, match="too few"):
        text.BPTTLoader(np.arange(3), seq_len=2, batch_size=2)


def test_non_utf8_error_names_path_and_offset(tmp_path):
    path = tmp_path / "bad.txt"
    path.write_bytes("héllo ".encode() + b"\xff rest")
    with pytest.raises(DataError, match=r"bad\.txt: not UTF-8 text: byte 0xff at offset 7"):
        text.load_text(f"text:{path}")


def test_text_file_split_and_vocabulary(tmp_path):
    path = tmp_path / "a.txt"
    path.write_text("abcabcabc" * 10 + "xyz", encoding="utf-8")
    corpus = text.load_text(f"text:{path}")
    assert len(corpus.train) + len(corpus.val) == 93 and len(corpus.val) == 9
    assert corpus.vocab.chars == ["a", "b", "c"] and corpus.unknown_in_val == {"x", "y", "z"}
    assert corpus.vocab.decode(corpus.train[:3]) == "abc"
    with pytest.raises(DataError, match="not a text dataset"):
        text.load_text("idx:foo")


def test_stdlib_corpus_is_deterministic_and_small():
    start = time.perf_counter()
    a = text.load_text("text:stdlib", max_bytes=300_000)
    b = text.load_text("text:stdlib", max_bytes=300_000)
    assert time.perf_counter() - start < 10
    assert 0 < len(a.val) < len(a.train) <= 300_000
    np.testing.assert_array_equal(a.train, b.train)
    np.testing.assert_array_equal(a.val, b.val)
    assert a.vocab.chars == b.vocab.chars and "d" in a.vocab.chars and "\n" in a.vocab.chars
    files = text.stdlib_files(300_000)
    assert files == sorted(files) and all(f.endswith(".py") for f in files)
    default = text.stdlib_files()
    assert sum(map(len, (open(f, "rb").read() for f in default))) <= text.STDLIB_BYTES
