// Pooling kernels; see pool.h. Every kernel runs one plane per iteration of a parallel loop
// over the P planes, so threads never write to the same memory.
#include "cpu/pool.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace gradflow::cpu {

namespace {
constexpr int64_t kParallelMin = 65536;  // below this many outputs one thread is faster

inline int64_t adaptive_start(int64_t i, int64_t in, int64_t out) { return (i * in) / out; }
inline int64_t adaptive_end(int64_t i, int64_t in, int64_t out) {
  return ((i + 1) * in + out - 1) / out;
}

// Clipped [start, end) of a strided avg-pool window and its divisor (PyTorch's rule).
struct AvgWindow {
  int64_t h0, h1, w0, w1;
  int64_t divisor;
};

inline AvgWindow avg_window(const PoolGeom& g, int64_t oh, int64_t ow, bool count_include_pad,
                            int64_t divisor_override) {
  int64_t h0 = oh * g.sh - g.ph, w0 = ow * g.sw - g.pw;
  int64_t h1 = std::min(h0 + g.kh, g.H + g.ph), w1 = std::min(w0 + g.kw, g.W + g.pw);
  const int64_t padded = (h1 - h0) * (w1 - w0);
  h0 = std::max<int64_t>(h0, 0);
  w0 = std::max<int64_t>(w0, 0);
  h1 = std::min(h1, g.H);
  w1 = std::min(w1, g.W);
  int64_t divisor = divisor_override > 0 ? divisor_override
                    : count_include_pad  ? padded
                                         : (h1 - h0) * (w1 - w0);
  return {h0, h1, w0, w1, std::max<int64_t>(divisor, 1)};
}

// The largest value of a plane (row length W) over rows h0, h0 + dh, ... < h1 and columns
// w0, w0 + dw, ... < w1, NaN winning, and its flat index (h0 * W + w0 for an empty window).
template <typename T>
inline void window_max(const T* plane, int64_t W, int64_t h0, int64_t h1, int64_t dh,
                       int64_t w0, int64_t w1, int64_t dw, T* best_out, int64_t* arg_out) {
  T best = -std::numeric_limits<T>::infinity();
  int64_t arg = h0 * W + w0;
  for (int64_t h = h0; h < h1; h += dh)
    for (int64_t w = w0; w < w1; w += dw) {
      const T v = plane[h * W + w];
      if (v > best || std::isnan(v)) {
        best = v;
        arg = h * W + w;
      }
    }
  *best_out = best;
  *arg_out = arg;
}
}  // namespace

template <typename T>
void max_pool2d_forward(const PoolGeom& g, const T* x, T* y, int64_t* idx) {
  const int64_t L = g.OH * g.OW;
#pragma omp parallel for schedule(static) if (g.P * L > kParallelMin)
  for (int64_t p = 0; p < g.P; ++p) {
    const T* plane = x + p * g.H * g.W;
    for (int64_t oh = 0; oh < g.OH; ++oh) {
      int64_t h0 = oh * g.sh - g.ph;
      const int64_t h1 = std::min(h0 + (g.kh - 1) * g.dh + 1, g.H);
      while (h0 < 0) h0 += g.dh;
      for (int64_t ow = 0; ow < g.OW; ++ow) {
        int64_t w0 = ow * g.sw - g.pw;
        const int64_t w1 = std::min(w0 + (g.kw - 1) * g.dw + 1, g.W);
        while (w0 < 0) w0 += g.dw;
        window_max(plane, g.W, h0, h1, g.dh, w0, w1, g.dw, y + p * L + oh * g.OW + ow,
                   idx + p * L + oh * g.OW + ow);
      }
    }
  }
}

template <typename T>
void adaptive_max_pool2d_forward(const PoolGeom& g, const T* x, T* y, int64_t* idx) {
  const int64_t L = g.OH * g.OW;
#pragma omp parallel for schedule(static) if (g.P * L > kParallelMin)
  for (int64_t p = 0; p < g.P; ++p) {
    const T* plane = x + p * g.H * g.W;
    for (int64_t oh = 0; oh < g.OH; ++oh) {
      const int64_t h0 = adaptive_start(oh, g.H, g.OH), h1 = adaptive_end(oh, g.H, g.OH);
      for (int64_t ow = 0; ow < g.OW; ++ow) {
        const int64_t w0 = adaptive_start(ow, g.W, g.OW), w1 = adaptive_end(ow, g.W, g.OW);
        window_max(plane, g.W, h0, h1, 1, w0, w1, 1, y + p * L + oh * g.OW + ow,
                   idx + p * L + oh * g.OW + ow);
      }
    }
  }
}

template <typename T>
void index_scatter_add(const PoolGeom& g, const T* dy, const int64_t* idx, T* dx) {
  const int64_t L = g.OH * g.OW, HW = g.H * g.W;
#pragma omp parallel for schedule(static) if (g.P * L > kParallelMin)
  for (int64_t p = 0; p < g.P; ++p) {
    T* plane = dx + p * HW;
    std::fill(plane, plane + HW, T(0));
    for (int64_t l = 0; l < L; ++l)
      if (idx[p * L + l] >= 0 && idx[p * L + l] < HW) plane[idx[p * L + l]] += dy[p * L + l];
  }
}

template <typename T>
void index_scatter(const PoolGeom& g, const T* x, const int64_t* idx, T* y) {
  const int64_t L = g.OH * g.OW, HW = g.H * g.W;
#pragma omp parallel for schedule(static) if (g.P * HW > kParallelMin)
  for (int64_t p = 0; p < g.P; ++p) {
    T* plane = y + p * HW;
    std::fill(plane, plane + HW, T(0));
    for (int64_t l = 0; l < L; ++l) plane[idx[p * L + l]] = x[p * L + l];
  }
}

template <typename T>
void avg_pool2d_forward(const PoolGeom& g, bool count_include_pad, int64_t divisor_override,
                        const T* x, T* y) {
  const int64_t L = g.OH * g.OW;
#pragma omp parallel for schedule(static) if (g.P * L > kParallelMin)
  for (int64_t p = 0; p < g.P; ++p) {
    const T* plane = x + p * g.H * g.W;
    for (int64_t oh = 0; oh < g.OH; ++oh)
      for (int64_t ow = 0; ow < g.OW; ++ow) {
        const AvgWindow a = avg_window(g, oh, ow, count_include_pad, divisor_override);
        T s = 0;
        for (int64_t h = a.h0; h < a.h1; ++h)
          for (int64_t w = a.w0; w < a.w1; ++w) s += plane[h * g.W + w];
        y[p * L + oh * g.OW + ow] = s / static_cast<T>(a.divisor);
      }
  }
}

template <typename T>
void avg_pool2d_backward(const PoolGeom& g, bool count_include_pad, int64_t divisor_override,
                         const T* dy, T* dx) {
  const int64_t L = g.OH * g.OW, HW = g.H * g.W;
#pragma omp parallel for schedule(static) if (g.P * L > kParallelMin)
  for (int64_t p = 0; p < g.P; ++p) {
    T* plane = dx + p * HW;
    std::fill(plane, plane + HW, T(0));
    for (int64_t oh = 0; oh < g.OH; ++oh)
      for (int64_t ow = 0; ow < g.OW; ++ow) {
        const AvgWindow a = avg_window(g, oh, ow, count_include_pad, divisor_override);
        const T v = dy[p * L + oh * g.OW + ow] / static_cast<T>(a.divisor);
        for (int64_t h = a.h0; h < a.h1; ++h)
          for (int64_t w = a.w0; w < a.w1; ++w) plane[h * g.W + w] += v;
      }
  }
}

template <typename T>
void adaptive_avg_pool2d_forward(const PoolGeom& g, const T* x, T* y) {
  const int64_t L = g.OH * g.OW;
#pragma omp parallel for schedule(static) if (g.P * g.H * g.W > kParallelMin)
  for (int64_t p = 0; p < g.P; ++p) {
    const T* plane = x + p * g.H * g.W;
    for (int64_t oh = 0; oh < g.OH; ++oh) {
      const int64_t h0 = adaptive_start(oh, g.H, g.OH), h1 = adaptive_end(oh, g.H, g.OH);
      for (int64_t ow = 0; ow < g.OW; ++ow) {
        const int64_t w0 = adaptive_start(ow, g.W, g.OW), w1 = adaptive_end(ow, g.W, g.OW);
        T s = 0;
        for (int64_t h = h0; h < h1; ++h)
          for (int64_t w = w0; w < w1; ++w) s += plane[h * g.W + w];
        y[p * L + oh * g.OW + ow] = s / static_cast<T>((h1 - h0) * (w1 - w0));
      }
    }
  }
}

template <typename T>
void adaptive_avg_pool2d_backward(const PoolGeom& g, const T* dy, T* dx) {
  const int64_t L = g.OH * g.OW, HW = g.H * g.W;
#pragma omp parallel for schedule(static) if (g.P * HW > kParallelMin)
  for (int64_t p = 0; p < g.P; ++p) {
    T* plane = dx + p * HW;
    std::fill(plane, plane + HW, T(0));
    for (int64_t oh = 0; oh < g.OH; ++oh) {
      const int64_t h0 = adaptive_start(oh, g.H, g.OH), h1 = adaptive_end(oh, g.H, g.OH);
      for (int64_t ow = 0; ow < g.OW; ++ow) {
        const int64_t w0 = adaptive_start(ow, g.W, g.OW), w1 = adaptive_end(ow, g.W, g.OW);
        const T v = dy[p * L + oh * g.OW + ow] / static_cast<T>((h1 - h0) * (w1 - w0));
        for (int64_t h = h0; h < h1; ++h)
          for (int64_t w = w0; w < w1; ++w) plane[h * g.W + w] += v;
      }
    }
  }
}

#define GRADFLOW_INSTANTIATE(T)                                                                  \
  template void max_pool2d_forward<T>(const PoolGeom&, const T*, T*, int64_t*);                  \
  template void adaptive_max_pool2d_forward<T>(const PoolGeom&, const T*, T*, int64_t*);         \
  template void index_scatter_add<T>(const PoolGeom&, const T*, const int64_t*, T*);             \
  template void index_scatter<T>(const PoolGeom&, const T*, const int64_t*, T*);                 \
  template void avg_pool2d_forward<T>(const PoolGeom&, bool, int64_t, const T*, T*);             \
  template void avg_pool2d_backward<T>(const PoolGeom&, bool, int64_t, const T*, T*);            \
  template void adaptive_avg_pool2d_forward<T>(const PoolGeom&, const T*, T*);                   \
  template void adaptive_avg_pool2d_backward<T>(const PoolGeom&, const T*, T*);
GRADFLOW_INSTANTIATE(float)
GRADFLOW_INSTANTIATE(double)
#undef GRADFLOW_INSTANTIATE

}  // namespace gradflow::cpu
