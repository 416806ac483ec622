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
}  // namespace

template <typename T>
void im2col(const ConvGeom& g, const T* x, T* col, int64_t ld) {
  const int64_t rows = g.C * g.kh * g.kw;
  for (int64_t r = 0; r < rows; ++r) {
    const int64_t c = r / (g.kh * g.kw), i = (r / g.kw) % g.kh, j = r % g.kw;
    const T* plane = x + c * g.H * g.W;
    T* out = col + r * ld;
    int64_t lo, hi;
    valid_range(g.W, g.OW, g.sw, g.pw, j * g.dw, lo, hi);
    for (int64_t oh = 0; oh < g.OH; ++oh) {
      T* orow = out + oh * g.OW;
      const int64_t ih = oh * g.sh - g.ph + i * g.dh;
      if (ih < 0 || ih >= g.H) {
        std::fill(orow, orow + g.OW, T(0));
        continue;
      }
      const int64_t base = ih * g.W + j * g.dw - g.pw;  // input index of ow = 0
      std::fill(orow, orow + lo, T(0));
      if (g.sw == 1) {
        if (hi > lo) std::memcpy(orow + lo, plane + base + lo, (hi - lo) * sizeof(T));
      } else {
        for (int64_t ow = lo; ow < hi; ++ow) orow[ow] = plane[base + ow * g.sw];
      }
      std::fill(orow + hi, orow + g.OW, T(0));
    }
  }
}

template <typename T>
void col2im(const ConvGeom& g, const T* col, int64_t ld, T* x) {
  // Rows of one input channel all add into the same plane: keep the channel loop outermost.
  for (int64_t c = 0; c < g.C; ++c) {
    T* plane = x + c * g.H * g.W;
    for (int64_t i = 0; i < g.kh; ++i) {
      for (int64_t j = 0; j < g.kw; ++j) {
        const T* in = col + ((c * g.kh + i) * g.kw + j) * ld;
        int64_t lo, hi;
        valid_range(g.W, g.OW, g.sw, g.pw, j * g.dw, lo, hi);
        for (int64_t oh = 0; oh < g.OH; ++oh) {
          const int64_t ih = oh * g.sh - g.ph + i * g.dh;
          if (ih < 0 || ih >= g.H) continue;
          const int64_t base = ih * g.W + j * g.dw - g.pw;
          const T* crow = in + oh * g.OW;
          if (g.sw == 1) {
            T* xrow = plane + base + lo;
            for (int64_t ow = 0; ow < hi - lo; ++ow) xrow[ow] += crow[lo + ow];
          } else {
            for (int64_t ow = lo; ow < hi; ++ow) plane[base + ow * g.sw] += crow[ow];
          }
        }
      }
    }
  }
}

template void im2col<float>(const ConvGeom&, const float*, float*, int64_t);
template void im2col<double>(const ConvGeom&, const double*, double*, int64_t);
template void col2im<float>(const ConvGeom&, const float*, int64_t, float*);
template void col2im<double>(const ConvGeom&, const double*, int64_t, double*);

}  // namespace gradflow::cpu
