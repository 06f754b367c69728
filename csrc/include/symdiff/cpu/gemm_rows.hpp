// GEMM with at most 4 rows of C and a row-major B: vector-matrix products (one sample through a
// layer, an RNN step at batch 1).
//
// The general kernels hold a tile of C in registers and walk B a panel (48 columns) at a time
// down all of K: for one row of A that is a strided walk over B, one page per K step, with a
// tile of 4 rows computing 1. Here B is streamed row by row instead, 4 rows of B per step, into
// accumulators for a chunk of C kept in a small buffer (L1), so the memory system sees one
// sequential read of B. Measured with 1 thread, float32: 1x1024x1024 194 -> 55 µs (numpy 53),
// 1x784x100 9.8 -> 4.4 µs (numpy 4.1), 2x1024x1024 59 µs (numpy 453, which runs its GEMM).
//
// Used by gemm() for the AVX-512 kernels only; see use_rows().
#pragma once

#include <omp.h>

#include <algorithm>
#include <cstdint>

#include "symdiff/cpu/gemm_kernels.hpp"

namespace symdiff::cpu::gemm_detail {

constexpr int kRowsMaxM = 4;

// Whether the kernels for products with few rows are compiled: these row-streaming kernels and
// the one-row tiles of gemm.hpp. The extension module builds them. A generated program defines
// this to 0 unless one of its products has m <= 4 or m % 8 == 1, since compiling them costs it
// about 0.4 s (gemm<float>: 1.65 -> 2.07 s).
#ifndef SYMDIFF_GEMM_FEW_ROWS
#define SYMDIFF_GEMM_FEW_ROWS 1
#endif

#ifdef SYMDIFF_GEMM_X86

// C[0:M, 0:w] = alpha * op(A)[0:M, :] · B[:, 0:w] + beta * C, with A(r, p) at a[r * a_sr + p * a_sp];
// acc is scratch for M * w values (rounded up to whole vectors), 64-byte aligned.
template <class T, int M>
__attribute__((target("avx512f,avx512dq,avx512vl,fma,avx2"))) void rows_chunk_avx512(
    int64_t k, const T* a, int64_t a_sr, int64_t a_sp, const T* b, int64_t ldb, int64_t w, T alpha, T beta, T* c,
    int64_t ldc, T* acc) {
  using traits = avx512<T>;
  using vec = typename traits::vec;
  using mask_t = typename traits::mask;
  constexpr int L = traits::lanes;
  const int64_t full = w / L, rest = w - full * L;
  const mask_t tail = mask_t((1u << rest) - 1);
  const int64_t vectors = full + (rest ? 1 : 0);
  for (int64_t i = 0; i < M * vectors * L; ++i) acc[i] = T(0);

  int64_t p = 0;
  for (; p + 4 <= k; p += 4) {  // four rows of B per pass over the accumulators
    vec av[M][4];
#pragma GCC unroll 4
    for (int r = 0; r < M; ++r)
#pragma GCC unroll 4
      for (int q = 0; q < 4; ++q) av[r][q] = v_set1(a[r * a_sr + (p + q) * a_sp]);
    const T* b0 = b + p * ldb;
    for (int64_t v = 0; v < vectors; ++v) {
      const mask_t m = v < full ? mask_t(~mask_t(0)) : tail;
      vec bv[4];
#pragma GCC unroll 4
      for (int q = 0; q < 4; ++q) bv[q] = v_load(b0 + q * ldb + v * L, m);
#pragma GCC unroll 4
      for (int r = 0; r < M; ++r) {
        T* ar = acc + (r * vectors + v) * L;
        vec x = v_load(ar);
#pragma GCC unroll 4
        for (int q = 0; q < 4; ++q) x = v_fma(av[r][q], bv[q], x);
        _mm_prefetch(reinterpret_cast<const char*>(ar + L), _MM_HINT_T0);
        v_store(ar, mask_t(~mask_t(0)), x);
      }
    }
  }
  for (; p < k; ++p) {
    vec av[M];
#pragma GCC unroll 4
    for (int r = 0; r < M; ++r) av[r] = v_set1(a[r * a_sr + p * a_sp]);
    const T* bp = b + p * ldb;
    for (int64_t v = 0; v < vectors; ++v) {
      const vec bv = v_load(bp + v * L, v < full ? mask_t(~mask_t(0)) : tail);
#pragma GCC unroll 4
      for (int r = 0; r < M; ++r) {
        T* ar = acc + (r * vectors + v) * L;
        v_store(ar, mask_t(~mask_t(0)), v_fma(av[r], bv, v_load(ar)));
      }
    }
  }

  const vec va = v_set1(alpha), vb = v_set1(beta);
  const bool zero_beta = beta == T(0);
#pragma GCC unroll 4
  for (int r = 0; r < M; ++r) {
    T* cr = c + r * ldc;
    for (int64_t v = 0; v < vectors; ++v) {
      const mask_t m = v < full ? mask_t(~mask_t(0)) : tail;
      vec x = v_mul(va, v_load(acc + (r * vectors + v) * L));
      if (!zero_beta) x = v_fma(vb, v_load(cr + v * L, m), x);  // C is not read when beta == 0
      v_store(cr + v * L, m, x);
    }
  }
}

template <class T>
using rows_fn = void (*)(int64_t, const T*, int64_t, int64_t, const T*, int64_t, int64_t, T, T, T*, int64_t, T*);

// A switch, not a static table: a function-local static would be one process-wide (GNU unique)
// object shared by every loaded program.
template <class T>
rows_fn<T> rows_kernel(int m) {
  switch (m) {
    case 1: return rows_chunk_avx512<T, 1>;
    case 2: return rows_chunk_avx512<T, 2>;
    case 3: return rows_chunk_avx512<T, 3>;
    default: return rows_chunk_avx512<T, 4>;
  }
}

#endif  // SYMDIFF_GEMM_X86

// Whether gemm() takes this route: a few rows, B row-major and wide enough to stream.
template <class T>
bool use_rows(bool avx512, bool tb, int64_t m, int64_t n) {
#ifdef SYMDIFF_GEMM_X86
  return avx512 && !tb && m <= kRowsMaxM && n >= 64 / int64_t(sizeof(T));
#else
  (void)avx512, (void)tb, (void)m, (void)n;
  return false;
#endif
}

// C (m <= 4 rows) = alpha * op(A) · B + beta * C for row-major B; column chunks go to the threads.
// scratch_fn(count) returns the calling thread's 64-byte aligned scratch of at least count values.
template <class T>
void gemm_rows(bool ta, int64_t m, int64_t n, int64_t k, T alpha, const T* a, int64_t lda, const T* b, int64_t ldb,
               T beta, T* c, int64_t ldc, int threads, T* (*scratch_fn)(int64_t)) {
#ifdef SYMDIFF_GEMM_X86
  // Columns per chunk: the accumulators fill 16 KB of L1, and every thread gets a chunk.
  constexpr int64_t L = 64 / sizeof(T);
  int64_t width = std::max<int64_t>(L, 16384 / int64_t(sizeof(T)) / m / L * L);
  if (threads > 1) width = std::min(width, ((n + threads - 1) / threads + L - 1) / L * L);
  const int64_t chunks = (n + width - 1) / width;
  const int64_t a_sr = ta ? 1 : lda, a_sp = ta ? lda : 1;
  const rows_fn<T> fn = rows_kernel<T>(int(m));
  auto run = [&](int64_t ch) {
    const int64_t j0 = ch * width, w = std::min(width, n - j0);
    fn(k, a, a_sr, a_sp, b + j0, ldb, w, alpha, beta, c + j0, ldc, scratch_fn(m * width));
  };
  if (threads <= 1 || chunks <= 1) {
    for (int64_t ch = 0; ch < chunks; ++ch) run(ch);
    return;
  }
#pragma omp parallel for schedule(static) num_threads(threads)
  for (int64_t ch = 0; ch < chunks; ++ch) run(ch);
#else
  (void)ta, (void)m, (void)n, (void)k, (void)alpha, (void)a, (void)lda, (void)b, (void)ldb, (void)beta, (void)c,
      (void)ldc, (void)threads, (void)scratch_fn;
#endif
}

}  // namespace symdiff::cpu::gemm_detail
