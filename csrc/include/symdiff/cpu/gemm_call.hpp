// GEMM in a generated program (symdiff.lowering.render.cpu_kernels prints the calls): the
// module's gemm (symdiff/cpu/gemm.hpp, compiled once), reached through the services table the
// loader passes to symdiff_program_services() right after dlopen and before any call.
#pragma once

#include <atomic>
#include <cstdint>

#include "symdiff/cpu/services.hpp"

namespace symdiff::cpu {

inline std::atomic<const symdiff_services*>& program_services() {
  static std::atomic<const symdiff_services*> services{nullptr};
  return services;
}

template <class T>
void gemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, T alpha, const T* a, int64_t lda,
          const T* b, int64_t ldb, T beta, T* c, int64_t ldc);

template <>
inline void gemm<float>(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float* a,
                        int64_t lda, const float* b, int64_t ldb, float beta, float* c, int64_t ldc) {
  program_services().load(std::memory_order_acquire)->sgemm(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb,
                                                             beta, c, ldc);
}

template <>
inline void gemm<double>(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, double alpha,
                         const double* a, int64_t lda, const double* b, int64_t ldb, double beta, double* c,
                         int64_t ldc) {
  program_services().load(std::memory_order_acquire)->dgemm(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb,
                                                             beta, c, ldc);
}

}  // namespace symdiff::cpu

// 0 when the table is one this program can use; the loader refuses the program otherwise.
extern "C" int symdiff_program_services(const symdiff_services* services) {
  if (!services || services->version != kSymdiffServicesVersion || !services->sgemm || !services->dgemm) return 1;
  symdiff::cpu::program_services().store(services, std::memory_order_release);
  return 0;
}
