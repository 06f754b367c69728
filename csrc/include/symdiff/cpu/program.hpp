// What every generated C++ program includes first (symdiff.lowering.render.cpu_unit): the
// standard headers its kernels use, the vectorizable math the scalar printer calls, and the
// helpers it prints calls to. Kept here rather than pasted into each program's text.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <omp.h>

#include "symdiff/cpu/vmath.hpp"

// base ** exp for a non-negative integer exponent (a negative one is refused before the call)
static inline int64_t symdiff_ipow(int64_t base, int64_t exp) {
  int64_t r = 1;
  while (exp-- > 0) r *= base;
  return r;
}
