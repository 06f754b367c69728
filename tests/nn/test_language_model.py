"""Character language models: a real compiled step lowers bits per character, the state is
carried between windows, bpc is numpy's cross-entropy in bits, samples are vocabulary text,
and `symdiff train --model lstm|transformer --dataset text:...` end to end."""

import math

import numpy as np
import pytest
from symdiff.nn import cli, init, optim
from symdiff.nn.language_model import CharLSTM, CharTransformer, LanguageModelTrainer
from symdiff.nn.text import UNKNOWN, BPTTLoader, Vocabulary

import symdiff as sd

TEXT = "the quick brown fox jumps over the lazy dog.\n" * 40


def _lstm_trainer(vocab, seq_len=8, batch_size=4, lr=0.02, backend="cpu"):
    init.manual_seed(0)
    model = CharLSTM(vocab, embed=8, hidden=16, num_layers=1)
    return LanguageModelTrainer(model, optim.Adam(model.parameters(), lr=lr, clip_norm=1.0), seq_len, batch_size,
                                backend=backend)


def test_compiled_step_lowers_bpc_on_a_small_text():
    vocab = Vocabulary(TEXT)
    ids = vocab.encode(TEXT)
    lm = _lstm_trainer(len(vocab))
    before = lm.evaluate_bpc(ids)
    assert abs(before - math.log2(len(vocab))) < 0.5  # an untrained model is about uniform
    for _ in range(3):
        lm.train_epoch(ids, max_steps=20)
    after = lm.evaluate_bpc(ids)
    assert lm.history["train_bpc"][-1] < lm.history["train_bpc"][0]
    assert after < before - 1.0, (before, after)
    assert lm.global_step == 60 and len(lm.history["chars_per_second"]) == 3


def _numpy_bpc(logits, targets):
    z = logits.reshape(-1, logits.shape[-1]).astype(np.float64)
    top = z.max(axis=1, keepdims=True)
    logsumexp = (top + np.log(np.exp(z - top).sum(axis=1, keepdims=True)))[:, 0]
    return float(np.mean(logsumexp - z[np.arange(len(z)), targets.reshape(-1)]) / np.log(2))


def test_bpc_is_numpy_cross_entropy_over_the_whole_stream_with_the_state_carried():
    """Windows of 4 with (h, c) carried equal one unrolled pass over all 8 steps from zeros,
    scored by numpy's cross-entropy in bits (the reference graph runs in the numpy evaluator)."""
    rng = np.random.default_rng(1)
    ids = rng.integers(1, 6, size=22)
    lm = _lstm_trainer(6, seq_len=4, batch_size=2)
    lm.model.lstm.weight_hh_l0.data *= 3  # a state that matters: the carry is visible in the loss
    got = lm.evaluate_bpc(ids)
    columns = BPTTLoader(ids, 4, 2).data  # (11, 2): the full windows cover rows 0..8
    x, y = columns[:8], columns[1:9]
    leaf = sd.tensor("ids", (8, 2), "int64")
    logits, _ = lm.model(leaf)
    want = _numpy_bpc(sd.evaluate(logits, {leaf: x, **lm.model.feed()}), y)
    assert got == pytest.approx(want, rel=1e-5)
    fresh = [_numpy_bpc(sd.evaluate(lm.model(sd.tensor("ids", (4, 2), "int64"))[0],
                                    {sd.tensor("ids", (4, 2), "int64"): w, **lm.model.feed()}), t)
             for w, t in ((x[:4], y[:4]), (x[4:], y[4:]))]
    assert abs(np.mean(fresh) - want) > 1e-4  # starting the second window from zeros would differ


def test_sample_has_the_length_and_only_vocabulary_characters():
    vocab = Vocabulary(TEXT)
    lm = _lstm_trainer(len(vocab))
    lm.train_epoch(vocab.encode(TEXT), max_steps=10)
    for temperature in (0.0, 0.7, 2.0):
        ids = lm.sample(50, temperature=temperature, seed=3, prompt=vocab.encode("t"))
        text = vocab.decode(ids)
        assert len(text) == 50 and UNKNOWN not in text and set(text) <= set(vocab.chars)
    again = lm.sample(50, temperature=0.7, seed=3, prompt=vocab.encode("t"))
    assert vocab.decode(again) == vocab.decode(lm.sample(50, temperature=0.7, seed=3, prompt=vocab.encode("t")))
    with pytest.raises(ValueError, match="temperature"):
        lm.sample(5, temperature=-1.0)


def test_transformer_lowers_bpc_and_samples():
    vocab = Vocabulary(TEXT)
    ids = vocab.encode(TEXT)
    init.manual_seed(0)
    model = CharTransformer(len(vocab), d_model=16, nhead=2, num_layers=1, context=8)
    lm = LanguageModelTrainer(model, optim.Adam(model.parameters(), lr=0.01), 8, 4)
    before = lm.evaluate_bpc(ids)
    for _ in range(3):
        lm.train_epoch(ids, max_steps=20)
    assert lm.evaluate_bpc(ids) < before - 0.5
    text = vocab.decode(lm.sample(20, temperature=0.8, seed=0, prompt=vocab.encode("the ")))
    assert len(text) == 20 and set(text) <= set(vocab.chars)
    # causal: changing the characters after position 3 leaves the logits up to 3 as they were
    program, _ = lm._program("forward", 8, 1)
    x = vocab.encode("the quic")[:, None]
    y = x.copy()
    y[4:] = vocab.encode("k")[0]
    params = [s.data for _, s in model.named_states()]
    a, b = program(x, *params)[0], program(y, *params)[0]
    np.testing.assert_allclose(a[:4], b[:4], rtol=1e-5, atol=1e-6)
    assert not np.allclose(a[4:], b[4:])


# -- the command line ---------------------------------------------------------------------------

SMALL = ["--seq-len", "8", "--batch", "4", "--hidden", "16", "--embed", "8", "--layers", "1", "--lr", "0.02",
         "--no-progress"]


def test_cli_trains_prints_bpc_samples_and_plots(tmp_path, capsys):
    corpus, png = tmp_path / "corpus.txt", tmp_path / "bpc.png"
    corpus.write_text(TEXT, encoding="utf-8")
    code = cli.main(["--model", "lstm", "--dataset", f"text:{corpus}", "--epochs", "2", "--max-steps", "15",
                     "--sample-length", "40", "--temperature", "0.5", "--plot", str(png), *SMALL])
    out, err = capsys.readouterr()
    assert code == 0, err
    epochs = [line for line in out.splitlines() if line.startswith("epoch ")]
    assert len(epochs) == 2 and all("train bpc" in line and "val bpc" in line for line in epochs)
    bpc = [float(line.split("train bpc ")[1].split()[0]) for line in epochs]
    assert bpc[1] < bpc[0] and "15 per epoch, state carried" in out
    sample = out.split("temperature 0.5, seed 0):\n")[1].split("\ncurves written")[0]
    assert len(sample) == 40 and set(sample) <= set(TEXT)
    assert png.read_bytes()[:4] == b"\x89PNG"


def _error(capsys, *argv):
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    assert code == 2 and "Traceback" not in err and len(err.strip().splitlines()) == 1, (out, err)
    assert "epoch" not in out
    return err


def test_cli_bad_input_is_one_clear_line(tmp_path, capsys):
    binary = tmp_path / "latin1.txt"
    binary.write_bytes(b"caf\xe9 au lait" * 10)
    assert f"{binary}: not UTF-8 text: byte 0xe9 at offset 3" in _error(
        capsys, "--model", "lstm", "--dataset", f"text:{binary}", *SMALL)
    short = tmp_path / "short.txt"
    short.write_text("abc" * 5)
    err = _error(capsys, "--model", "lstm", "--dataset", f"text:{short}", *SMALL)
    assert "the training text: 14 characters, shorter than one window" in err
    corpus = tmp_path / "corpus.txt"
    corpus.write_text(TEXT)
    cases = [
        (["--model", "lstm", "--dataset", "digits"], "--model lstm trains on text"),
        (["--model", "mlp", "--dataset", f"text:{corpus}"], "is text: train it with --model lstm"),
        (["--model", "lstm", "--dataset", f"text:{corpus}", "--augment"], "--augment applies to the image models"),
        (["--model", "transformer", "--dataset", f"text:{corpus}", "--embed", "8"],
         "--embed applies to --model lstm, not transformer"),
        (["--model", "mlp", "--dataset", "digits", "--seq-len", "8"], "--seq-len applies to --model lstm or"),
        (["--model", "lstm", "--dataset", "text:stdlib", "--holdout", "0.2"], "--holdout applies to text:PATH"),
        (["--model", "lstm", "--dataset", f"text:{corpus}", "--temperature", "-1"], "--temperature must be"),
        (["--model", "lstm", "--dataset", f"text:{corpus}", "--optimizer", "adam", "--momentum", "0.5"],
         "--momentum applies to --optimizer sgd, not adam"),
    ]
    for argv, message in cases:
        assert message in _error(capsys, *argv), argv


def test_cli_unknown_model_is_refused(capsys):
    with pytest.raises(SystemExit) as exit_:
        cli.main(["--model", "gru", "--dataset", "text:stdlib"])
    assert exit_.value.code == 2 and "invalid choice: 'gru'" in capsys.readouterr().err
