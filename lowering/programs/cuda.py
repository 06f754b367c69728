"""``sd.compile(..., backend="cuda")``: the schedule rendered as CUDA, built with nvcc.

Everything but the rendering is the C++ backend's (:class:`~.cpu.CpuProgram`): argument
checks, one program for every size of its run-time dimensions (the launch grids computed when it
runs, ``symdiff_blocks``) or else specialization per shape signature, the on-disk cache (keyed by nvcc, its flags and the
source), ``explain`` and ``stats``. Arrays go in and come out as numpy arrays; the program
copies them to and from the device itself.

>>> import symdiff as sd
>>> x = sd.tensor("x", (4,), "float32")
>>> prog = CudaProgram([sd.sum(sd.exp(x) * 2.0)], [x])
>>> unit = prog.translate({})
>>> "__global__" in unit.source and "symdiff_program" in unit.source
True
"""

from __future__ import annotations

from ..compiler import toolchain
from ..plan.inplace import fold
from ..plan.schedule import schedule
from ..render.cuda_unit import generate
from .cpu import CpuProgram, Specialization


class CudaProgram(CpuProgram):
    """Generated CUDA, compiled once per shape signature; runs on the current CUDA device."""

    backend = "cuda"

    def translate(self, bindings: dict):
        """Optimize, schedule and render the CUDA program for concrete dimensions ``bindings``."""
        outputs, updates = self.optimized()
        return generate(fold(schedule(outputs, self.inputs, updates, bindings)))

    def specialize(self, bindings: dict, signature: tuple) -> Specialization:
        try:
            spec = super().specialize(bindings, signature)
        except toolchain.CompileError as e:
            if "gemm.cu" in str(e) and toolchain.cuda_source_dir() is None:
                raise toolchain.CompilerNotFound(
                    "this program's matmuls call csrc/cuda/gemm.cu, which is not installed with the package "
                    "(only the headers are): use a source checkout, or backend='cpu'") from e
            raise
        return spec

    def host_arena_bytes(self, unit) -> int:
        return 0  # the arena lives on the device, inside the program
