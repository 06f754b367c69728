// GEMM with few output columns (n <= 12: a 10-class output layer, a matrix-vector product).
//
// The general kernels vectorise along N: with n = 10 a 16-lane AVX-512 tile is 10/16 used and an
// 8-lane double tile pair 10/16. Here no lane is wasted except at one edge:
//   - transposed A (stored k x m): Cᵀ = op(B)ᵀ · Aᵀ with vectors along M, read in place; a tile
//     holds the n rows of Cᵀ, V vectors of M wide, written back through in-register transposes;
//   - row-major A: dot-product form with vectors along K, R rows of A against (a chunk of) the
//     n columns of op(B) held as rows (B itself when transposed, else a small transposed copy);
//     each accumulator is reduced across its lanes at the end by a shuffle tree.
// Measured at 100x100x10, 1 thread, against the general kernels: float32 1.6x (Aᵀ) and 1.2-1.3x
// (A); float64 1.7x and 1.7x.
//
// Used by gemm() for the AVX-512 kernels only; see use_narrow().
#pragma once

#include <omp.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <initializer_list>
#include <utility>

#include "symdiff/cpu/gemm_kernels.hpp"

namespace symdiff::cpu::gemm_detail {

constexpr int kNarrowMaxN = 12;

// The widths whose narrow kernels are compiled. The extension module builds all of them; a
// generated program defines the list to the widths of its own products (or 0), since compiling
// all of them costs it about half a second.
#ifndef SYMDIFF_GEMM_NARROW_WIDTHS
#define SYMDIFF_GEMM_NARROW_WIDTHS 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12
#endif
constexpr unsigned narrow_mask(std::initializer_list<int> widths) {
  unsigned mask = 0;
  for (int w : widths)
    if (w >= 1 && w <= kNarrowMaxN) mask |= 1u << (w - 1);
  return mask;
}

// Bit nj - 1: the kernels for width nj are built. The tables below take it as a template argument,
// so that their function-local statics (process-wide STB_GNU_UNIQUE symbols with GCC) differ
// between programs built with different lists: generated programs are loaded side by side.
constexpr unsigned kNarrowMask = narrow_mask({SYMDIFF_GEMM_NARROW_WIDTHS});

constexpr bool narrow_width_built(int nj, unsigned mask = kNarrowMask) {
  return nj >= 1 && nj <= kNarrowMaxN && ((mask >> (nj - 1)) & 1u);
}

// Vectors of M per tile for NJ columns: about 24 accumulators, at most 4 vectors.
constexpr int narrow_vectors(int nj) { return std::clamp(24 / nj, 1, 4); }

template <class T>
using narrow_fn = void (*)(int64_t k, const T* at, int64_t at_ld, int w, const T* b, int64_t b_sp, int64_t b_sj,
                           T* c, int64_t ldc, T alpha, T beta);

#ifdef SYMDIFF_GEMM_X86

// r[i] <- column i of the L x L matrix whose rows are r[0..L): 16 x 16 floats in 64 shuffles,
// 8 x 8 doubles in 24 (pairs within 128-bit lanes, then 128-bit lanes across registers).
__attribute__((target("avx512f,avx512dq,avx512vl,fma,avx2"), always_inline)) inline void transpose_in_registers(
    __m512 (&r)[16]) {
  __m512 t[16], u[16];
#pragma GCC unroll 8
  for (int k = 0; k < 8; ++k) {
    t[2 * k] = _mm512_unpacklo_ps(r[2 * k], r[2 * k + 1]);
    t[2 * k + 1] = _mm512_unpackhi_ps(r[2 * k], r[2 * k + 1]);
  }
  // u[4k + c], 128-bit lane q: column 4q + c of rows 4k .. 4k + 3
#pragma GCC unroll 4
  for (int k = 0; k < 4; ++k) {
    u[4 * k + 0] = _mm512_shuffle_ps(t[4 * k], t[4 * k + 2], _MM_SHUFFLE(1, 0, 1, 0));
    u[4 * k + 1] = _mm512_shuffle_ps(t[4 * k], t[4 * k + 2], _MM_SHUFFLE(3, 2, 3, 2));
    u[4 * k + 2] = _mm512_shuffle_ps(t[4 * k + 1], t[4 * k + 3], _MM_SHUFFLE(1, 0, 1, 0));
    u[4 * k + 3] = _mm512_shuffle_ps(t[4 * k + 1], t[4 * k + 3], _MM_SHUFFLE(3, 2, 3, 2));
  }
#pragma GCC unroll 4
  for (int c = 0; c < 4; ++c) {
    const __m512 v0 = _mm512_shuffle_f32x4(u[c], u[4 + c], 0x88), v1 = _mm512_shuffle_f32x4(u[c], u[4 + c], 0xDD);
    const __m512 w0 = _mm512_shuffle_f32x4(u[8 + c], u[12 + c], 0x88);
    const __m512 w1 = _mm512_shuffle_f32x4(u[8 + c], u[12 + c], 0xDD);
    r[c] = _mm512_shuffle_f32x4(v0, w0, 0x88);
    r[8 + c] = _mm512_shuffle_f32x4(v0, w0, 0xDD);
    r[4 + c] = _mm512_shuffle_f32x4(v1, w1, 0x88);
    r[12 + c] = _mm512_shuffle_f32x4(v1, w1, 0xDD);
  }
}

__attribute__((target("avx512f,avx512dq,avx512vl,fma,avx2"), always_inline)) inline void transpose_in_registers(
    __m512d (&r)[8]) {
  __m512d t[8];
#pragma GCC unroll 4
  for (int k = 0; k < 4; ++k) {  // t[2k + c], 128-bit lane q: column 2q + c of rows 2k, 2k + 1
    t[2 * k] = _mm512_unpacklo_pd(r[2 * k], r[2 * k + 1]);
    t[2 * k + 1] = _mm512_unpackhi_pd(r[2 * k], r[2 * k + 1]);
  }
#pragma GCC unroll 2
  for (int c = 0; c < 2; ++c) {
    const __m512d v0 = _mm512_shuffle_f64x2(t[c], t[2 + c], 0x88), v1 = _mm512_shuffle_f64x2(t[c], t[2 + c], 0xDD);
    const __m512d w0 = _mm512_shuffle_f64x2(t[4 + c], t[6 + c], 0x88);
    const __m512d w1 = _mm512_shuffle_f64x2(t[4 + c], t[6 + c], 0xDD);
    r[c] = _mm512_shuffle_f64x2(v0, w0, 0x88);
    r[4 + c] = _mm512_shuffle_f64x2(v0, w0, 0xDD);
    r[2 + c] = _mm512_shuffle_f64x2(v1, w1, 0x88);
    r[6 + c] = _mm512_shuffle_f64x2(v1, w1, 0xDD);
  }
}

// C[0:w, 0:NJ] = alpha * Σ_p at[p * at_ld + i] * B(p, j) + beta * C, with B(p, j) = b[p * b_sp + j * b_sj]
// and w <= V * lanes (lanes past w are masked: never loaded, never stored).
template <class T, int NJ, int V>
__attribute__((target("avx512f,avx512dq,avx512vl,fma,avx2"))) void narrow_tile_avx512(
    int64_t k, const T* at, int64_t at_ld, int w, const T* b, int64_t b_sp, int64_t b_sj, T* c, int64_t ldc,
    T alpha, T beta) {
  using traits = avx512<T>;
  using vec = typename traits::vec;
  using mask_t = typename traits::mask;
  constexpr int L = traits::lanes;
  mask_t mask[V];
  lane_masks<T, V>(mask, w);
  vec acc[NJ][V];
#pragma GCC unroll 16
  for (int j = 0; j < NJ; ++j)
#pragma GCC unroll 4
    for (int v = 0; v < V; ++v) acc[j][v] = v_zero(T());

  for (int64_t p = 0; p < k; ++p) {
    vec av[V];
#pragma GCC unroll 4
    for (int v = 0; v < V; ++v) av[v] = v_load(at + v * L, mask[v]);
    const T* bp = b + p * b_sp;
#pragma GCC unroll 16
    for (int j = 0; j < NJ; ++j) {
      const vec bj = v_set1(bp[j * b_sj]);
#pragma GCC unroll 4
      for (int v = 0; v < V; ++v) acc[j][v] = v_fma(av[v], bj, acc[j][v]);
    }
    at += at_ld;
  }

  // Write back transposed: groups of L rows of Cᵀ (NJ padded with zeros) become L rows of C.
  const vec va = v_set1(alpha), vb = v_set1(beta);
  const bool unit_alpha = alpha == T(1), zero_beta = beta == T(0);
#pragma GCC unroll 2
  for (int g = 0; g < NJ; g += L) {
    const int cols = std::min(L, NJ - g);
    const mask_t cmask = cols >= L ? mask_t(~mask_t(0)) : mask_t((1u << cols) - 1);
#pragma GCC unroll 4
    for (int v = 0; v < V; ++v) {
      if (v * L >= w) break;
      vec r[L];
#pragma GCC unroll 16
      for (int jj = 0; jj < L; ++jj) r[jj] = g + jj < NJ ? acc[g + jj][v] : v_zero(T());
      transpose_in_registers(r);
      const int rows = std::min(L, w - v * L);
      T* cv = c + int64_t(v) * L * ldc + g;
      for (int ii = 0; ii < rows; ++ii) {
        vec x = unit_alpha ? r[ii] : v_mul(va, r[ii]);
        if (!zero_beta) x = v_fma(vb, v_load(cv + ii * ldc, cmask), x);
        v_store(cv + ii * ldc, cmask, x);
      }
    }
  }
}

// dst[p * ld_dst + i] = a[i * lda + p] for i < rows, p < k (rows <= ld_dst, ld_dst a multiple of the
// lanes): L x L blocks through transpose_in_registers; rows past `rows` up to the next multiple of
// L come out as zeros; the K edge is a masked load and fewer stores. Never reads outside A.
template <class T>
__attribute__((target("avx512f,avx512dq,avx512vl,fma,avx2"))) void pack_transposed_avx512(
    const T* a, int64_t lda, int rows, int64_t k, T* dst, int64_t ld_dst) {
  using traits = avx512<T>;
  using vec = typename traits::vec;
  using mask_t = typename traits::mask;
  constexpr int L = traits::lanes;
  for (int i0 = 0; i0 < rows; i0 += L) {
    const int ri = std::min(L, rows - i0);
    for (int64_t p = 0; p < k; p += L) {
      const int cols = int(std::min<int64_t>(L, k - p));
      const mask_t m = cols >= L ? mask_t(~mask_t(0)) : mask_t((1u << cols) - 1);
      vec r[L];
#pragma GCC unroll 16
      for (int i = 0; i < L; ++i) r[i] = i < ri ? v_load(a + (i0 + i) * lda + p, m) : v_zero(T());
      transpose_in_registers(r);
      T* d = dst + p * ld_dst + i0;
      for (int q = 0; q < cols; ++q) v_store(d + q * ld_dst, mask_t(~mask_t(0)), r[q]);
    }
  }
}

// One vector whose lane j is the sum of the lanes of x[j], for j < NJ <= L: a tree of merges that
// halves the vectors and the partial sums at each level (3 instructions a merge). The last level
// leaves input slot 4t + q in lane 4q + t (float) / 2q + t (double): see reduce_lane.
__attribute__((target("avx512f,avx512dq,avx512vl,fma,avx2"), always_inline)) inline __m512 reduce_lanes(
    const __m512 (&x)[16]) {
  __m512 s[8], u[4], w[2];
#pragma GCC unroll 8
  for (int i = 0; i < 8; ++i)
    s[i] = _mm512_add_ps(_mm512_shuffle_f32x4(x[2 * i], x[2 * i + 1], 0x44),
                         _mm512_shuffle_f32x4(x[2 * i], x[2 * i + 1], 0xEE));
#pragma GCC unroll 4
  for (int i = 0; i < 4; ++i)  // 128-bit lane q of u[i]: partial sums of slot 4i + q
    u[i] = _mm512_add_ps(_mm512_shuffle_f32x4(s[2 * i], s[2 * i + 1], 0x88),
                         _mm512_shuffle_f32x4(s[2 * i], s[2 * i + 1], 0xDD));
#pragma GCC unroll 2
  for (int i = 0; i < 2; ++i)
    w[i] = _mm512_add_ps(_mm512_unpacklo_ps(u[2 * i], u[2 * i + 1]), _mm512_unpackhi_ps(u[2 * i], u[2 * i + 1]));
  return _mm512_add_ps(_mm512_shuffle_ps(w[0], w[1], _MM_SHUFFLE(1, 0, 1, 0)),
                       _mm512_shuffle_ps(w[0], w[1], _MM_SHUFFLE(3, 2, 3, 2)));
}

__attribute__((target("avx512f,avx512dq,avx512vl,fma,avx2"), always_inline)) inline __m512d reduce_lanes(
    const __m512d (&x)[8]) {
  __m512d s[4], u[2];
#pragma GCC unroll 4
  for (int i = 0; i < 4; ++i)
    s[i] = _mm512_add_pd(_mm512_shuffle_f64x2(x[2 * i], x[2 * i + 1], 0x44),
                         _mm512_shuffle_f64x2(x[2 * i], x[2 * i + 1], 0xEE));
#pragma GCC unroll 2
  for (int i = 0; i < 2; ++i)
    u[i] = _mm512_add_pd(_mm512_shuffle_f64x2(s[2 * i], s[2 * i + 1], 0x88),
                         _mm512_shuffle_f64x2(s[2 * i], s[2 * i + 1], 0xDD));
  return _mm512_add_pd(_mm512_unpacklo_pd(u[0], u[1]), _mm512_unpackhi_pd(u[0], u[1]));
}

// Output lane of input slot s for reduce_lanes (slot 4t + q comes out at lane 4q + t / 2q + t).
template <int L>
constexpr int reduce_lane(int s) {
  return L == 16 ? 4 * (s % 4) + s / 4 : 2 * (s % 4) + s / 4;
}

// One vector step along K of the dot tile below (FULL: no mask).
template <class T, int R, int NJ, bool FULL>
__attribute__((target("avx512f,avx512dq,avx512vl,fma,avx2"), always_inline)) inline void dot_step(
    typename avx512<T>::vec (&acc)[R][NJ], const T* a, int64_t lda, const T* bt, int64_t ld_bt,
    typename avx512<T>::mask m) {
  typename avx512<T>::vec av[R];
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r) av[r] = FULL ? v_load(a + r * lda) : v_load(a + r * lda, m);
#pragma GCC unroll 16
  for (int j = 0; j < NJ; ++j) {
    const auto bj = FULL ? v_load(bt + j * ld_bt) : v_load(bt + j * ld_bt, m);
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) acc[r][j] = v_fma(av[r], bj, acc[r][j]);
  }
}

// Row-major A, dot-product form: C[0:R, 0:NJ] = alpha * A[0:R, :] · Btᵀ + beta * C, where Bt holds
// the NJ columns of op(B) as rows (bt[j * ld_bt + p]). Vectors run along K; each accumulator is
// reduced across its lanes at the end (reduce_lanes) and a row of C is one masked store. Exactly
// R rows of A are read (the edge rows use R = 1).
template <class T, int R, int NJ>
__attribute__((target("avx512f,avx512dq,avx512vl,fma,avx2"))) void dot_tile_avx512(
    int64_t k, const T* a, int64_t lda, const T* bt, int64_t ld_bt, T* c, int64_t ldc, T alpha, T beta) {
  using traits = avx512<T>;
  using vec = typename traits::vec;
  using mask_t = typename traits::mask;
  constexpr int L = traits::lanes;
  vec acc[R][NJ];
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 16
    for (int j = 0; j < NJ; ++j) acc[r][j] = v_zero(T());
  int64_t p = 0;
  for (; p + L <= k; p += L) dot_step<T, R, NJ, true>(acc, a + p, lda, bt + p, ld_bt, mask_t(~mask_t(0)));
  if (p < k) dot_step<T, R, NJ, false>(acc, a + p, lda, bt + p, ld_bt, mask_t((1u << (k - p)) - 1));

  const vec va = v_set1(alpha), vb = v_set1(beta);
  const bool unit_alpha = alpha == T(1), zero_beta = beta == T(0);
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r) {
#pragma GCC unroll 2
    for (int g = 0; g < NJ; g += L) {
      const int cols = std::min(L, NJ - g);
      const mask_t cmask = cols >= L ? mask_t(~mask_t(0)) : mask_t((1u << cols) - 1);
      vec x[L];
#pragma GCC unroll 16
      for (int s = 0; s < L; ++s) {
        const int lane = reduce_lane<L>(s);
        x[s] = lane < cols ? acc[r][g + lane] : v_zero(T());
      }
      vec sum = reduce_lanes(x);
      if (!unit_alpha) sum = v_mul(va, sum);
      T* cr = c + r * ldc + g;
      if (!zero_beta) sum = v_fma(vb, v_load(cr, cmask), sum);
      v_store(cr, cmask, sum);
    }
  }
}

template <class T>
using dot_fn = void (*)(int64_t k, const T* a, int64_t lda, const T* bt, int64_t ld_bt, T* c, int64_t ldc, T alpha,
                        T beta);

// The float64 dot tiles take at most 6 columns of C at a time: wider C is split into near-equal
// chunks (10 = 5 + 5), each against 4 rows of A. Measured at 100x100x10 against one 10-column
// tile of 2 rows: 15% faster (9 loads per 20 FMAs instead of 12, although each row's lane
// reductions double). Float32, whose 16-lane reductions cost twice as much, was not faster so.
template <class T>
constexpr int dot_max_cols() {
  return sizeof(T) == 8 ? 6 : kNarrowMaxN;
}

// Column counts of the chunks an n-column C is split into: `chunks` near-equal parts.
template <class T>
constexpr int64_t dot_chunks(int64_t n) {
  return (n + dot_max_cols<T>() - 1) / dot_max_cols<T>();
}

// Whether some width built in `mask` has a chunk of nj columns.
template <class T>
constexpr bool dot_chunk_built(int nj, unsigned mask) {
  for (int n = 1; n <= kNarrowMaxN; ++n) {
    if (!narrow_width_built(n, mask)) continue;
    const int64_t chunks = dot_chunks<T>(n);
    if (n / chunks == nj || (n + chunks - 1) / chunks == nj) return true;
  }
  return false;
}

// Rows of A per dot tile for NJ columns: about 24 accumulators, at most 8 rows.
constexpr int dot_rows(int nj) { return std::clamp(24 / nj, 1, 8); }

// Kernel tables: table[nj - 1] = Entries::template at<nj>::get(), a pair of kernels for nj columns
// (or nulls). One static table per (function type, entries): Entries carries the width mask.
template <class Fn, class Entries, std::size_t... I>
constexpr std::array<std::array<Fn, 2>, sizeof...(I)> make_table(std::index_sequence<I...>) {
  return {{Entries::template at<int(I) + 1>::get()...}};
}

template <class Fn, class Entries>
const std::array<std::array<Fn, 2>, kNarrowMaxN>& kernel_table() {
  static constexpr auto table = make_table<Fn, Entries>(std::make_index_sequence<kNarrowMaxN>{});
  return table;
}

// Cᵀ tiles: {full width, one-vector edge} for each width built.
template <class T, unsigned Mask>
struct narrow_entries {
  template <int NJ>
  struct at {
    static constexpr std::array<narrow_fn<T>, 2> get() {
      if constexpr (narrow_width_built(NJ, Mask))
        return {narrow_tile_avx512<T, NJ, narrow_vectors(NJ)>, narrow_tile_avx512<T, NJ, 1>};
      else
        return {nullptr, nullptr};
    }
  };
};

// Dot tiles: {dot_rows(nj) rows, one row} for chunks of nj columns that a built width needs.
template <class T, unsigned Mask>
struct dot_entries {
  template <int NJ>
  struct at {
    static constexpr std::array<dot_fn<T>, 2> get() {
      if constexpr (dot_chunk_built<T>(NJ, Mask))
        return {dot_tile_avx512<T, dot_rows(NJ), NJ>, dot_tile_avx512<T, 1, NJ>};
      else
        return {nullptr, nullptr};
    }
  };
};

template <class T, unsigned Mask>
const auto& narrow_kernels() {
  return kernel_table<narrow_fn<T>, narrow_entries<T, Mask>>();
}

template <class T, unsigned Mask>
const auto& dot_kernels() {
  return kernel_table<dot_fn<T>, dot_entries<T, Mask>>();
}

#endif  // SYMDIFF_GEMM_X86

// Whether gemm() takes the narrow route: few columns that leave general tiles partly empty, and
// enough rows to fill the vectors along M.
template <class T, unsigned Mask = kNarrowMask>
bool use_narrow(bool avx512, int64_t m, int64_t n) {
  constexpr int64_t lanes = 64 / sizeof(T);
  if (!avx512 || n > kNarrowMaxN || n % lanes == 0 || m < lanes) return false;
#ifdef SYMDIFF_GEMM_X86
  return narrow_width_built(int(n), Mask);
#else
  return false;
#endif
}

// Columns gemm() splits off the right edge of a wider product for the narrow kernels: n = 100 in
// float32 is 6 full 16-lane vectors and 4 columns that a general tile would compute 16 wide (12
// of 112 columns wasted). Measured at 784x100x(6 * lanes + w), 1 thread, both layouts of A:
// float32 w <= 8 1.03-1.14x faster split, w = 10, 12 0.97-1.05x; float64 w <= 4 1.06-1.11x,
// w = 6 1.02-1.04x. 0: none (a width not built in this program also gives 0).
template <class T, unsigned Mask = kNarrowMask>
int64_t narrow_tail(bool avx512, int64_t m, int64_t n) {
  constexpr int64_t lanes = 64 / sizeof(T);
  const int64_t tail = n % lanes;
  if (!avx512 || n < lanes || tail == 0 || 2 * tail > lanes || m < lanes) return 0;
#ifdef SYMDIFF_GEMM_X86
  return narrow_width_built(int(tail), Mask) ? tail : 0;
#else
  return 0;
#endif
}

// fn(0) .. fn(blocks - 1), over `threads` threads (no parallel region at all for one: even an
// inactive one costs a few hundred ns, a tenth of a 100x100x10 product).
template <class F>
void for_blocks(int64_t blocks, int threads, const F& fn) {
  if (threads <= 1 || blocks <= 1) {
    for (int64_t blk = 0; blk < blocks; ++blk) fn(blk);
    return;
  }
#pragma omp parallel for schedule(static) num_threads(threads)
  for (int64_t blk = 0; blk < blocks; ++blk) fn(blk);
}

// C for few columns: a transposed A through the Cᵀ tiles (blocks of V * lanes rows), a row-major A
// through the dot tiles (float64 in chunks of at most 6 columns; blocks of dot_rows rows; op(B)
// as rows: B itself when it is transposed, else a small transposed copy). Blocks go to the threads.
template <class T, unsigned Mask = kNarrowMask>
void gemm_narrow(bool ta, bool tb, int64_t m, int64_t n, int64_t k, T alpha, const T* a, int64_t lda,
                 const T* b, int64_t ldb, T beta, T* c, int64_t ldc, int threads, T* (*scratch_fn)(int64_t)) {
#ifdef SYMDIFF_GEMM_X86
  constexpr int L = 64 / sizeof(T);
  if (ta) {
    const auto& fns = narrow_kernels<T, Mask>()[n - 1];
    const int64_t width = int64_t(narrow_vectors(int(n))) * L;
    const int64_t blocks = (m + width - 1) / width;
    const int64_t b_sp = tb ? 1 : ldb, b_sj = tb ? ldb : 1;
    auto block = [&](int64_t blk) {
      const int64_t i0 = blk * width;
      const int w = int(std::min<int64_t>(width, m - i0));
      (w <= L ? fns[1] : fns[0])(k, a + i0, lda, w, b, b_sp, b_sj, c + i0 * ldc, ldc, alpha, beta);
    };
    return for_blocks(blocks, threads, block);
  }
  const T* bt = b;
  int64_t ld_bt = ldb;
  if (!tb) {  // Bt[j, p] = B[p, j]: n x k, rows padded to whole vectors
    ld_bt = (k + L - 1) / L * L;
    T* packed = scratch_fn(ld_bt * ((n + L - 1) / L * L));
    pack_transposed_avx512(b, ldb, int(k), n, packed, ld_bt);
    bt = packed;
  }
  const int64_t chunks = dot_chunks<T>(n);
  for (int64_t ch = 0, j0 = 0; ch < chunks; ++ch) {
    const int64_t cols = (n - j0) / (chunks - ch);  // near-equal chunks: 10 = 5 + 5, 11 = 5 + 6
    const auto& fns = dot_kernels<T, Mask>()[cols - 1];
    const int64_t rows = dot_rows(int(cols)), blocks = (m + rows - 1) / rows;
    const T* btj = bt + j0 * ld_bt;
    T* cj = c + j0;
    auto block = [&](int64_t blk) {
      const int64_t i0 = blk * rows;
      if (i0 + rows <= m) return fns[0](k, a + i0 * lda, lda, btj, ld_bt, cj + i0 * ldc, ldc, alpha, beta);
      for (int64_t i = i0; i < m; ++i) fns[1](k, a + i * lda, lda, btj, ld_bt, cj + i * ldc, ldc, alpha, beta);
    };
    for_blocks(blocks, threads, block);
    j0 += cols;
  }
#else
  (void)ta, (void)tb, (void)m, (void)n, (void)k, (void)alpha, (void)a, (void)lda, (void)b, (void)ldb, (void)beta,
      (void)c, (void)ldc, (void)threads, (void)scratch_fn;
#endif
}

}  // namespace symdiff::cpu::gemm_detail
