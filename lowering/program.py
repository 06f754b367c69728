"""Compiled programs: the ``cpu`` backend of ``sd.compile``.

The pipeline, one function per stage, each callable on its own:

    optimize (symdiff.optimize) → schedule → generate (memory plan + C++) → build (compile, cache, load)

A :class:`CppProgram` specializes itself for each new signature of argument
shapes (symbolic dimensions are bound from the arrays) and keeps every
specialization; the compiled libraries are cached on disk by content.

>>> import numpy as np
>>> import symdiff as sd
>>> x = sd.tensor("x", ("n",), "float32")
>>> prog = sd.compile([sd.sum(sd.exp(x) * 2.0)], [x])
>>> prog(np.zeros(4, np.float32))
[array(8., dtype=float32)]
>>> print(prog.explain())  # doctest: +ELLIPSIS
k_..._exp_multiply_sum: out0[] = sum(2*exp(in0))  (fused: exp, multiply)
"""

from __future__ import annotations

import dataclasses
import hashlib
import time

import numpy as np
import sympy

from symdiff.compile import check_signature, prepare_arguments
from symdiff.graph import cost
from symdiff.node import Node

from . import cache
from .codegen import TranslationUnit, generate
from .fingerprint import graph_fingerprint
from .schedule import MOVEMENT, schedule

INFIX = {"add": "+", "subtract": "-", "multiply": "*", "divide": "/"}


@dataclasses.dataclass(eq=False)
class Specialization:
    """One compiled program for one signature of argument shapes."""

    signature: tuple
    bindings: dict
    unit: TranslationUnit | None  # None when loaded through the graph cache (rendered on demand)
    native: object  # the loaded program (symdiff.lowering._native.native_program)
    arena: np.ndarray
    out_shapes: list
    out_dtypes: list
    build_info: dict


def _aligned_arena(nbytes: int) -> np.ndarray:
    raw = np.empty(nbytes + 64, np.uint8)
    start = (-raw.ctypes.data) % 64
    return raw[start:start + max(nbytes, 1)]


class CppProgram:
    """``sd.compile(..., backend="cpu")``: generated C++/OpenMP, compiled once per shape signature."""

    backend = "cpu"
    kind = "cpp"

    def __init__(self, outputs, inputs, updates=None, optimize=True):
        self.single = isinstance(outputs, Node)
        self.outputs, self.inputs, self.updates = check_signature(outputs, inputs, updates)
        self._optimize = optimize
        self._optimized = not optimize
        self._fingerprint = None
        self.optimize_seconds = 0.0
        self._targets = {id(leaf) for leaf, _ in self.updates}
        self._dtypes = [np.dtype(leaf.dtype) for leaf in self.inputs]
        self._specs: dict = {}
        self._last: Specialization | None = None

    # -- stages ---------------------------------------------------------------------------------

    def optimized(self):
        """(outputs, updates) after the rewrites (run once, on the first cache miss)."""
        if not self._optimized:
            from symdiff.rewrite import optimize as run_optimize

            t0 = time.perf_counter()
            exprs = run_optimize(self.outputs + [v for _, v in self.updates])
            self.outputs = exprs[:len(self.outputs)]
            self.updates = [(leaf, v) for (leaf, _), v in zip(self.updates, exprs[len(self.outputs):])]
            self._optimized = True
            self.optimize_seconds = time.perf_counter() - t0
        return self.outputs, self.updates

    def fingerprint(self) -> str:
        """Content hash of the graph as given (before the rewrites) and how it is compiled."""
        if self._fingerprint is None:
            self._fingerprint = graph_fingerprint(self.outputs, self.inputs, self.updates,
                                                  f"{self.kind} optimize={self._optimize} "
                                                  f"{cache.toolchain_id(self.kind)}")
        return self._fingerprint

    def translate(self, bindings: dict) -> TranslationUnit:
        """Optimize, schedule and render the program for concrete dimensions ``bindings``."""
        outputs, updates = self.optimized()
        return generate(schedule(outputs, self.inputs, updates, bindings))

    def specialize(self, bindings: dict, signature: tuple) -> Specialization:
        """The program compiled for ``signature``: from the graph cache when this graph was
        compiled before (no rewriting or rendering), else translated and built."""
        graph_key = hashlib.sha256(f"{self.fingerprint()}|{signature}".encode()).hexdigest()
        hit = cache.load_graph_entry(graph_key)
        if hit is not None:
            native, info, meta = hit
            spec = Specialization(signature, dict(bindings), None, native, _aligned_arena(meta["arena_bytes"]),
                                  [tuple(s) for s in meta["out_shapes"]], meta["out_dtypes"], info)
            self._specs[signature] = spec
            return spec
        unit = self.translate(bindings)
        native, info = cache.load_or_build(unit.source, self.kind)
        out_shapes = [unit.schedule.shape_of(o) for o in self.outputs]
        spec = Specialization(signature, dict(bindings), unit, native, _aligned_arena(unit.memory.arena_bytes),
                              out_shapes, [o.dtype for o in self.outputs], dict(info))
        cache.store_graph_entry(graph_key, info["key"], {"arena_bytes": unit.memory.arena_bytes,
                                                          "out_shapes": out_shapes,
                                                          "out_dtypes": spec.out_dtypes})
        self._specs[signature] = spec
        return spec

    def __call__(self, *arrays):
        spec = None
        if len(arrays) == len(self.inputs):
            fast = all(type(a) is np.ndarray and a.dtype == d and a.flags.c_contiguous
                       for a, d in zip(arrays, self._dtypes))
            if fast:
                spec = self._specs.get(tuple(a.shape for a in arrays))
        if spec is None:
            arrays, bindings = prepare_arguments(self.inputs, arrays, self._targets)
            signature = tuple(a.shape for a in arrays)
            spec = self._specs.get(signature) or self.specialize(bindings, signature)
        elif any(not arrays[k].flags.writeable for k, leaf in enumerate(self.inputs) if id(leaf) in self._targets):
            prepare_arguments(self.inputs, arrays, self._targets)  # raises the clear error
        self._last = spec
        outs = [np.empty(s, d) for s, d in zip(spec.out_shapes, spec.out_dtypes)]
        spec.native(list(arrays) + outs + [spec.arena], [])
        return outs[0] if self.single else outs

    # -- inspection -----------------------------------------------------------------------------

    def _current(self) -> Specialization:
        if self._last is not None:
            return self._last
        free = set()
        for leaf in self.inputs:
            free |= {d for d in leaf.shape if isinstance(d, sympy.Basic) and not d.is_number}
        if free:
            raise ValueError("this program has symbolic dimensions " + ", ".join(sorted(map(str, free)))
                             + ": call it once (or use specialize) before asking for its source")
        signature = tuple(tuple(int(d) for d in leaf.shape) for leaf in self.inputs)
        return self._specs.get(signature) or self.specialize({}, signature)

    def _unit(self) -> TranslationUnit:
        spec = self._current()
        if spec.unit is None:  # loaded through the graph cache: render it now, for inspection
            spec.unit = self.translate(spec.bindings)
        return spec.unit

    @property
    def source(self) -> str:
        """The generated C++ of the latest specialization."""
        return self._unit().source

    @property
    def stats(self) -> dict:
        spec = self._current()
        unit = self._unit()
        outputs, updates = self.optimized()
        flops = cost(outputs + [v for _, v in updates])["flops"]
        flops = sympy.sympify(flops).xreplace(spec.bindings)
        return {"kernels": len(unit.kernels), "peak_bytes": unit.memory.peak_bytes,
                "arena_bytes": unit.memory.arena_bytes, "flops": int(flops) if flops.is_number else flops,
                "cache": spec.build_info.get("cache"), "compile_seconds": spec.build_info.get("compile_seconds")}

    def explain(self) -> str:
        """One line per kernel: what it computes, as a formula over buffers, and what it fused."""
        unit = self._unit()
        sched = unit.schedule
        lines = []
        for kernel in unit.kernels:
            shape = ",".join(str(d) for d in kernel.out.shape)
            formula = _formula(kernel.node, sched, root=not kernel.copy)
            if kernel.kind == "gemm" and (kernel.alpha != 1.0 or kernel.beta != 0.0):
                formula = f"{kernel.beta:g}·{kernel.out.buffer.name} + {kernel.alpha:g}·{formula}"
            fused = [n.op.name for n in kernel.fused if n.op.name not in ("broadcast_to", "astype")]
            note = f"  (fused: {', '.join(fused)})" if fused else ""
            lines.append(f"{kernel.name}: {kernel.out.buffer.name}[{shape}] = {formula}{note}")
        for pos, view in sched.updates:
            lines.append(f"update: {sched.inputs[pos].name} ← {view.buffer.name}")
        return "\n".join(lines)


def _formula(node, sched, root=False) -> str:
    if node.is_constant and node.shape == ():
        v = node.attr("value")
        return str(v if not isinstance(v, float) or not v.is_integer() else int(v))
    view = sched.views.get(id(node))
    name = node.op.name
    if view is not None and not root and name not in MOVEMENT:
        return view.buffer.name
    args = [_formula(i, sched) for i in node.inputs]
    if name in ("broadcast_to", "astype", "reshape"):
        return args[0]
    if name == "transpose":
        return f"{args[0]}ᵀ" if len(args[0]) <= 3 else f"({args[0]})ᵀ"
    if name == "getitem":
        return f"{args[0]}[…]"
    if name in INFIX:
        return f"{_wrap(args[0], node.inputs[0])}{INFIX[name]}{_wrap(args[1], node.inputs[1])}"
    if name == "matmul":
        return f"{_wrap(args[0], node.inputs[0])}·{_wrap(args[1], node.inputs[1])}"
    return f"{name}({', '.join(args)})"


def _wrap(text, node):
    return f"({text})" if node.op.name in ("add", "subtract") and not text.isidentifier() else text
