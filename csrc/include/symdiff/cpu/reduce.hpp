// Sum along one axis of a C-contiguous array viewed as (outer, n, inner), OpenMP-parallel.
//
// Accumulation is in double for both float32 and float64 (float32 sums of long axes keep
// their precision). For a given thread count the result is deterministic: work is split
// into fixed static chunks and per-thread partials are combined in thread order.
#pragma once

#include <omp.h>

#include <algorithm>
#include <cstdint>
#include <vector>

namespace symdiff::cpu {

template <class T>
inline double sum_contiguous(const T* p, int64_t n) {
  double s0 = 0, s1 = 0, s2 = 0, s3 = 0;
  int64_t j = 0;
  for (; j + 4 <= n; j += 4) {
    s0 += p[j];
    s1 += p[j + 1];
    s2 += p[j + 2];
    s3 += p[j + 3];
  }
  for (; j < n; ++j) s0 += p[j];
  return (s0 + s1) + (s2 + s3);
}

template <class T>
void sum_axis(const T* in, T* out, int64_t outer, int64_t n, int64_t inner) {
  const int threads = omp_get_max_threads();
  const int64_t work = outer * n * inner;
  const bool parallel = work >= 32768 && threads > 1;
  if (inner == 1 && (outer >= threads || !parallel)) {
#pragma omp parallel for schedule(static) if (parallel)
    for (int64_t o = 0; o < outer; ++o) out[o] = static_cast<T>(sum_contiguous(in + o * n, n));
    return;
  }
  if (inner == 1) {  // a few long rows: split each row over the threads, combine in order
    std::vector<double> partial(static_cast<size_t>(threads) * outer, 0.0);
#pragma omp parallel num_threads(threads)
    {
      const int t = omp_get_thread_num(), nt = omp_get_num_threads();
      const int64_t chunk = (n + nt - 1) / nt, begin = std::min<int64_t>(n, t * chunk),
                    end = std::min<int64_t>(n, begin + chunk);
      for (int64_t o = 0; o < outer; ++o)
        partial[static_cast<size_t>(t) * outer + o] = sum_contiguous(in + o * n + begin, end - begin);
    }
    for (int64_t o = 0; o < outer; ++o) {
      double s = 0;
      for (int t = 0; t < threads; ++t) s += partial[static_cast<size_t>(t) * outer + o];
      out[o] = static_cast<T>(s);
    }
    return;
  }
  constexpr int64_t block = 256;  // inner elements per task: contiguous, vectorizable rows
  const int64_t blocks = (inner + block - 1) / block;
#pragma omp parallel for schedule(static) if (parallel)
  for (int64_t task = 0; task < outer * blocks; ++task) {
    const int64_t o = task / blocks, i0 = (task % blocks) * block, i1 = std::min(inner, i0 + block);
    double acc[block] = {0};
    for (int64_t j = 0; j < n; ++j) {
      const T* row = in + (o * n + j) * inner;
      for (int64_t i = i0; i < i1; ++i) acc[i - i0] += row[i];
    }
    for (int64_t i = i0; i < i1; ++i) out[o * inner + i] = static_cast<T>(acc[i - i0]);
  }
}

}  // namespace symdiff::cpu
