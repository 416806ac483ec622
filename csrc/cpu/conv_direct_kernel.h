// The direct convolution kernels of conv_direct.h, written once for a vector type: included
// only by the files that build them for one instruction set (conv_direct_avx2.cpp,
// conv_direct_avx512.cpp), each with its vector traits S:
//   S::V a vector of S::W floats; zero(), loadu(p), storeu(p, v), bcast(p) (all lanes *p),
//   fma(a, b, c) = a*b + c, sum(v) (of the lanes); kTile vectors per tile of the planes
//   kernel, kTaps taps per tile of the weight gradient.
// Everything here has internal linkage, so the two builds never meet at link time.
//
// A tile is 4 output channels x N vectors of W output positions (N <= S::kTile): 4*N
// accumulators, N input vectors and one broadcast weight (16 ymm registers at N = 3 on AVX2,
// 31 zmm at N = 6 on AVX-512). Per kernel tap
// (c, i, j) it loads the N input vectors once and multiplies each by the 4 channels' weights,
// so every loaded value feeds 4 FMAs and every broadcast N.
#pragma once

#include <algorithm>

#include "cpu/conv_direct.h"

namespace gradflow::cpu {
namespace {

// v, which the compiler must now keep in a register: each loaded vector feeds several FMAs,
// and folding the load into each of them (as GCC would) multiplies the loads.
template <typename S>
typename S::V in_register(typename S::V v) {
  asm("" : "+v"(v));
  return v;
}

// The tile of the N vectors that start at padded offsets in[s] and output offsets out[s].
template <typename S, int N>
void tile(int64_t C, int64_t kh, int64_t kw, int64_t plane, int64_t Wp, const float* xpad,
          const float* w4, const int64_t* in, const int64_t* out, int64_t L, float* y) {
  typename S::V acc[kDirectChannels][N];
  for (auto& row : acc)
    for (auto& a : row) a = S::zero();
  for (int64_t c = 0; c < C; ++c) {
    const float* xc = xpad + c * plane;
    for (int64_t i = 0; i < kh; ++i)
      for (int64_t j = 0; j < kw; ++j, w4 += kDirectChannels) {
        typename S::V x[N];
        for (int s = 0; s < N; ++s) x[s] = S::loadu(xc + in[s] + i * Wp + j);
        for (int o = 0; o < kDirectChannels; ++o) {
          const typename S::V w = S::bcast(w4 + o);
          for (int s = 0; s < N; ++s) acc[o][s] = S::fma(w, x[s], acc[o][s]);
        }
      }
  }
  for (int o = 0; o < kDirectChannels; ++o)
    for (int s = 0; s < N; ++s) S::storeu(y + o * L + out[s], acc[o][s]);
}

// The weight-gradient tile of N taps at padded offsets tap[s]: 4*N vector sums over the nb
// images' output positions, reduced to 4*N values at the end.
template <typename S, int N>
void weight_tile(int64_t nb, const DirectGrid& g, int64_t x_image, const float* xpad,
                 const float* dy, int64_t dy_image, const int64_t* tap, int64_t t0, int64_t K,
                 float* dw) {
  typename S::V acc[kDirectChannels][N];
  for (auto& row : acc)
    for (auto& a : row) a = S::zero();
  // The grid as locals, and from the end of one row of vectors to the start of the next.
  const int64_t rows = g.rows, per_row = g.per_row, y_plane = g.y_plane;
  const int64_t x_skip = g.x_row - per_row * S::W, y_skip = g.y_row - per_row * S::W;
  for (int64_t n = 0; n < nb; ++n) {
    const float* xn = xpad + n * x_image;
    const float* dn = dy + n * dy_image;
    for (int64_t r = 0; r < rows; ++r, xn += x_skip, dn += y_skip)
      for (int64_t q = 0; q < per_row; ++q, xn += S::W, dn += S::W) {
        typename S::V x[N];
        for (int s = 0; s < N; ++s) x[s] = in_register<S>(S::loadu(xn + tap[s]));
        for (int o = 0; o < kDirectChannels; ++o) {
          const typename S::V d = in_register<S>(S::loadu(dn + o * y_plane));
          for (int s = 0; s < N; ++s) acc[o][s] = S::fma(d, x[s], acc[o][s]);
        }
      }
  }
  for (int o = 0; o < kDirectChannels; ++o)
    for (int s = 0; s < N; ++s) dw[o * K + t0 + s] += S::sum(acc[o][s]);
}

// weight_tile<S, count> for a count of 1 to N.
template <typename S, int N>
void weight_tiles(int64_t count, int64_t nb, const DirectGrid& g, int64_t x_image,
                  const float* xpad, const float* dy, int64_t dy_image, const int64_t* tap,
                  int64_t t0, int64_t K, float* dw) {
  if constexpr (N > 1) {
    if (count < N)
      return weight_tiles<S, N - 1>(count, nb, g, x_image, xpad, dy, dy_image, tap, t0, K, dw);
  }
  weight_tile<S, N>(nb, g, x_image, xpad, dy, dy_image, tap, t0, K, dw);
}

template <typename S>
void direct_weight(int64_t nb, int64_t C, int64_t kh, int64_t kw, const DirectGrid& g,
                   const float* xpad, int64_t x_image, const float* dy, int64_t dy_image,
                   int64_t t0, int64_t count, float* dw) {
  const int64_t K = C * kh * kw;
  int64_t tap[S::kTaps];
  for (int64_t s = 0; s < count; ++s) {  // tap t = (c*kh + i)*kw + j: plane c shifted by (i, j)
    const int64_t t = t0 + s, c = t / (kh * kw), i = t / kw % kh, j = t % kw;
    tap[s] = c * g.x_plane + i * g.Wp + j;
  }
  weight_tiles<S, S::kTaps>(count, nb, g, x_image, xpad, dy, dy_image, tap, t0, K, dw);
}

// tile<S, count> for a count of 1 to N vectors.
template <typename S, int N>
void tiles(int64_t count, int64_t C, int64_t kh, int64_t kw, const DirectGrid& g,
           const float* xpad, const float* w4, const int64_t* in, const int64_t* out, float* y) {
  if constexpr (N > 1) {
    if (count < N) return tiles<S, N - 1>(count, C, kh, kw, g, xpad, w4, in, out, y);
  }
  tile<S, N>(C, kh, kw, g.x_plane, g.Wp, xpad, w4, in, out, g.y_plane, y);
}

template <typename S>
void direct_planes(int64_t C, int64_t kh, int64_t kw, const DirectGrid& g, const float* xpad,
                   const float* w4, float* y) {
  constexpr int64_t T = S::kTile;
  const int64_t vectors = g.rows * g.per_row;
  int64_t in[T], out[T];
  // Tiles of T vectors; between T and 2T left, two tiles of half of them (2 + 2 rather than
  // 3 + 1: a tile of few vectors reuses its broadcast weights little).
  for (int64_t v = 0; v < vectors;) {
    const int64_t left = vectors - v, count = left > T && left < 2 * T ? (left + 1) / 2
                                                                        : std::min(left, T);
    for (int64_t s = 0; s < count; ++s) {  // vector v + s: row r, its q-th
      const int64_t r = (v + s) / g.per_row, q = (v + s) % g.per_row * S::W;
      in[s] = r * g.x_row + q;
      out[s] = r * g.y_row + q;
    }
    tiles<S, T>(count, C, kh, kw, g, xpad, w4, in, out, y);
    v += count;
  }
}

}  // namespace
}  // namespace gradflow::cpu
