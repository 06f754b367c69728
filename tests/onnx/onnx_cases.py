"""The registry's op examples (symdiff.testing.cases) as one ONNX model and one compiled program."""

from __future__ import annotations

import numpy as np

import symdiff as sd
from symdiff.testing import cases


def renamed(case, k: int):
    """Leaves of case ``k`` with names and dimension symbols of its own, float32."""
    leaves = []
    for i, spec in enumerate(case.inputs):
        shape = tuple(f"{d}_{k}" if isinstance(d, str) else d for d in spec.shape)
        dtype = "float32" if spec.dtype in ("float32", "float64") else spec.dtype
        leaves.append(sd.tensor(f"c{k}_a{i}", shape, dtype))
    return leaves


def instantiate(case, k: int, rng):
    leaves = renamed(case, k)
    values = case.sample(rng, "float32")
    expr = case.build(*leaves)
    return expr, leaves, values


def exportable_cases():
    """(label, op name, expr, leaves, values) for every case whose op has an export rule."""
    rng = np.random.default_rng(0)
    out = []
    for k, case in enumerate(cases()):
        if case.op in sd.OPS and sd.OPS[case.op] in sd.onnx.NOT_EXPORTABLE:
            continue
        expr, leaves, values = instantiate(case, k, rng)
        out.append((str(case), case.op, expr, leaves, values, case.lowered))
    return out
