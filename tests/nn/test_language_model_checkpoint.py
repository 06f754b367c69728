"""A character model's run saved by LanguageModelTrainer.save continues exactly after load."""

import numpy as np
import pytest
from symdiff.nn.checkpoint import CheckpointError
from symdiff.nn.language_model import CharLSTM, CharTransformer, LanguageModelTrainer
from symdiff.nn.text import Vocabulary

from symdiff import nn

TEXT = "the quick brown fox jumps over the lazy dog. " * 6


def _trainer(kind, backend):
    nn.init.manual_seed(3)
    vocab = Vocabulary(TEXT)
    if kind == "lstm":
        model = CharLSTM(len(vocab), embed=4, hidden=6, num_layers=2)
    else:  # dropout on: the masks follow the seed and the step counter, so they must resume too
        model = CharTransformer(len(vocab), d_model=8, nhead=2, num_layers=1, context=8, dropout=0.2)
    optimizer = nn.optim.Adam(model.parameters(), lr=0.01)
    return LanguageModelTrainer(model, optimizer, seq_len=8, batch_size=3, backend=backend, seed=5), vocab


@pytest.mark.parametrize("kind", ["lstm", "transformer"])
def test_a_resumed_run_equals_the_straight_one(kind, tmp_path):
    lm, vocab = _trainer(kind, "numpy")
    ids = vocab.encode(TEXT)
    lm.train_epoch(ids)
    path = tmp_path / "lm.npz"
    lm.save(path, vocabulary=vocab)
    lm.train_epoch(ids)
    straight = lm.model.state_dict()

    resumed, chars = LanguageModelTrainer.load(path)
    assert chars == "".join(vocab.chars)
    assert resumed.epoch == 1 and resumed.global_step == lm.global_step - len(lm.windows(ids, "text"))
    assert resumed.history["train_bpc"] == lm.history["train_bpc"][:1]
    resumed.train_epoch(ids)
    again = resumed.model.state_dict()
    assert straight.keys() == again.keys()
    for k in straight:
        np.testing.assert_array_equal(again[k], straight[k], err_msg=k)
    assert resumed.history["train_bpc"] == lm.history["train_bpc"]


def test_damaged_and_foreign_checkpoints_are_refused(tmp_path):
    lm, _ = _trainer("lstm", "numpy")
    path = tmp_path / "lm.npz"
    lm.save(path)
    data = path.read_bytes()
    (tmp_path / "cut.npz").write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="not a readable checkpoint"):
        LanguageModelTrainer.load(tmp_path / "cut.npz")
    model = nn.Sequential(nn.Linear(4, 3))
    image = nn.Trainer(model, nn.SoftmaxLoss(), nn.optim.SGD(model.parameters(), lr=0.1), backend="numpy")
    image.save(tmp_path / "image.npz")
    with pytest.raises(CheckpointError, match="image model"):
        LanguageModelTrainer.load(tmp_path / "image.npz")
    assert LanguageModelTrainer.load(path)[1] is None  # saved without a vocabulary
