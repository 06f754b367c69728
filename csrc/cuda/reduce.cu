// CUDA counterparts of the CPU reductions over the (outer, n, inner) view of an array: one thread
// block per output element, threads striding over n, then warp shuffles across the block.
#include <cuda_runtime.h>

#include <string>

#include "common.cuh"
#include "symdiff/cuda/api.hpp"

namespace symdiff::cuda {
namespace {

using detail::check;

constexpr int reduce_threads = 256;

// Sums accumulate in double whatever T is, as the CPU kernel does; mean divides that sum by n
// (0/0 = NaN for an empty axis, like numpy).
template <class T, bool Mean>
__global__ void sum_axis_kernel(const T* in, T* out, int64_t n, int64_t inner) {
  __shared__ double scratch[32];
  const int64_t o = blockIdx.x / inner, i = blockIdx.x % inner;
  double acc = 0;
  for (int64_t j = threadIdx.x; j < n; j += blockDim.x) acc += in[(o * n + j) * inner + i];
  acc = detail::block_sum(acc, scratch);
  if (threadIdx.x == 0) out[blockIdx.x] = static_cast<T>(Mean ? acc / static_cast<double>(n) : acc);
}

// n >= 1 (the binding refuses an empty axis); NaN propagates like numpy.max.
template <class T>
__global__ void max_axis_kernel(const T* in, T* out, int64_t n, int64_t inner) {
  __shared__ T scratch[32];
  const int64_t o = blockIdx.x / inner, i = blockIdx.x % inner;
  T acc = detail::lowest<T>();
  for (int64_t j = threadIdx.x; j < n; j += blockDim.x) acc = detail::nan_max(acc, in[(o * n + j) * inner + i]);
  acc = detail::block_max(acc, scratch);
  if (threadIdx.x == 0) out[blockIdx.x] = acc;
}

enum class reduction { sum, mean, max };

template <class T>
void launch(reduction r, const T* in, T* out, int64_t outer, int64_t n, int64_t inner, void* stream) {
  const int64_t out_count = outer * inner;
  if (out_count == 0) return;
  const unsigned blocks = detail::grid_size(out_count, 0x7fffffff, "reduction over an axis");
  cudaStream_t s = detail::as_stream(stream);
  switch (r) {
    case reduction::sum:
      sum_axis_kernel<T, false><<<blocks, reduce_threads, 0, s>>>(in, out, n, inner);
      return detail::check_launch("sum_axis_kernel");
    case reduction::mean:
      sum_axis_kernel<T, true><<<blocks, reduce_threads, 0, s>>>(in, out, n, inner);
      return detail::check_launch("sum_axis_kernel (mean)");
    case reduction::max:
      max_axis_kernel<T><<<blocks, reduce_threads, 0, s>>>(in, out, n, inner);
      return detail::check_launch("max_axis_kernel");
  }
}

template <class T>
void on_host(reduction r, const T* host_in, T* host_out, int64_t outer, int64_t n, int64_t inner) {
  if (outer * inner == 0) return;
  detail::device_buffer<T> in(host_in, outer * n * inner), out(outer * inner);
  launch(r, in.get(), out.get(), outer, n, inner, nullptr);
  out.copy_to(host_out);  // synchronises, so a fault inside the kernel is reported here
}

}  // namespace

int device_count() {
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess) {
    cudaGetLastError();  // clear the sticky "no driver" error
    return 0;
  }
  return count;
}

std::string device_name(int device) {
  cudaDeviceProp prop{};
  check(cudaGetDeviceProperties(&prop, device), "cudaGetDeviceProperties");
  return prop.name;
}

#define SYMDIFF_REDUCTION(name, kind, T)                                                              \
  void name##_device(const T* in, T* out, int64_t outer, int64_t n, int64_t inner, void* stream) {    \
    launch(reduction::kind, in, out, outer, n, inner, stream);                                        \
  }                                                                                                   \
  void name(const T* host_in, T* host_out, int64_t outer, int64_t n, int64_t inner) {                 \
    on_host(reduction::kind, host_in, host_out, outer, n, inner);                                     \
  }

SYMDIFF_REDUCTION(sum_axis, sum, float)
SYMDIFF_REDUCTION(sum_axis, sum, double)
SYMDIFF_REDUCTION(mean_axis, mean, float)
SYMDIFF_REDUCTION(mean_axis, mean, double)
SYMDIFF_REDUCTION(max_axis, max, float)
SYMDIFF_REDUCTION(max_axis, max, double)
#undef SYMDIFF_REDUCTION

}  // namespace symdiff::cuda
