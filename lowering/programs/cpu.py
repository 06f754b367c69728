"""Compiled programs: the ``cpu`` backend of ``sd.compile``.

The pipeline, one function per stage, each callable on its own:

    optimize (symdiff.optimize) → plan.schedule → render.cpu_unit.generate (memory plan + C++)
        → compiler.cache.load_or_build (compile, cache, load)

A graph with symbolic dimensions (a batch size ``m``) compiles once, to a program that takes
them at run time (:mod:`~symdiff.lowering.plan.dims`): every batch size runs the same library.
Only where a kernel needs a dimension's value to be written (see ``stats["specialized_because"]``)
does a :class:`CpuProgram` fall back to specializing itself for each new signature of argument
shapes. Every signature seen is kept, bound to its library; the libraries are cached on disk by
content.

>>> import numpy as np
>>> import symdiff as sd
>>> x = sd.tensor("x", ("n",), "float32")
>>> prog = sd.compile([sd.sum(sd.exp(x) * 2.0)], [x])
>>> prog(np.zeros(4, np.float32))
[array(8., dtype=float32)]
>>> print(prog.explain())  # doctest: +ELLIPSIS
k_..._exp_multiply_sum: out0[] = Σ(2·exp(x))  (fused: exp, multiply)
inputs: in0 = x
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import threading
import time
import warnings

import numpy as np
import sympy

from symdiff import shapes
from symdiff.compile import check_signature, prepare_arguments
from symdiff.graph import cost
from symdiff.node import Node

from ..compiler import cache
from ..compiler.fingerprint import graph_fingerprint
from ..kernels.native import SignatureMismatch, bound_program
from ..plan import dims
from ..plan.inplace import fold
from ..plan.schedule import schedule
from ..render.cpu_unit import PROFILE_ENV, generate, profiling
from ..render.formula import input_legend, kernel_formulas, one_line
from ..render.signature import numel, program_signature
from ..render.writer import TranslationUnit


@dataclasses.dataclass(eq=False)
class Specialization:
    """One compiled program for one signature of argument shapes."""

    signature: tuple
    bindings: dict
    unit: TranslationUnit | None  # None when loaded through the graph cache (rendered on demand)
    native: object  # the loaded library (kernels.native.load_program)
    arena_bytes: int  # the host scratch arena each call leases from the bound program's pool
    out_shapes: list
    out_dtypes: list
    build_info: dict
    bound: object = None  # kernels.native.bound_program: the checked fast path for this signature
    dims: list = dataclasses.field(default_factory=list)  # run-time dimension values (D0, D1, ...)
    schedule_bindings: dict | None = None  # what the library was scheduled with (default: bindings)


@dataclasses.dataclass(eq=False)
class RuntimeDimsProgram:
    """The one library of a graph compiled for every size of its symbolic dimensions."""

    runtime: dict  # graph symbol -> D<k>
    native: object
    unit: TranslationUnit | None  # None when loaded through the graph cache
    build_info: dict


class CpuProgram:
    """``sd.compile(..., backend="cpu")``: generated C++/OpenMP, compiled once per shape signature.

    Safe to call from many threads at once (see :mod:`symdiff.compile` for calls that share an
    updated array). A program that refuses its input values (a label out of range, a negative
    integer exponent) raises :data:`ProgramError`, which is a ValueError like numpy's."""

    backend = "cpu"  # also the build kind: compiler.toolchain.KINDS["cpu"]

    def __init__(self, outputs, inputs, updates=None, optimize=True):
        self.single = isinstance(outputs, Node)
        self.outputs, self.inputs, self.updates = check_signature(outputs, inputs, updates)
        self._optimize = optimize
        self._optimized = not optimize
        self._fingerprint = None
        self._profile = profiling()  # SYMDIFF_PROFILE=1 when the program is made: its kernels are timed
        self.optimize_seconds = 0.0
        self._targets = {id(leaf) for leaf, _ in self.updates}
        self._dtypes = [np.dtype(leaf.dtype) for leaf in self.inputs]
        self._specs: dict = {}
        self._last: Specialization | None = None
        self._specializing = threading.RLock()
        self._runtime = dims.runtime_symbols([leaf.shape for leaf in self.inputs]) if self.runtime_dims else {}
        self._generic: RuntimeDimsProgram | None = None
        self.specialized_because = None if self._runtime else "its dimensions are all constants"
        self.builds = 0  # libraries translated and compiled (or loaded by source key) by this program

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
                                                  f"{self.backend} optimize={self._optimize} "
                                                  f"{cache.toolchain_id(self.backend)}"
                                                  + (" profile" if self._profile else ""))
        return self._fingerprint

    def translate(self, bindings: dict) -> TranslationUnit:
        """Optimize, schedule and render the program for concrete dimensions ``bindings``."""
        outputs, updates = self.optimized()
        return generate(fold(schedule(outputs, self.inputs, updates, bindings, epilogues=True)),
                        profile=self._profile)

    runtime_dims = True  # graphs with symbolic dimensions compile once, for every size
    RUNTIME_BINDINGS = 64  # signatures bound to the run-time library at once (each keeps its arenas)

    def specialize(self, bindings: dict, signature: tuple) -> Specialization:
        """The program for ``signature``: the graph's one run-time-dimensions library when it has
        one and the call's sizes are all ≥ 1, else a library specialized to the signature."""
        if self._runtime and self.specialized_because is None and all(
                bindings.get(s, 0) >= 1 for s in self._runtime):
            generic = self._runtime_dims_program()
            if generic is not None:
                return self._bind(self._runtime_spec(generic, bindings, signature))
        return self._specialize(bindings, signature)

    def _runtime_dims_program(self) -> RuntimeDimsProgram | None:
        """The library taking the run-time dimensions, built (or loaded) once; None when some
        kernel needs a dimension's value (recorded in ``specialized_because``)."""
        if self._generic is not None:
            return self._generic
        graph_key = hashlib.sha256(f"{self.fingerprint()}|runtime-dims".encode()).hexdigest()
        out_shapes = self._runtime_out_shapes()
        out_dtypes = [o.dtype for o in self.outputs]
        hit = self._sound_graph_entry(
            graph_key, lambda meta, native: self._runtime_entry_problem(meta, native, out_shapes, out_dtypes))
        if hit is not None:
            self._generic = RuntimeDimsProgram(self._runtime, hit[0], None, hit[1])
            return self._generic
        try:
            unit = self.translate(self._runtime)
        except dims.NeedsConstantDims as e:
            self.specialized_because = str(e)
            return None
        except Exception as e:  # a renderer that cannot take run-time sizes yet: specialize instead
            if os.environ.get("SYMDIFF_STRICT_RUNTIME_DIMS"):
                raise
            self.specialized_because = f"{type(e).__name__}: {e}"
            return None
        expected = self._runtime_signature_head(out_shapes, out_dtypes)
        native, info = self._build(unit.source, f"{expected}…",
                                   lambda native: native.has_runtime_dims and native.signature.startswith(expected))
        cache.store_graph_entry(graph_key, info["key"], {"arena_bytes": 0, "out_shapes": out_shapes,
                                                          "out_dtypes": out_dtypes})
        self._generic = RuntimeDimsProgram(self._runtime, native, unit, dict(info))
        return self._generic

    @property
    def signatures(self) -> list:
        """The argument shapes this program is bound to now (each to its library; the run-time
        library keeps the latest ``RUNTIME_BINDINGS``)."""
        with self._specializing:
            return list(self._specs)

    @property
    def libraries(self) -> int:
        """How many compiled libraries the signatures called so far run on (1 for a graph whose
        symbolic dimensions are all run-time dimensions, whatever the batch sizes)."""
        with self._specializing:
            return len({id(spec.native) for spec in self._specs.values()})

    def _runtime_out_shapes(self) -> list:
        """The outputs' shapes in the run-time dimensions, as the graph entry records them."""
        return [[d if isinstance(d, int) else str(d) for d in dims.resolve(o.shape, self._runtime)]
                for o in self.outputs]

    def _runtime_signature_head(self, out_shapes, out_dtypes) -> str:
        """The signature line up to the arena, which the library computes itself."""
        ins = [(leaf.dtype, dims.numel(dims.resolve(leaf.shape, self._runtime))) for leaf in self.inputs]
        outs = [(o.dtype, dims.numel(dims.resolve(o.shape, self._runtime))) for o in self.outputs]
        full = program_signature(ins, outs, 0)
        return full[:full.rindex("arena ") + len("arena ")]

    def _runtime_entry_problem(self, meta, native, out_shapes, out_dtypes) -> str | None:
        if meta["out_shapes"] != out_shapes:
            return f"its output shapes {meta['out_shapes']} are not the graph's {out_shapes}"
        if list(meta["out_dtypes"]) != out_dtypes:
            return f"its output dtypes {meta['out_dtypes']} are not the graph's {out_dtypes}"
        expected = self._runtime_signature_head(out_shapes, out_dtypes)
        if not native.has_runtime_dims or not native.signature.startswith(expected):
            return f"its library expects '{native.signature}', the graph gives '{expected}…'"
        return None

    def _runtime_spec(self, generic: RuntimeDimsProgram, bindings: dict, signature: tuple) -> Specialization:
        order = sorted(generic.runtime.items(), key=lambda kv: int(kv[1].name[1:]))
        values = [int(bindings[user]) for user, _ in order]
        out_shapes = [shapes.substitute(o.shape, bindings) for o in self.outputs]
        arena = generic.native.arena_bytes(values)
        return Specialization(signature, dict(bindings), generic.unit, generic.native, arena, out_shapes,
                              [o.dtype for o in self.outputs], dict(generic.build_info, runtime_dims=True),
                              dims=values, schedule_bindings=generic.runtime)

    def _specialize(self, bindings: dict, signature: tuple) -> Specialization:
        """The program compiled for ``signature``: from the graph cache when this graph was
        compiled before (no rewriting or rendering), else translated and built.

        Nothing read from the cache sizes a buffer unchecked: the graph entry is checksummed, its
        output shapes and dtypes must equal the graph's, and the library's own signature
        (:mod:`~symdiff.lowering.render.signature`) must equal the one the graph and the arrays give; a bad entry is
        rebuilt with a warning."""
        graph_key = hashlib.sha256(f"{self.fingerprint()}|{signature}".encode()).hexdigest()
        out_shapes = [shapes.substitute(o.shape, bindings) for o in self.outputs]
        out_dtypes = [o.dtype for o in self.outputs]
        hit = self._sound_graph_entry(
            graph_key, lambda meta, native: self._entry_problem(meta, native, signature, out_shapes, out_dtypes))
        if hit is not None:
            native, info, meta = hit
            return self._bind(Specialization(signature, dict(bindings), None, native, meta["arena_bytes"],
                                             out_shapes, out_dtypes, info))
        unit = self.translate(bindings)
        arena_bytes = self.host_arena_bytes(unit)
        expected = self._signature(signature, out_shapes, out_dtypes, arena_bytes)
        native, info = self._build(unit.source, expected, lambda native: native.signature == expected)
        spec = Specialization(signature, dict(bindings), unit, native, arena_bytes, out_shapes, out_dtypes,
                              dict(info))
        cache.store_graph_entry(graph_key, info["key"], {"arena_bytes": arena_bytes, "out_shapes": out_shapes,
                                                          "out_dtypes": out_dtypes})
        return self._bind(spec)

    def _sound_graph_entry(self, graph_key: str, problem_of):
        """(library, info, meta) of this graph's cache entry ``graph_key`` when it fits the graph
        (``problem_of(meta, library)`` is None), else None: a misfit is removed with a warning."""
        hit = cache.load_graph_entry(graph_key)
        if hit is None:
            return None
        problem = problem_of(hit[2], hit[0])
        if problem is None:
            return hit
        warnings.warn(f"symdiff program cache: graph entry {graph_key[:12]} in {cache.cache_dir()} is "
                      f"damaged ({problem}); rebuilding it", RuntimeWarning, stacklevel=5)
        cache.discard_graph_entry(graph_key)
        return None  # the entry's library is unloaded with it, so a rebuilt one is loaded afresh

    def _build(self, source: str, expected: str, fits):
        """(library, info) built from ``source`` (or found by its key): a library that is not what
        its source says (``fits(library)`` false; ``expected`` says what it should say) is never
        run but rebuilt once, with a warning."""
        native, info = cache.load_or_build(source, self.backend)
        self.builds += 1
        if fits(native):
            return native, info
        warnings.warn(f"symdiff program cache: entry {info['key'][:12]} expects '{native.signature}', its "
                      f"source '{expected}'; rebuilding it", RuntimeWarning, stacklevel=5)
        cache.discard(info["key"])
        native = None  # unloaded, so the rebuilt library of the same name is loaded afresh
        native, info = cache.load_or_build(source, self.backend)
        if not fits(native):
            raise RuntimeError(f"the program built from this graph says it expects '{native.signature}', "
                               f"but the graph gives '{expected}' (a symdiff bug: please report it)")
        return native, info

    def host_arena_bytes(self, unit: TranslationUnit) -> int:
        """Bytes of scratch memory each call passes the program (its temporaries)."""
        return unit.memory.arena_bytes

    def _signature(self, signature, out_shapes, out_dtypes, arena_bytes) -> str:
        return program_signature([(leaf.dtype, numel(s)) for leaf, s in zip(self.inputs, signature)],
                                 [(d, numel(s)) for d, s in zip(out_dtypes, out_shapes)], arena_bytes)

    def _entry_problem(self, meta, native, signature, out_shapes, out_dtypes) -> str | None:
        """Why a graph entry (checksum already verified) does not fit this graph, else None."""
        if [tuple(s) for s in meta["out_shapes"]] != out_shapes:
            return f"its output shapes {meta['out_shapes']} are not the graph's {[list(s) for s in out_shapes]}"
        if list(meta["out_dtypes"]) != out_dtypes:
            return f"its output dtypes {meta['out_dtypes']} are not the graph's {out_dtypes}"
        expected = self._signature(signature, out_shapes, out_dtypes, meta["arena_bytes"])
        if native.signature != expected:
            return f"its library expects '{native.signature}', the graph gives '{expected}'"
        return None

    def __call__(self, *arrays):
        spec = self._last
        if spec is not None:
            try:  # the fast path: signature checks and output allocation in C++
                outs = spec.bound(*arrays)
                return outs[0] if self.single else outs
            except SignatureMismatch:
                pass
        try:
            spec = self._specs.get(tuple(a.shape for a in arrays))
        except AttributeError:
            spec = None
        if spec is not None:
            try:
                outs = spec.bound(*arrays)
                self._last = spec
                return outs[0] if self.single else outs
            except SignatureMismatch:
                pass
        # the slow path: conversions, dimension binding, clear errors, specialization
        arrays, bindings = prepare_arguments(self.inputs, arrays, self._targets)
        signature = tuple(a.shape for a in arrays)
        with self._specializing:  # one thread compiles a new signature; calls of known ones never wait
            spec = self._specs.get(signature) or self.specialize(bindings, signature)
        self._last = spec
        outs = spec.bound(*arrays)
        return outs[0] if self.single else outs

    def _bind(self, spec: Specialization) -> Specialization:
        spec.bound = bound_program(
            spec.native, [np.dtype(leaf.dtype) for leaf in self.inputs], [list(s) for s in spec.signature],
            [id(leaf) in self._targets for leaf in self.inputs], [np.dtype(d) for d in spec.out_dtypes],
            [list(s) for s in spec.out_shapes], spec.arena_bytes, spec.dims)
        self._specs[spec.signature] = spec
        if spec.dims:  # bindings of the run-time library are cheap to make again: keep the latest
            bound_sizes = [s for s, v in self._specs.items() if v.dims]
            for old in bound_sizes[:max(0, len(bound_sizes) - self.RUNTIME_BINDINGS)]:
                del self._specs[old]  # a call holding it keeps it alive until it returns
        return spec

    # -- inspection -----------------------------------------------------------------------------

    def _current(self, sizes=None) -> Specialization:
        """The specialization to inspect: for ``sizes`` (dimension name -> int) when given, else
        the latest one called, else the one for the inputs' own (concrete) shapes."""
        if not sizes and self._last is not None:
            return self._last
        free = {}
        for leaf in self.inputs:
            free.update({str(d): d for d in leaf.shape if isinstance(d, sympy.Basic) and not d.is_number})
        sizes = dict(sizes or {})
        unknown = sorted(set(sizes) - set(free))
        if unknown:
            raise ValueError(f"this program has no dimension {', '.join(unknown)} (its symbolic dimensions: "
                             f"{', '.join(sorted(free)) or 'none'})")
        missing = sorted(set(free) - set(sizes))
        if missing:
            example = ", ".join(f"{name}=64" for name in missing)
            raise ValueError("this program has symbolic dimensions " + ", ".join(missing)
                             + f": call it once, or give their sizes (for example explain({example}))")
        bindings = {free[name]: int(v) for name, v in sizes.items()}
        signature = tuple(shapes.substitute(leaf.shape, bindings) for leaf in self.inputs)
        with self._specializing:
            return self._specs.get(signature) or self.specialize(bindings, signature)

    def _unit(self, sizes=None) -> TranslationUnit:
        spec = self._current(sizes)
        if spec.unit is None:  # loaded through the graph cache: render it now, for inspection
            spec.unit = self.translate(spec.schedule_bindings if spec.schedule_bindings is not None
                                       else spec.bindings)
            if self._generic is not None and spec.native is self._generic.native:
                self._generic.unit = spec.unit
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
        values = {s: v for s, v in zip(sorted((spec.schedule_bindings or {}).values(),
                                              key=lambda s: int(s.name[1:])), spec.dims)}
        io_bytes = dims.evaluate(unit.memory.io_bytes, values)
        return {"kernels": len(unit.kernels), "peak_bytes": spec.arena_bytes + io_bytes,
                "arena_bytes": spec.arena_bytes, "flops": int(flops) if flops.is_number else flops,
                "cache": spec.build_info.get("cache"), "compile_seconds": spec.build_info.get("compile_seconds"),
                "runtime_dims": bool(spec.dims), "specialized_because": self.specialized_because,
                "builds": self.builds}

    def profile(self, sizes=None) -> list:
        """Time per kernel, summed over every call so far of the latest specialization (or the
        one for ``sizes``), slowest first: dicts of ``kind`` (gemm, loop, reduce, conv, ...),
        ``kernel``, ``seconds`` and ``share`` of the total. Needs a program compiled with
        ``SYMDIFF_PROFILE=1`` in the environment when ``sd.compile`` made it (the counters cost two
        clock reads a kernel)."""
        import ctypes

        spec = self._current(sizes)
        path = spec.build_info.get("path")
        library = ctypes.CDLL(path) if path else None  # the loaded library: dlopen returns its handle
        if library is None or not hasattr(library, "symdiff_program_profile"):
            raise RuntimeError(f"this program was compiled without profiling: set {PROFILE_ENV}=1 in the "
                               "environment before sd.compile (its cache key differs, so it compiles anew)")
        library.symdiff_program_profile_kernels.restype = ctypes.c_char_p
        names = library.symdiff_program_profile_kernels().decode().split("\n")
        counts = (ctypes.c_int64 * len(names))()
        library.symdiff_program_profile.argtypes = [ctypes.POINTER(ctypes.c_int64), ctypes.c_int64]
        library.symdiff_program_profile(counts, len(names))
        total = max(sum(counts), 1)
        rows = [{"kind": line.split(" ", 1)[0], "kernel": line.split(" ", 1)[-1], "seconds": ns * 1e-9,
                 "share": ns / total} for line, ns in zip(names, counts) if line]
        return sorted(rows, key=lambda r: (-r["seconds"], r["kernel"]))

    def explain(self, **sizes) -> str:
        """One line per kernel: the buffer it writes, what it computes as a formula in your names
        (inputs by their names, what other kernels stored by their buffers' names, as in the
        comment above each kernel in ``source``: :mod:`~symdiff.lowering.render.formula`) and
        what it fused; then the updates, and which input buffer holds which of your arrays.

        A program with symbolic dimensions is explained for the sizes given (``explain(m=64)``),
        else for its latest call; it is compiled for them if it was not yet."""
        spec, unit = self._current(sizes), self._unit(sizes)
        sched = unit.schedule
        # a library for every size (its schedule in run-time dimensions D0…): shapes of this call's
        run = getattr(spec, "schedule_bindings", None) or {}
        values = {d: spec.bindings[user] for user, d in run.items() if user in spec.bindings}
        lines = []
        for kernel, formula in zip(unit.kernels, kernel_formulas(sched, values)):
            fused = [n.op.name for n in kernel.fused if n.op.name not in ("broadcast_to", "astype")]
            note = f"  (fused: {', '.join(fused)})" if fused else ""
            lines.append(f"{kernel.name}: {one_line(formula)}{note}")
        for pos, view in sched.updates:
            lines.append(f"update: {sched.inputs[pos].name} ← {view.buffer.name}")
        lines.append(one_line(input_legend(sched, self.inputs)))
        return "\n".join(lines)
