// Vectorizable math for generated loops: `#pragma omp simd` loops calling these stay vector
// loops (libm's expf/exp are scalar calls unless -ffast-math, which symdiff does not use).
// symdiff_exp is softmax.hpp's branch-free exp: within a few ulp, exp(-inf) = 0, NaN passes.
// symdiff_tanh: for |x| < 0.625 Cephes' odd polynomial (float) or rational function (double) in
// x², else 1 − 2/(e^{2|x|} + 1) with x's sign; both computed and one selected, so a loop of it
// stays a vector loop. Within a few ulp of libm's tanh (tests/lowering/test_vmath.py), ±inf → ±1,
// NaN passes, −0 stays −0.
#pragma once

#include "symdiff/cpu/softmax.hpp"

static inline __attribute__((always_inline)) float symdiff_exp(float x) {
  return symdiff::cpu::softmax_detail::exp_simd(x);
}
static inline __attribute__((always_inline)) double symdiff_exp(double x) {
  return symdiff::cpu::softmax_detail::exp_simd(x);
}

namespace symdiff::cpu::vmath_detail {

template <class T>
static inline __attribute__((always_inline)) T tanh_large(T a) {  // a = |x| >= 0.625
  return T(1) - T(2) / (symdiff_exp(a + a) + T(1));
}

}  // namespace symdiff::cpu::vmath_detail

static inline __attribute__((always_inline)) float symdiff_tanh(float x) {
  const float a = x < 0 ? -x : x, z = x * x;
  const float small =
      ((((-5.70498872745e-3f * z + 2.06390887954e-2f) * z - 5.37397155531e-2f) * z + 1.33314422036e-1f) * z -
       3.33332819422e-1f) * z * x + x;
  const float large = symdiff::cpu::vmath_detail::tanh_large(a);
  const float signed_large = x < 0 ? -large : large;
  return a < 0.625f ? (a == 0 ? x : small) : (x != x ? x : signed_large);  // x when a = 0 keeps −0
}

static inline __attribute__((always_inline)) double symdiff_tanh(double x) {
  const double a = x < 0 ? -x : x, z = x * x;
  const double p = (-9.64399179425052238628e-1 * z - 9.92877231001918586564e1) * z - 1.61468768441708447952e3;
  const double q = ((z + 1.12811678491632931402e2) * z + 2.23548839060100448583e3) * z + 4.84406305325125486048e3;
  const double small = x + x * z * p / q;
  const double large = symdiff::cpu::vmath_detail::tanh_large(a);
  const double signed_large = x < 0 ? -large : large;
  return a < 0.625 ? (a == 0 ? x : small) : (x != x ? x : signed_large);
}
