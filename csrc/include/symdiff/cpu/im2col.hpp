// im2col / col2im for 2-D convolution on NCHW arrays, OpenMP over (image, channel).
//
// cols has shape (N, C*KH*KW, OH*OW): row (c*KH + i)*KW + j of image n holds input pixel
// (oy*sh - ph + i*dh, ox*sw - pw + j*dw) of channel c at column oy*OW + ox (zero where that
// falls in the padding), so a convolution is W(K, C*KH*KW) @ cols[n]. col2im is the exact
// adjoint: it scatters every column entry back onto its pixel, summing overlapping windows.
//
// Each (n, c) pair owns one input plane and KH*KW rows of cols, so neither direction has
// write races, and col2im sums each pixel in a fixed order: results are bitwise identical
// for any thread count. Self-contained (std + OpenMP): generated programs include it.
#pragma once

#include <omp.h>

#include <algorithm>
#include <cstdint>

namespace symdiff::cpu {

struct conv2d_geometry {
  int64_t n, c, h, w;  // input (N, C, H, W)
  int64_t kh, kw, sh, sw, ph, pw, dh, dw;
};

// Output length along one axis; 0 when the dilated kernel does not fit the padded input.
inline int64_t conv_output_size(int64_t in, int64_t k, int64_t s, int64_t p, int64_t d) {
  const int64_t span = in + 2 * p - d * (k - 1) - 1;
  return span < 0 ? 0 : span / s + 1;
}

inline int64_t conv_output_height(const conv2d_geometry& g) { return conv_output_size(g.h, g.kh, g.sh, g.ph, g.dh); }
inline int64_t conv_output_width(const conv2d_geometry& g) { return conv_output_size(g.w, g.kw, g.sw, g.pw, g.dw); }

namespace detail {

// Output columns [lo, hi) whose input column ox*s - p + off lies in [0, w): the rest read padding.
inline void valid_range(int64_t w, int64_t s, int64_t p, int64_t off, int64_t ow, int64_t& lo, int64_t& hi) {
  const int64_t first = p - off;  // ox*s >= first
  lo = first <= 0 ? 0 : (first + s - 1) / s;
  const int64_t last = w - 1 + p - off;  // ox*s <= last
  hi = last < 0 ? 0 : std::min(ow, last / s + 1);
  lo = std::min(lo, hi);
}

inline bool run_parallel(int64_t work) { return work >= 32768 && omp_get_max_threads() > 1; }

}  // namespace detail

template <class T>
void im2col(const T* x, T* cols, const conv2d_geometry& g) {
  const int64_t oh = conv_output_height(g), ow = conv_output_width(g), plane = g.h * g.w;
  const int64_t rows_per_channel = g.kh * g.kw, cols_per_row = oh * ow;
  const int64_t planes = g.n * g.c;
#pragma omp parallel for schedule(static) if (detail::run_parallel(planes * rows_per_channel * cols_per_row))
  for (int64_t nc = 0; nc < planes; ++nc) {
    const T* src = x + nc * plane;
    T* dst = cols + nc * rows_per_channel * cols_per_row;  // (n, c) rows are contiguous within image n
    for (int64_t i = 0; i < g.kh; ++i) {
      for (int64_t j = 0; j < g.kw; ++j) {
        int64_t lo, hi;
        detail::valid_range(g.w, g.sw, g.pw, j * g.dw, ow, lo, hi);
        T* row = dst + (i * g.kw + j) * cols_per_row;
        for (int64_t oy = 0; oy < oh; ++oy) {
          T* out = row + oy * ow;
          const int64_t iy = oy * g.sh - g.ph + i * g.dh;
          if (iy < 0 || iy >= g.h) {
            std::fill(out, out + ow, T(0));
            continue;
          }
          // Pixel (iy, ox*sw - pw + j*dw) as an index, not a pointer: with padding it starts before src.
          const int64_t base = iy * g.w - g.pw + j * g.dw;
          std::fill(out, out + lo, T(0));
          if (g.sw == 1)
            std::copy(src + (base + lo), src + (base + hi), out + lo);
          else
            for (int64_t ox = lo; ox < hi; ++ox) out[ox] = src[base + ox * g.sw];
          std::fill(out + hi, out + ow, T(0));
        }
      }
    }
  }
}

template <class T>
void col2im(const T* cols, T* x, const conv2d_geometry& g) {
  const int64_t oh = conv_output_height(g), ow = conv_output_width(g), plane = g.h * g.w;
  const int64_t rows_per_channel = g.kh * g.kw, cols_per_row = oh * ow;
  const int64_t planes = g.n * g.c;
#pragma omp parallel for schedule(static) if (detail::run_parallel(planes * rows_per_channel * cols_per_row))
  for (int64_t nc = 0; nc < planes; ++nc) {
    T* dst = x + nc * plane;
    const T* src = cols + nc * rows_per_channel * cols_per_row;
    std::fill(dst, dst + plane, T(0));
    for (int64_t i = 0; i < g.kh; ++i) {
      for (int64_t j = 0; j < g.kw; ++j) {
        int64_t lo, hi;
        detail::valid_range(g.w, g.sw, g.pw, j * g.dw, ow, lo, hi);
        const T* row = src + (i * g.kw + j) * cols_per_row;
        for (int64_t oy = 0; oy < oh; ++oy) {
          const int64_t iy = oy * g.sh - g.ph + i * g.dh;
          if (iy < 0 || iy >= g.h) continue;  // padding: its cotangent is dropped
          const T* in = row + oy * ow;
          const int64_t base = iy * g.w - g.pw + j * g.dw;
          for (int64_t ox = lo; ox < hi; ++ox) dst[base + ox * g.sw] += in[ox];
        }
      }
    }
  }
}

}  // namespace symdiff::cpu
