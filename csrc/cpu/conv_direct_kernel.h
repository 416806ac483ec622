// The direct convolution kernels of conv_direct.h, written once for a vector type: included
// only by the files that build them for one instruction set (conv_direct_avx2.cpp,
// conv_direct_avx512.cpp), each with its vector traits S:
//   S::V a vector of S::W floats; zero(), loadu(p), storeu(p, v), bcast(p) (all lanes *p),
//   fma(a, b, c) = a*b + c, sum(v) (of the lanes).
// Everything here has internal linkage, so the two builds never meet at link time.
//
// A tile is 4 output channels x N vectors of W output positions (N <= 3): 4*N accumulators,
// N input vectors and one broadcast weight (16 ymm registers at N = 3 on AVX2). Per kernel tap
// (c, i, j) it loads the N input vectors once and multiplies each by the 4 channels' weights,
// so every loaded value feeds 4 FMAs and every broadcast N.
#pragma once

#include "cpu/conv_direct.h"

namespace gradflow::cpu {
namespace {

constexpr int kTileVectors = 3;
static_assert(kDirectTaps == 3, "direct_weight dispatches tiles of 1 to 3 taps");

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
  for (int64_t n = 0; n < nb; ++n) {
    const float* xn = xpad + n * x_image;
    const float* dn = dy + n * dy_image;
    for (int64_t r = 0; r < g.rows; ++r)
      for (int64_t q = 0; q < g.per_row; ++q) {
        const int64_t at = r * g.x_row + q * S::W, pos = r * g.y_row + q * S::W;
        typename S::V x[N];
        for (int s = 0; s < N; ++s) x[s] = S::loadu(xn + tap[s] + at);
        for (int o = 0; o < kDirectChannels; ++o) {
          const typename S::V d = S::loadu(dn + o * g.y_plane + pos);
          for (int s = 0; s < N; ++s) acc[o][s] = S::fma(d, x[s], acc[o][s]);
        }
      }
  }
  for (int o = 0; o < kDirectChannels; ++o)
    for (int s = 0; s < N; ++s) dw[o * K + t0 + s] += S::sum(acc[o][s]);
}

template <typename S>
void direct_weight(int64_t nb, int64_t C, int64_t kh, int64_t kw, const DirectGrid& g,
                   const float* xpad, int64_t x_image, const float* dy, int64_t dy_image,
                   int64_t t0, int64_t count, float* dw) {
  const int64_t K = C * kh * kw;
  int64_t tap[kDirectTaps];
  for (int64_t s = 0; s < count; ++s) {  // tap t = (c*kh + i)*kw + j: plane c shifted by (i, j)
    const int64_t t = t0 + s, c = t / (kh * kw), i = t / kw % kh, j = t % kw;
    tap[s] = c * g.x_plane + i * g.Wp + j;
  }
  if (count == 3)
    weight_tile<S, 3>(nb, g, x_image, xpad, dy, dy_image, tap, t0, K, dw);
  else if (count == 2)
    weight_tile<S, 2>(nb, g, x_image, xpad, dy, dy_image, tap, t0, K, dw);
  else
    weight_tile<S, 1>(nb, g, x_image, xpad, dy, dy_image, tap, t0, K, dw);
}

template <typename S>
void direct_planes(int64_t C, int64_t kh, int64_t kw, const DirectGrid& g, const float* xpad,
                   const float* w4, float* y) {
  const int64_t vectors = g.rows * g.per_row;
  int64_t in[kTileVectors], out[kTileVectors];
  auto locate = [&](int64_t v, int s) {  // vector v: row v / per_row, its (v % per_row)-th
    const int64_t r = v / g.per_row, q = v % g.per_row * S::W;
    in[s] = r * g.x_row + q;
    out[s] = r * g.y_row + q;
  };
  // Tiles of 3 vectors, and the last 1, 2 or 4 as tiles of 1 or 2 (2 + 2 rather than 3 + 1).
  int64_t v = 0;
  for (; vectors - v >= kTileVectors && vectors - v != 4; v += kTileVectors) {
    for (int s = 0; s < kTileVectors; ++s) locate(v + s, s);
    tile<S, kTileVectors>(C, kh, kw, g.x_plane, g.Wp, xpad, w4, in, out, g.y_plane, y);
  }
  for (; vectors - v >= 2; v += 2) {
    locate(v, 0);
    locate(v + 1, 1);
    tile<S, 2>(C, kh, kw, g.x_plane, g.Wp, xpad, w4, in, out, g.y_plane, y);
  }
  if (v < vectors) {
    locate(v, 0);
    tile<S, 1>(C, kh, kw, g.x_plane, g.Wp, xpad, w4, in, out, g.y_plane, y);
  }
}

}  // namespace
}  // namespace gradflow::cpu
