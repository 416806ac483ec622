// The per-thread bodies of the pooling kernels (pool.cu): one output (or one input pixel, for
// the gathering backwards) per call. Plain C++ with GRADFLOW_HD, so tests/native/pool_test.cpp
// runs them on the host against csrc/cpu/pool.cpp; the semantics are the CPU kernels', rule for
// rule (see csrc/cpu/pool.h):
//   strided window of output (oh, ow): rows oh*sh - ph + i*dh (i < kh), columns likewise;
//   adaptive window: rows [floor(oh*H/OH), ceil((oh+1)*H/OH)), columns likewise;
//   max: NaN wins, ties keep the first position, an empty window gives -inf and the index
//   h0*W + w0 of its (out-of-range) start; avg: PyTorch's divisor rule.
// Layout: P = N*C planes, input (P, H, W), output (P, OH, OW), C-contiguous; flat indices are
// int64 and never narrowed.
#pragma once
#include <cmath>
#include <cstdint>

#include "cpu/pool.h"
#include "cuda/host_device.h"

namespace gradflow::cuda::pool {

// The CPU kernels' geometry, computed and checked on the host by bind_geometry.h.
using Geom = cpu::PoolGeom;

GRADFLOW_HD int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }
GRADFLOW_HD int64_t max64(int64_t a, int64_t b) { return a > b ? a : b; }

// floor(a / b) for b > 0 and any sign of a.
GRADFLOW_HD int64_t floor_div(int64_t a, int64_t b) {
  const int64_t q = a / b;
  return (a % b != 0 && a < 0) ? q - 1 : q;
}

GRADFLOW_HD int64_t adaptive_start(int64_t i, int64_t in, int64_t out) { return (i * in) / out; }
GRADFLOW_HD int64_t adaptive_end(int64_t i, int64_t in, int64_t out) {
  return ((i + 1) * in + out - 1) / out;
}

// Output o of P*OH*OW as (plane p, oh, ow).
struct Pos {
  int64_t p, h, w;
};

GRADFLOW_HD Pos split(int64_t o, int64_t rows, int64_t cols) {
  const int64_t plane = rows * cols, p = o / plane, r = o - p * plane;
  return {p, r / cols, r - (r / cols) * cols};
}

template <typename T>
struct MaxResult {
  T value;
  int64_t index;
};

// The maximum of plane rows h0, h0 + dh, ... < h1 and columns w0, w0 + dw, ... < w1.
template <typename T>
GRADFLOW_HD MaxResult<T> window_max(const T* plane, int64_t W, int64_t h0, int64_t h1,
                                    int64_t dh, int64_t w0, int64_t w1, int64_t dw) {
  MaxResult<T> r{-static_cast<T>(INFINITY), h0 * W + w0};
  for (int64_t h = h0; h < h1; h += dh)
    for (int64_t w = w0; w < w1; w += dw) {
      const T v = plane[h * W + w];
      if (v > r.value || v != v) {
        r.value = v;
        r.index = h * W + w;
      }
    }
  return r;
}

// First tap of a dilated window that starts at `start` (< 0: inside the padding).
GRADFLOW_HD int64_t first_tap(int64_t start, int64_t d) {
  return start < 0 ? start + ((-start + d - 1) / d) * d : start;
}

template <typename T>
GRADFLOW_HD MaxResult<T> max_pool_output(const Geom& g, const T* x, int64_t o) {
  const Pos q = split(o, g.OH, g.OW);
  const int64_t h_start = q.h * g.sh - g.ph, w_start = q.w * g.sw - g.pw;
  const int64_t h1 = min64(h_start + (g.kh - 1) * g.dh + 1, g.H);
  const int64_t w1 = min64(w_start + (g.kw - 1) * g.dw + 1, g.W);
  return window_max(x + q.p * g.H * g.W, g.W, first_tap(h_start, g.dh), h1, g.dh,
                    first_tap(w_start, g.dw), w1, g.dw);
}

template <typename T>
GRADFLOW_HD MaxResult<T> adaptive_max_output(const Geom& g, const T* x, int64_t o) {
  const Pos q = split(o, g.OH, g.OW);
  return window_max(x + q.p * g.H * g.W, g.W, adaptive_start(q.h, g.H, g.OH),
                    adaptive_end(q.h, g.H, g.OH), 1, adaptive_start(q.w, g.W, g.OW),
                    adaptive_end(q.w, g.W, g.OW), 1);
}

// Where the max pools' backward adds grad value i (of P*L, L = OH*OW): its plane's offset
// plus its index, or -1 for an index outside [0, H*W) (a window of padding only).
GRADFLOW_HD int64_t scatter_target(const Geom& g, const int64_t* idx, int64_t i) {
  const int64_t L = g.OH * g.OW, HW = g.H * g.W, t = idx[i];
  return (t >= 0 && t < HW) ? (i / L) * HW + t : -1;
}

// A strided average window clipped to the input, and its divisor.
struct AvgWindow {
  int64_t h0, h1, w0, w1, divisor;
};

GRADFLOW_HD AvgWindow avg_window(const Geom& g, int64_t oh, int64_t ow, bool count_include_pad,
                                 int64_t divisor_override) {
  int64_t h0 = oh * g.sh - g.ph, w0 = ow * g.sw - g.pw;
  int64_t h1 = min64(h0 + g.kh, g.H + g.ph), w1 = min64(w0 + g.kw, g.W + g.pw);
  const int64_t padded = (h1 - h0) * (w1 - w0);
  h0 = max64(h0, 0);
  w0 = max64(w0, 0);
  h1 = min64(h1, g.H);
  w1 = min64(w1, g.W);
  const int64_t divisor = divisor_override > 0 ? divisor_override
                          : count_include_pad  ? padded
                                               : (h1 - h0) * (w1 - w0);
  return {h0, h1, w0, w1, max64(divisor, 1)};
}

template <typename T>
GRADFLOW_HD T window_sum(const T* plane, int64_t W, int64_t h0, int64_t h1, int64_t w0,
                         int64_t w1) {
  T s = 0;
  for (int64_t h = h0; h < h1; ++h)
    for (int64_t w = w0; w < w1; ++w) s += plane[h * W + w];
  return s;
}

template <typename T>
GRADFLOW_HD T avg_pool_output(const Geom& g, const T* x, int64_t o, bool count_include_pad,
                              int64_t divisor_override) {
  const Pos q = split(o, g.OH, g.OW);
  const AvgWindow a = avg_window(g, q.h, q.w, count_include_pad, divisor_override);
  return window_sum(x + q.p * g.H * g.W, g.W, a.h0, a.h1, a.w0, a.w1) /
         static_cast<T>(a.divisor);
}

// The outputs [lo, hi] of one axis whose strided windows (start o*s - p, length k) cover
// input position i: o*s - p <= i < o*s - p + k.
struct Range {
  int64_t lo, hi;
};

GRADFLOW_HD Range covering(int64_t i, int64_t k, int64_t s, int64_t p, int64_t n_out) {
  return {max64(floor_div(i + p - k, s) + 1, 0), min64(floor_div(i + p, s), n_out - 1)};
}

// dx at input element e of P*H*W: the sum of dy / divisor over the windows covering it, in
// the CPU kernel's order (oh, then ow, increasing), so the sums agree bit for bit.
template <typename T>
GRADFLOW_HD T avg_pool_grad_input(const Geom& g, const T* dy, int64_t e, bool count_include_pad,
                                  int64_t divisor_override) {
  const Pos q = split(e, g.H, g.W);
  const Range rh = covering(q.h, g.kh, g.sh, g.ph, g.OH);
  const Range rw = covering(q.w, g.kw, g.sw, g.pw, g.OW);
  const T* plane = dy + q.p * g.OH * g.OW;
  T s = 0;
  for (int64_t oh = rh.lo; oh <= rh.hi; ++oh)
    for (int64_t ow = rw.lo; ow <= rw.hi; ++ow) {
      const AvgWindow a = avg_window(g, oh, ow, count_include_pad, divisor_override);
      s += plane[oh * g.OW + ow] / static_cast<T>(a.divisor);
    }
  return s;
}

template <typename T>
GRADFLOW_HD T adaptive_avg_output(const Geom& g, const T* x, int64_t o) {
  const Pos q = split(o, g.OH, g.OW);
  const int64_t h0 = adaptive_start(q.h, g.H, g.OH), h1 = adaptive_end(q.h, g.H, g.OH);
  const int64_t w0 = adaptive_start(q.w, g.W, g.OW), w1 = adaptive_end(q.w, g.W, g.OW);
  return window_sum(x + q.p * g.H * g.W, g.W, h0, h1, w0, w1) /
         static_cast<T>((h1 - h0) * (w1 - w0));
}

// The adaptive windows of one axis (in -> out) that contain position i: start(o) <= i < end(o)
// holds exactly for o in [floor(i*out/in), ceil((i+1)*out/in) - 1].
GRADFLOW_HD Range adaptive_covering(int64_t i, int64_t in, int64_t out) {
  return {(i * out) / in, min64(((i + 1) * out + in - 1) / in - 1, out - 1)};
}

template <typename T>
GRADFLOW_HD T adaptive_avg_grad_input(const Geom& g, const T* dy, int64_t e) {
  const Pos q = split(e, g.H, g.W);
  const Range rh = adaptive_covering(q.h, g.H, g.OH), rw = adaptive_covering(q.w, g.W, g.OW);
  const T* plane = dy + q.p * g.OH * g.OW;
  T s = 0;
  for (int64_t oh = rh.lo; oh <= rh.hi; ++oh) {
    const int64_t nh = adaptive_end(oh, g.H, g.OH) - adaptive_start(oh, g.H, g.OH);
    for (int64_t ow = rw.lo; ow <= rw.hi; ++ow) {
      const int64_t nw = adaptive_end(ow, g.W, g.OW) - adaptive_start(ow, g.W, g.OW);
      s += plane[oh * g.OW + ow] / static_cast<T>(nh * nw);
    }
  }
  return s;
}

// ---------------------------------------------------------------- interpolation weights
// Resizing one axis from n_in to n_out samples (gradflow/ops/pool.py's _interp_matrix, PyTorch's
// source-index rules): output dst reads (1 - l1) * in[i0] + l1 * in[i1].
//   nearest:  i0 = i1 = min(floor(dst * r), n_in - 1), l1 = 0
//   bilinear: src = dst * (n_in - 1) / (n_out - 1) (align_corners; 0 for n_out = 1)
//             or max((dst + 0.5) * r - 0.5, 0), i0 = min(floor(src), n_in - 1),
//             i1 = min(i0 + 1, n_in - 1), l1 = src - i0
// with r = 1 / scale when a scale factor was given (scale > 0), else n_in / n_out.
struct Taps {
  int64_t i0, i1;
  double l1;
};

GRADFLOW_HD Taps source_taps(int64_t dst, int64_t n_in, int64_t n_out, double scale,
                             bool bilinear, bool align_corners) {
  const double d = static_cast<double>(dst);
  const double r = scale > 0 ? 1.0 / scale : static_cast<double>(n_in) / static_cast<double>(n_out);
  if (!bilinear) {
    const int64_t i = min64(static_cast<int64_t>(floor(d * r)), n_in - 1);
    return {i, i, 0.0};
  }
  double src;
  if (align_corners)
    src = n_out > 1 ? d * (static_cast<double>(n_in - 1) / static_cast<double>(n_out - 1)) : 0.0;
  else
    src = fmax((d + 0.5) * r - 0.5, 0.0);
  const int64_t i0 = min64(static_cast<int64_t>(floor(src)), n_in - 1);
  return {i0, min64(i0 + 1, n_in - 1), src - static_cast<double>(i0)};
}

// The resize of plane p at output o of P*OH*OW (g: input H, W, output OH, OW; scales sh, sw
// as above, 0 for none).
struct Resize {
  double sh, sw;
  bool bilinear, align_corners;
};

GRADFLOW_HD void resize_taps(const Geom& g, const Resize& r, int64_t o, Pos* q, Taps* th,
                             Taps* tw) {
  *q = split(o, g.OH, g.OW);
  *th = source_taps(q->h, g.H, g.OH, r.sh, r.bilinear, r.align_corners);
  *tw = source_taps(q->w, g.W, g.OW, r.sw, r.bilinear, r.align_corners);
}

template <typename T>
GRADFLOW_HD T resize_output(const Geom& g, const Resize& r, const T* x, int64_t o) {
  Pos q;
  Taps th, tw;
  resize_taps(g, r, o, &q, &th, &tw);
  const T* plane = x + q.p * g.H * g.W;
  const T lh = static_cast<T>(th.l1), lw = static_cast<T>(tw.l1);
  const T top = (T(1) - lw) * plane[th.i0 * g.W + tw.i0] + lw * plane[th.i0 * g.W + tw.i1];
  const T bottom = (T(1) - lw) * plane[th.i1 * g.W + tw.i0] + lw * plane[th.i1 * g.W + tw.i1];
  return (T(1) - lh) * top + lh * bottom;
}

// The adjoint: output o's gradient g_o goes to its four taps, add(offset, weight * g_o).
template <typename T, typename Add>
GRADFLOW_HD void resize_scatter(const Geom& g, const Resize& r, const T* dy, int64_t o, Add add) {
  Pos q;
  Taps th, tw;
  resize_taps(g, r, o, &q, &th, &tw);
  const int64_t base = q.p * g.H * g.W;
  const T v = dy[o], lh = static_cast<T>(th.l1), lw = static_cast<T>(tw.l1);
  add(base + th.i0 * g.W + tw.i0, (T(1) - lh) * (T(1) - lw) * v);
  add(base + th.i0 * g.W + tw.i1, (T(1) - lh) * lw * v);
  add(base + th.i1 * g.W + tw.i0, lh * (T(1) - lw) * v);
  add(base + th.i1 * g.W + tw.i1, lh * lw * v);
}

}  // namespace gradflow::cuda::pool
