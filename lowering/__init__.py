"""symdiff.lowering: from optimized graphs to native programs.

Graphs are scheduled, memory-planned and rendered as C++ (OpenMP) or CUDA
programs calling the kernels in ``csrc/``; this package is the only way in to the
compiled module. It imports the symdiff core; the core never imports it (``sd.compile``
finds the ``cpu`` backend here by name).

Kernels callable directly: :mod:`.gemm`, :mod:`.softmax`, :mod:`.conv` (im2col/col2im),
:mod:`.random` (Philox), :mod:`.native` (reductions, runtime facts), :mod:`.cuda`.
"""

from . import conv, cuda, gemm, native, random, softmax
from .native import cpu_features, cuda_info, num_threads, set_num_threads
from .program import CppProgram, ProgramError

__all__ = ["CppProgram", "ProgramError", "conv", "cpu_features", "cuda", "cuda_info", "gemm", "native", "num_threads", "random",
           "set_num_threads", "softmax"]
