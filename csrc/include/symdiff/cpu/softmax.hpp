// Row-wise softmax family over rows of length n (the last axis), OpenMP-parallel over rows:
// softmax_rows, log_softmax_rows, logsumexp_rows, softmax_rows_vjp, log_softmax_rows_vjp.
//
// Numerically stable: every exp is taken of x - max(row) <= 0, so ±1e4 inputs and rows of -inf
// neither overflow nor turn into NaN (a row that is entirely -inf has logsumexp -inf and a NaN
// softmax, as in scipy; a NaN anywhere in a row makes that row NaN).
//
// Two passes over memory per row: one read pass keeps a running max and a running sum of
// exp(x - max) (blocks of the row are max-scanned then summed while in L1; the sum is rescaled
// when a block raises the max), then one write pass. Every row is computed by one thread, so
// results are bitwise identical for any thread count. Sums accumulate in double.
//
// The loops are `omp simd` with a branch-free exp (exp_simd below): the compiler vectorises them
// for whatever ISA the including program targets. Self-contained (std + omp.h): generated
// programs include this header. Output may alias the input (y == x, dx == g are fine).
#pragma once

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <stdexcept>

#if defined(__FAST_MATH__)
#error "symdiff/cpu/softmax.hpp needs IEEE arithmetic (exp_simd rounds with (x + c) - c): drop -ffast-math"
#endif

// Everything a row kernel calls is forced inline: it must be compiled inside the ISA wrapper
// (below), not called as a separate baseline function.
#if defined(__GNUC__)
#define SYMDIFF_ROW_INLINE inline __attribute__((always_inline))
#else
#define SYMDIFF_ROW_INLINE inline
#endif

namespace symdiff::cpu {

namespace softmax_detail {

template <class To, class From>
SYMDIFF_ROW_INLINE To bit_cast(From v) {
  static_assert(sizeof(To) == sizeof(From));
#if defined(__GNUC__)
  return __builtin_bit_cast(To, v);  // a plain register move, which the vectoriser handles
#else
  To out;
  std::memcpy(&out, &v, sizeof(To));
  return out;
#endif
}

// exp(x) = 2^k · exp(r), r = x - k·ln2 with |r| <= ln2/2 (ln2 split hi + lo so k·ln2_hi is exact),
// exp(r) by its Taylor polynomial: degree 13 (double) / 7 (float) keeps truncation below 1 ulp.
template <class T>
struct exp_consts;

template <>
struct exp_consts<double> {
  using bits_t = uint64_t;
  static constexpr int mantissa = 52;
  static constexpr bits_t bias = 1023;
  static constexpr double shifter = 0x1.8p52;  // x + shifter rounds x to an integer, kept in the low bits
  // Clamp bounds just past the range: exp(lo) rounds to 0 and exp(hi) to inf by themselves, and
  // k stays where both halves of 2^k are normal numbers.
  static constexpr double lo = -746.0, hi = 710.0;
  static constexpr double log2e = 1.4426950408889634;
  static constexpr double ln2_hi = 6.93147180369123816490e-01, ln2_lo = 1.90821492927058770002e-10;
  static constexpr int degree = 13;
};

template <>
struct exp_consts<float> {
  using bits_t = uint32_t;
  static constexpr int mantissa = 23;
  static constexpr bits_t bias = 127;
  static constexpr float shifter = 0x1.8p23f;
  static constexpr float lo = -104.0f, hi = 89.0f;
  static constexpr float log2e = 1.44269504f;
  static constexpr float ln2_hi = 0.693359375f, ln2_lo = -2.12194440e-4f;
  static constexpr int degree = 7;
};

constexpr double inverse_factorial(int i) { return i <= 1 ? 1.0 : inverse_factorial(i - 1) / i; }

// 1/i! + r/(i+1)! + ... + r^(d-i)/d!, nested (Horner), unrolled at compile time: no loop in the
// caller's loop body, which the vectoriser would reject.
template <class T, int I, int D>
SYMDIFF_ROW_INLINE T taylor_tail(T r) {
  constexpr T c = static_cast<T>(inverse_factorial(I));
  if constexpr (I == D) return c;
  else return c + r * taylor_tail<T, I + 1, D>(r);
}

// 2^k for an integral k in the normal exponent range: k is placed straight into the exponent bits.
template <class T>
SYMDIFF_ROW_INLINE T pow2_int(T k) {
  using C = exp_consts<T>;
  using bits_t = typename C::bits_t;
  const bits_t b = bit_cast<bits_t>(k + C::shifter);  // low mantissa bits hold k (two's complement)
  return bit_cast<T>(static_cast<bits_t>((b << C::mantissa) + (C::bias << C::mantissa)));
}

// Branch-free exp, vectorisable inside `omp simd` loops. Within a few ulp; gradual underflow kept
// (2^k is applied as two factors so results below the normal range round once, like libm);
// exp(-inf) = 0, exp(+inf) = inf, exp(NaN) = NaN (the clamp lets NaN through).
// Clamp to [lo, hi] by integer masks: a floating-point select here is turned into a branch that
// -ftrapping-math (GCC's default) then refuses to if-convert, and the loop stays scalar. NaN passes.
template <class T>
SYMDIFF_ROW_INLINE T clamp_exp_arg(T x) {
  using C = exp_consts<T>;
  using bits_t = typename C::bits_t;
  const bits_t below = bits_t(0) - bits_t(x < C::lo), above = bits_t(0) - bits_t(x > C::hi);
  const bits_t b = (bit_cast<bits_t>(x) & ~(below | above)) | (bit_cast<bits_t>(C::lo) & below) |
                   (bit_cast<bits_t>(C::hi) & above);
  return bit_cast<T>(b);
}

template <class T>
SYMDIFF_ROW_INLINE T exp_simd(T x) {
  using C = exp_consts<T>;
  const T xc = clamp_exp_arg(x);
  const T k = (xc * C::log2e + C::shifter) - C::shifter;
  const T r = (xc - k * C::ln2_hi) - k * C::ln2_lo;
  const T p = taylor_tail<T, 0, C::degree>(r);
  const T k1 = (k * T(0.5) + C::shifter) - C::shifter;
  return p * pow2_int(k1) * pow2_int(k - k1);  // no selects after the clamp: they defeat if-conversion
}

// The shift subtracted before exp: the row max, or 0 when the max is ±inf (so that exp sees
// -inf - 0 = -inf -> 0 instead of -inf - -inf = NaN).
template <class T>
struct row_stats {
  T shift;
  double sum;  // sum of exp(x - shift); logsumexp = shift + log(sum)
};

// The one read pass: per block, max then sum of exp(x - running max) while the block is in L1.
template <class T>
SYMDIFF_ROW_INLINE row_stats<T> online_max_sum(const T* x, int64_t n) {
  constexpr int64_t block = 1024;
  constexpr T neg_inf = -std::numeric_limits<T>::infinity();
  T m = neg_inf, shift = T(0);
  double s = 0;
  for (int64_t j0 = 0; j0 < n; j0 += block) {
    const T* xb = x + j0;
    const int64_t len = std::min(block, n - j0);
    T bm = neg_inf;
#pragma omp simd reduction(max : bm)
    for (int64_t j = 0; j < len; ++j) bm = xb[j] > bm ? xb[j] : bm;  // NaN is skipped here, caught by the sum
    if (bm > m) {
      const T new_shift = std::isfinite(bm) ? bm : T(0);
      // s == 0 means every earlier entry was -inf: nothing to rescale (and exp(0 - bm) may be inf)
      if (s != 0) s *= std::exp(static_cast<double>(shift) - static_cast<double>(new_shift));
      m = bm;
      shift = new_shift;
    }
    double bs = 0;
#pragma omp simd reduction(+ : bs)
    for (int64_t j = 0; j < len; ++j) bs += static_cast<double>(exp_simd<T>(xb[j] - shift));
    s += bs;
  }
  return {shift, s};
}

// ---------------------------------------------------------------- one row each
// Each row kernel is a functor over its pointers and row strides; operator()(r) is always
// inlined, so it lands in the ISA wrapper that calls it and is vectorised for that ISA.

template <class T>
struct softmax_row {
  const T* x;
  T* y;
  int64_t n, ld_x, ld_y;
  SYMDIFF_ROW_INLINE void operator()(int64_t r) const {
    const T* xr = x + r * ld_x;
    T* yr = y + r * ld_y;
    const row_stats<T> st = online_max_sum(xr, n);
    const T inv = static_cast<T>(1.0 / st.sum);
#pragma omp simd
    for (int64_t j = 0; j < n; ++j) yr[j] = exp_simd<T>(xr[j] - st.shift) * inv;
  }
};

// y = (x - max) - log(sum): x - max is exact near the max, so y keeps its digits there.
template <class T>
struct log_softmax_row {
  const T* x;
  T* y;
  int64_t n, ld_x, ld_y;
  SYMDIFF_ROW_INLINE void operator()(int64_t r) const {
    const T* xr = x + r * ld_x;
    T* yr = y + r * ld_y;
    const row_stats<T> st = online_max_sum(xr, n);
    const T log_sum = static_cast<T>(std::log(st.sum));
#pragma omp simd
    for (int64_t j = 0; j < n; ++j) yr[j] = (xr[j] - st.shift) - log_sum;
  }
};

template <class T>
struct logsumexp_row {
  const T* x;
  T* out;
  int64_t n, ld_x;
  SYMDIFF_ROW_INLINE void operator()(int64_t r) const {
    const row_stats<T> st = online_max_sum(x + r * ld_x, n);
    out[r] = static_cast<T>(static_cast<double>(st.shift) + std::log(st.sum));
  }
};

template <class T>
struct softmax_vjp_row {
  const T *y, *g;
  T* dx;
  int64_t n, ld_y, ld_g, ld_dx;
  SYMDIFF_ROW_INLINE void operator()(int64_t r) const {
    const T* yr = y + r * ld_y;
    const T* gr = g + r * ld_g;
    T* dr = dx + r * ld_dx;
    double dot = 0;
#pragma omp simd reduction(+ : dot)
    for (int64_t j = 0; j < n; ++j) dot += static_cast<double>(gr[j]) * static_cast<double>(yr[j]);
    const T d = static_cast<T>(dot);
#pragma omp simd
    for (int64_t j = 0; j < n; ++j) dr[j] = yr[j] * (gr[j] - d);
  }
};

template <class T>
struct log_softmax_vjp_row {
  const T *y, *g;
  T* dx;
  int64_t n, ld_y, ld_g, ld_dx;
  SYMDIFF_ROW_INLINE void operator()(int64_t r) const {
    const T* yr = y + r * ld_y;
    const T* gr = g + r * ld_g;
    T* dr = dx + r * ld_dx;
    double sum = 0;
#pragma omp simd reduction(+ : sum)
    for (int64_t j = 0; j < n; ++j) sum += static_cast<double>(gr[j]);
    const T sg = static_cast<T>(sum);
#pragma omp simd
    for (int64_t j = 0; j < n; ++j) dr[j] = gr[j] - exp_simd<T>(yr[j]) * sg;
  }
};

// ---------------------------------------------------------------- ISA dispatch
// The same row bodies compiled twice: for the baseline the program is built for, and for
// AVX2+FMA (on baseline x86-64 the double-precision exp loops do not vectorise; FMA also
// contracts the polynomial). Picked at run time; results are deterministic on a given machine.
template <class Row>
void rows_baseline(const Row& row, int64_t r0, int64_t r1) {
  for (int64_t r = r0; r < r1; ++r) row(r);
}

#if defined(__GNUC__) && defined(__x86_64__)
#define SYMDIFF_SOFTMAX_AVX2 1
template <class Row>
__attribute__((target("avx2,fma"))) void rows_avx2(const Row& row, int64_t r0, int64_t r1) {
  for (int64_t r = r0; r < r1; ++r) row(r);
}
#endif

inline bool cpu_has_avx2_fma() {
#ifdef SYMDIFF_SOFTMAX_AVX2
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#else
  return false;
#endif
}

inline int& isa_override() {  // -1: automatic. Tests pin the baseline path on an AVX2 machine.
  static int isa = -1;
  return isa;
}

}  // namespace softmax_detail

enum class softmax_isa { baseline = 0, avx2 = 1 };

inline softmax_isa current_softmax_isa() {
  static const bool avx2 = softmax_detail::cpu_has_avx2_fma();
  const int pinned = softmax_detail::isa_override();
  if (pinned >= 0) return static_cast<softmax_isa>(pinned);
  return avx2 ? softmax_isa::avx2 : softmax_isa::baseline;
}

// -1 restores the automatic choice; pinning AVX2 on a CPU without it throws std::invalid_argument.
inline void set_softmax_isa(int isa) {
  if (isa == static_cast<int>(softmax_isa::avx2) && !softmax_detail::cpu_has_avx2_fma())
    throw std::invalid_argument("set_softmax_isa: this CPU has no AVX2+FMA");
  softmax_detail::isa_override() = isa < 0 ? -1 : isa;
}

namespace softmax_detail {

// One static chunk of rows per thread: every row is computed by exactly one thread.
template <class Row>
void run_rows(const Row& row, int64_t rows, int64_t n) {
  const bool avx2 = current_softmax_isa() == softmax_isa::avx2;
  const bool parallel = rows > 1 && rows * n >= 16384 && omp_get_max_threads() > 1;
#pragma omp parallel if (parallel)
  {
    const int t = omp_get_thread_num(), nt = omp_get_num_threads();
    const int64_t chunk = (rows + nt - 1) / nt, r0 = std::min<int64_t>(rows, t * chunk),
                  r1 = std::min<int64_t>(rows, r0 + chunk);
#ifdef SYMDIFF_SOFTMAX_AVX2
    if (avx2) rows_avx2(row, r0, r1);
    else
#endif
      rows_baseline(row, r0, r1);
    (void)avx2;
  }
}

}  // namespace softmax_detail

// ---------------------------------------------------------------- public kernels
// Rows are ld_* elements apart (ld >= n); the overloads without strides take contiguous rows.

// y[r, :] = exp(x[r, :] - max) / sum(exp(x[r, :] - max)).
template <class T>
void softmax_rows(const T* x, T* y, int64_t rows, int64_t n, int64_t ld_x, int64_t ld_y) {
  softmax_detail::run_rows(softmax_detail::softmax_row<T>{x, y, n, ld_x, ld_y}, rows, n);
}

template <class T>
void log_softmax_rows(const T* x, T* y, int64_t rows, int64_t n, int64_t ld_x, int64_t ld_y) {
  softmax_detail::run_rows(softmax_detail::log_softmax_row<T>{x, y, n, ld_x, ld_y}, rows, n);
}

// out[r] = log(sum(exp(x[r, :]))); an empty or all -inf row gives -inf.
template <class T>
void logsumexp_rows(const T* x, T* out, int64_t rows, int64_t n, int64_t ld_x) {
  softmax_detail::run_rows(softmax_detail::logsumexp_row<T>{x, out, n, ld_x}, rows, n);
}

// Given y = softmax(x) and the cotangent g: dx = y ⊙ (g - Σ g⊙y), per row.
template <class T>
void softmax_rows_vjp(const T* y, const T* g, T* dx, int64_t rows, int64_t n, int64_t ld_y, int64_t ld_g,
                      int64_t ld_dx) {
  softmax_detail::run_rows(softmax_detail::softmax_vjp_row<T>{y, g, dx, n, ld_y, ld_g, ld_dx}, rows, n);
}

// Given y = log_softmax(x) (the output, as softmax_rows_vjp takes softmax's) and the cotangent g:
// dx = g - softmax(x) · Σg, with softmax(x) = exp(y).
template <class T>
void log_softmax_rows_vjp(const T* y, const T* g, T* dx, int64_t rows, int64_t n, int64_t ld_y, int64_t ld_g,
                          int64_t ld_dx) {
  softmax_detail::run_rows(softmax_detail::log_softmax_vjp_row<T>{y, g, dx, n, ld_y, ld_g, ld_dx}, rows, n);
}

template <class T>
void softmax_rows(const T* x, T* y, int64_t rows, int64_t n) { softmax_rows(x, y, rows, n, n, n); }
template <class T>
void log_softmax_rows(const T* x, T* y, int64_t rows, int64_t n) { log_softmax_rows(x, y, rows, n, n, n); }
template <class T>
void logsumexp_rows(const T* x, T* out, int64_t rows, int64_t n) { logsumexp_rows(x, out, rows, n, n); }
template <class T>
void softmax_rows_vjp(const T* y, const T* g, T* dx, int64_t rows, int64_t n) {
  softmax_rows_vjp(y, g, dx, rows, n, n, n, n);
}
template <class T>
void log_softmax_rows_vjp(const T* y, const T* g, T* dx, int64_t rows, int64_t n) {
  log_softmax_rows_vjp(y, g, dx, rows, n, n, n, n);
}

}  // namespace symdiff::cpu

#undef SYMDIFF_ROW_INLINE  // expanded above; keep the including program's macro namespace clean
#undef SYMDIFF_SOFTMAX_AVX2
