// Vectorizable math for generated loops: `#pragma omp simd` loops calling these stay vector
// loops (libm's expf/exp are scalar calls unless -ffast-math, which symdiff does not use).
// symdiff_exp is softmax.hpp's branch-free exp: within a few ulp, exp(-inf) = 0, NaN passes.
#pragma once

#include "symdiff/cpu/softmax.hpp"

static inline __attribute__((always_inline)) float symdiff_exp(float x) {
  return symdiff::cpu::softmax_detail::exp_simd(x);
}
static inline __attribute__((always_inline)) double symdiff_exp(double x) {
  return symdiff::cpu::softmax_detail::exp_simd(x);
}
