// CUDA counterparts of the CPU reductions: one thread block per output row, shared-memory tree.
#include <cuda_runtime.h>

#include <stdexcept>
#include <string>

#include "symdiff/cuda/api.hpp"

namespace symdiff::cuda {
namespace {

void check(cudaError_t status, const char* what) {
  if (status != cudaSuccess) throw std::runtime_error(std::string(what) + ": " + cudaGetErrorString(status));
}

template <class T>
__global__ void sum_axis_kernel(const T* in, T* out, int64_t n, int64_t inner) {
  // block b reduces output (o, i) with o = b / inner, i = b % inner over the n axis
  extern __shared__ double partial[];
  const int64_t o = blockIdx.x / inner, i = blockIdx.x % inner;
  double acc = 0;
  for (int64_t j = threadIdx.x; j < n; j += blockDim.x) acc += in[(o * n + j) * inner + i];
  partial[threadIdx.x] = acc;
  __syncthreads();
  for (unsigned stride = blockDim.x / 2; stride > 0; stride >>= 1) {
    if (threadIdx.x < stride) partial[threadIdx.x] += partial[threadIdx.x + stride];
    __syncthreads();
  }
  if (threadIdx.x == 0) out[blockIdx.x] = static_cast<T>(partial[0]);
}

template <class T>
void sum_axis_impl(const T* host_in, T* host_out, int64_t outer, int64_t n, int64_t inner) {
  const int64_t in_count = outer * n * inner, out_count = outer * inner;
  if (out_count == 0) return;
  T *d_in = nullptr, *d_out = nullptr;
  check(cudaMalloc(&d_in, sizeof(T) * (in_count > 0 ? in_count : 1)), "cudaMalloc");
  try {
    check(cudaMalloc(&d_out, sizeof(T) * out_count), "cudaMalloc");
    check(cudaMemcpy(d_in, host_in, sizeof(T) * in_count, cudaMemcpyHostToDevice), "copy to device");
    const int threads = 256;
    sum_axis_kernel<T><<<static_cast<unsigned>(out_count), threads, threads * sizeof(double)>>>(d_in, d_out, n, inner);
    check(cudaGetLastError(), "sum_axis_kernel launch");
    check(cudaMemcpy(host_out, d_out, sizeof(T) * out_count, cudaMemcpyDeviceToHost), "copy to host");
  } catch (...) {
    cudaFree(d_in);
    cudaFree(d_out);
    throw;
  }
  cudaFree(d_in);
  cudaFree(d_out);
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

void sum_axis(const float* in, float* out, int64_t outer, int64_t n, int64_t inner) {
  sum_axis_impl(in, out, outer, n, inner);
}
void sum_axis(const double* in, double* out, int64_t outer, int64_t n, int64_t inner) {
  sum_axis_impl(in, out, outer, n, inner);
}

}  // namespace symdiff::cuda
