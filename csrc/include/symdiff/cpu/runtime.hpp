// CPU runtime facts the kernels dispatch on: instruction-set features, caches, threads.
#pragma once

#include <omp.h>
#include <unistd.h>

#include <cstdint>
#include <stdexcept>

namespace symdiff::cpu {

struct cpu_features_t {
  bool sse42, avx, avx2, fma, avx512f, avx512bw, avx512vl, avx512dq;
  int64_t l1d_bytes, l2_bytes, l3_bytes;
};

inline int64_t cache_bytes(int name, int64_t fallback) {
  long value = sysconf(name);
  return value > 0 ? static_cast<int64_t>(value) : fallback;
}

inline cpu_features_t cpu_features() {
  __builtin_cpu_init();
  cpu_features_t f{};
  f.sse42 = __builtin_cpu_supports("sse4.2");
  f.avx = __builtin_cpu_supports("avx");
  f.avx2 = __builtin_cpu_supports("avx2");
  f.fma = __builtin_cpu_supports("fma");
  f.avx512f = __builtin_cpu_supports("avx512f");
  f.avx512bw = __builtin_cpu_supports("avx512bw");
  f.avx512vl = __builtin_cpu_supports("avx512vl");
  f.avx512dq = __builtin_cpu_supports("avx512dq");
  f.l1d_bytes = cache_bytes(_SC_LEVEL1_DCACHE_SIZE, 32 * 1024);
  f.l2_bytes = cache_bytes(_SC_LEVEL2_CACHE_SIZE, 512 * 1024);
  f.l3_bytes = cache_bytes(_SC_LEVEL3_CACHE_SIZE, 8 * 1024 * 1024);
  return f;
}

inline int num_threads() { return omp_get_max_threads(); }

inline void set_num_threads(int n) {
  if (n < 1) throw std::invalid_argument("set_num_threads: n must be at least 1");
  omp_set_num_threads(n);
}

}  // namespace symdiff::cpu
