"""Data-parallel training over MPI: ``nn.Trainer(..., distributed=True)`` under ``mpiexec``.

Every rank holds the whole model and reads the same global batches (the loader's order comes
from ``(seed, epoch)``, so it is the same on every rank); rank ``r`` of ``W`` trains on its
contiguous rows :func:`shard_bounds` of each batch. A step is two compiled programs with one
collective between them:

1. the **gradient program** computes, from the rank's shard, ONE flat float vector: every
   parameter's gradient times the shard's weight ``n_r / N`` (its rows over the global batch's),
   then the change of BatchNorm's running statistics times the same weight, then the weighted loss and
   the count of correct predictions. It updates nothing.
2. ``comm.Allreduce(MPI.IN_PLACE, flat, op=MPI.SUM)``: one call on one buffer. The sum of
   ``n_r / N`` times each shard's mean-loss gradient is the gradient of the global batch's
   mean loss, so no scaling is left to do; the loss slot is the global mean loss.
3. the **update program** takes the reduced vector as its input, slices each gradient out of
   it (views, no copies) and writes the optimizer's new parameters and state, and the averaged
   running statistics, in place (``updates=``): the weights exist once, in the parameters' arrays.

The reduced vector is identical on every rank and so is the update: the ranks' weights stay
equal bit for bit. Communication does not overlap the backward pass: the gradient program is
one C++ call that returns when every gradient is done, and on a machine with one core per rank
there is no idle core to progress a non-blocking all-reduce while it runs (the time spent in
the all-reduce is measured: :attr:`DataParallel.allreduce_seconds`).

BatchNorm normalizes with each rank's own shard statistics (as PyTorch's DDP without
SyncBatchNorm); the running statistics are the shard-weighted average of the ranks' (the
running mean is then exactly the global batch's; the running variance misses the spread
between the shards' means), so every rank, and every checkpoint, holds the same ones.

A rank that raises inside :meth:`Trainer.fit` prints its error and calls ``comm.Abort``:
MPI then ends every rank (no rank waits forever in a collective for one that is gone).

>>> shard_bounds(10, rank=0, size=3), shard_bounds(10, rank=2, size=3)
((0, 4), (7, 10))
>>> import numpy as np, symdiff as sd
>>> grads = [sd.tensor("gW", (2, 3), "float32"), sd.tensor("gb", (3,), "float32")]
>>> layout = FlatLayout([g.shape for g in grads], extra=2)
>>> layout.size, layout.pieces
(11, [(0, 6, (2, 3)), (6, 9, (3,))])
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import math
import os
import sys
import traceback

import numpy as np

import symdiff as sd

MISSING = "distributed training needs mpi4py and an MPI: pip install 'symdiff[mpi]'"


class DistributedError(RuntimeError):
    """The ranks of a distributed run disagree (initial weights, batches, settings)."""


def available() -> bool:
    """Whether mpi4py is installed (the ``mpi`` extra).

    >>> isinstance(available(), bool)
    True
    """
    return importlib.util.find_spec("mpi4py") is not None


def world_communicator():
    """``MPI.COMM_WORLD`` (initializing MPI on first use), or a clear error without mpi4py."""
    if not available():
        raise ModuleNotFoundError(MISSING)
    from mpi4py import MPI

    return MPI.COMM_WORLD


def shard_bounds(n: int, rank: int, size: int) -> tuple:
    """The rows ``[start, stop)`` of a batch of ``n`` that rank ``rank`` of ``size`` trains on:
    contiguous, the first ``n % size`` ranks one row more (``np.array_split``'s split)."""
    base, extra = divmod(int(n), int(size))
    start = rank * base + min(rank, extra)
    return start, start + base + (rank < extra)


class FlatLayout:
    """Where each array lives in the flat vector: ``pieces`` are (start, stop, shape), then
    ``extra`` scalar slots at the end."""

    def __init__(self, shapes, extra: int = 0):
        self.pieces, start = [], 0
        for shape in shapes:
            stop = start + math.prod(int(d) for d in shape)
            self.pieces.append((start, stop, tuple(int(d) for d in shape)))
            start = stop
        self.extra_start, self.size = start, start + int(extra)

    def flatten(self, exprs, extras=()) -> sd.Expr:
        """One 1-d expression: each of ``exprs`` raveled, then ``extras`` (scalars)."""
        parts = [sd.reshape(e, (math.prod(e.shape),)) for e in exprs] + [sd.reshape(e, (1,)) for e in extras]
        return sd.concatenate(parts)

    def unflatten(self, flat) -> list:
        """The pieces of the 1-d expression ``flat`` as slices, reshaped."""
        return [sd.reshape(flat[start:stop], shape) for start, stop, shape in self.pieces]


def _digest(arrays) -> str:
    h = hashlib.sha256()
    for a in arrays:
        a = np.ascontiguousarray(a)
        h.update(f"{a.dtype.str}{a.shape}".encode())
        h.update(a.tobytes())
    return h.hexdigest()[:16]


class DataParallel:
    """The distributed step of one :class:`~symdiff.nn.Trainer` over ``comm`` (an mpi4py
    communicator; ``MPI.COMM_WORLD`` by default). The trainer calls :meth:`check_same` before
    training and :meth:`step` for each global batch."""

    def __init__(self, trainer, comm=None):
        self.trainer = trainer
        self.comm = comm if comm is not None else world_communicator()
        self.rank, self.size = self.comm.Get_rank(), self.comm.Get_size()
        self._programs = None
        self.allreduce_seconds = 0.0  # wall time inside Allreduce, all steps
        self.compute_seconds = 0.0  # wall time in the two compiled programs, all steps
        self.steps = 0
        if self.size > 1:
            install_abort_hook(self.comm)

    # -- programs ---------------------------------------------------------------------------

    def programs(self):
        """(gradient program, update program, masks, layout), built once per signature."""
        t = self.trainer
        if self._programs is None or self._programs[0] != t._signature:
            X, y = t._leaves()
            out, tr = t._forward(X, training=True)
            metrics = t._metrics(out, y)
            params = t.optimizer.params
            grads = sd.grad(metrics[0], [p.leaf for p in params])
            buffers = list(tr.updates.items())  # BatchNorm's running statistics
            dtype = params[0].dtype
            weight = sd.tensor("shard_weight", (), dtype)
            correct = metrics[1] if len(metrics) > 1 else sd.constant(0.0, dtype)  # regression: no count
            layout = FlatLayout([g.shape for g in grads] + [leaf.shape for leaf, _ in buffers], extra=2)
            # a buffer's change, not its new value: the update program then reads the buffer it
            # writes (a target that is only written is not an input the schedule keeps)
            flat = layout.flatten([g * weight for g in grads] + [(v - leaf) * weight for leaf, v in buffers],
                                  [metrics[0] * weight, correct])
            states = [s.leaf for s in t._states]
            masks = [m for m, _ in tr.masks]
            grad_program = sd.compile([flat], [X, y, *states, *masks, weight], backend=t.backend)
            reduced = sd.tensor("reduced", (layout.size,), dtype)
            pieces = layout.unflatten(reduced)
            updates = {leaf: leaf + change for (leaf, _), change in zip(buffers, pieces[len(grads):])}
            updates.update(t.optimizer.updates(pieces[:len(grads)]))
            update_program = sd.compile([reduced[layout.extra_start]], [reduced, *states, *t.optimizer.leaves()],
                                        updates=updates, backend=t.backend)
            self._programs = (t._signature, grad_program, update_program, tr.masks, layout)
        return self._programs[1:]

    # -- checks -----------------------------------------------------------------------------

    def check_same(self, batches: int) -> None:
        """Raise :class:`DistributedError` on every rank (never on some only) if the ranks' weights,
        optimizer state, counters or batch counts differ: they would train different models, or
        wait for each other forever."""
        t = self.trainer
        mine = {"weights": _digest([s.data for s in t._states]),
                "optimizer": _digest([*t.optimizer.state_dict().values()]),
                "counters": (t.epoch, t.global_step, t.seed), "batches": int(batches)}
        everyone = self.comm.allgather(mine)
        for key, what in (("weights", ("initial weights (seed nn.init the same way on every rank, e.g. "
                                       "nn.init.manual_seed(0), or load the same checkpoint)")),
                          ("optimizer", "optimizer state"), ("counters", "epoch, step and seed"),
                          ("batches", "number of batches per epoch (give every rank the same loader)")):
            values = [r[key] for r in everyone]
            if any(v != values[0] for v in values):
                differ = [r for r, v in enumerate(values) if v != values[0]]
                raise DistributedError(f"distributed training: the ranks have different {what}: rank(s) "
                                       f"{differ} differ from rank 0 ({key}: {values})")

    # -- one step -----------------------------------------------------------------------------

    def step(self, X, y):
        """Train on this rank's shard of the global batch (X, y), already checked by the
        trainer; (mean loss, correct count) of the whole global batch, the same on every rank."""
        from mpi4py import MPI

        t = self.trainer
        n = len(X)
        start, stop = shard_bounds(n, self.rank, self.size)
        Xl, yl = np.ascontiguousarray(X[start:stop]), np.ascontiguousarray(y[start:stop])
        grad_program, update_program, masks, layout = self.programs()
        t.optimizer.begin_step()
        begun = MPI.Wtime()
        if stop > start:
            # the global batch's masks, sliced: the same draws as one process training on it
            local_masks = [np.ascontiguousarray(m[start:stop]) for m in t._masks(masks, n)]
            weight = np.array((stop - start) / n, t.optimizer.params[0].dtype)
            flat = grad_program(Xl, yl, *(s.data for s in t._states), *local_masks, weight)[0]
        else:  # more ranks than rows: this rank adds nothing
            flat = np.zeros(layout.size, t.optimizer.params[0].dtype)
        reduced_at = MPI.Wtime()
        self.comm.Allreduce(MPI.IN_PLACE, flat, op=MPI.SUM)
        updated_at = MPI.Wtime()
        update_program(flat, *(s.data for s in t._states), *t.optimizer.arguments())
        self.allreduce_seconds += updated_at - reduced_at
        self.compute_seconds += (reduced_at - begun) + (MPI.Wtime() - updated_at)
        self.steps += 1
        return float(flat[layout.extra_start]), float(flat[layout.extra_start + 1])

    @contextlib.contextmanager
    def abort_on_error(self):
        """Any exception on this rank ends every rank (``comm.Abort``) instead of leaving the
        others in a collective that cannot complete; with one rank it propagates as usual."""
        try:
            yield
        except BaseException as e:
            if self.size == 1:
                raise
            abort(self.comm, e)


def abort(comm, error: BaseException) -> None:
    """Print which rank failed and why, then end every rank of ``comm`` (exit status 1)."""
    rank, size = comm.Get_rank(), comm.Get_size()
    details = "".join(traceback.format_exception(type(error), error, error.__traceback__))
    sys.stderr.write(f"{details}symdiff.nn.distributed: rank {rank} of {size} failed: "
                     f"{type(error).__name__}: {error}; aborting all {size} ranks\n")
    sys.stderr.flush()
    comm.Abort(1)
    os._exit(1)  # MPI_Abort need not return; should it, this rank still must not go on


def install_abort_hook(comm) -> None:
    """An uncaught exception on this rank (outside :meth:`Trainer.fit` too) aborts every rank."""
    previous = sys.excepthook
    if getattr(previous, "symdiff_abort", False):
        return

    def hook(kind, error, tb):
        previous(kind, error, tb)
        sys.stderr.write(f"symdiff.nn.distributed: rank {comm.Get_rank()} of {comm.Get_size()} failed; "
                         "aborting all ranks\n")
        sys.stderr.flush()
        comm.Abort(1)
        os._exit(1)

    hook.symdiff_abort = True
    sys.excepthook = hook
