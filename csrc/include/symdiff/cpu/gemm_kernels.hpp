// GEMM microkernels: C[0:mr, 0:nr] = alpha * (A_panel · B_panel) + beta * C for one register tile.
//
// C is row-major, so the vector dimension is N: a tile holds MR rows of C, each NV vectors wide.
// A panel: packed, k-major, MR values per k (rows past the matrix edge are zero padding), or A
// read in place (see a_at).
// B panel: NV * lanes values per k, `b_ks` elements apart (the packed width, or ldb when B is
// read in place); columns past nr are never loaded (masked loads), so reading B in place can
// not run off the end of the caller's array.
//
// Every kernel is compiled for its own instruction set with a target attribute: the module
// itself is built for baseline x86-64 and picks a kernel at run time (gemm.hpp).
#pragma once

#include <algorithm>
#include <cstdint>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define SYMDIFF_GEMM_X86 1
#endif

namespace symdiff::cpu::gemm_detail {

// Between the unrolled k steps of a kernel: keeps the compiler from hoisting the next step's loads
// above this step's FMAs, which needs more vector registers than the tile leaves and spills.
#define SYMDIFF_GEMM_STEP_FENCE() __asm__ volatile("" ::: "memory")

template <class T>
using ukernel_fn = void (*)(int64_t kc, const T* a, int64_t a_stride, const T* b, int64_t b_ks, T* c, int64_t ldc,
                            T alpha, T beta, int mr, int nr);

// Where the MR values of A for step p live: A_ROWS = false: a[p * a_stride + r] (a packed panel,
// a_stride = MR, or a transposed A read in place, a_stride = lda); A_ROWS = true: a[r * a_stride + p]
// (row-major A read in place, a_stride = lda). In place, all MR rows must exist.
template <bool A_ROWS, class T>
inline __attribute__((always_inline)) const T* a_at(const T* a, int64_t a_stride, int r) {
  return A_ROWS ? a + r * a_stride : a + r;
}

// ---------------------------------------------------------------- portable scalar path
// MR x NR tile in plain C++: the compiler vectorises it for the baseline ISA it is built for.
template <class T, int MR, int NR, bool A_ROWS>
void ukernel_scalar(int64_t kc, const T* a, int64_t a_stride, const T* b, int64_t b_ks, T* c, int64_t ldc,
                    T alpha, T beta, int mr, int nr) {
  T acc[MR][NR] = {};
  const int64_t a_step = A_ROWS ? 1 : a_stride;
  for (int64_t p = 0; p < kc; ++p, a += a_step, b += b_ks)
    for (int r = 0; r < MR; ++r) {
      const T x = *a_at<A_ROWS>(a, a_stride, r);
      if (nr == NR)
        for (int j = 0; j < NR; ++j) acc[r][j] += x * b[j];
      else
        for (int j = 0; j < nr; ++j) acc[r][j] += x * b[j];
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

// mask[v]: the lanes of vector v that fall within the first `width` values (all, some or none).
template <class T, int NV>
SYMDIFF_AVX512 void lane_masks(typename avx512<T>::mask (&mask)[NV], int width) {
  using mask_t = typename avx512<T>::mask;
  constexpr int L = avx512<T>::lanes;
#pragma GCC unroll 8
  for (int v = 0; v < NV; ++v) {
    const int left = width - v * L;
    mask[v] = left >= L ? mask_t(~mask_t(0)) : left <= 0 ? mask_t(0) : mask_t((1u << left) - 1);
  }
}

// One k step of a full tile: NV vectors of B, then each of the MR values of A broadcast.
template <class T, int MR, int NV, bool A_ROWS>
SYMDIFF_AVX512 void z_step(typename avx512<T>::vec (&acc)[MR][NV], const T* a, int64_t a_stride, const T* b) {
  using vec = typename avx512<T>::vec;
  constexpr int L = avx512<T>::lanes;
  vec bv[NV];
#pragma GCC unroll 8
  for (int v = 0; v < NV; ++v) bv[v] = v_load(b + v * L);
#pragma GCC unroll 32
  for (int r = 0; r < MR; ++r) {
    const vec av = v_set1(*a_at<A_ROWS>(a, a_stride, r));
#pragma GCC unroll 8
    for (int v = 0; v < NV; ++v) acc[r][v] = v_fma(av, bv[v], acc[r][v]);
  }
}

// MR rows x NV vectors of accumulators (MR * NV <= 28 of the 32 zmm registers).
template <class T, int MR, int NV, bool A_ROWS>
__attribute__((target("avx512f,avx512dq,avx512vl,fma,avx2"))) void ukernel_avx512(
    int64_t kc, const T* a, int64_t a_stride, const T* b, int64_t b_ks, T* c, int64_t ldc, T alpha, T beta, int mr,
    int nr) {
  using traits = avx512<T>;
  using vec = typename traits::vec;
  using mask_t = typename traits::mask;
  constexpr int L = traits::lanes;
  mask_t mask[NV];
  lane_masks<T, NV>(mask, nr);
  for (int r = 0; r < mr; ++r) _mm_prefetch(reinterpret_cast<const char*>(c + r * ldc), _MM_HINT_T0);

  vec acc[MR][NV];
#pragma GCC unroll 32
  for (int r = 0; r < MR; ++r)
#pragma GCC unroll 8
    for (int v = 0; v < NV; ++v) acc[r][v] = v_zero(T());

  if (nr == NV * L) {
    // Unrolled by hand, as the AVX2 kernel (a pragma is dropped under LTO): +1-2% here.
    const int64_t a_step = A_ROWS ? 1 : a_stride;
    int64_t p = 0;
    for (; p + 4 <= kc; p += 4)  // pointers bumped per step: offsets from one base spill registers
#pragma GCC unroll 4
      for (int u = 0; u < 4; ++u, a += a_step, b += b_ks) {
        z_step<T, MR, NV, A_ROWS>(acc, a, a_stride, b);
        SYMDIFF_GEMM_STEP_FENCE();
      }
    for (; p < kc; ++p, a += a_step, b += b_ks) z_step<T, MR, NV, A_ROWS>(acc, a, a_stride, b);
  } else {
    for (int64_t p = 0; p < kc; ++p) {
      vec bv[NV];
#pragma GCC unroll 8
      for (int v = 0; v < NV; ++v) bv[v] = v_load(b + v * L, mask[v]);
#pragma GCC unroll 32
      for (int r = 0; r < MR; ++r) {
        const vec av = v_set1(*a_at<A_ROWS>(a, a_stride, r));
#pragma GCC unroll 8
        for (int v = 0; v < NV; ++v) acc[r][v] = v_fma(av, bv[v], acc[r][v]);
      }
      a += A_ROWS ? 1 : a_stride;
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
SYMDIFF_AVX2 void y_store(float* p, __m256 v) { _mm256_storeu_ps(p, v); }
SYMDIFF_AVX2 void y_store(double* p, __m256d v) { _mm256_storeu_pd(p, v); }
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

// One k step of a full tile: NV vectors of B, then each of the MR values of A broadcast.
template <class T, int MR, int NV, bool A_ROWS>
SYMDIFF_AVX2 void y_step(typename avx2<T>::vec (&acc)[MR][NV], const T* a, int64_t a_stride, const T* b) {
  using vec = typename avx2<T>::vec;
  constexpr int L = avx2<T>::lanes;
  vec bv[NV];
#pragma GCC unroll 8
  for (int v = 0; v < NV; ++v) bv[v] = y_load(b + v * L);
#pragma GCC unroll 32
  for (int r = 0; r < MR; ++r) {
    const vec av = y_set1(*a_at<A_ROWS>(a, a_stride, r));
#pragma GCC unroll 8
    for (int v = 0; v < NV; ++v) acc[r][v] = y_fma(av, bv[v], acc[r][v]);
  }
}

// 16 ymm registers: MR * NV accumulators + NV B vectors + one broadcast (6 x 2: 12 + 2 + 1, the
// register tile of BLIS's Haswell/Zen kernels).
// Masks only at an edge of C: a full tile reads and writes C with plain loads and stores. On AMD
// Zen 2/3 a vmaskmovps store is microcoded, many times the cost of a vmovups, and a tile writes 12
// of them back per K block (not measurable on the AVX-512 machines these were tuned on).
template <class T, int MR, int NV, bool A_ROWS>
__attribute__((target("avx2,fma"))) void ukernel_avx2(int64_t kc, const T* a, int64_t a_stride, const T* b,
                                                     int64_t b_ks, T* c, int64_t ldc, T alpha, T beta, int mr,
                                                     int nr) {
  using vec = typename avx2<T>::vec;
  constexpr int L = avx2<T>::lanes;
  const bool full = nr == NV * L;
  // C is read (beta != 0) or written only at the end: start its lines on their way now.
  for (int r = 0; r < mr; ++r) {
    _mm_prefetch(reinterpret_cast<const char*>(c + r * ldc), _MM_HINT_T0);
    _mm_prefetch(reinterpret_cast<const char*>(c + r * ldc + nr - 1), _MM_HINT_T0);
  }

  vec acc[MR][NV];
#pragma GCC unroll 32
  for (int r = 0; r < MR; ++r)
#pragma GCC unroll 8
    for (int v = 0; v < NV; ++v) acc[r][v] = y_zero(T());

  if (full) {
    // Unrolled by hand: `#pragma GCC unroll` on this loop is dropped in the module's LTO build,
    // and the loop overhead per 12 FMAs cost 6% (1 thread, 1024^3 float32, LTO: 112 -> 119 GFLOP/s).
    const int64_t a_step = A_ROWS ? 1 : a_stride;
    int64_t p = 0;
    for (; p + 4 <= kc; p += 4)  // pointers bumped per step: offsets from one base spill registers
#pragma GCC unroll 4
      for (int u = 0; u < 4; ++u, a += a_step, b += b_ks) {
        y_step<T, MR, NV, A_ROWS>(acc, a, a_stride, b);
        SYMDIFF_GEMM_STEP_FENCE();
      }
    for (; p < kc; ++p, a += a_step, b += b_ks) y_step<T, MR, NV, A_ROWS>(acc, a, a_stride, b);
  } else {
    __m256i mask[NV];
#pragma GCC unroll 8
    for (int v = 0; v < NV; ++v) mask[v] = y_mask(T(), nr - v * L);
    for (int64_t p = 0; p < kc; ++p) {
      vec bv[NV];
#pragma GCC unroll 8
      for (int v = 0; v < NV; ++v) bv[v] = y_load(b + v * L, mask[v]);
#pragma GCC unroll 32
      for (int r = 0; r < MR; ++r) {
        const vec av = y_set1(*a_at<A_ROWS>(a, a_stride, r));
#pragma GCC unroll 8
        for (int v = 0; v < NV; ++v) acc[r][v] = y_fma(av, bv[v], acc[r][v]);
      }
      a += A_ROWS ? 1 : a_stride;
      b += b_ks;
    }
  }

  const vec va = y_set1(alpha), vb = y_set1(beta);
  const bool unit_alpha = alpha == T(1), zero_beta = beta == T(0);
  if (full) {
#pragma GCC unroll 32
    for (int r = 0; r < MR; ++r) {
      if (r >= mr) break;
      T* cr = c + r * ldc;
#pragma GCC unroll 8
      for (int v = 0; v < NV; ++v) {
        vec x = unit_alpha ? acc[r][v] : y_mul(va, acc[r][v]);
        if (!zero_beta) x = y_fma(vb, y_load(cr + v * L), x);
        y_store(cr + v * L, x);
      }
    }
    return;
  }
  __m256i mask[NV];
#pragma GCC unroll 8
  for (int v = 0; v < NV; ++v) mask[v] = y_mask(T(), nr - v * L);
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

// ---------------------------------------------------------------- transposing pack
// dst[p * ld_dst + j] = src[j * ld_src + p] for j < rows, p < cols: turns rows of a matrix into
// the k-major panels the kernels read. Portable version first, then 8x8 (float) / 4x4 (double)
// register transposes with AVX2.
template <class T>
void transpose_pack_scalar(const T* src, int64_t ld_src, int rows, int64_t cols, T* dst, int64_t ld_dst) {
  constexpr int64_t step = 64;  // keep the strided writes within a few L1 lines per chunk
  for (int64_t q = 0; q < cols; q += step) {
    const int64_t qe = std::min(cols, q + step);
    for (int j = 0; j < rows; ++j) {
      const T* s = src + j * ld_src;
      for (int64_t p = q; p < qe; ++p) dst[p * ld_dst + j] = s[p];
    }
  }
}

#ifdef SYMDIFF_GEMM_X86
__attribute__((target("avx2,fma"))) inline void transpose_pack_avx2(const float* src, int64_t ld_src, int rows,
                                                                   int64_t cols, float* dst, int64_t ld_dst) {
  int j = 0;
  for (; j + 8 <= rows; j += 8) {
    const float* s = src + j * ld_src;
    int64_t p = 0;
    for (; p + 8 <= cols; p += 8) {
      __m256 r[8], t[8], u[8];
      for (int i = 0; i < 8; ++i) r[i] = _mm256_loadu_ps(s + i * ld_src + p);
      for (int i = 0; i < 8; i += 2) {
        t[i] = _mm256_unpacklo_ps(r[i], r[i + 1]);
        t[i + 1] = _mm256_unpackhi_ps(r[i], r[i + 1]);
      }
      for (int h = 0; h < 8; h += 4) {
        u[h + 0] = _mm256_shuffle_ps(t[h + 0], t[h + 2], _MM_SHUFFLE(1, 0, 1, 0));
        u[h + 1] = _mm256_shuffle_ps(t[h + 0], t[h + 2], _MM_SHUFFLE(3, 2, 3, 2));
        u[h + 2] = _mm256_shuffle_ps(t[h + 1], t[h + 3], _MM_SHUFFLE(1, 0, 1, 0));
        u[h + 3] = _mm256_shuffle_ps(t[h + 1], t[h + 3], _MM_SHUFFLE(3, 2, 3, 2));
      }
      float* d = dst + p * ld_dst + j;
      for (int i = 0; i < 4; ++i) {
        _mm256_storeu_ps(d + i * ld_dst, _mm256_permute2f128_ps(u[i], u[i + 4], 0x20));
        _mm256_storeu_ps(d + (i + 4) * ld_dst, _mm256_permute2f128_ps(u[i], u[i + 4], 0x31));
      }
    }
    if (p < cols) transpose_pack_scalar(s + p, ld_src, 8, cols - p, dst + p * ld_dst + j, ld_dst);
  }
  if (j < rows) transpose_pack_scalar(src + j * ld_src, ld_src, rows - j, cols, dst + j, ld_dst);
}

__attribute__((target("avx2,fma"))) inline void transpose_pack_avx2(const double* src, int64_t ld_src, int rows,
                                                                   int64_t cols, double* dst, int64_t ld_dst) {
  int j = 0;
  for (; j + 4 <= rows; j += 4) {
    const double* s = src + j * ld_src;
    int64_t p = 0;
    for (; p + 4 <= cols; p += 4) {
      const __m256d r0 = _mm256_loadu_pd(s + p), r1 = _mm256_loadu_pd(s + ld_src + p);
      const __m256d r2 = _mm256_loadu_pd(s + 2 * ld_src + p), r3 = _mm256_loadu_pd(s + 3 * ld_src + p);
      const __m256d t0 = _mm256_unpacklo_pd(r0, r1), t1 = _mm256_unpackhi_pd(r0, r1);
      const __m256d t2 = _mm256_unpacklo_pd(r2, r3), t3 = _mm256_unpackhi_pd(r2, r3);
      double* d = dst + p * ld_dst + j;
      _mm256_storeu_pd(d, _mm256_permute2f128_pd(t0, t2, 0x20));
      _mm256_storeu_pd(d + ld_dst, _mm256_permute2f128_pd(t1, t3, 0x20));
      _mm256_storeu_pd(d + 2 * ld_dst, _mm256_permute2f128_pd(t0, t2, 0x31));
      _mm256_storeu_pd(d + 3 * ld_dst, _mm256_permute2f128_pd(t1, t3, 0x31));
    }
    if (p < cols) transpose_pack_scalar(s + p, ld_src, 4, cols - p, dst + p * ld_dst + j, ld_dst);
  }
  if (j < rows) transpose_pack_scalar(src + j * ld_src, ld_src, rows - j, cols, dst + j, ld_dst);
}
#endif  // SYMDIFF_GEMM_X86

template <class T>
void transpose_pack(bool avx2, const T* src, int64_t ld_src, int rows, int64_t cols, T* dst, int64_t ld_dst) {
#ifdef SYMDIFF_GEMM_X86
  if (avx2) return transpose_pack_avx2(src, ld_src, rows, cols, dst, ld_dst);
#endif
  (void)avx2;
  transpose_pack_scalar(src, ld_src, rows, cols, dst, ld_dst);
}

}  // namespace symdiff::cpu::gemm_detail
