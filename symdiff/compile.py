"""``sd.compile``: turn expressions into a callable program, on a named backend.

Backends are looked up by name in :data:`BACKENDS`. The ``numpy`` backend is the
reference evaluator and lives here; ``cpu`` (generated C++/OpenMP) and ``cuda``
live in :mod:`symdiff.lowering`, named by module path so the core never imports
the lowering layer unless a native program is asked for (imports flow one way).

A program is called with arrays in the order of ``inputs`` and returns the
outputs. ``updates`` maps input leaves to expressions of their new values: after
computing the outputs, each new value is written *into the array passed for that
leaf* (parameters and optimizer state are updated without copies).

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

import importlib

import numpy as np

from . import shapes
from .evaluate import as_leaf_value, bind_dims
from .graph import as_list
from .node import Node

BACKENDS = {
    "numpy": "symdiff.compile:NumpyProgram",
    "cpu": "symdiff.lowering.program:CppProgram",
    "cuda": "symdiff.lowering.cuda_program:CudaProgram",
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
    return out, bindings


class NumpyProgram:
    """The reference backend: each call evaluates the graph with numpy."""

    backend = "numpy"

    def __init__(self, outputs, inputs, updates=None, optimize=True):
        self.single = isinstance(outputs, Node)
        self.outputs, self.inputs, self.updates = check_signature(outputs, inputs, updates)
        if optimize:
            from .rewrite import optimize as run_optimize

            exprs = run_optimize(self.outputs + [v for _, v in self.updates])
            self.outputs = exprs[:len(self.outputs)]
            self.updates = [(leaf, v) for (leaf, _), v in zip(self.updates, exprs[len(self.outputs):])]
        self._targets = {id(leaf) for leaf, _ in self.updates}

    def __call__(self, *arrays):
        arrays, _ = prepare_arguments(self.inputs, arrays, self._targets)
        env = dict(zip(self.inputs, arrays))
        values = [np.asarray(v) for v in
                  _evaluate_all(self.outputs + [v for _, v in self.updates], env)]
        results = values[:len(self.outputs)]
        for (leaf, _), new in zip(self.updates, values[len(self.outputs):]):
            # by identity: == on nodes builds a comparison node
            target = arrays[next(k for k, x in enumerate(self.inputs) if x is leaf)]
            np.copyto(target, new, casting="same_kind")
        return results[0] if self.single else results

    def explain(self) -> str:
        return "numpy backend: the reference evaluator runs each op with numpy"


def _evaluate_all(exprs, env):
    from .evaluate import evaluate

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
