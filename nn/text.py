"""Character-level text data: a corpus, its vocabulary and (T, B) windows for truncated BPTT.

``load_text("text:PATH")`` reads one UTF-8 file (the last tenth is validation);
``load_text("text:stdlib")`` reads the Python standard library's own ``.py`` files, a
deterministic subset capped in bytes, every tenth file held out as validation. The
vocabulary is the sorted characters of the training text, index 0 reserved for characters
it has not seen.

>>> vocab = Vocabulary("hello")
>>> vocab.chars, vocab.encode("hex").tolist(), vocab.decode(vocab.encode("hex"))
(['e', 'h', 'l', 'o'], [2, 1, 0], 'he\\ufffd')
>>> x, y = next(iter(BPTTLoader(np.arange(13), seq_len=3, batch_size=2)))
>>> x.T.tolist(), y.T.tolist()  # sequence-first (T, B); targets are inputs shifted by one
([[0, 1, 2], [6, 7, 8]], [[1, 2, 3], [7, 8, 9]])
"""

from __future__ import annotations

import os
import sysconfig

import numpy as np

from .data import DataError

MAX_TEXT_BYTES = 64 << 20  # a text:PATH file larger than this is refused
STDLIB_BYTES = 4 << 20  # text:stdlib reads at most this much
UNKNOWN = "\ufffd"  # index 0: a character the training text does not have


def read_utf8(path, max_bytes: int = MAX_TEXT_BYTES) -> str:
    """The text of a UTF-8 file; a file that is not UTF-8 is a DataError naming the path and
    the offset of the first bad byte."""
    size = os.path.getsize(path)
    if size > max_bytes:
        raise DataError(f"{path}: {size} bytes, more than the {max_bytes} a text corpus may have")
    with open(path, "rb") as f:
        raw = f.read(max_bytes + 1)
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise DataError(f"{path}: not UTF-8 text: byte 0x{raw[e.start]:02x} at offset {e.start} "
                        f"({e.reason})") from None


def stdlib_files(max_bytes: int = STDLIB_BYTES) -> list:
    """Sorted paths of the standard library's top-level ``.py`` files, the first ones whose
    sizes add up to at most ``max_bytes``."""
    root = sysconfig.get_paths()["stdlib"]
    names = sorted(n for n in os.listdir(root) if n.endswith(".py") and os.path.isfile(os.path.join(root, n)))
    out, total = [], 0
    for name in names:
        path = os.path.join(root, name)
        size = os.path.getsize(path)
        if total + size > max_bytes:
            continue
        out.append(path)
        total += size
    if not out:
        raise DataError(f"text:stdlib: no .py files found in {root}")
    return out


class Vocabulary:
    """The sorted characters of a text, index 0 reserved for unknown characters."""

    def __init__(self, text: str):
        self.chars = sorted(set(text))
        self.index = {c: i + 1 for i, c in enumerate(self.chars)}

    def __len__(self) -> int:
        return len(self.chars) + 1

    def encode(self, text: str) -> np.ndarray:
        return np.fromiter((self.index.get(c, 0) for c in text), np.int64, len(text))

    def decode(self, ids) -> str:
        return "".join(self.chars[i - 1] if i > 0 else UNKNOWN for i in np.asarray(ids).tolist())

    def unknown(self, text: str) -> set:
        """The characters of ``text`` this vocabulary does not have."""
        return set(text) - set(self.index)


class TextCorpus:
    """Encoded training and validation characters and their vocabulary."""

    def __init__(self, train_text: str, val_text: str, name: str = "text"):
        if len(train_text) < 2:
            raise DataError(f"{name}: the training text has {len(train_text)} characters, too few to predict")
        self.name, self.vocab = name, Vocabulary(train_text)
        self.train, self.val = self.vocab.encode(train_text), self.vocab.encode(val_text)
        self.unknown_in_val = self.vocab.unknown(val_text)


def load_text(spec: str, max_bytes: int | None = None, val_fraction: float = 0.1) -> TextCorpus:
    """``text:PATH`` (one UTF-8 file, its last ``val_fraction`` as validation) or ``text:stdlib``
    (every tenth of the standard library's files held out, ``max_bytes`` in all)."""
    if not spec.startswith("text:"):
        raise DataError(f"{spec!r} is not a text dataset: give text:PATH or text:stdlib")
    source = spec[len("text:"):]
    if source == "stdlib":
        texts = [(p, read_utf8(p)) for p in stdlib_files(STDLIB_BYTES if max_bytes is None else max_bytes)]
        train = "".join(t for i, (_, t) in enumerate(texts) if i % 10 != 9)
        val = "".join(t for i, (_, t) in enumerate(texts) if i % 10 == 9)
        return TextCorpus(train, val, spec)
    text = read_utf8(source, MAX_TEXT_BYTES if max_bytes is None else max_bytes)
    cut = len(text) - int(len(text) * val_fraction)
    return TextCorpus(text[:cut], text[cut:], spec)


class BPTTLoader:
    """(x, y) batches of int64 (T, B) windows over one stream of ids, as the course's
    ``batchify``/``get_batch``: the stream is cut into B columns and read T rows at a time,
    so batch k+1 continues batch k (the hidden state carries over); y is x shifted by one."""

    def __init__(self, ids, seq_len: int, batch_size: int):
        ids = np.asarray(ids, np.int64)
        if seq_len < 1 or batch_size < 1:
            raise DataError(f"BPTTLoader: seq_len and batch_size must be >= 1, got {seq_len}, {batch_size}")
        rows = len(ids) // batch_size
        if rows < 2:
            raise DataError(f"BPTTLoader: {len(ids)} ids are too few for batches of {batch_size} columns")
        self.data = ids[:rows * batch_size].reshape(batch_size, rows).T.copy()  # (rows, B)
        self.seq_len = seq_len

    def __len__(self) -> int:
        return -(-(len(self.data) - 1) // self.seq_len)

    def __iter__(self):
        for start in range(0, len(self.data) - 1, self.seq_len):
            t = min(self.seq_len, len(self.data) - 1 - start)
            yield self.data[start:start + t], self.data[start + 1:start + 1 + t]
