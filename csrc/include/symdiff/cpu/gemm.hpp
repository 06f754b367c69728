// GEMM for float32/float64: C = alpha * op(A) · op(B) + beta * C, row-major, op = identity or transpose.
//
//   symdiff::cpu::gemm<float>(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
//   symdiff::cpu::gemm_batched<float>(..., batch, stride_a, stride_b, stride_c);
//
// op(A) is m x k, op(B) is k x n, C is m x n; lda/ldb/ldc are row strides in elements (the
// column stride is 1). trans_a means A is stored k x m (likewise B), and transposes are never
// materialised: the packing routines read whichever layout they are given. As in BLAS, C is
// not read when beta == 0 (NaNs there are overwritten).
//
// Structure (BLIS-style, written for row-major C where the vector dimension is N):
//   for each K block of kc (kc sized so an A micro-panel stays in L1):
//     pack the shared operand for all threads (A rows, or B columns when the threads split M)
//     each thread, over its own range of the other dimension, in L2-sized blocks:
//       pack its block privately (or read B in place when it is row-major and reuse is low)
//       for each MR-row A panel, for each NR-column B panel: register-tiled microkernel
// The microkernel is chosen once per process from the CPU: AVX-512, AVX2+FMA or portable C++
// ($SYMDIFF_GEMM_ISA pins a narrower family: see default_isa).
#pragma once

#include <omp.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <string>

#include "symdiff/cpu/gemm_kernels.hpp"
#include "symdiff/cpu/gemm_narrow.hpp"
#include "symdiff/cpu/gemm_rows.hpp"
#include "symdiff/cpu/runtime.hpp"

namespace symdiff::cpu {

enum class gemm_isa { scalar = 0, avx2 = 1, avx512 = 2 };

namespace gemm_detail {

template <class T>
struct kernel_set {
  int mr, lanes, nv;    // tile: mr rows x (nv * lanes) columns
  ukernel_fn<T> fn[2][4];  // fn[A_ROWS][v - 1]: tiles v vectors wide (narrow N edges); see a_at
  int half_mr;             // rows of the edge tiles below (0: none)
  ukernel_fn<T> half[2][4];  // the last A panel when it has at most half_mr rows (m = 100: 12 + 1/2)
  ukernel_fn<T> one[2][4];   // a last A panel of one row (a vector-matrix product); null: use half
  int nr() const { return lanes * nv; }
};

template <class T>
kernel_set<T> kernels_for(gemm_isa isa) {
#ifdef SYMDIFF_GEMM_X86
  if (isa == gemm_isa::avx512) {
    // 8 x 48 (float) / 8 x 24 (double): 24 accumulators; measured a few % ahead of 12 x 32 and
    // 14 x 32 on Zen 4/5 and with a deeper K block (an 8-row A panel is half the L1 footprint).
    return {8, 64 / int(sizeof(T)), 3,
            {{ukernel_avx512<T, 8, 1, false>, ukernel_avx512<T, 8, 2, false>, ukernel_avx512<T, 8, 3, false>},
             {ukernel_avx512<T, 8, 1, true>, ukernel_avx512<T, 8, 2, true>, ukernel_avx512<T, 8, 3, true>}},
            4,
            {{ukernel_avx512<T, 4, 1, false>, ukernel_avx512<T, 4, 2, false>, ukernel_avx512<T, 4, 3, false>},
             {ukernel_avx512<T, 4, 1, true>, ukernel_avx512<T, 4, 2, true>, ukernel_avx512<T, 4, 3, true>}},
#if SYMDIFF_GEMM_FEW_ROWS
            // a 4-row tile computed 4 rows for one: 1 x 784 x 100ᵀ float32 21.3 -> 16.1 µs
            {{ukernel_avx512<T, 1, 1, false>, ukernel_avx512<T, 1, 2, false>, ukernel_avx512<T, 1, 3, false>},
             {ukernel_avx512<T, 1, 1, true>, ukernel_avx512<T, 1, 2, true>, ukernel_avx512<T, 1, 3, true>}}};
#else
            {}};
#endif
  }
  if (isa == gemm_isa::avx2) {
    return {6, 32 / int(sizeof(T)), 2,
            {{ukernel_avx2<T, 6, 1, false>, ukernel_avx2<T, 6, 2, false>},
             {ukernel_avx2<T, 6, 1, true>, ukernel_avx2<T, 6, 2, true>}},
            3,
            {{ukernel_avx2<T, 3, 1, false>, ukernel_avx2<T, 3, 2, false>},
             {ukernel_avx2<T, 3, 1, true>, ukernel_avx2<T, 3, 2, true>}},
            {}};
  }
#endif
  (void)isa;
  return {4, 8, 1, {{ukernel_scalar<T, 4, 8, false>}, {ukernel_scalar<T, 4, 8, true>}}, 0, {}, {}};
}

// The best family this CPU runs. Detected once: cpu_features() runs cpuid and sysconf, which in
// a VM trap to the hypervisor (about 1 µs per call measured here, a third of a 100x100x10 product).
inline gemm_isa cpu_isa() {
  static const gemm_isa best = [] {
    const cpu_features_t f = cpu_features();
    if (f.avx512f && f.avx512dq && f.avx512vl && f.avx2 && f.fma) return gemm_isa::avx512;
    if (f.avx2 && f.fma) return gemm_isa::avx2;
    return gemm_isa::scalar;
  }();
  return best;
}

inline const char* isa_name(gemm_isa isa) {
  return isa == gemm_isa::avx512 ? "avx512" : isa == gemm_isa::avx2 ? "avx2" : "scalar";
}

// The process's family: $SYMDIFF_GEMM_ISA (avx512, avx2, scalar; unset, empty or auto: the CPU's
// best), read once. Pinning a narrower family stands in for a machine without the wider one (the
// AVX2 kernels of a Zen 3 measured on a Zen 4). A name the CPU can not run, or an unknown one, is
// an error at every gemm call, never a silent fallback: a benchmark must not time another kernel.
struct isa_choice {
  gemm_isa isa;
  std::string error;  // non-empty: the variable is unusable
};

inline isa_choice choose_isa(const char* env, gemm_isa best) {
  const std::string name = env ? env : "";
  if (name.empty() || name == "auto") return {best, ""};
  const int isa = name == "scalar" ? 0 : name == "avx2" ? 1 : name == "avx512" ? 2 : -1;
  if (isa < 0) return {best, "SYMDIFF_GEMM_ISA='" + name + "': expected avx512, avx2, scalar or auto"};
  if (isa > int(best))
    return {best, "SYMDIFF_GEMM_ISA=" + name + ": this CPU can not run those kernels (its best is " +
                      isa_name(best) + "); choose one it has, or unset the variable"};
  return {gemm_isa(isa), ""};
}

inline gemm_isa default_isa() {
  static const isa_choice choice = choose_isa(std::getenv("SYMDIFF_GEMM_ISA"), cpu_isa());
  if (!choice.error.empty()) throw std::invalid_argument(choice.error);
  return choice.isa;
}

// -1: not chosen yet (use default_isa). Tests pin a slower path to check it on an AVX-512 machine.
inline int& isa_override() {
  static int value = -1;
  return value;
}

struct cache_sizes {
  int64_t l1, l2, l3;
};

inline const cache_sizes& caches() {
  static const cache_sizes sizes = [] {
    const cpu_features_t f = cpu_features();
    // Clamp what the OS reports: VMs report odd values (a 320 MiB "L3" on our test machines).
    return cache_sizes{std::clamp<int64_t>(f.l1d_bytes, 16 << 10, 64 << 10),
                       std::clamp<int64_t>(f.l2_bytes, 256 << 10, 4 << 20),
                       std::clamp<int64_t>(f.l3_bytes, 2 << 20, 64 << 20)};
  }();
  return sizes;
}

inline int64_t round_up(int64_t x, int64_t to) { return (x + to - 1) / to * to; }
inline int64_t ceil_div(int64_t x, int64_t y) { return (x + y - 1) / y; }

// Per-thread scratch that only grows; 64-byte aligned. Slots: 0 private B, 1 private A, 2 shared,
// 3 the partial edge panel of an A read in place. Thread-local, so OpenMP pool threads
// keep theirs between calls and no call pays for an allocation in the steady state.
template <class T>
T* scratch(int slot, int64_t count) {
  struct buffer {
    T* data = nullptr;
    int64_t size = 0;
    ~buffer() { std::free(data); }
  };
  thread_local buffer buffers[4];
  buffer& b = buffers[slot];
  if (b.size < count) {
    std::free(b.data);
    b.size = round_up(count + 64, 16);
    b.data = static_cast<T*>(std::aligned_alloc(64, round_up(b.size * sizeof(T), 64)));
    if (!b.data) {
      b.size = 0;
      throw std::bad_alloc();
    }
  }
  return b.data;
}

// A rows [i0, i0 + rows) x K columns [p0, p0 + kc) into one MR-row panel: out[p * MR + r].
template <class T>
void pack_a_panel(bool ta, const T* a, int64_t lda, int64_t i0, int rows, int64_t p0, int64_t kc, int mr,
                  T* out, bool avx2) {
  if (!ta) {
    transpose_pack(avx2, a + i0 * lda + p0, lda, rows, kc, out, mr);
    for (int r = rows; r < mr; ++r)
      for (int64_t p = 0; p < kc; ++p) out[p * mr + r] = T(0);
  } else {
    for (int64_t p = 0; p < kc; ++p) {
      const T* src = a + (p0 + p) * lda + i0;
      T* dst = out + p * mr;
      for (int r = 0; r < rows; ++r) dst[r] = src[r];
      for (int r = rows; r < mr; ++r) dst[r] = T(0);
    }
  }
}

// B K rows [p0, p0 + kc) x columns [j0, j0 + cols) into one NR-column panel: out[p * NR + j].
template <class T>
void pack_b_panel(bool tb, const T* b, int64_t ldb, int64_t p0, int64_t kc, int64_t j0, int cols, int nr,
                  T* out, bool avx2) {
  if (!tb) {
    for (int64_t p = 0; p < kc; ++p) {
      const T* src = b + (p0 + p) * ldb + j0;
      T* dst = out + p * nr;
      for (int j = 0; j < cols; ++j) dst[j] = src[j];
      for (int j = cols; j < nr; ++j) dst[j] = T(0);
    }
  } else {
    transpose_pack(avx2, b + j0 * ldb + p0, ldb, cols, kc, out, nr);
    for (int64_t p = 0; p < kc; ++p)
      for (int j = cols; j < nr; ++j) out[p * nr + j] = T(0);
  }
}

template <class T>
struct plan {
  bool ta, tb;
  int64_t m, n, k;
  T alpha;
  const T* a;
  int64_t lda;
  const T* b;
  int64_t ldb;
  T beta;
  T* c;
  int64_t ldc;
  kernel_set<T> ks;
  int64_t kc;        // K block
  int64_t block;     // private block along the split dimension (L2)
  int64_t chunk;     // shared operand extent packed at once (L3)
  bool split_n;      // threads own column ranges (else row ranges)
  bool direct_a;     // read A in place (full panels) instead of packing it
  bool direct_b;     // read row-major B in place instead of packing it
  bool avx2;         // packing may use AVX2 transposes
  int threads;
};

// C[i0 : i0 + rows, j0 : j0 + cols] over K block [p0, p0 + kc): A from the packed panels at ap (or
// in place when ap is null), B panels b_panel_stride apart with rows b_ks apart.
template <class T>
void run_tile_grid(const plan<T>& P, const T* ap, int64_t i0, int64_t rows, const T* bp, int64_t b_ks,
                   int64_t b_panel_stride, int64_t j0, int64_t cols, int64_t p0, int64_t kc, T beta) {
  const int mr = P.ks.mr, nr = P.ks.nr();
  for (int64_t ip = 0; ip * mr < rows; ++ip) {
    const int64_t i = i0 + ip * mr;
    const int r = int(std::min<int64_t>(mr, rows - ip * mr));
    const bool one = r == 1 && P.ks.one[0][0] != nullptr;  // a single row: a one-row tile
    const bool half = !one && r <= P.ks.half_mr;           // a short last panel: a tile of half_mr rows
    const int tile_rows = one ? 1 : half ? P.ks.half_mr : mr;
    const auto& tiles = one ? P.ks.one : half ? P.ks.half : P.ks.fn;
    const T* a_panel = ap + ip * mr * kc;
    int64_t a_stride = mr;
    int rows_layout = 0;
    if (!ap && r < tile_rows) {  // in place would read past the last row of A
      T* edge = scratch<T>(3, mr * kc);
      pack_a_panel(P.ta, P.a, P.lda, i, r, p0, kc, mr, edge, P.avx2);
      a_panel = edge;
    } else if (!ap) {
      a_panel = P.ta ? P.a + p0 * P.lda + i : P.a + i * P.lda + p0;
      a_stride = P.lda;
      rows_layout = P.ta ? 0 : 1;
    }
    T* c_row = P.c + i * P.ldc + j0;
    for (int64_t jp = 0; jp * nr < cols; ++jp) {
      const int w = int(std::min<int64_t>(nr, cols - jp * nr));
      const int nv = int(ceil_div(w, P.ks.lanes));
      tiles[rows_layout][nv - 1](kc, a_panel, a_stride, bp + jp * b_panel_stride, b_ks, c_row + jp * nr, P.ldc,
                                 P.alpha, beta, r, w);
    }
  }
}

// Barrier of gemm's own team. With one thread there is no team of ours: gemm may be running
// inside someone else's parallel region (gemm_batched), where an orphaned barrier would bind to
// that region and deadlock.
inline void team_barrier(int nt) {
  if (nt > 1) {
#pragma omp barrier
  }
}

// One thread's share of the work, tid in [0, nt); the shared operand is packed cooperatively.
template <class T>
void run_thread(const plan<T>& P, T* shared, int tid, int nt) {
  const int mr = P.ks.mr, nr = P.ks.nr();
  const int64_t split_extent = P.split_n ? P.n : P.m, shared_extent = P.split_n ? P.m : P.n;
  const int unit = P.split_n ? nr : mr;
  const int64_t units = ceil_div(split_extent, unit);
  const int64_t lo = std::min(split_extent, units * tid / nt * unit);
  const int64_t hi = std::min(split_extent, units * (tid + 1) / nt * unit);
  // With both operands read in place or packed privately, the threads never wait for each other.
  const bool packs_shared = P.split_n ? !P.direct_a : !P.direct_b;

  for (int64_t s0 = 0; s0 < shared_extent; s0 += P.chunk) {
    const int64_t s_len = std::min(P.chunk, shared_extent - s0);
    for (int64_t p0 = 0; p0 < P.k; p0 += P.kc) {
      const int64_t kc = std::min(P.kc, P.k - p0);
      const T beta = p0 == 0 ? P.beta : T(1);
      if (P.split_n) {
        const T* ap = nullptr;
        if (!P.direct_a) {
          const int64_t panels = ceil_div(s_len, mr);
          for (int64_t ip = panels * tid / nt; ip < panels * (tid + 1) / nt; ++ip)
            pack_a_panel(P.ta, P.a, P.lda, s0 + ip * mr, int(std::min<int64_t>(mr, s_len - ip * mr)), p0, kc, mr,
                         shared + ip * mr * kc, P.avx2);
          team_barrier(nt);
          ap = shared;
        }
        for (int64_t j0 = lo; j0 < hi; j0 += P.block) {
          const int64_t cols = std::min(P.block, hi - j0);
          if (P.direct_b) {
            run_tile_grid(P, ap, s0, s_len, P.b + p0 * P.ldb + j0, P.ldb, nr, j0, cols, p0, kc, beta);
          } else {
            T* bp = scratch<T>(0, round_up(cols, nr) * kc);
            for (int64_t jp = 0; jp * nr < cols; ++jp)
              pack_b_panel(P.tb, P.b, P.ldb, p0, kc, j0 + jp * nr, int(std::min<int64_t>(nr, cols - jp * nr)), nr,
                           bp + jp * nr * kc, P.avx2);
            run_tile_grid(P, ap, s0, s_len, bp, nr, nr * kc, j0, cols, p0, kc, beta);
          }
        }
      } else {
        const T* bp = P.b + p0 * P.ldb + s0;
        int64_t b_ks = P.ldb, b_stride = nr;
        if (!P.direct_b) {
          const int64_t panels = ceil_div(s_len, nr);
          for (int64_t jp = panels * tid / nt; jp < panels * (tid + 1) / nt; ++jp)
            pack_b_panel(P.tb, P.b, P.ldb, p0, kc, s0 + jp * nr, int(std::min<int64_t>(nr, s_len - jp * nr)), nr,
                         shared + jp * nr * kc, P.avx2);
          team_barrier(nt);
          bp = shared, b_ks = nr, b_stride = nr * kc;
        }
        for (int64_t i0 = lo; i0 < hi; i0 += P.block) {
          const int64_t rows = std::min(P.block, hi - i0);
          T* ap = nullptr;
          if (!P.direct_a) {
            ap = scratch<T>(1, round_up(rows, mr) * kc);
            for (int64_t ip = 0; ip * mr < rows; ++ip)
              pack_a_panel(P.ta, P.a, P.lda, i0 + ip * mr, int(std::min<int64_t>(mr, rows - ip * mr)), p0, kc, mr,
                           ap + ip * mr * kc, P.avx2);
          }
          run_tile_grid(P, ap, i0, rows, bp, b_ks, b_stride, s0, s_len, p0, kc, beta);
        }
      }
      if (packs_shared) team_barrier(nt);  // the shared buffer is repacked next
    }
  }
}

// Largest thread share of `extent` split in `unit` steps over `threads` (as run_thread does),
// counting a partial tile as a whole `granule` (what the microkernel really computes).
inline int64_t share(int64_t extent, int64_t unit, int64_t granule, int threads) {
  const int64_t units = ceil_div(extent, unit);
  int64_t worst = 0;
  for (int t = 0; t < threads; ++t) {
    const int64_t lo = std::min(extent, units * t / threads * unit);
    const int64_t hi = std::min(extent, units * (t + 1) / threads * unit);
    worst = std::max(worst, round_up(hi - lo, granule));
  }
  return worst;
}

template <class T>
plan<T> make_plan(bool ta, bool tb, int64_t m, int64_t n, int64_t k, T alpha, const T* a, int64_t lda, const T* b,
                  int64_t ldb, T beta, T* c, int64_t ldc, int max_threads) {
  plan<T> P{ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, {}, 0, 0, 0, true, false, false, false, 1};
  const int override_isa = isa_override();
  const gemm_isa isa = override_isa >= 0 ? gemm_isa(override_isa) : default_isa();
  P.ks = kernels_for<T>(isa);
  P.avx2 = isa != gemm_isa::scalar;
  const int64_t mr = P.ks.mr, nr = P.ks.nr(), sz = sizeof(T);
  const cache_sizes& cs = caches();

  // K block, split evenly. AVX-512: an A micro-panel (mr x kc) fills about half of L1, and the
  // wider B panel streams past it from L2 (24 FMAs per k step hide that; measured a few % ahead
  // of shallower blocks). AVX2: a tile has half the FMAs per k step, so both micro-panels stay in
  // L1, as in BLIS's Haswell/Zen kernels (kc = 256 with a 32 KB L1): (mr + nr) kc within 7/8 of
  // L1, kc = 325 float / 256 double on Zen 3. Flat on the Zen 4 / Xeon proxies (kc 256 to 1024
  // within 1%), where the 48 KB L1 holds either.
  const int64_t l1_share = isa == gemm_isa::avx2 ? cs.l1 * 7 / 8 / (mr + nr) : cs.l1 / 2 / mr;
  const int64_t kc_max = std::clamp<int64_t>(l1_share / sz, 64, 1024);
  P.kc = ceil_div(k, ceil_div(k, kc_max));

  const double flops = 2.0 * double(m) * double(n) * double(k);
  int threads = max_threads;
  if (flops < 1e6) threads = 1;  // an OpenMP fork/join costs more than it saves (100x784x10: 63 -> 103 GFLOP/s on 2)
  threads = int(std::min<int64_t>(threads, std::max(ceil_div(m, mr), ceil_div(n, nr))));
  P.threads = std::max(threads, 1);

  // Split the dimension whose largest per-thread share of the work is smaller.
  const int64_t lanes = P.ks.lanes;
  const int64_t cost_n = share(n, nr, lanes, P.threads) * round_up(m, mr);
  const int64_t cost_m = share(m, mr, mr, P.threads) * round_up(n, lanes);
  // Wide N with a large B favours splitting N even at a few % more work: each thread then
  // streams its own B block and reads A in place, with no shared packing and no barriers
  // (measured at 2 threads on an Intel VM: n = 2048 339 vs 203 GFLOP/s, 256x1024x1024 300 vs
  // 238). A B of at most half of L2 is packed once for both threads in no time, and each thread
  // then reads only its half of A: split by M, 784x64ᵀx256 127 vs 136 µs, 784x256x256 467 vs
  // 515, 256³ 165 vs 170 (Zen 4 VM, interleaved in one process). Narrow N (100) is better split
  // by M, ties included: at 784x100ᵀx96 (two B panels) split by N each thread streams all of
  // A, 77 vs 74 µs at best and slower rounds of 90-140 µs.
  const bool large_b = k * n * int64_t(sizeof(T)) > cs.l2 / 2;
  P.split_n = cost_n < cost_m || (large_b && n >= 4 * nr && 100 * cost_n <= 115 * cost_m);

  // Private block: the streamed operand (B columns, or A rows) fits in half of L2.
  const int64_t unit = P.split_n ? nr : mr;
  P.block = std::max(unit, cs.l2 / 2 / (P.kc * sz) / unit * unit);
  // Shared operand: a quarter of L3 at most, in whole panels.
  const int64_t sunit = P.split_n ? mr : nr;
  P.chunk = std::max(sunit, cs.l3 / 4 / (P.kc * sz) / sunit * sunit);

  // Row-major B that each thread uses for only a few A panels: packing would cost more than
  // the strided reads it saves.
  P.direct_b = !tb && m <= 16 * mr;
  // Row-major A is read in place: its MR rows are MR sequential streams, which measured as fast
  // as packed panels even at n = 2048 (packing is a transpose). A transposed A in place touches
  // a new cache line per k step, so it is packed (a plain copy) unless each A panel meets only
  // a few B panels (narrow N per thread).
  const int64_t n_per_thread = P.split_n ? share(n, nr, 1, P.threads) : n;
  P.direct_a = !ta || ceil_div(n_per_thread, nr) <= 4;
  return P;
}

}  // namespace gemm_detail

// Pin the kernel family (for tests and benchmarks); -1 restores the process's default
// ($SYMDIFF_GEMM_ISA, else the CPU's best).
inline void set_gemm_isa(int isa) {
  if (isa >= 0 && isa > int(gemm_detail::cpu_isa()))
    throw std::invalid_argument("set_gemm_isa: this CPU does not support that kernel");
  gemm_detail::isa_override() = isa < 0 ? -1 : isa;
}

inline gemm_isa current_gemm_isa() {
  const int o = gemm_detail::isa_override();
  return o >= 0 ? gemm_isa(o) : gemm_detail::default_isa();
}

template <class T>
void scale_matrix(int64_t m, int64_t n, T beta, T* c, int64_t ldc) {
  for (int64_t i = 0; i < m; ++i) {
    T* row = c + i * ldc;
    if (beta == T(0))
      std::fill(row, row + n, T(0));
    else if (beta != T(1))
      for (int64_t j = 0; j < n; ++j) row[j] *= beta;
  }
}

// C = alpha * op(A) op(B) + beta * C. Arguments are trusted: the bindings check them.
template <class T>
void gemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, T alpha, const T* a, int64_t lda,
          const T* b, int64_t ldb, T beta, T* c, int64_t ldc) {
  using namespace gemm_detail;
  if (m <= 0 || n <= 0) return;
  if (k <= 0 || alpha == T(0)) return scale_matrix(m, n, beta, c, ldc);
  const int max_threads = omp_in_parallel() ? 1 : omp_get_max_threads();
  const bool avx512 = current_gemm_isa() == gemm_isa::avx512;
  // the narrow and row-streaming kernels' per-thread scratch (slot 1: free outside the general path)
  T* (*const private_scratch)(int64_t) = +[](int64_t count) { return scratch<T>(1, count); };
  const int small_threads = 2.0 * double(m) * double(n) * double(k) < 1e6 ? 1 : max_threads;
  if (use_narrow<T>(avx512, m, n))
    return gemm_narrow(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, small_threads,
                       private_scratch);
#if SYMDIFF_GEMM_FEW_ROWS
  if (use_rows<T>(avx512, trans_b, m, n))  // a few rows: stream B (vector-matrix products)
    return gemm_rows(trans_a, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, small_threads, private_scratch);
#endif
  if (trans_b && m <= kNarrowMaxN && use_narrow<T>(avx512, n, m)) {
    // Few rows against B stored n x k: Cᵀ = B · op(A)ᵀ has few columns, so the narrow dot tiles
    // compute it into scratch, which is then transposed into C. Packing B's panels cost more
    // than the product itself: float32, 1 thread, 1x784x100ᵀ 16.1 -> 4.1 µs (numpy 4.1),
    // 9x784x100ᵀ 28.4 -> 20.7 (numpy 16.3), 5x100x784ᵀ 14 (numpy 49).
    T* ct = scratch<T>(0, n * m);
    gemm_narrow(false, !trans_a, n, m, k, alpha, b, ldb, a, lda, T(0), ct, m, small_threads, private_scratch);
    for (int64_t i = 0; i < m; ++i) {
      T* ci = c + i * ldc;
      if (beta == T(0))
        for (int64_t j = 0; j < n; ++j) ci[j] = ct[j * m + i];
      else
        for (int64_t j = 0; j < n; ++j) ci[j] = ct[j * m + i] + beta * ci[j];
    }
    return;
  }
  // The general tiles take whole vectors of columns; a short remainder goes to the narrow kernels.
  const int64_t tail = narrow_tail<T>(avx512, m, n), n_main = n - tail;
  const auto P = make_plan(trans_a, trans_b, m, n_main, k, alpha, a, lda, b, ldb, beta, c, ldc, max_threads);
  const int64_t shared_count =
      (P.split_n ? round_up(std::min(P.chunk, m), P.ks.mr) : round_up(std::min(P.chunk, n_main), P.ks.nr())) * P.kc;
  T* shared = scratch<T>(2, shared_count);
  // Thread tid of nt: its share of the general tiles, then of the remainder's rows (in whole
  // vectors; no barrier between them, as the remainder's columns of C are written by no one else).
  auto work = [&](int tid, int nt) {
    run_thread(P, shared, tid, nt);
    if (tail == 0) return;
    constexpr int64_t lanes = 64 / sizeof(T);
    const int64_t units = ceil_div(m, lanes);
    const int64_t lo = std::min(m, units * tid / nt * lanes), hi = std::min(m, units * (tid + 1) / nt * lanes);
    if (hi > lo)
      gemm_narrow(trans_a, trans_b, hi - lo, tail, k, alpha, trans_a ? a + lo : a + lo * lda, lda,
                  trans_b ? b + n_main * ldb : b + n_main, ldb, beta, c + lo * ldc + n_main, ldc, 1, private_scratch);
  };
  if (P.threads == 1) return work(0, 1);
  // The runtime may grant fewer threads than asked for: partition over the team we really got.
#pragma omp parallel num_threads(P.threads)
  work(omp_get_thread_num(), omp_get_num_threads());
}

// gemm over `batch` matrices at element strides stride_a, stride_b, stride_c.
template <class T>
void gemm_batched(bool trans_a, bool trans_b, int64_t batch, int64_t m, int64_t n, int64_t k, T alpha, const T* a,
                  int64_t lda, int64_t stride_a, const T* b, int64_t ldb, int64_t stride_b, T beta, T* c,
                  int64_t ldc, int64_t stride_c) {
  if (batch <= 0) return;
  const int threads = omp_in_parallel() ? 1 : omp_get_max_threads();
  const double flops = 2.0 * double(m) * double(n) * double(k);
  // Small matrices: one per thread. Large ones: each gemm uses every thread.
  if (threads > 1 && batch > 1 && flops < 2e7) {
#pragma omp parallel for schedule(static) num_threads(threads)
    for (int64_t i = 0; i < batch; ++i)
      gemm(trans_a, trans_b, m, n, k, alpha, a + i * stride_a, lda, b + i * stride_b, ldb, beta, c + i * stride_c,
           ldc);
    return;
  }
  for (int64_t i = 0; i < batch; ++i)
    gemm(trans_a, trans_b, m, n, k, alpha, a + i * stride_a, lda, b + i * stride_b, ldb, beta, c + i * stride_c, ldc);
}

}  // namespace symdiff::cpu
