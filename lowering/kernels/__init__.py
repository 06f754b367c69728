"""The hand-written kernels of ``csrc/``, callable from Python on numpy arrays.

:mod:`.native` is the one door to the compiled module (runtime facts, reductions, the program
loader); :mod:`.gemm`, :mod:`.softmax`, :mod:`.im2col` (im2col/col2im), :mod:`.philox`
(Philox 4x32-10 random streams) and :mod:`.cuda` (the same kernels on a GPU) check their
arguments and call it.
"""
