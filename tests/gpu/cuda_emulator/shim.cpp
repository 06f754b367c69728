// C entry points over the host API of csrc/cuda (symdiff/cuda/api.hpp) for ctypes, built against
// the emulated runtime in this folder. Each returns 0, or 1 with the exception's text in `error`.
#include <cstdint>
#include <cstring>
#include <exception>

#include "symdiff/cuda/api.hpp"

namespace {

template <class F>
int guarded(char* error, int64_t size, F&& f) {
  try {
    f();
    return 0;
  } catch (const std::exception& e) {
    std::strncpy(error, e.what(), size_t(size - 1));
    error[size - 1] = '\0';
    return 1;
  }
}

}  // namespace

#define SHIM_GEMM(suffix, T)                                                                                 \
  extern "C" int emu_gemm_##suffix(char* error, int64_t size, int ta, int tb, int64_t m, int64_t n, int64_t k, \
                                   T alpha, const T* a, const T* b, T beta, T* c) {                          \
    return guarded(error, size, [&] { symdiff::cuda::gemm(ta, tb, m, n, k, alpha, a, b, beta, c); });       \
  }
SHIM_GEMM(f32, float)
SHIM_GEMM(f64, double)

#define SHIM_REDUCE(name, suffix, T)                                                                       \
  extern "C" int emu_##name##_##suffix(char* error, int64_t size, const T* in, T* out, int64_t outer,      \
                                       int64_t n, int64_t inner) {                                         \
    return guarded(error, size, [&] { symdiff::cuda::name(in, out, outer, n, inner); });                  \
  }
SHIM_REDUCE(sum_axis, f32, float)
SHIM_REDUCE(sum_axis, f64, double)
SHIM_REDUCE(mean_axis, f32, float)
SHIM_REDUCE(mean_axis, f64, double)
SHIM_REDUCE(max_axis, f32, float)
SHIM_REDUCE(max_axis, f64, double)

#define SHIM_ROWS(name, suffix, T)                                                                           \
  extern "C" int emu_##name##_##suffix(char* error, int64_t size, const T* in, T* out, int64_t rows, int64_t n) { \
    return guarded(error, size, [&] { symdiff::cuda::name(in, out, rows, n); });                            \
  }
SHIM_ROWS(softmax_rows, f32, float)
SHIM_ROWS(softmax_rows, f64, double)
SHIM_ROWS(log_softmax_rows, f32, float)
SHIM_ROWS(log_softmax_rows, f64, double)
SHIM_ROWS(logsumexp_rows, f32, float)
SHIM_ROWS(logsumexp_rows, f64, double)
