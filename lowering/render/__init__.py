"""Stage 2, rendering: a schedule becomes one program's source text, deterministically.

:mod:`.writer` is the kernel writer both backends share (loads, fused values, loops, index
checks, GEMM operand layouts); :mod:`.scalar` prints one elementwise op as a C expression.
Each backend is a table of renderers, one entry per kernel kind (:mod:`.cpu_kernels`,
:mod:`.cuda_kernels`; the sliding-window kinds, convolution and pooling, in :mod:`.cpu_windows`
and :mod:`.cuda_windows`; :mod:`.cuda_writer` is the CUDA writer and launch record), and a unit writer that puts the kernels into one translation unit with
the program ABI's entry points (:mod:`.cpu_unit`, :mod:`.cuda_unit`); :mod:`.signature` is the
signature text every program carries, and :mod:`.formula` the formula each kernel computes, in
the user's names (its comment, and ``explain()``). The C++ helpers the programs call live in
``csrc/include/symdiff/cpu/program.hpp``.
"""
