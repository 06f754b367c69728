// What the loader (csrc/bind_program.cpp) hands a generated program when it loads it: the kernels
// compiled once into the module, so a program calls them instead of compiling them again. GEMM
// is the one that matters: gemm.hpp's kernels took 4-8 s of every program's cold compile; the
// module's copy dispatches on the CPU at run time (AVX-512, AVX2 + FMA, portable) like a
// program's own did.
#pragma once

#include <cstdint>

constexpr int64_t kSymdiffServicesVersion = 1;

struct symdiff_services {
  int64_t version;  // kSymdiffServicesVersion
  void (*sgemm)(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float* a,
                int64_t lda, const float* b, int64_t ldb, float beta, float* c, int64_t ldc);
  void (*dgemm)(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, double alpha, const double* a,
                int64_t lda, const double* b, int64_t ldb, double beta, double* c, int64_t ldc);
};
