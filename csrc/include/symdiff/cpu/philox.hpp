// Philox4x32-10 (Salmon, Moraes, Dror, Shaw, "Parallel random numbers: as easy as 1, 2, 3",
// SC 2011) and the distributions built on it: uniform, normal, bernoulli_mask.
//
// Every value is a pure function of (seed, index): element i of a fill starting at `offset`
// is stream element g = offset + i. Stream element g reads lane g % L of the Philox block with
// counter (g / L as two 32-bit words, 0, 0) and key (seed as two 32-bit words), where L is how
// many values one 128-bit block yields. So results do not depend on the thread count, and a
// fill at offset k equals the fill at offset 0 from element k on.
//
//   uniform<float>   L = 4: one word each, top 24 bits -> [0, 1) in steps of 2^-24
//   uniform<double>  L = 2: two words each, top 53 bits -> [0, 1) in steps of 2^-53
//   normal<T>        Box-Muller on pairs of those uniforms: lanes 2k, 2k+1 are r cos, r sin
//   bernoulli_mask   L = 4 for both dtypes: keep (1) iff word < round(p * 2^32), else 0,
//                    so a dropout mask is the same for float32 and float64
//
// Self-contained (std + OpenMP): generated programs include it.
#pragma once

#include <omp.h>

#include <array>
#include <cmath>
#include <cstdint>
#include <type_traits>

namespace symdiff::cpu {

using philox_counter = std::array<uint32_t, 4>;
using philox_key = std::array<uint32_t, 2>;

// The raw block function: 10 rounds, the key bumped by the Weyl constants between rounds.
inline philox_counter philox4x32(philox_counter ctr, philox_key key) {
  constexpr uint32_t m0 = 0xD2511F53u, m1 = 0xCD9E8D57u, w0 = 0x9E3779B9u, w1 = 0xBB67AE85u;
  for (int round = 0; round < 10; ++round) {
    if (round > 0) {
      key[0] += w0;
      key[1] += w1;
    }
    const uint64_t p0 = uint64_t{m0} * ctr[0], p1 = uint64_t{m1} * ctr[2];
    ctr = {static_cast<uint32_t>(p1 >> 32) ^ ctr[1] ^ key[0], static_cast<uint32_t>(p1),
           static_cast<uint32_t>(p0 >> 32) ^ ctr[3] ^ key[1], static_cast<uint32_t>(p0)};
  }
  return ctr;
}

namespace detail {

inline float uniform24(uint32_t u) { return static_cast<float>(u >> 8) * 0x1p-24f; }

inline double uniform53(uint32_t hi, uint32_t lo) {
  return static_cast<double>(((uint64_t{hi} << 32) | lo) >> 11) * 0x1p-53;
}

// Two standard normals from two uniforms in [0, 1); 1 - u1 lies in (0, 1], so the log is finite.
template <class T>
inline void box_muller(T u1, T u2, T& z0, T& z1) {
  const T two_pi = T(6.283185307179586476925286766559);
  const T radius = std::sqrt(T(-2) * std::log(T(1) - u1));
  z0 = radius * std::cos(two_pi * u2);
  z1 = radius * std::sin(two_pi * u2);
}

// out[i] = stream element offset + i, where block(r) gives the L elements of one Philox block.
template <int L, class T, class Block>
void philox_fill(T* out, int64_t count, uint64_t seed, uint64_t offset, Block block) {
  if (count <= 0) return;
  const philox_key key{static_cast<uint32_t>(seed), static_cast<uint32_t>(seed >> 32)};
  const uint64_t first = offset / L, last = (offset + static_cast<uint64_t>(count) - 1) / L;
  const int64_t blocks = static_cast<int64_t>(last - first) + 1;
#pragma omp parallel for schedule(static) if (count >= 16384 && omp_get_max_threads() > 1)
  for (int64_t k = 0; k < blocks; ++k) {
    const uint64_t b = first + static_cast<uint64_t>(k);
    const std::array<T, L> values =
        block(philox4x32({static_cast<uint32_t>(b), static_cast<uint32_t>(b >> 32), 0u, 0u}, key));
    for (int lane = 0; lane < L; ++lane) {
      const uint64_t g = b * L + lane;
      if (g >= offset && g - offset < static_cast<uint64_t>(count)) out[g - offset] = values[lane];
    }
  }
}

}  // namespace detail

// count values in [0, 1).
template <class T>
void uniform(T* out, int64_t count, uint64_t seed, uint64_t offset) {
  static_assert(std::is_same_v<T, float> || std::is_same_v<T, double>, "float or double");
  if constexpr (std::is_same_v<T, float>) {
    detail::philox_fill<4>(out, count, seed, offset, [](const philox_counter& r) {
      return std::array<float, 4>{detail::uniform24(r[0]), detail::uniform24(r[1]), detail::uniform24(r[2]),
                                  detail::uniform24(r[3])};
    });
  } else {
    detail::philox_fill<2>(out, count, seed, offset, [](const philox_counter& r) {
      return std::array<double, 2>{detail::uniform53(r[0], r[1]), detail::uniform53(r[2], r[3])};
    });
  }
}

// count standard normal values (mean 0, variance 1).
template <class T>
void normal(T* out, int64_t count, uint64_t seed, uint64_t offset) {
  static_assert(std::is_same_v<T, float> || std::is_same_v<T, double>, "float or double");
  if constexpr (std::is_same_v<T, float>) {
    detail::philox_fill<4>(out, count, seed, offset, [](const philox_counter& r) {
      std::array<float, 4> z;
      detail::box_muller(detail::uniform24(r[0]), detail::uniform24(r[1]), z[0], z[1]);
      detail::box_muller(detail::uniform24(r[2]), detail::uniform24(r[3]), z[2], z[3]);
      return z;
    });
  } else {
    detail::philox_fill<2>(out, count, seed, offset, [](const philox_counter& r) {
      std::array<double, 2> z;
      detail::box_muller(detail::uniform53(r[0], r[1]), detail::uniform53(r[2], r[3]), z[0], z[1]);
      return z;
    });
  }
}

// count values that are 1 with probability p (to within 2^-33) and 0 otherwise; p in [0, 1].
template <class T>
void bernoulli_mask(T* out, int64_t count, uint64_t seed, uint64_t offset, double p) {
  static_assert(std::is_same_v<T, float> || std::is_same_v<T, double>, "float or double");
  const double clamped = p < 0 ? 0.0 : p > 1 ? 1.0 : p;
  const uint64_t threshold = static_cast<uint64_t>(std::llround(clamped * 0x1p32));  // 2^32 keeps all
  detail::philox_fill<4>(out, count, seed, offset, [threshold](const philox_counter& r) {
    std::array<T, 4> keep;
    for (int lane = 0; lane < 4; ++lane) keep[lane] = r[lane] < threshold ? T(1) : T(0);
    return keep;
  });
}

}  // namespace symdiff::cpu
