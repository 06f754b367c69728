// Row-major C = alpha * op(A) * op(B) + beta * C on the GPU: a 64 x 64 tile of C per block,
// staged through shared memory 16 columns of op(A) / rows of op(B) at a time; each of the 256
// threads keeps a 4 x 4 micro-tile of C in registers.
#include <cuda_runtime.h>

#include <stdexcept>
#include <string>

#include "common.cuh"
#include "symdiff/cuda/api.hpp"

namespace symdiff::cuda {
namespace {

constexpr int tile_m = 64, tile_n = 64, tile_k = 16;
constexpr int threads_x = 16, threads_y = 16, threads = threads_x * threads_y;
constexpr int micro_m = tile_m / threads_y, micro_n = tile_n / threads_x;  // 4 x 4 per thread

// Thread (tx, ty) owns C rows ty + 16 r and columns tx + 16 c (r, c < 4): strided rather than
// adjacent, so a warp's shared-memory reads are broadcasts or consecutive (no bank conflicts) and
// its stores to C are coalesced.
template <class T, bool TransA, bool TransB>
__global__ void __launch_bounds__(threads) gemm_kernel(int64_t m, int64_t n, int64_t k, T alpha,
                                                       const T* __restrict__ a, int64_t lda,
                                                       const T* __restrict__ b, int64_t ldb, T beta,
                                                       T* __restrict__ c, int64_t ldc) {
  // a_tile[p][i] = op(A)[row0 + i][k0 + p], b_tile[p][j] = op(B)[k0 + p][col0 + j]; zero outside.
  // The +1 column staggers the transposing writes across banks.
  __shared__ T a_tile[tile_k][tile_m + 1];
  __shared__ T b_tile[tile_k][tile_n + 1];
  const int tx = threadIdx.x, ty = threadIdx.y, tid = ty * threads_x + tx;
  const int64_t row0 = static_cast<int64_t>(blockIdx.y) * tile_m, col0 = static_cast<int64_t>(blockIdx.x) * tile_n;

  T acc[micro_m][micro_n];
  for (int r = 0; r < micro_m; ++r)
    for (int q = 0; q < micro_n; ++q) acc[r][q] = T(0);

  for (int64_t k0 = 0; k0 < k; k0 += tile_k) {
    // Consecutive threads read consecutive addresses of the stored matrix (coalesced), whichever
    // way it is transposed.
    for (int e = tid; e < tile_m * tile_k; e += threads) {
      const int i = TransA ? e % tile_m : e / tile_k;
      const int p = TransA ? e / tile_m : e % tile_k;
      const int64_t gi = row0 + i, gp = k0 + p;
      a_tile[p][i] = (gi < m && gp < k) ? (TransA ? a[gp * lda + gi] : a[gi * lda + gp]) : T(0);
    }
    for (int e = tid; e < tile_k * tile_n; e += threads) {
      const int j = TransB ? e / tile_k : e % tile_n;
      const int p = TransB ? e % tile_k : e / tile_n;
      const int64_t gp = k0 + p, gj = col0 + j;
      b_tile[p][j] = (gp < k && gj < n) ? (TransB ? b[gj * ldb + gp] : b[gp * ldb + gj]) : T(0);
    }
    __syncthreads();
#pragma unroll
    for (int p = 0; p < tile_k; ++p) {
      T a_reg[micro_m], b_reg[micro_n];
#pragma unroll
      for (int r = 0; r < micro_m; ++r) a_reg[r] = a_tile[p][ty + threads_y * r];
#pragma unroll
      for (int q = 0; q < micro_n; ++q) b_reg[q] = b_tile[p][tx + threads_x * q];
#pragma unroll
      for (int r = 0; r < micro_m; ++r)
#pragma unroll
        for (int q = 0; q < micro_n; ++q) acc[r][q] += a_reg[r] * b_reg[q];
    }
    __syncthreads();  // the next iteration overwrites the tiles
  }

  for (int r = 0; r < micro_m; ++r) {
    const int64_t gi = row0 + ty + threads_y * r;
    if (gi >= m) break;
    for (int q = 0; q < micro_n; ++q) {
      const int64_t gj = col0 + tx + threads_x * q;
      if (gj >= n) break;
      T* out = c + gi * ldc + gj;
      // As in BLAS, C is not read when beta == 0 (it may hold NaN or be uninitialised).
      *out = beta == T(0) ? alpha * acc[r][q] : alpha * acc[r][q] + beta * *out;
    }
  }
}

std::string dims(int64_t m, int64_t n, int64_t k) {
  return "m=" + std::to_string(m) + ", n=" + std::to_string(n) + ", k=" + std::to_string(k);
}

template <class T>
void gemm_on_device(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, T alpha, const T* a, int64_t lda,
                    const T* b, int64_t ldb, T beta, T* c, int64_t ldc, void* stream) {
  if (m < 0 || n < 0 || k < 0) throw std::invalid_argument("gemm_device: negative size (" + dims(m, n, k) + ")");
  const int64_t a_cols = trans_a ? m : k, b_cols = trans_b ? k : n;
  if (lda < (a_cols > 1 ? a_cols : 1) || ldb < (b_cols > 1 ? b_cols : 1) || ldc < (n > 1 ? n : 1))
    throw std::invalid_argument("gemm_device: a leading dimension is smaller than its row (" + dims(m, n, k) + ")");
  if (m == 0 || n == 0) return;
  const dim3 grid(detail::grid_size((n + tile_n - 1) / tile_n, 0x7fffffff, "gemm_device"),
                  detail::grid_size((m + tile_m - 1) / tile_m, 65535, "gemm_device"));
  const dim3 block(threads_x, threads_y);
  cudaStream_t s = detail::as_stream(stream);
  const auto run = [&](auto kernel) { kernel<<<grid, block, 0, s>>>(m, n, k, alpha, a, lda, b, ldb, beta, c, ldc); };
  if (!trans_a && !trans_b) run(gemm_kernel<T, false, false>);
  if (trans_a && !trans_b) run(gemm_kernel<T, true, false>);
  if (!trans_a && trans_b) run(gemm_kernel<T, false, true>);
  if (trans_a && trans_b) run(gemm_kernel<T, true, true>);
  detail::check_launch("gemm_kernel");
}

template <class T>
void gemm_on_host(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, T alpha, const T* host_a,
                  const T* host_b, T beta, T* host_c) {
  if (m == 0 || n == 0) return;
  detail::device_buffer<T> a(host_a, m * k), b(host_b, k * n);
  detail::device_buffer<T> c(beta == T(0) ? nullptr : host_c, m * n);  // C is only read when beta != 0
  const auto at_least_1 = [](int64_t x) { return x > 1 ? x : int64_t{1}; };
  gemm_on_device<T>(trans_a, trans_b, m, n, k, alpha, a.get(), at_least_1(trans_a ? m : k), b.get(),
                    at_least_1(trans_b ? k : n), beta, c.get(), n, nullptr);
  c.copy_to(host_c);
}

}  // namespace

void gemm_device(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float* a,
                 int64_t lda, const float* b, int64_t ldb, float beta, float* c, int64_t ldc, void* stream) {
  gemm_on_device(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, stream);
}
void gemm_device(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, double alpha, const double* a,
                 int64_t lda, const double* b, int64_t ldb, double beta, double* c, int64_t ldc, void* stream) {
  gemm_on_device(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, stream);
}
void gemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float* host_a,
          const float* host_b, float beta, float* host_c) {
  gemm_on_host(trans_a, trans_b, m, n, k, alpha, host_a, host_b, beta, host_c);
}
void gemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, double alpha, const double* host_a,
          const double* host_b, double beta, double* host_c) {
  gemm_on_host(trans_a, trans_b, m, n, k, alpha, host_a, host_b, beta, host_c);
}

}  // namespace symdiff::cuda
