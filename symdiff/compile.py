"""``sd.compile``: turn expressions into a callable program, on a named backend.

Backends are looked up by name in :data:`BACKENDS`. The ``numpy`` backend is the
reference evaluator and lives here; ``cpu`` (generated C++/OpenMP) and ``cuda``
live in :mod:`symdiff.lowering`, named by module path so the core never imports
the lowering layer unless a native program is asked for (imports flow one way).

A program is called with arrays in the order of ``inputs`` and returns the
outputs. ``updates`` maps input leaves to expressions of their new values: after
computing the outputs, each new value is written *into the array passed for that
leaf* (parameters and optimizer state are updated without copies). Every value is computed
from the arrays as they were before the call: an input whose array shares memory with an
updated one is copied first; two updated inputs may not share memory.

Programs may be called from many threads at once. A call that updates an array waits for
the calls of the same backend in flight that read or update it, and a call that reads it
waits for one updating it: two threads training the same weights apply their steps one
after the other, each to the other's result (the order is the order they got there).

>>> import numpy as np
>>> import symdiff as sd
>>> w, g = sd.tensor("w", (3,)), sd.tensor("g", (3,))
>>> step = sd.compile([sd.sum(w * w)], [w, g], updates={w: w - 0.5 * g}, backend="numpy")
>>> weights = np.array([1.0, 2.0, 3.0])
>>> step(weights, np.ones(3))
[array(14.)]
>>> weights
array([0.5, 1.5, 2.5])
"""

from __future__ import annotations

import contextlib
import importlib
import threading

import numpy as np

from . import shapes
from .evaluate import as_leaf_value, bind_dims, evaluate
from .graph import as_list
from .node import Node
from .rewrite import optimize as run_optimize

BACKENDS = {
    "numpy": "symdiff.compile:NumpyProgram",
    "cpu": "symdiff.lowering.programs.cpu:CpuProgram",
    "cuda": "symdiff.lowering.programs.cuda:CudaProgram",
}


def check_signature(outputs, inputs, updates):
    """Validate what a program computes; returns (outputs list, inputs list, updates list)."""
    outputs = as_list(outputs)
    inputs = list(inputs)
    for o in outputs:
        if not isinstance(o, Node):
            raise TypeError(f"compile: outputs must be expressions, got {type(o).__name__}")
    seen = set()
    for leaf in inputs:
        if not isinstance(leaf, Node) or not leaf.is_leaf or leaf.is_constant:
            raise TypeError(f"compile: inputs must be leaves (sd.tensor), got {leaf}")
        if id(leaf) in seen:
            raise ValueError(f"compile: input {leaf.name} is listed twice")
        seen.add(id(leaf))
    pairs = list((updates or {}).items())
    for leaf, value in pairs:
        if not isinstance(leaf, Node) or id(leaf) not in seen:
            raise ValueError(f"compile: updates target {leaf} is not one of the inputs")
        if not isinstance(value, Node):
            raise TypeError(f"compile: the update of {leaf.name} must be an expression")
        if value.dtype != leaf.dtype or len(value.shape) != len(leaf.shape) or not all(
                map(shapes.same_dim, value.shape, leaf.shape)):
            raise shapes.ShapeError(
                f"compile: the update of {leaf.name} has shape {shapes.format_shape(value.shape)} and dtype "
                f"{value.dtype}, but {leaf.name} has shape {shapes.format_shape(leaf.shape)} and dtype {leaf.dtype}")
    return outputs, inputs, pairs


def prepare_arguments(inputs, arrays, update_targets):
    """Check the call's arrays against the inputs; returns (arrays, dimension bindings).

    Arrays for update targets are used as given (they are written in place), so they must
    already be C-contiguous, writeable and of the leaf's dtype."""
    if len(arrays) != len(inputs):
        names = ", ".join(leaf.name for leaf in inputs)
        raise TypeError(f"program takes {len(inputs)} arrays ({names}), got {len(arrays)}")
    out = []
    for leaf, value in zip(inputs, arrays):
        if id(leaf) in update_targets:
            if not isinstance(value, np.ndarray) or value.dtype.name != leaf.dtype or \
                    not value.flags.c_contiguous or not value.flags.writeable:
                got = f"{value.dtype} array" if isinstance(value, np.ndarray) else type(value).__name__
                raise TypeError(f"program: {leaf.name} is updated in place, so it must be a C-contiguous, "
                                f"writeable {leaf.dtype} numpy array; got a {got}"
                                + ("" if not isinstance(value, np.ndarray) else
                                   f" (contiguous={value.flags.c_contiguous}, writeable={value.flags.writeable})"))
            out.append(value)
        else:
            array = as_leaf_value(leaf, value)
            out.append(array if array.flags.c_contiguous else array.copy(order="C"))  # keeps 0-d arrays 0-d
    bindings = bind_dims(inputs, {id(leaf): a for leaf, a in zip(inputs, out)})
    return separate_aliases(inputs, out, update_targets), bindings


def _extent(array: np.ndarray) -> tuple:
    lo = array.__array_interface__["data"][0]
    return lo, lo + array.nbytes


def _overlap(a: np.ndarray, b: np.ndarray) -> bool:
    # C-contiguous arrays (all arrays here are): sharing memory is overlapping extents
    (a0, a1), (b0, b1) = _extent(a), _extent(b)
    return a.nbytes > 0 and b.nbytes > 0 and a0 < b1 and b0 < a1


def separate_aliases(inputs, arrays, update_targets) -> list:
    """``arrays`` with every input that shares memory with an updated array copied, so a program
    reads the values from before the call; two updated arrays sharing memory are refused.

    >>> import numpy as np, symdiff as sd
    >>> a, b = sd.tensor("a", (2,)), sd.tensor("b", (2,))
    >>> x = np.zeros(2)
    >>> out = separate_aliases([a, b], [x, x], {id(a)})
    >>> out[0] is x, out[1] is x, np.shares_memory(out[0], out[1])
    (True, False, False)
    """
    targets = [k for k, leaf in enumerate(inputs) if id(leaf) in update_targets]
    for pos, k in enumerate(targets):
        for j in targets[pos + 1:]:
            if _overlap(arrays[k], arrays[j]):
                raise ValueError(f"program: {inputs[k].name} and {inputs[j].name} are both updated in place, but "
                                 "their arrays share memory; pass separate arrays")
    out = list(arrays)
    for j, leaf in enumerate(inputs):
        if id(leaf) not in update_targets and any(_overlap(out[j], arrays[k]) for k in targets):
            out[j] = out[j].copy()
    return out


class CallClaims:
    """The input memory read and written by the calls in flight (see the module's doc): a call
    takes all its claims at once or waits, so no two calls wait for each other."""

    def __init__(self):
        self._changed = threading.Condition()
        self._held: list = []

    def _conflict(self, mine) -> bool:
        return any((w or v) and lo < h1 and h0 < hi for lo, hi, w in mine for h0, h1, v in self._held)

    @contextlib.contextmanager
    def hold(self, arrays, written):
        mine = [(*_extent(a), w) for a, w in zip(arrays, written) if a.nbytes > 0]
        with self._changed:
            self._changed.wait_for(lambda: not self._conflict(mine))
            self._held.extend(mine)
        try:
            yield
        finally:
            with self._changed:
                for claim in mine:
                    self._held.remove(claim)
                self._changed.notify_all()


_NUMPY_CALLS = CallClaims()


class NumpyProgram:
    """The reference backend: each call evaluates the graph with numpy."""

    backend = "numpy"

    def __init__(self, outputs, inputs, updates=None, optimize=True):
        self.single = isinstance(outputs, Node)
        self.outputs, self.inputs, self.updates = check_signature(outputs, inputs, updates)
        if optimize:
            exprs = run_optimize(self.outputs + [v for _, v in self.updates])
            self.outputs = exprs[:len(self.outputs)]
            self.updates = [(leaf, v) for (leaf, _), v in zip(self.updates, exprs[len(self.outputs):])]
        self._targets = {id(leaf) for leaf, _ in self.updates}

    def __call__(self, *arrays):
        arrays, _ = prepare_arguments(self.inputs, arrays, self._targets)
        env = dict(zip(self.inputs, arrays))
        with _NUMPY_CALLS.hold(arrays, [id(leaf) in self._targets for leaf in self.inputs]):
            values = [np.asarray(v) for v in
                      _evaluate_all(self.outputs + [v for _, v in self.updates], env)]
            for (leaf, _), new in zip(self.updates, values[len(self.outputs):]):
                # by identity: == on nodes builds a comparison node
                target = arrays[next(k for k, x in enumerate(self.inputs) if x is leaf)]
                np.copyto(target, new, casting="same_kind")
        results = values[:len(self.outputs)]
        return results[0] if self.single else results

    def explain(self, **sizes) -> str:
        return "numpy backend: the reference evaluator runs each op with numpy"


def _evaluate_all(exprs, env):
    return evaluate(list(exprs), env) if exprs else []


def _backend(name: str):
    if name not in BACKENDS:
        raise ValueError(f"compile: unknown backend {name!r}; choose one of {sorted(BACKENDS)}")
    module, attr = BACKENDS[name].split(":")
    try:
        return getattr(importlib.import_module(module), attr)
    except ImportError as e:
        raise RuntimeError(f"compile: backend {name!r} is not available ({e}); "
                           "backend='numpy' works everywhere") from e


def compile_(outputs, inputs, updates=None, backend: str = "cpu", optimize: bool = True):
    """A callable program computing ``outputs`` from arrays for ``inputs`` (see the module doc).

    >>> import symdiff as sd
    >>> x = sd.tensor("x", ("n",))
    >>> sd.compile(sd.exp(x), [x], backend="numpy")([0.0, 1.0]).round(3)
    array([1.   , 2.718])
    """
    return _backend(backend)(outputs, inputs, updates, optimize=optimize)
