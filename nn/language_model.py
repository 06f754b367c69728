"""Character language models (issue 16): ``CharLSTM`` and ``CharTransformer``, trained by
:class:`LanguageModelTrainer` from one compiled step, scored in bits per character and
sampled from a compiled forward program.

A model maps int64 ids (T, B) and its recurrent state to logits (T, B, vocab) and the new
state. The LSTM's state (h, c) is an *input* of each compiled program and its final value an
output, so truncated BPTT carries it from one window to the next (window k+1 of a
:class:`~symdiff.nn.text.BPTTLoader` continues window k); being an input, it is detached:
gradients stop at the window's start. The transformer has no state: each window is its own
context. Bits per character are the mean cross-entropy in nats divided by ln 2.

>>> import numpy as np
>>> from symdiff import nn
>>> from symdiff.nn.language_model import CharLSTM, LanguageModelTrainer
>>> nn.init.manual_seed(0)
>>> model = CharLSTM(5, embed=4, hidden=8, num_layers=1)
>>> lm = LanguageModelTrainer(model, nn.optim.Adam(model.parameters(), lr=0.01), seq_len=4, batch_size=2,
...                           backend="numpy")
>>> ids = np.arange(40) % 4 + 1
>>> first = lm.train_epoch(ids)
>>> lm.train_epoch(ids) < first
True
>>> sample = lm.sample(8, temperature=1.0, seed=0)
>>> len(sample), set(sample.tolist()) <= {1, 2, 3, 4}
(8, True)
"""

from __future__ import annotations

import json
import math
import time

import numpy as np
from symdiff.lowering import random

import symdiff as sd

from . import checkpoint, init, optim
from .attention import PositionalEmbedding, TransformerEncoderLayer
from .data import DataError
from .layers import Linear
from .module import Module, from_config, trace
from .recurrent import LSTM
from .sequence import Embedding, LayerNorm
from .text import BPTTLoader
from .trainer import TrainingError

LN2 = math.log(2.0)


def bits_per_character(nats: float) -> float:
    """A mean cross-entropy in nats as bits per character.

    >>> round(bits_per_character(math.log(4)), 6)  # a uniform guess among 4 characters
    2.0
    """
    return nats / LN2


class CharLSTM(Module):
    """Embedding → LSTM (``num_layers``) → Linear over the vocabulary. ``forward(ids, state)``
    takes ids (T, B) and ``[h, c]`` (each (num_layers, B, hidden); zeros when None) and returns
    ``(logits (T, B, vocab), [h_T, c_T])``."""

    def __init__(self, vocab: int, embed: int = 64, hidden: int = 256, num_layers: int = 2,
                 dtype: str = "float32"):
        super().__init__()
        self.vocab, self.hidden, self.num_layers = vocab, hidden, num_layers
        self.embedding = Embedding(vocab, embed, dtype=dtype)
        self.lstm = LSTM(embed, hidden, num_layers, dtype=dtype)
        self.decoder = Linear(hidden, vocab, dtype=dtype)

    def state_shapes(self, batch: int) -> list:
        return [(self.num_layers, batch, self.hidden)] * 2

    def forward(self, ids, state=None):
        out, (h, c) = self.lstm(self.embedding(ids), None if state is None else tuple(state))
        return self.decoder(out), [h, c]


class CharTransformer(Module):
    """Embedding + learned positions → ``num_layers`` pre-norm causal blocks → LayerNorm →
    Linear over the vocabulary, for windows of at most ``context`` characters. No state:
    ``forward(ids)`` returns ``(logits (T, B, vocab), [])``."""

    def __init__(self, vocab: int, d_model: int = 128, nhead: int = 4, num_layers: int = 4, context: int = 128,
                 dropout: float = 0.0, dtype: str = "float32"):
        super().__init__()
        self.vocab, self.context = vocab, context
        self.embedding = Embedding(vocab, d_model, dtype=dtype)
        self.position = PositionalEmbedding(context, d_model)
        self.blocks = [TransformerEncoderLayer(d_model, nhead, dim_feedforward=4 * d_model, dropout=dropout,
                                               activation="gelu", norm_first=True) for _ in range(num_layers)]
        self.norm = LayerNorm(d_model, dtype=dtype)
        self.decoder = Linear(d_model, vocab, dtype=dtype)

    def state_shapes(self, batch: int) -> list:
        return []

    def forward(self, ids, state=None):
        if isinstance(ids.shape[0], int) and ids.shape[0] > self.context:
            raise sd.ShapeError(f"CharTransformer: windows of {ids.shape[0]} characters exceed its context "
                                f"of {self.context}")
        x = self.position(self.embedding(ids))
        for block in self.blocks:
            x = block(x, causal=True)
        return self.decoder(self.norm(x)), []


class LanguageModelTrainer:
    """Train a character model with ``optimizer`` on (seq_len, batch_size) windows: the
    forward pass, the loss, the gradients and the update are one compiled program, called
    once per window with the recurrent state carried over (truncated BPTT). ``history``
    holds per epoch the training and validation bits per character, chars/s and the rate."""

    def __init__(self, model: Module, optimizer, seq_len: int, batch_size: int, backend: str = "cpu",
                 seed: int = 0, schedule=None, progress: bool = False):
        self.model, self.optimizer, self.schedule = model, optimizer, schedule
        self.seq_len, self.batch_size, self.backend, self.seed = seq_len, batch_size, backend, int(seed)
        self.progress = progress
        if backend == "cuda":  # the cuda backend does not lower sd.scan yet: its recurrent layers unroll
            for _, module in model.named_modules():
                if hasattr(module, "unroll"):
                    module.unroll = True
        self.epoch = self.global_step = 0
        self.history = {"train_bpc": [], "val_bpc": [], "chars_per_second": [], "lr": []}
        self._states = [s for _, s in model.named_states()]
        self._dtype = self._states[0].dtype
        self._programs: dict = {}

    # -- compiled programs --------------------------------------------------------------------

    def _graph(self, T: int, B: int, training: bool):
        ids = sd.tensor("ids", (T, B), "int64")
        state = [sd.tensor(name, shape, self._dtype)
                 for name, shape in zip(("h0", "c0"), self.model.state_shapes(B))]
        was = self.model.training
        self.model.train(training)
        try:
            with trace() as t:
                logits, new_state = self.model(ids, state or None)
        finally:
            self.model.train(was)
        return ids, state, logits, new_state, t

    def _program(self, kind: str, T: int, B: int):
        """"train" (loss, new state; parameters updated in place), "evaluate" (loss, new
        state) or "forward" (logits, new state), compiled once per (kind, T, B)."""
        key = (kind, T, B)
        if key not in self._programs:
            ids, state, logits, new_state, t = self._graph(T, B, training=kind == "train")
            params = [s.leaf for s in self._states]
            if kind == "forward":
                program = sd.compile([logits, *new_state], [ids, *state, *params], backend=self.backend)
            else:
                y = sd.tensor("y", (T, B), "int64")
                loss = sd.softmax_cross_entropy(logits, y)
                if kind == "evaluate":
                    program = sd.compile([loss, *new_state], [ids, y, *state, *params], backend=self.backend)
                else:
                    grads = sd.grad(loss, [p.leaf for p in self.optimizer.params])
                    updates = dict(t.updates)
                    updates.update(self.optimizer.updates(grads))
                    inputs = [ids, y, *state, *params, *self.optimizer.leaves(), *(m for m, _ in t.masks)]
                    program = sd.compile([loss, *new_state], inputs, updates=updates, backend=self.backend)
            self._programs[key] = (program, t.masks)
        return self._programs[key]

    def _zero_state(self, B: int) -> list:
        return [np.zeros(shape, self._dtype) for shape in self.model.state_shapes(B)]

    def _masks(self, masks) -> list:
        offset = self.global_step << 32
        return [random.bernoulli_mask((self.seed * 65537 + k) % 2**64, offset, tuple(leaf.shape), keep,
                                      np.dtype(leaf.dtype)) for k, (leaf, keep) in enumerate(masks)]

    # -- training and scoring -----------------------------------------------------------------

    def windows(self, ids, what: str, evaluation: bool = False) -> list:
        """The (x, y) windows of (seq_len, B) of a stream, B = batch_size (fewer columns when
        ``evaluation`` and the text is short); the ragged last one is dropped (its length would
        be another compiled program). Too short a stream is a DataError."""
        T, B = self.seq_len, self.batch_size
        if evaluation:
            B = max(1, min(B, len(ids) // (T + 1)))
        need = (T + 1) * B
        if len(ids) < need:
            raise DataError(f"{what}: {len(ids)} characters, shorter than one window of {T}+1 characters in "
                            f"each of {B} columns ({need}); give a longer text or a smaller --seq-len"
                            + ("" if evaluation else " or --batch-size"))
        return [(x, y) for x, y in BPTTLoader(ids, T, B) if len(x) == T]

    def train_epoch(self, ids, max_steps: int | None = None, what: str = "training text") -> float:
        """One pass over the stream ``ids`` (at most ``max_steps`` windows); returns the mean
        training loss in nats. The state starts at zeros and is carried between windows."""
        from tqdm.auto import tqdm

        windows = self.windows(ids, what)[:max_steps]
        if self.schedule is not None:
            self.optimizer.lr = self.schedule.lr(self.optimizer.hyper["lr"], self.epoch)
        state = self._zero_state(self.batch_size)
        total, start, compiling = 0.0, time.perf_counter(), 0.0
        bar = tqdm(windows, desc=f"epoch {self.epoch + 1}", disable=not self.progress, unit="window")
        for k, (x, y) in enumerate(bar):
            first = ("train", self.seq_len, self.batch_size) not in self._programs
            begun = time.perf_counter()
            program, masks = self._program("train", self.seq_len, self.batch_size)
            self.optimizer.begin_step()
            outs = program(x, y, *state, *(s.data for s in self._states), *self.optimizer.arguments(),
                           *self._masks(masks))
            if first:  # chars/s measures training, not compiling
                compiling = time.perf_counter() - begun
            self.global_step += 1
            loss = float(outs[0])
            if not math.isfinite(loss):
                raise TrainingError(f"epoch {self.epoch + 1}, window {k}: the loss is {loss}, training diverged "
                                    "(lower the learning rate or clip the gradients)")
            state = [np.array(s, copy=True) for s in outs[1:]]  # detached: the next window's input
            total += loss
            if k % 10 == 0:
                bar.set_postfix({"bpc": f"{bits_per_character(total / (k + 1)):.3f}"}, refresh=False)
        bar.close()
        seconds = max(time.perf_counter() - start - compiling, 1e-9)
        self.epoch += 1
        mean = total / len(windows)
        self.history["train_bpc"].append(bits_per_character(mean))
        self.history["chars_per_second"].append(len(windows) * self.seq_len * self.batch_size / seconds)
        self.history["lr"].append(self.optimizer.lr)
        return mean

    def evaluate_bpc(self, ids, what: str = "validation text") -> float:
        """Bits per character of the model on the stream ``ids``, state carried as in
        training, in windows of ``seq_len`` (fewer columns than training if the text is short)."""
        windows = self.windows(ids, what, evaluation=True)
        batch = windows[0][0].shape[1]
        program, _ = self._program("evaluate", self.seq_len, batch)
        state, total = self._zero_state(batch), 0.0
        for x, y in windows:
            outs = program(x, y, *state, *(s.data for s in self._states))
            total += float(outs[0])
            state = [np.array(s, copy=True) for s in outs[1:]]
        return bits_per_character(total / len(windows))

    # -- checkpoints --------------------------------------------------------------------------

    KIND = "language_model"  # what a checkpoint of this trainer says it is (nn.Trainer's say nothing)

    def save(self, path, vocabulary=None) -> None:
        """Parameters, optimizer state, counters, history and (if given) the vocabulary's
        characters, to ``path`` (``.npz``, no pickle), atomically; :meth:`load` continues the
        run exactly (the dropout masks are drawn from the seed and the step counter)."""
        meta = {"kind": self.KIND, "model": self.model.config(), "optimizer": self.optimizer.config(),
                "seq_len": self.seq_len, "batch_size": self.batch_size, "backend": self.backend,
                "seed": self.seed, "epoch": self.epoch, "global_step": self.global_step,
                "history": self.history, "schedule": None if self.schedule is None else self.schedule.config(),
                "vocabulary": None if vocabulary is None else "".join(vocabulary.chars)}
        if meta["model"] is None:
            raise checkpoint.CheckpointError("LanguageModelTrainer.save: the model is not made of symdiff.nn "
                                             "modules, so a checkpoint could not rebuild it")
        arrays = {"format": np.array(checkpoint.FORMAT), "version": np.array(checkpoint.VERSION),
                  "meta": np.array(json.dumps(meta))}
        arrays.update({f"model/{k}": v for k, v in self.model.state_dict().items()})
        arrays.update({f"optimizer/{k}": v for k, v in self.optimizer.state_dict().items()})
        checkpoint.write(path, arrays)

    @classmethod
    def load(cls, path, backend: str | None = None, progress: bool = False):
        """``(trainer, vocabulary characters or None)`` restored from :meth:`save`."""
        arrays = checkpoint.read(path)
        meta = checkpoint.meta_of(path, arrays)
        if meta.get("kind") != cls.KIND:
            raise checkpoint.CheckpointError(f"{path}: a checkpoint of an image model (nn.Trainer), not of a "
                                             "character language model")
        try:
            saved_init = init.get_state()
            try:
                model = from_config(meta["model"])
            finally:
                init.set_state(saved_init)  # rebuilding must not move the user's init stream
            optimizer = optim.from_config(meta["optimizer"], model.parameters())
            trainer = cls(model, optimizer, int(meta["seq_len"]), int(meta["batch_size"]),
                          backend=backend or meta["backend"], seed=int(meta["seed"]),
                          schedule=optim.schedule_from_config(meta.get("schedule")), progress=progress)
            model.load_state_dict({k[6:]: v for k, v in arrays.items() if k.startswith("model/")})
            optimizer.load_state_dict({k[10:]: v for k, v in arrays.items() if k.startswith("optimizer/")})
            trainer.epoch, trainer.global_step = int(meta["epoch"]), int(meta["global_step"])
            trainer.history = {k: list(v) for k, v in meta["history"].items()}
        except checkpoint.CheckpointError:
            raise
        except (KeyError, TypeError, ValueError, AttributeError) as e:
            raise checkpoint.CheckpointError(f"{path}: the checkpoint does not match its model ({e})") from None
        return trainer, meta.get("vocabulary")

    # -- sampling -----------------------------------------------------------------------------

    def sample(self, length: int, temperature: float = 1.0, seed: int = 0, prompt=(1,)) -> np.ndarray:
        """``length`` ids drawn one at a time from softmax(logits / temperature) of the compiled
        forward program, after the ids of ``prompt``; temperature 0 takes the most likely. Index
        0 (the unknown character) is never drawn. A stateful model reads one id per call; the
        transformer rereads its last ``context`` ids (right-padded: the mask is causal)."""
        if not temperature >= 0:
            raise ValueError(f"sample: temperature must be >= 0, got {temperature}")
        rng = np.random.default_rng(seed)
        history = [int(i) for i in prompt]
        if not history:
            raise ValueError("sample: the prompt has no characters")
        stateful = bool(self.model.state_shapes(1))
        window = 1 if stateful else min(self.seq_len, self.model.context)
        program, _ = self._program("forward", window, 1)
        params = [s.data for s in self._states]
        state, fed, out = self._zero_state(1), 0, []
        while len(out) < length:
            if stateful:  # feed what the state has not seen yet, one id per call
                while fed < len(history):
                    outs = program(np.array([[history[fed]]], np.int64), *state, *params)
                    state = [np.array(s, copy=True) for s in outs[1:]]
                    fed += 1
                logits = outs[0][0, 0]
            else:
                recent = history[-window:]
                x = np.full((window, 1), recent[-1], np.int64)
                x[:len(recent), 0] = recent
                logits = program(x, *params)[0][len(recent) - 1, 0]
            out.append(_draw(logits, temperature, rng))
            history.append(out[-1])
        return np.array(out, np.int64)

    def plot(self, path) -> None:
        """Training and validation bits per character per epoch as a PNG, written atomically."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        h = self.history
        fig, ax = plt.subplots(figsize=(5, 3.5))
        epochs = range(1, len(h["train_bpc"]) + 1)
        ax.plot(epochs, h["train_bpc"], marker="o", label="train")
        if h["val_bpc"]:
            ax.plot(range(1, len(h["val_bpc"]) + 1), h["val_bpc"], marker="o", label="validation")
        ax.set(xlabel="epoch", ylabel="bits per character", title=type(self.model).__name__)
        ax.legend()
        fig.tight_layout()
        checkpoint.write_atomically(path, lambda f: fig.savefig(f, format="png", dpi=100))
        plt.close(fig)


def _draw(logits, temperature: float, rng) -> int:
    z = np.asarray(logits, np.float64).copy()
    z[0] = -np.inf  # the unknown character is not a character to write
    if temperature == 0:
        return int(np.argmax(z))
    z = z / temperature
    p = np.exp(z - z.max())
    return int(rng.choice(len(p), p=p / p.sum()))


__all__ = ["CharLSTM", "CharTransformer", "LanguageModelTrainer", "bits_per_character"]
