// im2col / col2im; see im2col.h for the index map. Each col row (c, i, j) is one shifted,
// strided copy of input plane c, so the inner loop over ow is a strided gather (a plain copy
// when the stride is 1) with the padded borders handled by clamping the ow range.
//
// Small images have rows of a few elements, where the loop overhead costs more than the copy:
// a row segment of a division, a memset call and an exact-length copy runs several times
// slower than the bytes it moves. So whole output rows are copied in fixed 32-byte blocks,
// padding included, each block possibly running past the row's end into positions that a
// later write of the same call overwrites; rows whose blocks would pass the end of the call's
// columns or of the input image are copied exactly. At stride 2 the blocks gather every other
// element, and col2im adds a row back in vectors of (value, -0.0) pairs.
#include "cpu/im2col.h"

#include <algorithm>
#include <cstring>

namespace gradflow::cpu {

namespace {
constexpr int64_t kBlockBytes = 32;

// The output range [lo, hi) whose input index o*s - p + off lies inside [0, size), of the
// out positions (rows or columns) of one dimension.
inline void valid_range(int64_t size, int64_t out, int64_t s, int64_t p, int64_t off,
                        int64_t& lo, int64_t& hi) {
  const int64_t first = off - p;  // input index of o = 0
  lo = first >= 0 ? 0 : (-first + s - 1) / s;
  hi = first >= size ? 0 : (size - 1 - first) / s + 1;
  lo = std::min(lo, out);
  hi = std::max(lo, std::min(hi, out));
}

// Kernel tap (i, j): the output rows [top, bottom) and columns [lo, hi) whose input pixel lies
// inside the image, and where output (0, 0)'s pixel sits relative to its plane's first element
// (before it, or off the row, when that pixel is padding).
struct Tap {
  int64_t top, bottom, lo, hi;
  int64_t offset;
};

inline Tap tap(const ConvGeom& g, int64_t i, int64_t j) {
  Tap t;
  valid_range(g.H, g.OH, g.sh, g.ph, i * g.dh, t.top, t.bottom);
  valid_range(g.W, g.OW, g.sw, g.pw, j * g.dw, t.lo, t.hi);
  t.offset = (i * g.dh - g.ph) * g.W + j * g.dw - g.pw;
  return t;
}

// out[0, n) = src[0, n) (zeros when src is null), in whole blocks: up to one block minus one
// element past n is written (and read from src).
template <typename T>
inline void put_blocks(T* out, const T* src, int64_t n) {
  constexpr int64_t B = kBlockBytes / sizeof(T);
  alignas(kBlockBytes) static const T zeros[B] = {};
  for (int64_t k = 0; k < n; k += B) std::memcpy(out + k, src ? src + k : zeros, kBlockBytes);
}

// out[0, n) = src[0], src[2], ..., src[2(n-1)], in whole blocks as put_blocks: up to one block
// minus one element past n is written, and up to two blocks past 2n read. (A fixed-length
// loop that the compiler turns into vector loads and shuffles.)
template <typename T>
inline void put_even_blocks(T* __restrict out, const T* __restrict src, int64_t n) {
  constexpr int64_t B = kBlockBytes / sizeof(T);
  for (int64_t k = 0; k < n; k += B, out += B, src += 2 * B)
    for (int64_t e = 0; e < B; ++e) out[e] = src[2 * e];
}

template <typename T>
struct Vec16;  // T's 16-byte vector (GCC/Clang vector extensions: + lane by lane)
template <>
struct Vec16<float> {
  typedef float type __attribute__((vector_size(16)));
};
template <>
struct Vec16<double> {
  typedef double type __attribute__((vector_size(16)));
};

// out[2e] += in[e] for e < n, in 16-byte vectors: each pair (out[2e], out[2e + 1]) gets
// (in[e], -0.0) added, which leaves out[2e + 1] as it was (x + -0.0 == x for every x). The
// vectors write only out[0, room) (the rest of the image: past it, another thread's image).
template <typename T>
inline void add_to_even(T* __restrict out, const T* __restrict in, int64_t n, int64_t room) {
  using V = typename Vec16<T>::type;
  constexpr int64_t L = sizeof(V) / sizeof(T);
  const V unchanged = -V{};
  int64_t e = 0;
  for (; e + L <= n && 2 * (e + L) <= room; e += L) {
    V x, lo, hi;
    std::memcpy(&x, in + e, sizeof x);
    std::memcpy(&lo, out + 2 * e, sizeof lo);
    std::memcpy(&hi, out + 2 * e + L, sizeof hi);
    if constexpr (L == 4) {  // float
      lo += __builtin_shufflevector(x, unchanged, 0, 4, 1, 5);
      hi += __builtin_shufflevector(x, unchanged, 2, 6, 3, 7);
    } else {  // double
      lo += __builtin_shufflevector(x, unchanged, 0, 2);
      hi += __builtin_shufflevector(x, unchanged, 1, 3);
    }
    std::memcpy(out + 2 * e, &lo, sizeof lo);
    std::memcpy(out + 2 * e + L, &hi, sizeof hi);
  }
  for (; e < n; ++e) out[2 * e] += in[e];
}

// One col row (c, i, j) of one image. Output rows oh in [top, bottom) read inside the image,
// and of those the columns ow in [lo, hi); everything else is zero padding.
template <typename T>
struct ColRow {
  const ConvGeom& g;
  const T* in;     // in[oh*sh*W + ow*sw] is column (oh, ow): plane c shifted to tap (i, j)
  const T* x_end;  // the end of the image, which block copies never read past
  int64_t top, bottom, lo, hi;

  // out[ow - ow0] = column (oh, ow) for ow in [ow0, ow1), exactly.
  void segment(int64_t oh, int64_t ow0, int64_t ow1, T* out) const {
    const bool inside = oh >= top && oh < bottom;
    const int64_t a = inside ? std::clamp(lo, ow0, ow1) : ow1;  // the valid part [a, b)
    const int64_t b = inside ? std::clamp(hi, a, ow1) : ow1;
    const T* src = in + oh * g.sh * g.W;
    std::fill(out, out + (a - ow0), T(0));
    for (int64_t ow = a; ow < b; ++ow) out[ow - ow0] = src[ow * g.sw];
    std::fill(out + (b - ow0), out + (ow1 - ow0), T(0));
  }

  // Whole output rows [oh0, oh1) into out, OW apart; `room` elements at out may be written.
  void rows(int64_t oh0, int64_t oh1, T* out, int64_t room) const {
    constexpr int64_t B = kBlockBytes / sizeof(T);
    const int64_t OW = g.OW;
    const int64_t first = std::clamp(top, oh0, oh1), last = std::clamp(bottom, first, oh1);
    std::fill(out, out + (first - oh0) * OW, T(0));
    for (int64_t oh = first; oh < last; ++oh) {
      T* o = out + (oh - oh0) * OW;
      const T* src = in + oh * g.sh * g.W;
      const bool room_for_blocks = o + OW + B <= out + room;
      if (g.sw == 1 && room_for_blocks && src + hi + B <= x_end) {
        put_blocks<T>(o, nullptr, lo);  // overrun: rewritten by the copy that follows
        put_blocks(o + lo, src + lo, hi - lo);
        put_blocks<T>(o + hi, nullptr, OW - hi);  // overrun: the next row's, written later
      } else if (g.sw == 2 && room_for_blocks && src + 2 * (hi + B) <= x_end) {
        put_blocks<T>(o, nullptr, lo);  // the same overruns as above
        put_even_blocks(o + lo, src + 2 * lo, hi - lo);
        put_blocks<T>(o + hi, nullptr, OW - hi);
      } else {
        segment(oh, 0, OW, o);
      }
    }
    std::fill(out + (last - oh0) * OW, out + (oh1 - oh0) * OW, T(0));
  }
};

}  // namespace

template <typename T>
void im2col(const ConvGeom& g, const T* x, int64_t l0, int64_t n, T* col, int64_t ld) {
  if (n <= 0) return;
  // Columns [l0, l0 + n) = a partial first row, whole rows [oh0, oh1), a partial last row.
  const int64_t head = std::min(n, (g.OW - l0 % g.OW) % g.OW);
  const int64_t oh0 = (l0 + head) / g.OW, oh1 = (l0 + n) / g.OW;
  const int64_t tail = l0 + n - std::max(oh1 * g.OW, l0 + head);
  const T* x_end = x + g.C * g.H * g.W;
  for (int64_t i = 0; i < g.kh; ++i) {
    for (int64_t j = 0; j < g.kw; ++j) {
      const Tap t = tap(g, i, j);
      for (int64_t c = 0; c < g.C; ++c) {
        const ColRow<T> r{g, x + c * g.H * g.W + t.offset, x_end, t.top, t.bottom, t.lo, t.hi};
        T* row = col + ((c * g.kh + i) * g.kw + j) * ld;
        if (head > 0) r.segment(l0 / g.OW, l0 % g.OW, l0 % g.OW + head, row);
        if (oh1 > oh0) r.rows(oh0, oh1, row + head, n - head);
        if (tail > 0) r.segment(oh1, 0, tail, row + n - tail);
      }
    }
  }
}

template <typename T>
void col2im(const ConvGeom& g, const T* col, int64_t l0, int64_t n, int64_t ld, T* x) {
  if (n <= 0) return;
  const T* x_end = x + g.C * g.H * g.W;
  // x[ih, ow*sw + j*dw - pw] += col row[oh, ow] for the valid ow in [a, b) of one output row.
  auto add = [&](const T* __restrict in, T* __restrict out, int64_t a, int64_t b) {
    if (g.sw == 1) {
      for (int64_t ow = a; ow < b; ++ow) out[ow] += in[ow];
    } else if (g.sw == 2) {
      add_to_even(out + 2 * a, in + a, b - a, x_end - (out + 2 * a));
    } else {
      for (int64_t ow = a; ow < b; ++ow) out[ow * g.sw] += in[ow];
    }
  };
  // Rows of one input channel all add into the same plane: keep the channel loop outermost.
  for (int64_t c = 0; c < g.C; ++c) {
    for (int64_t i = 0; i < g.kh; ++i) {
      for (int64_t j = 0; j < g.kw; ++j) {
        const Tap t = tap(g, i, j);
        const T* row = col + ((c * g.kh + i) * g.kw + j) * ld - l0;  // row[l]: column l
        // out(oh)[ow*sw] is the input pixel that column (oh, ow) reads.
        T* plane = x + c * g.H * g.W + t.offset;
        const int64_t first = std::max(t.top, l0 / g.OW);
        const int64_t last = std::min(t.bottom, (l0 + n - 1) / g.OW + 1);
        for (int64_t oh = first; oh < last; ++oh) {
          const int64_t ow0 = std::max<int64_t>(0, l0 - oh * g.OW);  // this call's part
          const int64_t ow1 = std::min(g.OW, l0 + n - oh * g.OW);
          add(row + oh * g.OW, plane + oh * g.sh * g.W, std::clamp(t.lo, ow0, ow1),
              std::clamp(t.hi, std::clamp(t.lo, ow0, ow1), ow1));
        }
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
