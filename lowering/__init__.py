"""symdiff.lowering: from optimized graphs to native programs.

Graphs are scheduled, memory-planned and rendered as C++ (OpenMP) or CUDA programs calling the
kernels in ``csrc/``, one folder per stage:

    plan/ (schedule, in-place folding, memory plan) → render/ (source text) → compiler/ (compile,
    cache) → programs/ (what ``sd.compile`` returns)

and ``kernels/``, the hand-written kernels and the only way in to the compiled module. This
package imports the symdiff core; the core never imports it (``sd.compile`` finds the ``cpu``
and ``cuda`` backends here by name).

Kernels callable directly: :mod:`.gemm`, :mod:`.softmax`, :mod:`.conv` (im2col/col2im,
``kernels.im2col``), :mod:`.random` (Philox, ``kernels.philox``), :mod:`.native` (reductions,
runtime facts), :mod:`.cuda` (the CUDA kernels).
"""

from .kernels import cuda, gemm, native, softmax
from .kernels import im2col as conv
from .kernels import philox as random
from .kernels.native import ProgramError, cpu_features, cuda_info, num_threads, set_num_threads
from .programs.cpu import CpuProgram

CppProgram = CpuProgram  # its former name

__all__ = ["CppProgram", "CpuProgram", "ProgramError", "conv", "cpu_features", "cuda", "cuda_info", "gemm", "native",
           "num_threads", "random", "set_num_threads", "softmax"]
