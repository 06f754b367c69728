// Row-wise softmax, log_softmax and logsumexp of a (rows, n) row-major matrix: one 256-thread
// block per row. Stable: the row max is subtracted before exp, so ±1e4 inputs neither overflow
// nor underflow to 0/0.
#include <cuda_runtime.h>

#include "common.cuh"
#include "symdiff/cuda/api.hpp"

namespace symdiff::cuda {
namespace {

constexpr int row_threads = 256;

__device__ float exp_of(float x) { return expf(x); }
__device__ double exp_of(double x) { return exp(x); }
__device__ float log_of(float x) { return logf(x); }
__device__ double log_of(double x) { return log(x); }

template <class T>
struct row_stats {
  T shift, sum;  // sum = Σ exp(x - shift)
};

// The shift is the row max, or 0 when that is not finite: an all -inf (or empty) row then gives
// sum 0 and logsumexp -inf rather than inf - inf = NaN (scipy.special.logsumexp does the same).
template <class T>
__device__ row_stats<T> stats_of(const T* x, int64_t n, T* scratch) {
  T hi = detail::lowest<T>();
  for (int64_t j = threadIdx.x; j < n; j += blockDim.x) hi = detail::nan_max(hi, x[j]);
  hi = detail::block_max(hi, scratch);
  const T shift = isfinite(hi) ? hi : T(0);
  T sum = 0;
  for (int64_t j = threadIdx.x; j < n; j += blockDim.x) sum += exp_of(x[j] - shift);
  return {shift, detail::block_sum(sum, scratch)};
}

template <class T>
__global__ void softmax_rows_kernel(const T* in, T* out, int64_t n) {
  __shared__ T scratch[32];
  const T* x = in + static_cast<int64_t>(blockIdx.x) * n;
  T* y = out + static_cast<int64_t>(blockIdx.x) * n;
  const row_stats<T> s = stats_of(x, n, scratch);
  for (int64_t j = threadIdx.x; j < n; j += blockDim.x) y[j] = exp_of(x[j] - s.shift) / s.sum;
}

template <class T>
__global__ void log_softmax_rows_kernel(const T* in, T* out, int64_t n) {
  __shared__ T scratch[32];
  const T* x = in + static_cast<int64_t>(blockIdx.x) * n;
  T* y = out + static_cast<int64_t>(blockIdx.x) * n;
  const row_stats<T> s = stats_of(x, n, scratch);
  const T log_sum = log_of(s.sum);
  for (int64_t j = threadIdx.x; j < n; j += blockDim.x) y[j] = (x[j] - s.shift) - log_sum;
}

template <class T>
__global__ void logsumexp_rows_kernel(const T* in, T* out, int64_t n) {
  __shared__ T scratch[32];
  const row_stats<T> s = stats_of(in + static_cast<int64_t>(blockIdx.x) * n, n, scratch);
  if (threadIdx.x == 0) out[blockIdx.x] = s.shift + log_of(s.sum);
}

enum class row_op { softmax, log_softmax, logsumexp };

template <class T>
void launch(row_op op, const T* in, T* out, int64_t rows, int64_t n, void* stream) {
  if (rows == 0) return;
  const unsigned blocks = detail::grid_size(rows, 0x7fffffff, "row-wise softmax");
  cudaStream_t s = detail::as_stream(stream);
  switch (op) {
    case row_op::softmax:
      softmax_rows_kernel<T><<<blocks, row_threads, 0, s>>>(in, out, n);
      return detail::check_launch("softmax_rows_kernel");
    case row_op::log_softmax:
      log_softmax_rows_kernel<T><<<blocks, row_threads, 0, s>>>(in, out, n);
      return detail::check_launch("log_softmax_rows_kernel");
    case row_op::logsumexp:
      logsumexp_rows_kernel<T><<<blocks, row_threads, 0, s>>>(in, out, n);
      return detail::check_launch("logsumexp_rows_kernel");
  }
}

template <class T>
void on_host(row_op op, const T* host_in, T* host_out, int64_t rows, int64_t n) {
  if (rows == 0) return;
  const int64_t out_count = op == row_op::logsumexp ? rows : rows * n;
  detail::device_buffer<T> in(host_in, rows * n), out(out_count);
  launch(op, in.get(), out.get(), rows, n, nullptr);
  out.copy_to(host_out);
}

}  // namespace

#define SYMDIFF_ROW_OP(name, op, T)                                                               \
  void name##_device(const T* in, T* out, int64_t rows, int64_t n, void* stream) {                \
    launch(row_op::op, in, out, rows, n, stream);                                                 \
  }                                                                                               \
  void name(const T* host_in, T* host_out, int64_t rows, int64_t n) { on_host(row_op::op, host_in, host_out, rows, n); }

SYMDIFF_ROW_OP(softmax_rows, softmax, float)
SYMDIFF_ROW_OP(softmax_rows, softmax, double)
SYMDIFF_ROW_OP(log_softmax_rows, log_softmax, float)
SYMDIFF_ROW_OP(log_softmax_rows, log_softmax, double)
SYMDIFF_ROW_OP(logsumexp_rows, logsumexp, float)
SYMDIFF_ROW_OP(logsumexp_rows, logsumexp, double)
#undef SYMDIFF_ROW_OP

}  // namespace symdiff::cuda
