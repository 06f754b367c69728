// Dense linear algebra for generated programs (symdiff.lowering.render.cpu_linalg prints the
// calls): LU factorization with partial pivoting, then inv, solve, det, log|det| and sign(det),
// each over a batch of n×n matrices, OpenMP-parallel over the batch.
//
// Our own kernel, not LAPACK: numpy's bundled OpenBLAS exports its LAPACK symbols under
// private, version-mangled names (scipy-openblas64_, ...) that are no public C API and may
// change with any numpy wheel, and requiring a system LAPACK would add a link dependency to
// every generated program. The sizes these ops meet in symdiff (covariances, small systems,
// batches of them) are where a straightforward LU is competitive.
//
// The renderer copies each operand into a double-precision work buffer (row-major, one
// matrix after another; float32 programs factorize in double too) and passes the batch.
// Work is per matrix and each matrix is done by one thread in a fixed order, so results do
// not depend on the thread count.
//
// Singular matrices: an exactly zero pivot makes inv and solve return 1 with an error message
// ("inv: the matrix at batch index 3 of (8, 4, 4) is singular ...", the numpy evaluator's
// wording) and det 0, log|det| -inf, sign 0, as numpy. A NaN input propagates to NaN.
#pragma once

#include <omp.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <limits>
#include <string>
#include <utility>

namespace symdiff::cpu {

// In place: a = P·L·U of one row-major n×n matrix (L unit lower, U upper, piv[k] the row swapped
// into row k at step k). Returns the permutation's sign (+1 or -1), 0 at an exactly zero pivot.
inline int lu_factor(double* a, int64_t n, int64_t* piv) {
  int sign = 1;
  for (int64_t k = 0; k < n; ++k) {
    int64_t p = k;
    double best = std::fabs(a[k * n + k]);
    for (int64_t i = k + 1; i < n; ++i) {
      const double v = std::fabs(a[i * n + k]);
      if (v > best) {
        best = v;
        p = i;
      }
    }
    piv[k] = p;
    if (best == 0.0) return 0;
    if (p != k) {
      double* rk = a + k * n;
      double* rp = a + p * n;
      for (int64_t j = 0; j < n; ++j) std::swap(rk[j], rp[j]);
      sign = -sign;
    }
    const double* rk = a + k * n;
    const double pivot = rk[k];
    for (int64_t i = k + 1; i < n; ++i) {
      double* ri = a + i * n;
      const double l = ri[k] / pivot;
      ri[k] = l;
#pragma omp simd
      for (int64_t j = k + 1; j < n; ++j) ri[j] -= l * rk[j];
    }
  }
  return sign;
}

// b (n×k, row-major) <- A⁻¹·b with A's factors from lu_factor: the rows permuted as the
// factorization swapped them, then L·y = b forward and U·x = y backward, a row at a time.
inline void lu_solve(const double* lu, const int64_t* piv, double* b, int64_t n, int64_t k) {
  for (int64_t i = 0; i < n; ++i) {
    if (piv[i] != i) {
      double* ri = b + i * k;
      double* rp = b + piv[i] * k;
      for (int64_t j = 0; j < k; ++j) std::swap(ri[j], rp[j]);
    }
  }
  for (int64_t i = 1; i < n; ++i) {
    double* bi = b + i * k;
    for (int64_t m = 0; m < i; ++m) {
      const double l = lu[i * n + m];
      const double* bm = b + m * k;
#pragma omp simd
      for (int64_t j = 0; j < k; ++j) bi[j] -= l * bm[j];
    }
  }
  for (int64_t i = n - 1; i >= 0; --i) {
    double* bi = b + i * k;
    for (int64_t m = i + 1; m < n; ++m) {
      const double u = lu[i * n + m];
      const double* bm = b + m * k;
#pragma omp simd
      for (int64_t j = 0; j < k; ++j) bi[j] -= u * bm[j];
    }
    const double d = lu[i * n + i];
#pragma omp simd
    for (int64_t j = 0; j < k; ++j) bi[j] /= d;
  }
}

// "(2, 3, 3)" from the operand's dimensions, for the error message.
inline std::string linalg_shape_text(const int64_t* shape, int rank) {
  std::string text = "(";
  for (int d = 0; d < rank; ++d) text += (d ? ", " : "") + std::to_string(shape[d]);
  return text + (rank == 1 ? ",)" : ")");
}

inline int linalg_singular(char* error, int64_t error_size, const char* op, int64_t index, bool batched,
                           const int64_t* shape, int rank) {
  const std::string at = batched ? " at batch index " + std::to_string(index) : std::string();
  std::snprintf(error, error_size,
                "%s: the matrix%s of %s is singular (a zero pivot in its LU factorization with partial pivoting)",
                op, at.c_str(), linalg_shape_text(shape, rank).c_str());
  return 1;
}

inline bool linalg_in_parallel(int64_t batch, int64_t n, int64_t k) {
  return batch > 1 && !omp_in_parallel() && double(batch) * double(n) * double(n) * double(n + k) >= 65536.0;
}

// x = A⁻¹·b for each matrix of the batch: a (batch, n, n) and b (batch, n, k) in double work
// buffers (a is overwritten by its factors, b by the solution), written to out as T. inv is the
// same with b the identity, which this function writes itself when `identity` is set.
template <class T>
int lu_solve_batch(double* a, double* b, int64_t* piv, T* out, int64_t batch, int64_t n, int64_t k,
                   bool identity, char* error, int64_t error_size, const char* op, const int64_t* shape,
                   int rank) {
  int64_t bad = batch;
#pragma omp parallel for schedule(static) reduction(min : bad) if (linalg_in_parallel(batch, n, k))
  for (int64_t m = 0; m < batch; ++m) {
    double* am = a + m * n * n;
    double* bm = b + m * n * k;
    int64_t* pm = piv + m * n;
    if (identity)
      for (int64_t i = 0; i < n * k; ++i) bm[i] = (i / k == i % k) ? 1.0 : 0.0;
    if (lu_factor(am, n, pm) == 0) {
      bad = bad < m ? bad : m;
      continue;
    }
    lu_solve(am, pm, bm, n, k);
    T* om = out + m * n * k;
    for (int64_t i = 0; i < n * k; ++i) om[i] = static_cast<T>(bm[i]);
  }
  if (bad < batch) return linalg_singular(error, error_size, op, bad, rank > 2, shape, rank);
  return 0;
}

enum class Determinant { value, log_abs, sign };

// det, log|det| or sign(det) of each matrix of the batch (a is overwritten by its factors).
template <class T>
void lu_determinant_batch(double* a, int64_t* piv, T* out, int64_t batch, int64_t n, Determinant what) {
#pragma omp parallel for schedule(static) if (linalg_in_parallel(batch, n, 0))
  for (int64_t m = 0; m < batch; ++m) {
    double* am = a + m * n * n;
    const int sign = lu_factor(am, n, piv + m * n);
    double value;
    if (sign == 0) {
      value = what == Determinant::log_abs ? -std::numeric_limits<double>::infinity() : 0.0;
    } else if (what == Determinant::value) {
      value = sign;
      for (int64_t i = 0; i < n; ++i) value *= am[i * n + i];
    } else {
      double log_abs = 0.0, s = sign;
      for (int64_t i = 0; i < n; ++i) {
        const double d = am[i * n + i];
        log_abs += std::log(std::fabs(d));
        s = d < 0 ? -s : s;
      }
      value = what == Determinant::log_abs ? log_abs : (std::isnan(log_abs) ? log_abs : s);
    }
    out[m] = static_cast<T>(value);
  }
}

}  // namespace symdiff::cpu
