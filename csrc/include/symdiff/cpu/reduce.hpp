// Reductions along one axis of a C-contiguous array viewed as (outer, n, inner), OpenMP-parallel:
// sum_axis, mean_axis, max_axis.
//
// Sums accumulate in double for both float32 and float64 (float32 sums of long axes keep their
// precision). For a given thread count every result is deterministic: work is split into fixed
// static chunks and per-thread partials are combined in thread order. max_axis propagates NaN
// like numpy (a row holding a NaN has the maximum NaN); it needs n >= 1.
#pragma once

#include <omp.h>

#include <algorithm>
#include <cstdint>
#include <limits>
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

// NaN-sticking maximum: once either side is NaN the result is NaN (std::max and MAX_EXPR are not).
template <class T>
inline T max_nan(T acc, T x) {
  return (x > acc || x != x) ? x : acc;
}

template <class T>
inline T max_contiguous(const T* p, int64_t n) {
  constexpr T lowest = -std::numeric_limits<T>::infinity();
  T m0 = lowest, m1 = lowest, m2 = lowest, m3 = lowest;
  int64_t j = 0;
  for (; j + 4 <= n; j += 4) {
    m0 = max_nan(m0, p[j]);
    m1 = max_nan(m1, p[j + 1]);
    m2 = max_nan(m2, p[j + 2]);
    m3 = max_nan(m3, p[j + 3]);
  }
  for (; j < n; ++j) m0 = max_nan(m0, p[j]);
  return max_nan(max_nan(m0, m1), max_nan(m2, m3));
}

namespace reduce_detail {

// One reduction = an accumulator type, its identity, a contiguous fast path, a step and a finish.
template <class T>
struct sum_op {
  using acc_t = double;
  static acc_t identity() { return 0.0; }
  static acc_t contiguous(const T* p, int64_t n) { return sum_contiguous(p, n); }
  static acc_t step(acc_t a, T x) { return a + x; }
  static acc_t combine(acc_t a, acc_t b) { return a + b; }
  static T finish(acc_t a, int64_t) { return static_cast<T>(a); }
};

template <class T>
struct mean_op : sum_op<T> {
  // Division, not a multiply by 1/n: the mean of n equal values is exactly that value.
  static T finish(double a, int64_t n) { return static_cast<T>(a / static_cast<double>(n)); }
};

template <class T>
struct max_op {
  using acc_t = T;  // max is exact in T: nothing to gain from a wider accumulator
  static acc_t identity() { return -std::numeric_limits<T>::infinity(); }
  static acc_t contiguous(const T* p, int64_t n) { return max_contiguous(p, n); }
  static acc_t step(acc_t a, T x) { return max_nan(a, x); }
  static acc_t combine(acc_t a, acc_t b) { return max_nan(a, b); }
  static T finish(acc_t a, int64_t) { return a; }
};

template <class T, class Op>
void reduce_axis(const T* in, T* out, int64_t outer, int64_t n, int64_t inner) {
  using acc_t = typename Op::acc_t;
  const int threads = omp_get_max_threads();
  const int64_t work = outer * n * inner;
  const bool parallel = work >= 32768 && threads > 1;
  if (inner == 1 && (outer >= threads || !parallel)) {
#pragma omp parallel for schedule(static) if (parallel)
    for (int64_t o = 0; o < outer; ++o) out[o] = Op::finish(Op::contiguous(in + o * n, n), n);
    return;
  }
  if (inner == 1) {  // a few long rows: split each row over the threads, combine in order
    std::vector<acc_t> partial(static_cast<size_t>(threads) * outer, Op::identity());
#pragma omp parallel num_threads(threads)
    {
      const int t = omp_get_thread_num(), nt = omp_get_num_threads();
      const int64_t chunk = (n + nt - 1) / nt, begin = std::min<int64_t>(n, t * chunk),
                    end = std::min<int64_t>(n, begin + chunk);
      for (int64_t o = 0; o < outer; ++o)
        partial[static_cast<size_t>(t) * outer + o] = Op::contiguous(in + o * n + begin, end - begin);
    }
    for (int64_t o = 0; o < outer; ++o) {
      acc_t s = Op::identity();
      for (int t = 0; t < threads; ++t) s = Op::combine(s, partial[static_cast<size_t>(t) * outer + o]);
      out[o] = Op::finish(s, n);
    }
    return;
  }
  constexpr int64_t block = 256;  // inner elements per task: contiguous, vectorizable rows
  const int64_t blocks = (inner + block - 1) / block;
#pragma omp parallel for schedule(static) if (parallel)
  for (int64_t task = 0; task < outer * blocks; ++task) {
    const int64_t o = task / blocks, i0 = (task % blocks) * block, i1 = std::min(inner, i0 + block);
    acc_t acc[block];
    std::fill(acc, acc + block, Op::identity());
    for (int64_t j = 0; j < n; ++j) {
      const T* row = in + (o * n + j) * inner;
      for (int64_t i = i0; i < i1; ++i) acc[i - i0] = Op::step(acc[i - i0], row[i]);
    }
    for (int64_t i = i0; i < i1; ++i) out[o * inner + i] = Op::finish(acc[i - i0], n);
  }
}

}  // namespace reduce_detail

template <class T>
void sum_axis(const T* in, T* out, int64_t outer, int64_t n, int64_t inner) {
  reduce_detail::reduce_axis<T, reduce_detail::sum_op<T>>(in, out, outer, n, inner);
}

// n == 0 gives NaN (0/0), numpy's value for the mean of nothing.
template <class T>
void mean_axis(const T* in, T* out, int64_t outer, int64_t n, int64_t inner) {
  reduce_detail::reduce_axis<T, reduce_detail::mean_op<T>>(in, out, outer, n, inner);
}

// Needs n >= 1 (the maximum of nothing is undefined; the bindings reject it).
template <class T>
void max_axis(const T* in, T* out, int64_t outer, int64_t n, int64_t inner) {
  reduce_detail::reduce_axis<T, reduce_detail::max_op<T>>(in, out, outer, n, inner);
}

}  // namespace symdiff::cpu
