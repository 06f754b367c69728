// Private helpers shared by the .cu files: CUDA errors as exceptions, an owning device buffer,
// warp/block reductions. Not part of the host API (symdiff/cuda/api.hpp).
#pragma once

#include <cuda_runtime.h>

#include <cmath>
#include <cstdint>
#include <stdexcept>
#include <string>

namespace symdiff::cuda::detail {

inline void check(cudaError_t status, const char* what) {
  if (status != cudaSuccess) throw std::runtime_error(std::string(what) + ": " + cudaGetErrorString(status));
}

// A launch error (bad configuration) shows at once; a fault inside the kernel shows at the next
// synchronising call, which the host wrappers' copy back also checks.
inline void check_launch(const char* kernel) { check(cudaGetLastError(), kernel); }

inline unsigned grid_size(int64_t blocks, int64_t limit, const char* what) {
  if (blocks > limit) throw std::invalid_argument(std::string(what) + ": too many blocks for one launch");
  return static_cast<unsigned>(blocks);
}

inline cudaStream_t as_stream(void* stream) { return static_cast<cudaStream_t>(stream); }

// Owns `count` elements of device memory; copies are synchronous (the host wrappers' only use).
template <class T>
class device_buffer {
 public:
  explicit device_buffer(int64_t count) : count_(count) {
    check(cudaMalloc(&ptr_, sizeof(T) * static_cast<size_t>(count > 0 ? count : 1)), "cudaMalloc");
  }
  // Copies `count` elements from `host` unless it is null.
  device_buffer(const T* host, int64_t count) : device_buffer(count) {
    if (host != nullptr && count > 0)
      check(cudaMemcpy(ptr_, host, sizeof(T) * count, cudaMemcpyHostToDevice), "copy to device");
  }
  device_buffer(const device_buffer&) = delete;
  device_buffer& operator=(const device_buffer&) = delete;
  ~device_buffer() { cudaFree(ptr_); }

  T* get() const { return ptr_; }
  void copy_to(T* host) const {
    if (count_ > 0) check(cudaMemcpy(host, ptr_, sizeof(T) * count_, cudaMemcpyDeviceToHost), "copy to host");
  }

 private:
  T* ptr_ = nullptr;
  int64_t count_;
};

template <class T>
__device__ T lowest() { return T(-INFINITY); }

// max that propagates NaN like numpy.max: once the running value is NaN it stays NaN.
template <class T>
__device__ T nan_max(T a, T b) { return (a != a || a >= b) ? a : b; }

template <class T>
__device__ T warp_sum(T v) {
  for (int offset = 16; offset > 0; offset >>= 1) v += __shfl_xor_sync(0xffffffffu, v, offset);
  return v;
}

template <class T>
__device__ T warp_max(T v) {
  for (int offset = 16; offset > 0; offset >>= 1) v = nan_max(v, __shfl_xor_sync(0xffffffffu, v, offset));
  return v;
}

// Block-wide reductions; every thread gets the result. blockDim.x must be a multiple of 32
// (at most 1024) and `scratch` must hold 32 values. They end with a barrier, so scratch can be
// reused at once.
template <class T>
__device__ T block_sum(T v, T* scratch) {
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32, warps = blockDim.x / 32;
  v = warp_sum(v);
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  v = warp_sum(lane < warps ? scratch[lane] : T(0));  // every warp combines the partials
  __syncthreads();
  return v;
}

template <class T>
__device__ T block_max(T v, T* scratch) {
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32, warps = blockDim.x / 32;
  v = warp_max(v);
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  v = warp_max(lane < warps ? scratch[lane] : lowest<T>());
  __syncthreads();
  return v;
}

}  // namespace symdiff::cuda::detail
