// A CPU emulation of the part of CUDA that csrc/cuda/*.cu uses, so their kernels can run on a
// machine without a GPU (tests/gpu/test_cuda_emulated.py). It checks what the kernels compute:
// indexing, tiling, edge guards, barriers, warp shuffles, reductions. It does not check speed,
// memory coalescing or anything the hardware does differently (the real tests are the
// @pytest.mark.gpu ones). Built with AddressSanitizer, it also catches a kernel that reads or
// writes outside its buffers.
//
// The test rewrites each launch `kernel<<<grid, block, shmem, stream>>>(args)` into
// `::cuda_emulator::launch(grid, block, shmem, stream).run(kernel, args)`. A launch runs the
// blocks one after another. The threads of a block are fibers (ucontext) on one OS thread:
// each runs until it reaches a barrier (__syncthreads, or a warp shuffle, which is a barrier of
// its warp) or returns; a barrier opens when every thread of its scope that has not returned is
// waiting at it. A barrier that can never open (threads of one scope waiting at different
// barriers) is reported as cudaErrorLaunchFailure instead of hanging. __shared__ variables are
// static: one copy, reused by the blocks in turn. Everything is deterministic.
#pragma once

#include <ucontext.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __shared__ static
#define __restrict__ __restrict
#define __launch_bounds__(...)

using std::isfinite;
using std::isinf;
using std::isnan;

struct dim3 {
  unsigned x, y, z;
  dim3(unsigned x_ = 1, unsigned y_ = 1, unsigned z_ = 1) : x(x_), y(y_), z(z_) {}
};

struct uint3 {
  unsigned x = 0, y = 0, z = 0;
};

enum cudaError_t {
  cudaSuccess = 0,
  cudaErrorInvalidValue = 1,
  cudaErrorMemoryAllocation = 2,
  cudaErrorInvalidConfiguration = 9,
  cudaErrorLaunchFailure = 719,
  cudaErrorNoDevice = 100,
};
enum cudaMemcpyKind { cudaMemcpyHostToHost, cudaMemcpyHostToDevice, cudaMemcpyDeviceToHost, cudaMemcpyDeviceToDevice };
using cudaStream_t = struct cuda_emulator_stream*;

struct cudaDeviceProp {
  char name[256];
};

namespace cuda_emulator {

inline uint3 thread_index, block_index;
inline dim3 block_dim, grid_dim;
inline cudaError_t last_error = cudaSuccess;

// One block's threads as fibers, and the barriers between them.
class block_runner {
 public:
  static constexpr size_t stack_bytes = 256 << 10;

  explicit block_runner(int threads) : fibers_(threads) {
    for (auto& f : fibers_) f.stack.reset(new char[stack_bytes]);
  }

  // Runs `body` once per thread of the block at `block`; false if the barriers deadlocked.
  bool run(const uint3& block, const std::function<void()>& body) {
    body_ = &body;
    const int n = int(fibers_.size());
    for (int t = 0; t < n; ++t) {
      fiber& f = fibers_[t];
      f.done = false;
      f.waiting = scope::none;
      getcontext(&f.context);
      f.context.uc_stack.ss_sp = f.stack.get();
      f.context.uc_stack.ss_size = stack_bytes;
      f.context.uc_link = &scheduler_;
      makecontext(&f.context, reinterpret_cast<void (*)()>(&block_runner::entry), 0);
    }
    for (;;) {
      bool progressed = false;
      for (int t = 0; t < n; ++t) {
        fiber& f = fibers_[t];
        if (f.done || f.waiting != scope::none) continue;
        current_ = this;
        current_thread_ = t;
        block_index = block;
        thread_index = {unsigned(t % block_dim.x), unsigned(t / block_dim.x % block_dim.y),
                        unsigned(t / (block_dim.x * block_dim.y))};
        swapcontext(&scheduler_, &f.context);
        progressed = true;
      }
      bool all_done = true;
      for (auto& f : fibers_) all_done = all_done && f.done;
      if (all_done) return true;
      if (release()) continue;
      if (!progressed) return false;  // every live thread waits and no barrier can open
    }
  }

  // Called by a kernel thread: wait at a barrier of the block, or of the thread's warp.
  static void sync_block() { current_->wait(scope::block); }
  static void sync_warp() { current_->wait(scope::warp); }
  static int linear_thread() { return current_thread_; }
  static double* shuffle_slots() { return current_->slots_.data(); }
  static block_runner* current() { return current_; }
  void ensure_slots() { slots_.assign(fibers_.size(), 0.0); }

 private:
  enum class scope { none, block, warp };
  struct fiber {
    ucontext_t context;
    std::unique_ptr<char[]> stack;
    bool done = false;
    scope waiting = scope::none;
  };

  static void entry() {
    block_runner* self = current_;
    const int t = current_thread_;
    (*self->body_)();
    self->fibers_[t].done = true;  // uc_link returns to the scheduler
  }

  void wait(scope s) {
    const int t = current_thread_;
    fibers_[t].waiting = s;
    swapcontext(&fibers_[t].context, &scheduler_);
    current_thread_ = t;
  }

  // Opens every barrier whose scope has all its live threads waiting at it; false if none.
  bool release() {
    const int n = int(fibers_.size());
    bool opened = false;
    // warps: groups of 32 consecutive linear thread ids
    for (int w0 = 0; w0 < n; w0 += 32) {
      const int w1 = std::min(n, w0 + 32);
      bool all = true, any = false;
      for (int t = w0; t < w1; ++t) {
        if (fibers_[t].done) continue;
        any = true;
        all = all && fibers_[t].waiting == scope::warp;
      }
      if (any && all) {
        for (int t = w0; t < w1; ++t) fibers_[t].waiting = scope::none;
        opened = true;
      }
    }
    if (opened) return true;
    bool all = true, any = false;
    for (auto& f : fibers_) {
      if (f.done) continue;
      any = true;
      all = all && f.waiting == scope::block;
    }
    if (any && all) {
      for (auto& f : fibers_) f.waiting = scope::none;
      return true;
    }
    return false;
  }

  std::vector<fiber> fibers_;
  std::vector<double> slots_;
  ucontext_t scheduler_;
  const std::function<void()>* body_ = nullptr;
  static inline block_runner* current_ = nullptr;
  static inline int current_thread_ = 0;
};

struct launch {
  dim3 grid, block;

  launch(dim3 g, dim3 b, size_t = 0, cudaStream_t = nullptr) : grid(g), block(b) {}

  template <class Kernel, class... Args>
  void run(Kernel kernel, Args... args) const {
    const uint64_t threads = uint64_t(block.x) * block.y * block.z;
    if (threads == 0 || threads > 1024 || grid.x == 0 || grid.y == 0 || grid.z == 0 || grid.y > 65535 ||
        grid.z > 65535 || block.z > 64) {
      last_error = cudaErrorInvalidConfiguration;
      return;
    }
    block_dim = block;
    grid_dim = grid;
    block_runner runner{int(threads)};
    runner.ensure_slots();
    const std::function<void()> body = [&] { kernel(args...); };
    for (unsigned z = 0; z < grid.z; ++z)
      for (unsigned y = 0; y < grid.y; ++y)
        for (unsigned x = 0; x < grid.x; ++x)
          if (!runner.run(uint3{x, y, z}, body)) {
            last_error = cudaErrorLaunchFailure;
            return;
          }
  }
};

}  // namespace cuda_emulator

#define threadIdx (::cuda_emulator::thread_index)
#define blockIdx (::cuda_emulator::block_index)
#define blockDim (::cuda_emulator::block_dim)
#define gridDim (::cuda_emulator::grid_dim)

inline void __syncthreads() { cuda_emulator::block_runner::sync_block(); }

// Every lane of the warp takes part (the kernels pass the full mask): each writes its value,
// the warp meets, each reads its partner's, the warp meets again before the slots are reused.
template <class T>
T __shfl_xor_sync(unsigned, T value, int lane_mask) {
  static_assert(sizeof(T) <= sizeof(double), "shuffles of values up to 8 bytes");
  double* slots = cuda_emulator::block_runner::shuffle_slots();
  const int t = cuda_emulator::block_runner::linear_thread();
  std::memcpy(&slots[t], &value, sizeof(T));
  cuda_emulator::block_runner::sync_warp();
  const int partner = (t & ~31) | ((t & 31) ^ lane_mask);
  T got;
  std::memcpy(&got, &slots[partner], sizeof(T));
  cuda_emulator::block_runner::sync_warp();
  return got;
}

// Atomics: the threads are fibers that switch only at barriers, so a read-modify-write is atomic.
template <class T>
T atomicAdd(T* p, T v) {
  const T old = *p;
  *p = old + v;
  return old;
}
template <class T>
T atomicMin(T* p, T v) {
  const T old = *p;
  if (v < old) *p = v;
  return old;
}
template <class T>
T atomicMax(T* p, T v) {
  const T old = *p;
  if (v > old) *p = v;
  return old;
}

// Device memory is host memory; copies are memcpy.
inline cudaError_t cudaMalloc(void** p, size_t bytes) {
  *p = std::malloc(bytes ? bytes : 1);
  return *p ? cudaSuccess : cudaErrorMemoryAllocation;
}
template <class T>
cudaError_t cudaMalloc(T** p, size_t bytes) {
  return cudaMalloc(reinterpret_cast<void**>(p), bytes);
}
inline cudaError_t cudaFree(void* p) {
  std::free(p);
  return cudaSuccess;
}
inline cudaError_t cudaMemcpy(void* dst, const void* src, size_t bytes, cudaMemcpyKind) {
  std::memmove(dst, src, bytes);
  return cudaSuccess;
}
inline cudaError_t cudaMemset(void* p, int value, size_t bytes) {
  std::memset(p, value, bytes);
  return cudaSuccess;
}
inline cudaError_t cudaMemsetAsync(void* p, int value, size_t bytes, cudaStream_t = nullptr) {
  return cudaMemset(p, value, bytes);
}
inline cudaError_t cudaGetLastError() {
  const cudaError_t e = cuda_emulator::last_error;
  cuda_emulator::last_error = cudaSuccess;
  return e;
}
inline cudaError_t cudaDeviceSynchronize() { return cudaGetLastError(); }
inline const char* cudaGetErrorString(cudaError_t e) {
  switch (e) {
    case cudaSuccess: return "no error";
    case cudaErrorInvalidConfiguration: return "invalid configuration argument";
    case cudaErrorLaunchFailure: return "emulated launch failed: threads wait at barriers that cannot open";
    case cudaErrorMemoryAllocation: return "out of memory";
    default: return "emulated CUDA error";
  }
}
inline cudaError_t cudaGetDeviceCount(int* count) {
  *count = 1;
  return cudaSuccess;
}
inline cudaError_t cudaGetDeviceProperties(cudaDeviceProp* prop, int) {
  std::strcpy(prop->name, "CPU emulation (tests/gpu/cuda_emulator)");
  return cudaSuccess;
}
