// Direct convolution micro-kernel; see conv_direct_avx2.h for the contract.
//
// A tile is 4 output channels x S vectors of 8 output positions (S <= 3): 4*S accumulators,
// S input vectors and one broadcast weight, 16 ymm registers at S = 3. Per kernel tap
// (c, i, j) it loads the S input vectors once and multiplies each by the 4 channels' weights,
// so every loaded value feeds 4 FMAs and every broadcast S.
#include "cpu/conv_direct_avx2.h"

#include <immintrin.h>

namespace gradflow::cpu::avx2 {

namespace {

constexpr int kTileVectors = 3;
static_assert(kDirectTaps == 3, "conv_direct_weight dispatches tiles of 1 to 3 taps");

// The tile of the S vectors that start at padded offsets in[s] and output offsets out[s].
template <int S>
void tile(int64_t C, int64_t kh, int64_t kw, int64_t plane, int64_t Wp, const float* xpad,
          const float* w4, const int64_t* in, const int64_t* out, int64_t L, float* y) {
  __m256 acc[kDirectChannels][S];
  for (auto& row : acc)
    for (auto& a : row) a = _mm256_setzero_ps();
  for (int64_t c = 0; c < C; ++c) {
    const float* xc = xpad + c * plane;
    for (int64_t i = 0; i < kh; ++i)
      for (int64_t j = 0; j < kw; ++j, w4 += kDirectChannels) {
        __m256 x[S];
        for (int s = 0; s < S; ++s) x[s] = _mm256_loadu_ps(xc + in[s] + i * Wp + j);
        for (int o = 0; o < kDirectChannels; ++o) {
          const __m256 w = _mm256_broadcast_ss(w4 + o);
          for (int s = 0; s < S; ++s) acc[o][s] = _mm256_fmadd_ps(w, x[s], acc[o][s]);
        }
      }
  }
  for (int o = 0; o < kDirectChannels; ++o)
    for (int s = 0; s < S; ++s) _mm256_storeu_ps(y + o * L + out[s], acc[o][s]);
}

// The weight-gradient tile of S taps at padded offsets tap[s]: 4*S vector sums over the nb
// images' output positions, reduced to 4*S values at the end.
template <int S>
void weight_tile(int64_t nb, const DirectGrid& g, int64_t x_image, const float* xpad,
                 const float* dy, int64_t dy_image, const int64_t* tap, int64_t t0, int64_t K,
                 float* dw) {
  __m256 acc[kDirectChannels][S];
  for (auto& row : acc)
    for (auto& a : row) a = _mm256_setzero_ps();
  for (int64_t n = 0; n < nb; ++n) {
    const float* xn = xpad + n * x_image;
    const float* dn = dy + n * dy_image;
    for (int64_t r = 0; r < g.rows; ++r)
      for (int64_t q = 0; q < g.per_row; ++q) {
        const int64_t at = r * g.x_row + q * kDirectWidth, pos = r * g.y_row + q * kDirectWidth;
        __m256 x[S];
        for (int s = 0; s < S; ++s) x[s] = _mm256_loadu_ps(xn + tap[s] + at);
        for (int o = 0; o < kDirectChannels; ++o) {
          const __m256 d = _mm256_loadu_ps(dn + o * g.y_plane + pos);
          for (int s = 0; s < S; ++s) acc[o][s] = _mm256_fmadd_ps(d, x[s], acc[o][s]);
        }
      }
  }
  for (int o = 0; o < kDirectChannels; ++o)
    for (int s = 0; s < S; ++s) {  // the 8 lanes' sum
      const __m128 h = _mm_add_ps(_mm256_castps256_ps128(acc[o][s]),
                                  _mm256_extractf128_ps(acc[o][s], 1));
      const __m128 q = _mm_add_ps(h, _mm_movehl_ps(h, h));
      dw[o * K + t0 + s] += _mm_cvtss_f32(_mm_add_ss(q, _mm_movehdup_ps(q)));
    }
}

}  // namespace

void conv_direct_weight(int64_t nb, int64_t C, int64_t kh, int64_t kw, const DirectGrid& g,
                        const float* xpad, int64_t x_image, const float* dy, int64_t dy_image,
                        int64_t t0, int64_t count, float* dw) {
  const int64_t K = C * kh * kw;
  int64_t tap[kDirectTaps];
  for (int64_t s = 0; s < count; ++s) {  // tap t = (c*kh + i)*kw + j: plane c shifted by (i, j)
    const int64_t t = t0 + s, c = t / (kh * kw), i = t / kw % kh, j = t % kw;
    tap[s] = c * g.x_plane + i * g.Wp + j;
  }
  if (count == 3)
    weight_tile<3>(nb, g, x_image, xpad, dy, dy_image, tap, t0, K, dw);
  else if (count == 2)
    weight_tile<2>(nb, g, x_image, xpad, dy, dy_image, tap, t0, K, dw);
  else
    weight_tile<1>(nb, g, x_image, xpad, dy, dy_image, tap, t0, K, dw);
}

void conv_direct_planes(int64_t C, int64_t kh, int64_t kw, const DirectGrid& g,
                        const float* xpad, const float* w4, float* y) {
  const int64_t vectors = g.rows * g.per_row;
  int64_t in[kTileVectors], out[kTileVectors];
  auto locate = [&](int64_t v, int s) {  // vector v: row v / per_row, its (v % per_row)-th
    const int64_t r = v / g.per_row, q = v % g.per_row * kDirectWidth;
    in[s] = r * g.x_row + q;
    out[s] = r * g.y_row + q;
  };
  // Tiles of 3 vectors, and the last 1, 2 or 4 as tiles of 1 or 2 (2 + 2 rather than 3 + 1).
  int64_t v = 0;
  for (; vectors - v >= kTileVectors && vectors - v != 4; v += kTileVectors) {
    for (int s = 0; s < kTileVectors; ++s) locate(v + s, s);
    tile<kTileVectors>(C, kh, kw, g.x_plane, g.Wp, xpad, w4, in, out, g.y_plane, y);
  }
  for (; vectors - v >= 2; v += 2) {
    locate(v, 0);
    locate(v + 1, 1);
    tile<2>(C, kh, kw, g.x_plane, g.Wp, xpad, w4, in, out, g.y_plane, y);
  }
  if (v < vectors) {
    locate(v, 0);
    tile<1>(C, kh, kw, g.x_plane, g.Wp, xpad, w4, in, out, g.y_plane, y);
  }
}

}  // namespace gradflow::cpu::avx2
