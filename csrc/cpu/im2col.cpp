// im2col / col2im; see im2col.h for the index map. Each col row (c, i, j) is one shifted,
// strided copy of input plane c, so the inner loop over ow is a strided gather (a plain
// memcpy-like copy when the stride is 1) with the padded borders handled by clamping the ow range.
#include "cpu/im2col.h"

#include <algorithm>
#include <cstring>

namespace gradflow::cpu {

namespace {
// The ow range [lo, hi) whose input column ow*s - p + off lies inside [0, W).
inline void valid_range(int64_t W, int64_t OW, int64_t s, int64_t p, int64_t off, int64_t& lo,
                        int64_t& hi) {
  const int64_t first = off - p;  // input column of ow = 0
  lo = first >= 0 ? 0 : (-first + s - 1) / s;
  hi = first >= W ? 0 : (W - 1 - first) / s + 1;
  lo = std::min(lo, OW);
  hi = std::max(lo, std::min(hi, OW));
}

// Calls f(oh, ow0, ow1, offset) for each output row segment [ow0, ow1) of the columns
// [l0, l0 + n); offset is the segment's first column relative to l0.
template <typename F>
inline void for_each_row_segment(const ConvGeom& g, int64_t l0, int64_t n, F&& f) {
  for (int64_t l = l0; l < l0 + n;) {
    const int64_t oh = l / g.OW, ow0 = l % g.OW, ow1 = std::min(g.OW, ow0 + (l0 + n - l));
    f(oh, ow0, ow1, l - l0);
    l += ow1 - ow0;
  }
}
}  // namespace

template <typename T>
void im2col(const ConvGeom& g, const T* x, int64_t l0, int64_t n, T* col, int64_t ld) {
  const int64_t rows = g.C * g.kh * g.kw;
  for (int64_t r = 0; r < rows; ++r) {
    const int64_t c = r / (g.kh * g.kw), i = (r / g.kw) % g.kh, j = r % g.kw;
    const T* plane = x + c * g.H * g.W;
    int64_t lo, hi;
    valid_range(g.W, g.OW, g.sw, g.pw, j * g.dw, lo, hi);
    for_each_row_segment(g, l0, n, [&](int64_t oh, int64_t ow0, int64_t ow1, int64_t offset) {
      T* out = col + r * ld + offset;  // out[ow - ow0] is column (oh, ow)
      const int64_t ih = oh * g.sh - g.ph + i * g.dh;
      if (ih < 0 || ih >= g.H) {
        std::fill(out, out + (ow1 - ow0), T(0));
        return;
      }
      const int64_t a = std::clamp(lo, ow0, ow1), b = std::clamp(hi, a, ow1);  // valid part
      const int64_t base = ih * g.W + j * g.dw - g.pw;  // input index of ow = 0
      std::fill(out, out + (a - ow0), T(0));
      if (g.sw == 1) {
        if (b > a) std::memcpy(out + (a - ow0), plane + base + a, (b - a) * sizeof(T));
      } else {
        for (int64_t ow = a; ow < b; ++ow) out[ow - ow0] = plane[base + ow * g.sw];
      }
      std::fill(out + (b - ow0), out + (ow1 - ow0), T(0));
    });
  }
}

template <typename T>
void col2im(const ConvGeom& g, const T* col, int64_t l0, int64_t n, int64_t ld, T* x) {
  // Rows of one input channel all add into the same plane: keep the channel loop outermost.
  for (int64_t c = 0; c < g.C; ++c) {
    T* plane = x + c * g.H * g.W;
    for (int64_t i = 0; i < g.kh; ++i) {
      for (int64_t j = 0; j < g.kw; ++j) {
        const T* row = col + ((c * g.kh + i) * g.kw + j) * ld;
        int64_t lo, hi;
        valid_range(g.W, g.OW, g.sw, g.pw, j * g.dw, lo, hi);
        for_each_row_segment(g, l0, n, [&](int64_t oh, int64_t ow0, int64_t ow1, int64_t off) {
          const int64_t ih = oh * g.sh - g.ph + i * g.dh;
          if (ih < 0 || ih >= g.H) return;
          const int64_t a = std::clamp(lo, ow0, ow1), b = std::clamp(hi, a, ow1);
          const T* in = row + off;  // in[ow - ow0] is column (oh, ow)
          const int64_t base = ih * g.W + j * g.dw - g.pw;
          if (g.sw == 1) {
            T* out = plane + base + a;
            for (int64_t ow = a; ow < b; ++ow) out[ow - a] += in[ow - ow0];
          } else {
            for (int64_t ow = a; ow < b; ++ow) plane[base + ow * g.sw] += in[ow - ow0];
          }
        });
      }
    }
  }
}

template <typename T>
void unfold(int64_t N, const ConvGeom& g, const T* x, T* cols) {
  const int64_t L = g.OH * g.OW, block = g.C * g.kh * g.kw * L, plane = g.C * g.H * g.W;
#pragma omp parallel for schedule(static) if (N * block > 32768)
  for (int64_t n = 0; n < N; ++n) im2col(g, x + n * plane, 0, L, cols + n * block, L);
}

template <typename T>
void fold(int64_t N, const ConvGeom& g, const T* cols, T* x) {
  const int64_t L = g.OH * g.OW, block = g.C * g.kh * g.kw * L, plane = g.C * g.H * g.W;
#pragma omp parallel for schedule(static) if (N * block > 32768)
  for (int64_t n = 0; n < N; ++n) {
    std::fill(x + n * plane, x + (n + 1) * plane, T(0));
    col2im(g, cols + n * block, 0, L, L, x + n * plane);
  }
}

template void unfold<float>(int64_t, const ConvGeom&, const float*, float*);
template void unfold<double>(int64_t, const ConvGeom&, const double*, double*);
template void fold<float>(int64_t, const ConvGeom&, const float*, float*);
template void fold<double>(int64_t, const ConvGeom&, const double*, double*);
template void im2col<float>(const ConvGeom&, const float*, int64_t, int64_t, float*, int64_t);
template void im2col<double>(const ConvGeom&, const double*, int64_t, int64_t, double*, int64_t);
template void col2im<float>(const ConvGeom&, const float*, int64_t, int64_t, int64_t, float*);
template void col2im<double>(const ConvGeom&, const double*, int64_t, int64_t, int64_t, double*);

}  // namespace gradflow::cpu
