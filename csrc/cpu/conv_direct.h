// Direct convolution of one image, one source (conv_direct_kernel.h) built for two vector
// widths: AVX2 (8 floats, conv_direct_avx2.cpp; call only when use_avx2()) and AVX-512 (16
// floats, conv_direct_avx512.cpp; only when use_avx512()). cpu/conv.cpp decides when they run
// and prepares their operands.
#pragma once
#include <cstdint>

namespace gradflow::cpu {

// Output channels per call.
constexpr int64_t kDirectChannels = 4;

// Where the output vectors of a correlation lie, for vectors of W floats: output planes
// OH x OW, a kernel kw wide, input planes of rows Wp >= OW + kw - 1 floats apart (at least
// OH + kh - 1 of them), x_plane floats apart.
//   Whole rows (OW % W == 0): OH rows of OW/W vectors; vector q of row r reads the input
//   planes from r*Wp + Wq and writes y at r*OW + Wq, y's planes OH*OW apart.
//   Flat (any other OW): the grid m = oh*Wp + ow taken as one row of ceil(OH*Wp/W) vectors,
//   at Wq in both; y's rows are then Wp apart, its columns ow >= OW are garbage, and the last
//   vectors read up to x_slack floats past row OH + kh - 1 of the last plane.
struct DirectGrid {
  int64_t rows, per_row;  // vectors: rows of per_row each
  int64_t x_row, y_row;   // offsets from one row of vectors to the next, in xpad and in y
  int64_t Wp, x_plane;    // input row and plane
  int64_t y_plane;        // floats per output plane
  int64_t x_slack;        // readable floats needed past the input rows read
  bool flat;
  int64_t y_ld() const { return flat ? Wp : y_row; }  // from one output row to the next in y
};

inline DirectGrid direct_grid(int64_t OH, int64_t OW, int64_t kw, int64_t Wp, int64_t x_plane,
                              int64_t W) {
  if (OW % W == 0) return {OH, OW / W, Wp, OW, Wp, x_plane, OH * OW, 0, false};
  const int64_t vectors = (OH * Wp + W - 1) / W;
  return {1, vectors, 0, 0, Wp, x_plane, vectors * W, W + kw, true};
}

// The grid of input planes padded just enough: (OH + kh - 1) x (OW + kw - 1).
inline DirectGrid tight_grid(int64_t OH, int64_t OW, int64_t kh, int64_t kw, int64_t W) {
  return direct_grid(OH, OW, kw, OW + kw - 1, (OH + kh - 1) * (OW + kw - 1), W);
}

// The two kernels of one vector width W (a grid passed to them must be made for W):
//
// planes: four output planes of a stride-1, undilated correlation
//   y[o, oh, ow] = sum_{c, i, j} w4[((c*kh + i)*kw + j)*4 + o] * xpad[c, oh + i, ow + j]
// for o < 4 and every output position of the grid, with xpad the C zero-padded input planes
// and w4 the four channels' weights interleaved.
//
// weight: the weight gradient of the same correlation, for 4 output channels and `count` <=
// `taps` taps t0, t0 + 1, ... (tap t = (c*kh + i)*kw + j, of K = C*kh*kw), summed over nb images:
//   dw[o*K + t] += sum_{n, positions p} dy_n[o*y_plane + p] * xpad_n[c, p shifted by (i, j)]
// with the nb padded images x_image apart and dy's images dy_image apart, laid out as the
// grid's output (a flat grid's garbage columns and rounding must be zero in dy).
struct DirectKernels {
  int64_t width;  // W: output positions per vector
  int64_t taps;   // taps per call of `weight`
  // Where the GEMM path takes over, in taps C*kh*kw of the correlation: a flat grid runs up to
  // flat_taps (with more, the image no longer stays in cache from one tile to the next), the
  // weight gradient up to weight_taps.
  int64_t flat_taps, weight_taps;
  void (*planes)(int64_t C, int64_t kh, int64_t kw, const DirectGrid& g, const float* xpad,
                 const float* w4, float* y);
  void (*weight)(int64_t nb, int64_t C, int64_t kh, int64_t kw, const DirectGrid& g,
                 const float* xpad, int64_t x_image, const float* dy, int64_t dy_image,
                 int64_t t0, int64_t count, float* dw);
};

namespace avx2 {
extern const DirectKernels kDirectKernels;
}
namespace avx512 {
extern const DirectKernels kDirectKernels;
}

}  // namespace gradflow::cpu
