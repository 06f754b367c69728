// GEMM microkernels: C[0:mr, 0:nr] = alpha * (A_panel · B_panel) + beta * C for one register tile.
//
// C is row-major, so the vector dimension is N: a tile holds MR rows of C, each NV vectors wide.
// A panel: packed, k-major, MR values per k (rows past the matrix edge are zero padding).
// B panel: NV * lanes values per k, `b_ks` elements apart (the packed width, or ldb when B is
// read in place); columns past nr are never loaded (masked loads), so reading B in place can
// not run off the end of the caller's array.
//
// Every kernel is compiled for its own instruction set with a target attribute: the module
// itself is built for baseline x86-64 and picks a kernel at run time (gemm.hpp).
#pragma once

#include <cstdint>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define SYMDIFF_GEMM_X86 1
#endif

namespace symdiff::cpu::gemm_detail {

template <class T>
using ukernel_fn = void (*)(int64_t kc, const T* a, const T* b, int64_t b_ks, T* c, int64_t ldc, T alpha,
                            T beta, int mr, int nr);

// ---------------------------------------------------------------- portable scalar path
// MR x NR tile in plain C++: the compiler vectorises it for the baseline ISA it is built for.
template <class T, int MR, int NR>
void ukernel_scalar(int64_t kc, const T* a, const T* b, int64_t b_ks, T* c, int64_t ldc, T alpha, T beta,
                    int mr, int nr) {
  T acc[MR][NR] = {};
  if (nr == NR) {
    for (int64_t p = 0; p < kc; ++p, a += MR, b += b_ks)
      for (int r = 0; r < MR; ++r)
        for (int j = 0; j < NR; ++j) acc[r][j] += a[r] * b[j];
  } else {
    for (int64_t p = 0; p < kc; ++p, a += MR, b += b_ks)
      for (int r = 0; r < MR; ++r)
        for (int j = 0; j < nr; ++j) acc[r][j] += a[r] * b[j];
  }
  for (int r = 0; r < mr; ++r)
    for (int j = 0; j < nr; ++j) {
      T v = alpha * acc[r][j];
      c[r * ldc + j] = beta == T(0) ? v : v + beta * c[r * ldc + j];
    }
}

#ifdef SYMDIFF_GEMM_X86

// ---------------------------------------------------------------- AVX-512
// Lane type traits so one template serves float and double.
template <class T>
struct avx512;

template <>
struct avx512<float> {
  using vec = __m512;
  using mask = __mmask16;
  static constexpr int lanes = 16;
};

template <>
struct avx512<double> {
  using vec = __m512d;
  using mask = __mmask8;
  static constexpr int lanes = 8;
};

#define SYMDIFF_AVX512 __attribute__((target("avx512f,avx512dq,avx512vl,fma,avx2"), always_inline)) inline

SYMDIFF_AVX512 __m512 v_zero(float) { return _mm512_setzero_ps(); }
SYMDIFF_AVX512 __m512d v_zero(double) { return _mm512_setzero_pd(); }
SYMDIFF_AVX512 __m512 v_set1(float x) { return _mm512_set1_ps(x); }
SYMDIFF_AVX512 __m512d v_set1(double x) { return _mm512_set1_pd(x); }
SYMDIFF_AVX512 __m512 v_load(const float* p, __mmask16 m) { return _mm512_maskz_loadu_ps(m, p); }
SYMDIFF_AVX512 __m512d v_load(const double* p, __mmask8 m) { return _mm512_maskz_loadu_pd(m, p); }
SYMDIFF_AVX512 __m512 v_load(const float* p) { return _mm512_loadu_ps(p); }
SYMDIFF_AVX512 __m512d v_load(const double* p) { return _mm512_loadu_pd(p); }
SYMDIFF_AVX512 void v_store(float* p, __mmask16 m, __m512 v) { _mm512_mask_storeu_ps(p, m, v); }
SYMDIFF_AVX512 void v_store(double* p, __mmask8 m, __m512d v) { _mm512_mask_storeu_pd(p, m, v); }
SYMDIFF_AVX512 __m512 v_fma(__m512 a, __m512 b, __m512 c) { return _mm512_fmadd_ps(a, b, c); }
SYMDIFF_AVX512 __m512d v_fma(__m512d a, __m512d b, __m512d c) { return _mm512_fmadd_pd(a, b, c); }
SYMDIFF_AVX512 __m512 v_mul(__m512 a, __m512 b) { return _mm512_mul_ps(a, b); }
SYMDIFF_AVX512 __m512d v_mul(__m512d a, __m512d b) { return _mm512_mul_pd(a, b); }

// MR rows x NV vectors of accumulators (MR * NV <= 28 of the 32 zmm registers).
template <class T, int MR, int NV>
__attribute__((target("avx512f,avx512dq,avx512vl,fma,avx2"))) void ukernel_avx512(
    int64_t kc, const T* a, const T* b, int64_t b_ks, T* c, int64_t ldc, T alpha, T beta, int mr, int nr) {
  using traits = avx512<T>;
  using vec = typename traits::vec;
  using mask_t = typename traits::mask;
  constexpr int L = traits::lanes;
  mask_t mask[NV];
#pragma GCC unroll 8
  for (int v = 0; v < NV; ++v) {
    const int left = nr - v * L;
    mask[v] = left >= L ? mask_t(~mask_t(0)) : left <= 0 ? mask_t(0) : mask_t((1u << left) - 1);
  }
  for (int r = 0; r < mr; ++r) _mm_prefetch(reinterpret_cast<const char*>(c + r * ldc), _MM_HINT_T0);

  vec acc[MR][NV];
#pragma GCC unroll 32
  for (int r = 0; r < MR; ++r)
#pragma GCC unroll 8
    for (int v = 0; v < NV; ++v) acc[r][v] = v_zero(T());

  if (nr == NV * L) {
    for (int64_t p = 0; p < kc; ++p) {
      vec bv[NV];
#pragma GCC unroll 8
      for (int v = 0; v < NV; ++v) bv[v] = v_load(b + v * L);
#pragma GCC unroll 32
      for (int r = 0; r < MR; ++r) {
        const vec av = v_set1(a[r]);
#pragma GCC unroll 8
        for (int v = 0; v < NV; ++v) acc[r][v] = v_fma(av, bv[v], acc[r][v]);
      }
      a += MR;
      b += b_ks;
    }
  } else {
    for (int64_t p = 0; p < kc; ++p) {
      vec bv[NV];
#pragma GCC unroll 8
      for (int v = 0; v < NV; ++v) bv[v] = v_load(b + v * L, mask[v]);
#pragma GCC unroll 32
      for (int r = 0; r < MR; ++r) {
        const vec av = v_set1(a[r]);
#pragma GCC unroll 8
        for (int v = 0; v < NV; ++v) acc[r][v] = v_fma(av, bv[v], acc[r][v]);
      }
      a += MR;
      b += b_ks;
    }
  }

  const vec va = v_set1(alpha), vb = v_set1(beta);
  const bool unit_alpha = alpha == T(1), zero_beta = beta == T(0);
#pragma GCC unroll 32
  for (int r = 0; r < MR; ++r) {
    if (r >= mr) break;
    T* cr = c + r * ldc;
#pragma GCC unroll 8
    for (int v = 0; v < NV; ++v) {
      vec x = unit_alpha ? acc[r][v] : v_mul(va, acc[r][v]);
      if (!zero_beta) x = v_fma(vb, v_load(cr + v * L, mask[v]), x);
      v_store(cr + v * L, mask[v], x);
    }
  }
}

// ---------------------------------------------------------------- AVX2 + FMA
#define SYMDIFF_AVX2 __attribute__((target("avx2,fma"), always_inline)) inline

template <class T>
struct avx2;

template <>
struct avx2<float> {
  using vec = __m256;
  using ivec = __m256i;
  static constexpr int lanes = 8;
};

template <>
struct avx2<double> {
  using vec = __m256d;
  using ivec = __m256i;
  static constexpr int lanes = 4;
};

SYMDIFF_AVX2 __m256 y_zero(float) { return _mm256_setzero_ps(); }
SYMDIFF_AVX2 __m256d y_zero(double) { return _mm256_setzero_pd(); }
SYMDIFF_AVX2 __m256 y_set1(float x) { return _mm256_set1_ps(x); }
SYMDIFF_AVX2 __m256d y_set1(double x) { return _mm256_set1_pd(x); }
SYMDIFF_AVX2 __m256 y_load(const float* p) { return _mm256_loadu_ps(p); }
SYMDIFF_AVX2 __m256d y_load(const double* p) { return _mm256_loadu_pd(p); }
SYMDIFF_AVX2 __m256 y_load(const float* p, __m256i m) { return _mm256_maskload_ps(p, m); }
SYMDIFF_AVX2 __m256d y_load(const double* p, __m256i m) { return _mm256_maskload_pd(p, m); }
SYMDIFF_AVX2 void y_store(float* p, __m256i m, __m256 v) { _mm256_maskstore_ps(p, m, v); }
SYMDIFF_AVX2 void y_store(double* p, __m256i m, __m256d v) { _mm256_maskstore_pd(p, m, v); }
SYMDIFF_AVX2 __m256 y_fma(__m256 a, __m256 b, __m256 c) { return _mm256_fmadd_ps(a, b, c); }
SYMDIFF_AVX2 __m256d y_fma(__m256d a, __m256d b, __m256d c) { return _mm256_fmadd_pd(a, b, c); }
SYMDIFF_AVX2 __m256 y_mul(__m256 a, __m256 b) { return _mm256_mul_ps(a, b); }
SYMDIFF_AVX2 __m256d y_mul(__m256d a, __m256d b) { return _mm256_mul_pd(a, b); }

// Lane mask with the first `left` lanes on (all-ones per element, as maskload wants).
SYMDIFF_AVX2 __m256i y_mask(float, int left) {
  const __m256i idx = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(left), idx);
}
SYMDIFF_AVX2 __m256i y_mask(double, int left) {
  const __m256i idx = _mm256_setr_epi64x(0, 1, 2, 3);
  return _mm256_cmpgt_epi64(_mm256_set1_epi64x(left), idx);
}

// 16 ymm registers: MR * NV accumulators + NV B vectors + one broadcast.
template <class T, int MR, int NV>
__attribute__((target("avx2,fma"))) void ukernel_avx2(int64_t kc, const T* a, const T* b, int64_t b_ks, T* c,
                                                     int64_t ldc, T alpha, T beta, int mr, int nr) {
  using vec = typename avx2<T>::vec;
  constexpr int L = avx2<T>::lanes;
  __m256i mask[NV];
#pragma GCC unroll 8
  for (int v = 0; v < NV; ++v) mask[v] = y_mask(T(), nr - v * L);

  vec acc[MR][NV];
#pragma GCC unroll 32
  for (int r = 0; r < MR; ++r)
#pragma GCC unroll 8
    for (int v = 0; v < NV; ++v) acc[r][v] = y_zero(T());

  if (nr == NV * L) {
    for (int64_t p = 0; p < kc; ++p) {
      vec bv[NV];
#pragma GCC unroll 8
      for (int v = 0; v < NV; ++v) bv[v] = y_load(b + v * L);
#pragma GCC unroll 32
      for (int r = 0; r < MR; ++r) {
        const vec av = y_set1(a[r]);
#pragma GCC unroll 8
        for (int v = 0; v < NV; ++v) acc[r][v] = y_fma(av, bv[v], acc[r][v]);
      }
      a += MR;
      b += b_ks;
    }
  } else {
    for (int64_t p = 0; p < kc; ++p) {
      vec bv[NV];
#pragma GCC unroll 8
      for (int v = 0; v < NV; ++v) bv[v] = y_load(b + v * L, mask[v]);
#pragma GCC unroll 32
      for (int r = 0; r < MR; ++r) {
        const vec av = y_set1(a[r]);
#pragma GCC unroll 8
        for (int v = 0; v < NV; ++v) acc[r][v] = y_fma(av, bv[v], acc[r][v]);
      }
      a += MR;
      b += b_ks;
    }
  }

  const vec va = y_set1(alpha), vb = y_set1(beta);
  const bool unit_alpha = alpha == T(1), zero_beta = beta == T(0);
#pragma GCC unroll 32
  for (int r = 0; r < MR; ++r) {
    if (r >= mr) break;
    T* cr = c + r * ldc;
#pragma GCC unroll 8
    for (int v = 0; v < NV; ++v) {
      vec x = unit_alpha ? acc[r][v] : y_mul(va, acc[r][v]);
      if (!zero_beta) x = y_fma(vb, y_load(cr + v * L, mask[v]), x);
      y_store(cr + v * L, mask[v], x);
    }
  }
}

#undef SYMDIFF_AVX512
#undef SYMDIFF_AVX2

#endif  // SYMDIFF_GEMM_X86

}  // namespace symdiff::cpu::gemm_detail
