// Standalone GEMM microbenchmark and self-check, for tuning the kernel without Python:
//
//   g++ -O3 -fopenmp -std=c++17 -Icsrc/include bench/gemm_micro.cpp -o /tmp/gemm_micro
//   OMP_NUM_THREADS=2 /tmp/gemm_micro          # GFLOP/s per shape, float32 and float64
//   /tmp/gemm_micro check                      # every kernel family against a naive loop
//   /tmp/gemm_micro squares                    # the square shapes only
//   /tmp/gemm_micro w3                         # the products of bench/train_step.py's W3 step
//   SYMDIFF_GEMM_ISA=avx2 /tmp/gemm_micro      # pin the kernels: scalar, avx2 or avx512
//
// Built without -march, like the Python module: the kernels are chosen at run time.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "symdiff/cpu/gemm.hpp"

using namespace symdiff::cpu;

// Largest |error| against a double-precision loop, in units of (k + 2) * eps * (|A||B| + |beta C|).
template <class T>
double check(bool ta, bool tb, int64_t m, int64_t n, int64_t k, T alpha, T beta) {
  std::mt19937 gen(1);
  std::uniform_real_distribution<double> dist(-1, 1);
  const int64_t lda = (ta ? m : k) + 3, ldb = (tb ? k : n) + 5, ldc = n + 2;  // row strides with padding
  std::vector<T> a((ta ? k : m) * lda), b((tb ? n : k) * ldb), c(m * ldc);
  for (auto& x : a) x = T(dist(gen));
  for (auto& x : b) x = T(dist(gen));
  for (auto& x : c) x = T(dist(gen));
  const std::vector<T> c0 = c;
  gemm<T>(ta, tb, m, n, k, alpha, a.data(), lda, b.data(), ldb, beta, c.data(), ldc);
  double worst = 0;
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < n; ++j) {
      double s = 0, bound = 0;
      for (int64_t p = 0; p < k; ++p) {
        const double x = ta ? a[p * lda + i] : a[i * lda + p], y = tb ? b[j * ldb + p] : b[p * ldb + j];
        s += x * y;
        bound += std::abs(x * y);
      }
      const double old = beta == T(0) ? 0.0 : double(c0[i * ldc + j]);
      const double ref = double(alpha) * s + double(beta) * old;
      bound = std::abs(double(alpha)) * bound + std::abs(double(beta) * old);
      const double tol = (k + 2) * double(std::numeric_limits<T>::epsilon()) * bound + 1e-30;
      worst = std::max(worst, std::abs(ref - double(c[i * ldc + j])) / tol);
    }
  return worst;
}

template <class T>
double gflops(bool ta, bool tb, int64_t m, int64_t n, int64_t k) {
  std::vector<T> a(m * k, T(0.5)), b(k * n, T(0.25)), c(m * n);
  const int reps = std::max(3, int(3e9 / (2.0 * m * n * k)));
  double best = 1e30;
  for (int r = 0; r < reps; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    gemm<T>(ta, tb, m, n, k, T(1), a.data(), ta ? m : k, b.data(), tb ? k : n, T(0), c.data(), n);
    best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  return 2.0 * m * n * k / best / 1e9;
}

int main(int argc, char** argv) {
  if (argc > 1 && std::string(argv[1]) == "check") {
    double worst = 0;
    const int best = int(gemm_detail::cpu_isa());
    for (int isa = 0; isa <= best; ++isa) {
      set_gemm_isa(isa);
      for (int ta = 0; ta < 2; ++ta)
        for (int tb = 0; tb < 2; ++tb)
          for (int64_t m : {1, 3, 13, 33, 100})
            for (int64_t n : {1, 7, 17, 33, 65, 100})
              for (int64_t k : {1, 2, 17, 300, 700}) {
                const double e = std::max(check<float>(ta, tb, m, n, k, 1.5f, 0.f),
                                          check<double>(ta, tb, m, n, k, 0.5, -2.0));
                if (e > 1) std::printf("FAIL isa=%d ta=%d tb=%d m=%ld n=%ld k=%ld: %.2f x bound\n", isa, ta, tb,
                                       long(m), long(n), long(k), e);
                worst = std::max(worst, e);
              }
    }
    std::printf("check: worst error %.3f x bound (%s)\n", worst, worst <= 1 ? "ok" : "FAILED");
    return worst <= 1 ? 0 : 1;
  }
  struct shape {
    int64_t m, k, n;
    bool ta, tb;
  };
  const std::vector<shape> general = {{256, 256, 256, 0, 0},  {512, 512, 512, 0, 0},   {1024, 1024, 1024, 0, 0},
                                      {2048, 2048, 2048, 0, 0}, {100, 784, 100, 0, 0},  {100, 100, 10, 0, 0},
                                      {784, 100, 100, 1, 0},  {100, 100, 784, 0, 1},   {256, 1024, 1024, 0, 0}};
  // bench/train_step.py's W3 step (784-1024-1024-10, batch 256): forward, then the gradients
  const std::vector<shape> w3 = {{256, 784, 1024, 0, 0}, {256, 1024, 1024, 0, 0}, {256, 1024, 10, 0, 0},
                                 {1024, 256, 10, 1, 0},  {256, 10, 1024, 0, 1},   {1024, 256, 1024, 1, 0},
                                 {256, 1024, 1024, 0, 1}, {784, 256, 1024, 1, 0}};
  const std::string group = argc > 1 ? argv[1] : "";
  const std::vector<shape>& shapes = group == "w3" ? w3 : general;
  const auto f32 = gemm_detail::kernels_for<float>(current_gemm_isa());
  const auto f64 = gemm_detail::kernels_for<double>(current_gemm_isa());
  std::printf("threads %d, %s kernels (CPU best %s), tile float32 %dx%d, float64 %dx%d\n", omp_get_max_threads(),
              gemm_detail::isa_name(current_gemm_isa()), gemm_detail::isa_name(gemm_detail::cpu_isa()), f32.mr,
              f32.nr(), f64.mr, f64.nr());
  const bool squares_only = group == "squares";
  for (const shape& s : shapes) {
    if (squares_only && !(s.m == s.k && s.k == s.n)) continue;
    std::printf("m=%5ld k=%5ld n=%5ld %s%s  float32 %7.1f  float64 %7.1f GFLOP/s\n", long(s.m), long(s.k),
                long(s.n), s.ta ? "At" : "A", s.tb ? "Bt" : "B", gflops<float>(s.ta, s.tb, s.m, s.n, s.k),
                gflops<double>(s.ta, s.tb, s.m, s.n, s.k));
  }
}
