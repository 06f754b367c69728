// 2-D convolution in a generated program (symdiff.lowering.render.cpu_conv prints the calls):
// the renderer writes one work item of a convolution as a lambda (pack an image's columns into
// a slot of the arena, multiply with the module's GEMM, gemm_call.hpp, and for a transposed
// convolution scatter the products back, col2im), and conv_items runs the items.
//
// With several threads and several items, the items run in waves of `slots`, item b of a wave
// in slot b on one thread, so an item's columns are still in cache when its GEMM reads them and
// its GEMM runs single-threaded; otherwise the items run one after the other and the loops and
// the GEMM inside each one spread over the threads. Each output element is written by one item,
// in an order fixed by the renderer: results do not depend on the thread count.
#pragma once

#include <omp.h>

#include <algorithm>
#include <cstdint>

#include "symdiff/cpu/gemm_call.hpp"

namespace symdiff::cpu {

// Whether a loop of `count` elements inside a work item forks threads of its own: not when the
// item already runs on one of conv_items' threads.
inline bool conv_loop_in_parallel(int64_t count) { return count >= 32768 && !omp_in_parallel(); }

// item(i, slot) for i in [0, items); slot < slots names the scratch the item may use.
template <class Item>
void conv_items(int64_t items, int64_t slots, double flops, const Item& item) {
  const int threads = omp_in_parallel() ? 1 : omp_get_max_threads();
  if (threads > 1 && slots > 1 && items > 1 && flops >= 1e6) {
    for (int64_t w0 = 0; w0 < items; w0 += slots) {
      const int64_t nb = std::min(slots, items - w0);
#pragma omp parallel for schedule(static)
      for (int64_t b = 0; b < nb; ++b) item(w0 + b, b);
    }
    return;
  }
  for (int64_t i = 0; i < items; ++i) item(i, int64_t(0));
}

}  // namespace symdiff::cpu
