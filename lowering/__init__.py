"""symdiff.lowering: from optimized graphs to native programs.

Graphs are scheduled, memory-planned and rendered as C++ (OpenMP) or CUDA
programs calling the kernels in ``csrc/``; this package is the only way in to the
compiled module. It imports the symdiff core; the core never imports it.
"""

from . import native
from .native import cpu_features, cuda_info, num_threads, set_num_threads

__all__ = ["native", "cpu_features", "cuda_info", "num_threads", "set_num_threads"]
