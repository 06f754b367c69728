"""``Trainer``: the whole training step — forward, loss, reverse-mode gradients, optimizer
update, BatchNorm's running statistics — is one graph, compiled once into one program
that is called once per batch and writes parameters and state in place.

>>> import numpy as np
>>> from symdiff import nn
>>> X = np.random.default_rng(0).normal(size=(64, 2)).astype(np.float32)
>>> y = (X[:, 0] > 0).astype(np.int64)
>>> loader = nn.data.DataLoader(nn.data.ArrayDataset(X, y), batch_size=16)
>>> model = nn.Linear(2, 2)
>>> trainer = nn.Trainer(model, nn.SoftmaxLoss(), nn.optim.SGD(model.parameters(), lr=0.5),
...                      backend="numpy", progress=False)
>>> history = trainer.fit(loader, epochs=3)
>>> history["accuracy"][-1] > 0.9
True
"""

from __future__ import annotations

import importlib.util
import json
import time

import numpy as np
import sympy
from symdiff.lowering import random

import symdiff as sd

from . import checkpoint, init, optim
from . import distributed as data_parallel
from .module import Module, from_config, trace


class TrainingError(RuntimeError):
    """Training stopped: a batch had non-finite values or the loss diverged."""


def _concrete(shape, m, n):
    return tuple(int(sympy.sympify(d).subs(m, n)) for d in shape)


_ZEROS: dict = {}


def _all_finite(X: np.ndarray) -> bool:
    """Whether X holds no NaN or inf, at the cost of one matrix-vector product: a product with
    zeros is 0 for finite rows and NaN for any row with NaN or inf (much cheaper per batch
    than materializing ``np.isfinite(X)``)."""
    if X.dtype.kind != "f" or X.size == 0:
        return True
    rows = X.reshape(len(X), -1)
    key = (rows.shape[1], rows.dtype)
    if key not in _ZEROS:
        _ZEROS[key] = np.zeros(rows.shape[1], rows.dtype)
    return bool(np.isfinite(rows @ _ZEROS[key]).all())


def check_plot_path(path, what: str = "plot") -> None:
    """Refuse, before training, a plot that could not be written: no matplotlib, or a bad path."""
    if importlib.util.find_spec("matplotlib") is None:
        raise ModuleNotFoundError(f"{what}: plotting needs matplotlib: pip install matplotlib")
    checkpoint.check_output_path(path, what)


class Trainer:
    """Train ``model`` on ``loss`` with ``optimizer`` (built from ``model.parameters()``).

    ``seed`` drives Dropout's masks (from the counter-based RNG, by step), so a run is
    reproducible and a resumed run continues exactly. ``schedule`` (e.g.
    :class:`~symdiff.nn.optim.MultiStepLR`) sets the optimizer's learning rate before each
    epoch from the epoch count; the rate is an input of the compiled step, so changing it
    recompiles nothing. ``settings`` is a JSON-able dict kept in checkpoints for the caller
    (the command line keeps its data settings there).

    ``distributed=True`` (or an mpi4py communicator) trains data-parallel under ``mpiexec``
    (:mod:`symdiff.nn.distributed`): each rank trains on its shard of every batch the loader
    gives (the loader's batch is the global batch), gradients are all-reduced, every rank
    applies the same update; only rank 0 writes checkpoints and shows progress, and an error on
    any rank inside :meth:`fit` ends every rank.
    """

    def __init__(self, model: Module, loss: Module, optimizer: optim.Optimizer, backend: str = "cpu",
                 seed: int = 0, progress: bool = True, schedule=None, settings: dict | None = None,
                 distributed=False):
        self.model, self.loss, self.optimizer = model, loss, optimizer
        self.backend, self.seed, self.progress = backend, int(seed), progress
        self.schedule, self.settings = schedule, dict(settings or {})
        self.epoch = 0
        self.global_step = 0
        self.history = {"loss": [], "accuracy": [], "samples_per_second": [], "batch_loss": []}
        own = {id(p) for p in model.parameters()}
        if any(id(p) not in own for p in optimizer.params):
            raise ValueError("Trainer: the optimizer holds parameters that are not the model's")
        self._states = [s for _, s in model.named_states()]
        self._signature = None  # (feature shape, X dtype, target shape, y dtype)
        self._programs: dict = {}
        self._seen_shapes: set = set()
        self.classification = bool(getattr(loss, "classification", False))
        self.distributed = None
        if distributed is not False and distributed is not None:
            comm = None if distributed is True else distributed
            self.distributed = data_parallel.DataParallel(self, comm)
            self.progress = progress and self.distributed.rank == 0

    # -- graphs ---------------------------------------------------------------------------

    def _leaves(self):
        # memoized: building leaves goes through sympy, and the training loop asks every step
        cached = getattr(self, "_leaves_cache", None)
        if cached is None or cached[0] != self._signature:
            fshape, xdt, tshape, ydt = self._signature
            cached = (self._signature, (sd.tensor("X", ("m", *fshape), xdt), sd.tensor("y", ("m", *tshape), ydt)))
            self._leaves_cache = cached
        return cached[1]

    def _forward(self, X, training: bool):
        was = self.model.training
        self.model.train(training)
        try:
            with trace() as t:
                out = self.model(X)
        except sd.ShapeError as e:
            raise ValueError(f"features of shape {tuple(X.shape[1:])} do not fit the model: {e}") from None
        finally:
            self.model.train(was)
        return out, t

    def _metrics(self, out, y):
        loss = self.loss(out, y)
        if not self.classification:
            return [loss]
        return [loss, sd.sum((sd.argmax(out, axis=1) == y).astype(out.dtype))]

    def step_graph(self):
        """(outputs, inputs, updates, masks) of the training step."""
        X, y = self._leaves()
        out, t = self._forward(X, training=True)
        outputs = self._metrics(out, y)
        params = self.optimizer.params
        grads = sd.grad(outputs[0], [p.leaf for p in params])
        updates = dict(t.updates)
        updates.update(self.optimizer.updates(grads))
        inputs = [X, y] + [s.leaf for s in self._states] + self.optimizer.leaves() + [m for m, _ in t.masks]
        return outputs, inputs, updates, t.masks

    def _program(self, kind: str):
        if kind not in self._programs:
            if kind == "train":
                outputs, inputs, updates, masks = self.step_graph()
                program = sd.compile(outputs, inputs, updates=updates, backend=self.backend)
                self._programs[kind] = (program, masks)
            else:
                X, y = self._leaves()
                out, _ = self._forward(X, training=False)
                states = [s.leaf for s in self._states]
                if kind == "evaluate":
                    program = sd.compile(self._metrics(out, y), [X, y, *states], backend=self.backend)
                else:
                    program = sd.compile([out], [X, *states], backend=self.backend)
                self._programs[kind] = (program, [])
        return self._programs[kind]

    def step_formulas(self, feature_shape=None) -> str:
        """The training step as formulas: the loss, then each parameter's and state's new value."""
        if self._signature is None:
            if feature_shape is None:
                raise ValueError("step_formulas: give the feature shape (or fit first)")
            self._set_signature(tuple(feature_shape), np.dtype(self._states[0].dtype), None)
        outputs, _, updates, _ = self.step_graph()
        named = [sd.name(outputs[0], "L")]
        for leaf, value in updates.items():
            named.append(sd.name(value, f"{leaf.name}_new"))
        return sd.pretty(sd.optimize(named))

    # -- batches --------------------------------------------------------------------------

    def _set_signature(self, fshape, xdt, y):
        dtype = self._states[0].dtype if self._states else "float32"
        if self.classification:
            tshape, ydt = (), "int64"
        else:
            tshape, ydt = (tuple(y.shape[1:]) if y is not None else ()), dtype
        self._signature = (tuple(fshape), dtype, tshape, ydt)

    def _check_batch(self, X, y, where: str):
        X = np.asarray(X)
        if self._signature is None:
            self._set_signature(X.shape[1:], X.dtype, None if y is None else np.asarray(y))
        fshape, xdt, _, ydt = self._signature
        if tuple(X.shape[1:]) != fshape:
            raise ValueError(f"{where}: features of shape {tuple(X.shape[1:])}, but the model was built for {fshape}")
        if X.dtype != xdt:
            X = X.astype(xdt)
        if not _all_finite(X):
            row = int(np.argwhere(~np.isfinite(X).reshape(len(X), -1).all(axis=1))[0, 0])
            raise TrainingError(f"{where}: the features contain NaN or inf (row {row} of the batch)")
        if y is None:
            return X, None
        y = np.asarray(y)
        if self.classification:
            if y.dtype.kind not in "iu" or y.shape != (len(X),):
                raise ValueError(f"{where}: labels must be integers of shape ({len(X)},), got {y.dtype} {y.shape}")
            classes = self._classes()
            if y.size and (y.min() < 0 or y.max() >= classes):
                bad = int(y[(y < 0) | (y >= classes)][0])
                raise ValueError(f"{where}: label {bad} is out of range for a model with {classes} outputs")
        elif not np.isfinite(y).all():
            raise TrainingError(f"{where}: the targets contain NaN or inf")
        return X, (y.astype(ydt) if y.dtype != ydt else y)

    def _classes(self) -> int:
        if not hasattr(self, "_n_classes"):
            X, _ = self._leaves()
            out, _ = self._forward(X, training=False)
            self._n_classes = int(out.shape[-1])
        return self._n_classes

    def _masks(self, masks, n):
        m = self._leaves()[0].shape[0]
        offset = self.global_step << 32
        return [random.bernoulli_mask((self.seed * 65537 + k) % 2**64, offset, _concrete(leaf.shape, m, n),
                                      keep, np.dtype(leaf.dtype)) for k, (leaf, keep) in enumerate(masks)]

    # -- training -------------------------------------------------------------------------

    def fit(self, loader, epochs: int = 1, checkpoint_path=None, plot=None, val_loader=None) -> dict:
        """Train for ``epochs`` passes over ``loader``; returns the history (per epoch: loss,
        accuracy, samples/s; and every batch's loss). With ``checkpoint_path``, a checkpoint
        is written after each epoch (a diverged run leaves the last good one). Both output
        paths are checked before the first batch, not after the first epoch."""
        if checkpoint_path is not None:
            checkpoint.check_output_path(checkpoint_path, "checkpoint_path")
        if plot is not None:
            check_plot_path(plot, "plot")
        if self.distributed is None:
            return self._fit(loader, epochs, checkpoint_path, plot, val_loader)
        with self.distributed.abort_on_error():
            self.distributed.check_same(len(loader))
            return self._fit(loader, epochs, checkpoint_path, plot, val_loader)

    def _fit(self, loader, epochs, checkpoint_path, plot, val_loader) -> dict:
        from tqdm.auto import tqdm

        for _ in range(int(epochs)):
            if hasattr(loader, "set_epoch"):
                loader.set_epoch(self.epoch)
            if self.schedule is not None:
                self.optimizer.lr = self.schedule.lr(self.optimizer.hyper["lr"], self.epoch)
            start, total, correct, seen = time.perf_counter(), 0.0, 0.0, 0
            bar = tqdm(loader, total=len(loader), desc=f"epoch {self.epoch + 1}", disable=not self.progress,
                       unit="batch", leave=True)
            for batch, (Xb, yb) in enumerate(bar):
                where = f"epoch {self.epoch + 1}, batch {batch}"
                Xb, yb = self._check_batch(Xb, yb, where)  # distributed: every rank checks the global batch
                begun = time.perf_counter()
                if self.distributed is not None:
                    shapes = ("distributed", Xb.shape)
                    loss, right = self.distributed.step(Xb, yb)
                else:
                    program, masks = self._program("train")
                    self.optimizer.begin_step()
                    args = [Xb, yb, *(s.data for s in self._states), *self.optimizer.arguments(),
                            *self._masks(masks, len(Xb))]
                    shapes = (program, Xb.shape)
                    outs = program(*args)
                    loss, right = float(outs[0]), float(outs[1]) if self.classification else 0.0
                if shapes not in self._seen_shapes:  # the first call for a shape compiles
                    self._seen_shapes.add(shapes)
                    start += time.perf_counter() - begun  # samples/s measures training, not compiling
                self.global_step += 1
                if not np.isfinite(loss):
                    kept = f"; the last good checkpoint {checkpoint_path} is kept" if checkpoint_path else ""
                    raise TrainingError(f"{where}: the loss is {loss}, training diverged (lower the learning "
                                        f"rate){kept}")
                n = len(Xb)
                total += loss * n
                seen += n
                correct += right
                self.history["batch_loss"].append(loss)
                if batch % 10 == 0 or batch == len(loader) - 1:
                    rate = seen / max(time.perf_counter() - start, 1e-9)
                    postfix = {"loss": f"{total / seen:.4f}"}
                    if self.classification:
                        postfix["acc"] = f"{correct / seen:.3f}"
                    postfix["samples/s"] = f"{rate:,.0f}"
                    bar.set_postfix(postfix, refresh=False)
            bar.close()
            self.epoch += 1
            seconds = time.perf_counter() - start
            self.history["loss"].append(total / max(seen, 1))
            self.history["accuracy"].append(correct / max(seen, 1) if self.classification else None)
            self.history["samples_per_second"].append(seen / max(seconds, 1e-9))
            self.history.setdefault("lr", []).append(self.optimizer.lr)
            if val_loader is not None:
                result = self.evaluate(val_loader)
                self.history.setdefault("val_loss", []).append(result["loss"])
                self.history.setdefault("val_accuracy", []).append(result.get("accuracy"))
            if checkpoint_path is not None:
                self.save(checkpoint_path)
        if plot is not None:
            self.plot(plot)
        return self.history

    def evaluate(self, loader) -> dict:
        """Mean loss (and accuracy) over ``loader`` in eval mode; parameters are not changed."""
        total, correct, seen = 0.0, 0.0, 0
        for batch, (Xb, yb) in enumerate(loader):
            Xb, yb = self._check_batch(Xb, yb, f"evaluate, batch {batch}")
            program, _ = self._program("evaluate")
            outs = program(Xb, yb, *(s.data for s in self._states))
            total += float(outs[0]) * len(Xb)
            correct += float(outs[1]) if self.classification else 0.0
            seen += len(Xb)
        result = {"loss": total / max(seen, 1)}
        if self.classification:
            result["accuracy"] = correct / max(seen, 1)
        return result

    def predict(self, X, batch_size: int = 1024) -> np.ndarray:
        """The model's outputs for ``X`` (numpy in, numpy out), from a compiled eval-mode program."""
        X = np.asarray(X)
        if X.ndim < 2:
            raise ValueError(f"predict: X needs a leading batch axis, got shape {X.shape}")
        outs = []
        batch_size = min(batch_size, len(X))
        for start in range(0, len(X), batch_size):
            Xb, _ = self._check_batch(X[start:start + batch_size], None, f"predict, rows {start}..")
            n = len(Xb)
            if n < batch_size:  # pad the last rows: one compiled signature serves every call
                Xb = np.concatenate([Xb, np.zeros((batch_size - n, *Xb.shape[1:]), Xb.dtype)])
            program, _ = self._program("predict")
            outs.append(program(np.ascontiguousarray(Xb), *(s.data for s in self._states))[0][:n])
        return np.concatenate(outs) if outs else np.empty((0,))

    # -- checkpoints ----------------------------------------------------------------------

    def save(self, path) -> None:
        """Write parameters, buffers, optimizer state, counters and history to ``path``
        (``.npz``, no pickle), atomically. In a distributed run only rank 0 writes (every
        rank holds the same state)."""
        if self.distributed is not None and self.distributed.rank != 0:
            return
        meta = {"model": self.model.config(), "loss": self.loss.config(), "optimizer": self.optimizer.config(),
                "backend": self.backend, "seed": self.seed, "epoch": self.epoch, "global_step": self.global_step,
                "signature": self._signature, "history": self.history,
                "schedule": None if self.schedule is None else self.schedule.config(), "settings": self.settings}
        arrays = {"format": np.array(checkpoint.FORMAT), "version": np.array(checkpoint.VERSION),
                  "meta": np.array(json.dumps(meta))}
        arrays.update({f"model/{k}": v for k, v in self.model.state_dict().items()})
        arrays.update({f"optimizer/{k}": v for k, v in self.optimizer.state_dict().items()})
        checkpoint.write(path, arrays)

    @classmethod
    def load(cls, path, model: Module | None = None, loss: Module | None = None, backend: str | None = None,
             progress: bool = True, distributed=False) -> Trainer:
        """A trainer restored from :meth:`save`: it continues exactly where the saved one was.
        Models built from symdiff.nn's modules are rebuilt from the file; pass ``model`` (and
        ``loss``) for others. ``distributed`` as in the constructor (every rank loads the file)."""
        arrays = checkpoint.read(path)
        meta = checkpoint.meta_of(path, arrays)
        try:
            saved_init = init.get_state()
            try:
                if model is None:
                    if meta.get("model") is None:
                        raise checkpoint.CheckpointError(f"{path}: the model is not made of symdiff.nn modules; "
                                                         "pass model= to Trainer.load")
                    model = from_config(meta["model"])
                if loss is None:
                    loss = from_config(meta["loss"])
            finally:
                init.set_state(saved_init)  # rebuilding must not move the user's init stream
            optimizer = optim.from_config(meta["optimizer"], model.parameters())
            trainer = cls(model, loss, optimizer, backend=backend or meta["backend"], seed=meta["seed"],
                          progress=progress, schedule=optim.schedule_from_config(meta.get("schedule")),
                          settings=meta.get("settings"), distributed=distributed)
            model.load_state_dict({k[6:]: v for k, v in arrays.items() if k.startswith("model/")})
            optimizer.load_state_dict({k[10:]: v for k, v in arrays.items() if k.startswith("optimizer/")})
        except (KeyError, TypeError, ValueError) as e:
            if isinstance(e, checkpoint.CheckpointError):
                raise
            raise checkpoint.CheckpointError(f"{path}: the checkpoint does not match its model ({e})") from None
        trainer.epoch, trainer.global_step = int(meta["epoch"]), int(meta["global_step"])
        trainer.history = meta["history"]
        if meta.get("signature"):
            fshape, xdt, tshape, ydt = meta["signature"]
            trainer._signature = (tuple(fshape), xdt, tuple(tshape), ydt)
        return trainer

    def export_onnx(self, path, batch=None) -> None:
        """The trained model's inference graph (dropout off, BatchNorm's running statistics) as
        an ONNX file, the current weights as initializers: :func:`symdiff.nn.onnx_export.export_trainer`."""
        from .onnx_export import export_trainer  # the onnx package is needed only here

        export_trainer(self, path, batch=batch)

    def plot(self, path) -> None:
        """Loss and accuracy per epoch (and validation, if any) as a PNG, written atomically."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        h = self.history
        epochs = range(1, len(h["loss"]) + 1)
        fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.5))
        left.plot(epochs, h["loss"], marker="o", label="train")
        if h.get("val_loss"):
            left.plot(epochs, h["val_loss"], marker="o", label="validation")
        left.set(xlabel="epoch", ylabel="loss", title="loss")
        left.legend()
        if self.classification:
            right.plot(epochs, h["accuracy"], marker="o", label="train")
            if h.get("val_accuracy"):
                right.plot(epochs, h["val_accuracy"], marker="o", label="validation")
            right.set(xlabel="epoch", ylabel="accuracy", title="accuracy")
            right.legend()
        else:
            right.plot(range(1, len(h["batch_loss"]) + 1), h["batch_loss"])
            right.set(xlabel="step", ylabel="loss", title="loss per batch")
        fig.tight_layout()
        checkpoint.write_atomically(path, lambda f: fig.savefig(f, format="png", dpi=100))
        plt.close(fig)
