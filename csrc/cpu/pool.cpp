// Pooling kernels; see pool.h. Every kernel runs one plane per iteration of a parallel loop
// over the P planes, so threads never write to the same memory.
#include "cpu/pool.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <type_traits>

namespace gradflow::cpu {

namespace {
// Planes run in parallel when the elements a kernel visits (outputs, or input pixels for the
// adaptive averages and unpool) exceed this; below it one thread is faster.
constexpr int64_t kParallelMin = 65536;

// One dimension of a window: input positions lo, lo + step, ... < hi. `padded` is the extent
// of an avg-pool window clipped to the padded input only (its count_include_pad divisor).
struct Span {
  int64_t lo, hi, step, padded;
  int64_t size() const { return hi - lo; }  // dense spans (step 1)
};

// One dimension of the geometry: input size, output size, kernel, stride, padding, dilation.
struct Axis {
  int64_t in, out, k, s, p, d;
};

// Which windows a pool reads: max_pool's dilated taps o*s - p + i*d inside the input; avg_pool's
// dense window clipped to the input (and, for `padded`, to the padded input); the adaptive
// pools' [floor(o*in/out), ceil((o+1)*in/out)).
enum class Windows { dilated, clipped, adaptive };

template <Windows kind>
inline Span window_span(const Axis& a, int64_t o) {
  if constexpr (kind == Windows::dilated) {
    int64_t lo = o * a.s - a.p;
    const int64_t hi = std::min(lo + (a.k - 1) * a.d + 1, a.in);
    while (lo < 0) lo += a.d;
    return {lo, hi, a.d, 0};
  } else if constexpr (kind == Windows::clipped) {
    const int64_t lo = o * a.s - a.p, hi = std::min(lo + a.k, a.in + a.p);
    return {std::max<int64_t>(lo, 0), std::min(hi, a.in), 1, hi - lo};
  } else {
    const int64_t lo = (o * a.in) / a.out, hi = ((o + 1) * a.in + a.out - 1) / a.out;
    return {lo, hi, 1, hi - lo};
  }
}

// fn(o, rows, cols) for every output o = oh*OW + ow of one plane, with its window. Inlined
// whole (fn included) into each kernel's plane loop, as if written out there.
template <Windows kind, typename F>
[[gnu::always_inline, gnu::flatten]] inline void for_each_window(const PoolGeom& g, F&& fn) {
  const Axis ha{g.H, g.OH, g.kh, g.sh, g.ph, g.dh}, wa{g.W, g.OW, g.kw, g.sw, g.pw, g.dw};
  for (int64_t oh = 0; oh < g.OH; ++oh) {
    const Span rows = window_span<kind>(ha, oh);
    for (int64_t ow = 0; ow < g.OW; ++ow) fn(oh * g.OW + ow, rows, window_span<kind>(wa, ow));
  }
}

// The largest value of a plane (row length W) in a window, NaN winning, and its flat index
// (rows.lo * W + cols.lo for an empty window).
template <typename T>
inline void window_max(const T* plane, int64_t W, Span rows, Span cols, T* best_out,
                       int64_t* arg_out) {
  T best = -std::numeric_limits<T>::infinity();
  int64_t arg = rows.lo * W + cols.lo;
  for (int64_t h = rows.lo; h < rows.hi; h += rows.step)
    for (int64_t w = cols.lo; w < cols.hi; w += cols.step) {
      const T v = plane[h * W + w];
      if (v > best || std::isnan(v)) {
        best = v;
        arg = h * W + w;
      }
    }
  *best_out = best;
  *arg_out = arg;
}

// take ? a : b as bit masks: a branch on random data (which of a 2x2 window's values is largest)
// would be mispredicted half the time, and compilers turn the ternary into one. (Larger windows
// keep window_max's branch: a running maximum changes less and less often, and there the branch
// measured faster.)
template <typename U>
inline U pick(bool take, U a, U b) {
  using Bits = std::conditional_t<sizeof(U) == 8, uint64_t, uint32_t>;
  Bits ab, bb;
  std::memcpy(&ab, &a, sizeof(U));
  std::memcpy(&bb, &b, sizeof(U));
  const Bits mask = Bits(0) - Bits(take);
  const Bits r = (ab & mask) | (bb & ~mask);
  U out;
  std::memcpy(&out, &r, sizeof(U));
  return out;
}

// The plane of a 2x2 pool at stride 2 without padding or dilation (LeNet's, VGG's, U-Net's):
// window_max's result without its loops and branches, each window's four values taken in
// window_max's order, one replacing the best so far when larger or NaN.
template <typename T>
void max_pool_2x2(const T* plane, int64_t W, int64_t OH, int64_t OW, T* y, int64_t* idx) {
  for (int64_t oh = 0; oh < OH; ++oh) {
    const T* r0 = plane + 2 * oh * W;
    const T* r1 = r0 + W;
    for (int64_t ow = 0; ow < OW; ++ow) {
      const int64_t at = 2 * oh * W + 2 * ow;
      const T v[4] = {r0[2 * ow], r0[2 * ow + 1], r1[2 * ow], r1[2 * ow + 1]};
      const int64_t where[4] = {at, at + 1, at + W, at + W + 1};
      T best = v[0];
      int64_t arg = at;
      for (int i = 1; i < 4; ++i) {
        const bool take = (v[i] > best) | (v[i] != v[i]);
        best = pick(take, v[i], best);
        arg = pick(take, where[i], arg);
      }
      y[oh * OW + ow] = best;
      idx[oh * OW + ow] = arg;
    }
  }
}

template <Windows kind, typename T>
void max_pool(const PoolGeom& g, const T* x, T* y, int64_t* idx) {
  const int64_t L = g.OH * g.OW;
#pragma omp parallel for schedule(static) if (g.P * L > kParallelMin)
  for (int64_t p = 0; p < g.P; ++p) {
    for_each_window<kind>(g, [&](int64_t o, Span rows, Span cols) {
      window_max(x + p * g.H * g.W, g.W, rows, cols, y + p * L + o, idx + p * L + o);
    });
  }
}

// Per plane: out (H*W) = 0, then out[idx[l]] = in[l] for l < OH*OW, or with Add, out[idx[l]] +=
// in[l] skipping the indices outside the plane (max_unpool2d's are validated by the binding).
template <bool Add, typename T>
void scatter_planes(const PoolGeom& g, int64_t work, const T* in, const int64_t* idx, T* out) {
  const int64_t L = g.OH * g.OW, HW = g.H * g.W;
#pragma omp parallel for schedule(static) if (work > kParallelMin)
  for (int64_t p = 0; p < g.P; ++p) {
    T* plane = out + p * HW;
    std::fill(plane, plane + HW, T(0));
    for (int64_t l = p * L; l < (p + 1) * L; ++l) {
      if constexpr (Add) {
        if (idx[l] >= 0 && idx[l] < HW) plane[idx[l]] += in[l];
      } else {
        plane[idx[l]] = in[l];
      }
    }
  }
}

// y = sum(window) / divisor(rows, cols) over dense windows; planes in parallel above `work`.
template <Windows kind, typename T, typename Divisor>
void mean_pool(const PoolGeom& g, int64_t work, Divisor divisor, const T* x, T* y) {
  const int64_t L = g.OH * g.OW;
#pragma omp parallel for schedule(static) if (work > kParallelMin)
  for (int64_t p = 0; p < g.P; ++p) {
    const T* plane = x + p * g.H * g.W;
    for_each_window<kind>(g, [&](int64_t o, Span rows, Span cols) {
      T s = 0;
      for (int64_t h = rows.lo; h < rows.hi; ++h)
        for (int64_t w = cols.lo; w < cols.hi; ++w) s += plane[h * g.W + w];
      y[p * L + o] = s / static_cast<T>(divisor(rows, cols));
    });
  }
}

// mean_pool's adjoint: dx = 0, then each dy / divisor is added over its window.
template <Windows kind, typename T, typename Divisor>
void mean_pool_backward(const PoolGeom& g, int64_t work, Divisor divisor, const T* dy, T* dx) {
  const int64_t L = g.OH * g.OW, HW = g.H * g.W;
#pragma omp parallel for schedule(static) if (work > kParallelMin)
  for (int64_t p = 0; p < g.P; ++p) {
    T* plane = dx + p * HW;
    std::fill(plane, plane + HW, T(0));
    for_each_window<kind>(g, [&](int64_t o, Span rows, Span cols) {
      const T v = dy[p * L + o] / static_cast<T>(divisor(rows, cols));
      for (int64_t h = rows.lo; h < rows.hi; ++h)
        for (int64_t w = cols.lo; w < cols.hi; ++w) plane[h * g.W + w] += v;
    });
  }
}

// avg_pool's divisor (PyTorch's rule): the override, else the window clipped to the padded
// input (count_include_pad) or to the input; at least 1.
struct AvgDivisor {
  bool count_include_pad;
  int64_t divisor_override;
  int64_t operator()(Span rows, Span cols) const {
    const int64_t d = divisor_override > 0 ? divisor_override
                      : count_include_pad  ? rows.padded * cols.padded
                                           : rows.size() * cols.size();
    return std::max<int64_t>(d, 1);
  }
};

// The adaptive pools average over the whole window.
struct WindowSize {
  int64_t operator()(Span rows, Span cols) const { return rows.size() * cols.size(); }
};
}  // namespace

template <typename T>
void max_pool2d_forward(const PoolGeom& g, const T* x, T* y, int64_t* idx) {
  const bool windows_2x2 = g.kh == 2 && g.kw == 2 && g.sh == 2 && g.sw == 2 && g.ph == 0 &&
                           g.pw == 0 && g.dh == 1 && g.dw == 1 && 2 * g.OH <= g.H &&
                           2 * g.OW <= g.W;  // (ceil_mode's partial windows excluded)
  if (!windows_2x2) return max_pool<Windows::dilated>(g, x, y, idx);
  const int64_t L = g.OH * g.OW;
#pragma omp parallel for schedule(static) if (g.P * L > kParallelMin)
  for (int64_t p = 0; p < g.P; ++p)
    max_pool_2x2(x + p * g.H * g.W, g.W, g.OH, g.OW, y + p * L, idx + p * L);
}

template <typename T>
void adaptive_max_pool2d_forward(const PoolGeom& g, const T* x, T* y, int64_t* idx) {
  max_pool<Windows::adaptive>(g, x, y, idx);
}

template <typename T>
void index_scatter_add(const PoolGeom& g, const T* dy, const int64_t* idx, T* dx) {
  scatter_planes<true>(g, g.P * g.OH * g.OW, dy, idx, dx);
}

template <typename T>
void index_scatter(const PoolGeom& g, const T* x, const int64_t* idx, T* y) {
  scatter_planes<false>(g, g.P * g.H * g.W, x, idx, y);
}

template <typename T>
void avg_pool2d_forward(const PoolGeom& g, bool count_include_pad, int64_t divisor_override,
                        const T* x, T* y) {
  const AvgDivisor divisor{count_include_pad, divisor_override};
  mean_pool<Windows::clipped>(g, g.P * g.OH * g.OW, divisor, x, y);
}

template <typename T>
void avg_pool2d_backward(const PoolGeom& g, bool count_include_pad, int64_t divisor_override,
                         const T* dy, T* dx) {
  const AvgDivisor divisor{count_include_pad, divisor_override};
  mean_pool_backward<Windows::clipped>(g, g.P * g.OH * g.OW, divisor, dy, dx);
}

template <typename T>
void adaptive_avg_pool2d_forward(const PoolGeom& g, const T* x, T* y) {
  mean_pool<Windows::adaptive>(g, g.P * g.H * g.W, WindowSize{}, x, y);
}

template <typename T>
void adaptive_avg_pool2d_backward(const PoolGeom& g, const T* dy, T* dx) {
  mean_pool_backward<Windows::adaptive>(g, g.P * g.H * g.W, WindowSize{}, dy, dx);
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
