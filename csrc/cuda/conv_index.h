// The per-thread bodies and the chunk plan of the CUDA convolution (conv.cu, conv_chunks.h).
// Plain C++ marked GRADFLOW_HD: on the GPU each functor's operator()(e) is one thread's work
// for element e of a grid-stride launch; tests/native/conv_test.cpp runs the same functions on
// the host over every (block, thread) index and compares with the CPU kernels.
//
// Layouts (row-major, element offsets; one chunk = nb images n0.. and output positions
// l0 .. l0 + lc of each; ld = nb * lc columns, column q = i * lc + (l - l0) for image n0 + i):
//   x  (N, Cin, H, W), Cin = groups * g.C        y, dy (N, Cout, L), L = OH * OW
//   col (Cin * kh * kw, ld): row (c*kh + a)*kw + b for input channel c (over all groups) and
//       kernel tap (a, b), so group grp's K = g.C*kh*kw rows are the block [grp*K, (grp+1)*K):
//       (groups, K, ld), and for column q of position l = oh*OW + ow of image n0 + i
//       col[(c*kh + a)*kw + b, q] = x[n0 + i, c, oh*sh - ph + a*dh, ow*sw - pw + b*dw] or 0
//   Y / DY (Cout, ld): the chunk's output (gradient) blocks side by side, (groups, Cog, ld)
//   DYT (groups, ld, Cog): DY transposed per group (the weight gradient's right operand)
//   wT (groups, K, Cog): w (Cout, K) transposed per group (the input gradient's left operand)
// All indices are int64: a launch may cover more than 2^31 elements.
#pragma once
#include <cstdint>

#include "conv_geom.h"
#include "cuda/host_device.h"

namespace gradflow::cuda::conv {

using ::gradflow::ConvGeom;

// ---------------------------------------------------------------- the chunk plan
// A chunk is nb whole images (lc = L) or, when one image's columns exceed the workspace's
// column cap, a run of lc < L output positions of one image. Chunk c covers images
// [n0, n0 + nb) and positions [l0, l0 + lc), the last ones clipped to N and L.
struct Plan {
  int64_t nb;         // images per chunk
  int64_t lc;         // output positions per chunk
  int64_t per_image;  // chunks per group of nb images: ceil(L / lc)
  int64_t chunks;     // ceil(N / nb) * per_image (0 for an empty batch)
};

struct Chunk {
  int64_t n0, nb, l0, lc;
};

GRADFLOW_HD int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }
GRADFLOW_HD int64_t max64(int64_t a, int64_t b) { return a > b ? a : b; }
GRADFLOW_HD int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// cap_columns: how many chunk columns the workspace holds (>= 1).
GRADFLOW_HD Plan make_plan(int64_t N, int64_t L, int64_t cap_columns) {
  const int64_t cap = max64(1, cap_columns);
  Plan p;
  p.lc = max64(1, min64(L, cap));
  p.nb = L <= cap ? max64(1, min64(N, cap / max64(L, 1))) : 1;
  p.per_image = ceil_div(max64(L, 1), p.lc);
  p.chunks = N > 0 && L > 0 ? ceil_div(N, p.nb) * p.per_image : 0;
  return p;
}

GRADFLOW_HD Chunk chunk_at(const Plan& p, int64_t N, int64_t L, int64_t c) {
  Chunk k;
  k.n0 = c / p.per_image * p.nb;
  k.l0 = c % p.per_image * p.lc;
  k.nb = min64(p.nb, N - k.n0);
  k.lc = min64(p.lc, L - k.l0);
  return k;
}

// The offset in y or dy (N, Cout, L) of chunk element (r, q): channel r, column q.
GRADFLOW_HD int64_t block_offset(int64_t Cout, int64_t L, const Chunk& k, int64_t r, int64_t q) {
  const int64_t i = q / k.lc, l = q - i * k.lc;
  return ((k.n0 + i) * Cout + r) * L + k.l0 + l;
}

// ---------------------------------------------------------------- im2col / col2im
// e over (Cin, ld): one thread reads input channel c at column q for all kh*kw taps and writes
// them down col's column q (rows kh*kw apart by ld). x points at image n0.
template <typename T>
struct Im2col {
  ConvGeom g;
  int64_t Cin;
  Chunk k;
  const T* x;
  T* col;

  GRADFLOW_HD void operator()(int64_t e) const {
    const int64_t ld = k.nb * k.lc, c = e / ld, q = e - c * ld;
    const int64_t i = q / k.lc, l = k.l0 + (q - i * k.lc);
    const int64_t oh = l / g.OW, ow = l - oh * g.OW;
    const T* plane = x + (i * Cin + c) * g.H * g.W;
    T* out = col + c * g.kh * g.kw * ld + q;
    for (int64_t a = 0; a < g.kh; ++a) {
      const int64_t ih = oh * g.sh - g.ph + a * g.dh;
      const bool row_in = ih >= 0 && ih < g.H;
      for (int64_t b = 0; b < g.kw; ++b, out += ld) {
        const int64_t iw = ow * g.sw - g.pw + b * g.dw;
        *out = row_in && iw >= 0 && iw < g.W ? plane[ih * g.W + iw] : T(0);
      }
    }
  }
};

// e over (nb, Cin, H, W): input pixel (i, c, h, w) gathers the col entries read from it,
//   sum over taps (a, b) with h = oh*sh - ph + a*dh, w = ow*sw - pw + b*dw for an output
//   position l = oh*OW + ow inside the chunk,
// and writes (first chunk of an image) or adds (later runs of a split image) the sum: one
// writer per pixel, no atomics. dx points at image n0.
template <typename T>
struct Col2im {
  ConvGeom g;
  int64_t Cin;
  Chunk k;
  const T* col;
  T* dx;

  GRADFLOW_HD T gather(int64_t i, int64_t c, int64_t h, int64_t w) const {
    const int64_t ld = k.nb * k.lc;
    T s = T(0);
    for (int64_t a = 0; a < g.kh; ++a) {
      const int64_t th = h + g.ph - a * g.dh;  // = oh * sh
      if (th < 0) break;  // larger taps only go further up
      const int64_t oh = g.sh == 1 ? th : th / g.sh;  // (64-bit divisions are slow on a GPU)
      if (oh * g.sh != th || oh >= g.OH) continue;
      for (int64_t b = 0; b < g.kw; ++b) {
        const int64_t tw = w + g.pw - b * g.dw;
        if (tw < 0) break;
        const int64_t ow = g.sw == 1 ? tw : tw / g.sw, l = oh * g.OW + ow - k.l0;
        if (ow * g.sw != tw || ow >= g.OW || l < 0 || l >= k.lc) continue;
        s += col[((c * g.kh + a) * g.kw + b) * ld + i * k.lc + l];
      }
    }
    return s;
  }

  GRADFLOW_HD void operator()(int64_t e) const {
    const int64_t w = e % g.W, h = e / g.W % g.H, c = e / (g.W * g.H) % Cin;
    const int64_t i = e / (g.W * g.H * Cin);
    const T s = gather(i, c, h, w);
    dx[e] = k.l0 == 0 ? s : dx[e] + s;
  }
};

// ---------------------------------------------------------------- block moves
// e over (Cout, ld): y[block r, q] = Y[r, q] + bias[r] (bias may be null).
template <typename T>
struct ScatterBlocks {
  int64_t Cout, L;
  Chunk k;
  const T* Y;
  const T* bias;
  T* y;

  GRADFLOW_HD void operator()(int64_t e) const {
    const int64_t ld = k.nb * k.lc, r = e / ld, q = e - r * ld;
    y[block_offset(Cout, L, k, r, q)] = Y[e] + (bias != nullptr ? bias[r] : T(0));
  }
};

// e over (Cout, ld): DY[r, q] = dy[block r, q].
template <typename T>
struct GatherBlocks {
  int64_t Cout, L;
  Chunk k;
  const T* dy;
  T* DY;

  GRADFLOW_HD void operator()(int64_t e) const {
    const int64_t ld = k.nb * k.lc, r = e / ld, q = e - r * ld;
    DY[e] = dy[block_offset(Cout, L, k, r, q)];
  }
};

// e over (groups, ld, Cog): DYT[grp, q, o] = dy[block grp*Cog + o, q].
template <typename T>
struct GatherBlocksT {
  int64_t Cout, L, Cog;
  Chunk k;
  const T* dy;
  T* DYT;

  GRADFLOW_HD void operator()(int64_t e) const {
    const int64_t ld = k.nb * k.lc, o = e % Cog, q = e / Cog % ld, grp = e / (Cog * ld);
    DYT[e] = dy[block_offset(Cout, L, k, grp * Cog + o, q)];
  }
};

// e over (groups, K, Cog): wT[grp, kk, o] = w[grp*Cog + o, kk].
template <typename T>
struct TransposeWeight {
  int64_t K, Cog;
  const T* w;
  T* wT;

  GRADFLOW_HD void operator()(int64_t e) const {
    const int64_t o = e % Cog, kk = e / Cog % K, grp = e / (Cog * K);
    wT[e] = w[(grp * Cog + o) * K + kk];
  }
};

// e over (Cout, K): dw[grp*Cog + o, kk] (+)= sum over s < slices of part[grp, s, kk, o], the
// split-K partial products dw[grp]^T = col[grp] @ DYT[grp] of one chunk; part holds `stride`
// slices per group. The first chunk writes, later chunks add.
template <typename T>
struct ReduceWeightGrad {
  int64_t K, Cog, slices, stride;
  bool accumulate;
  const T* part;
  T* dw;

  GRADFLOW_HD void operator()(int64_t e) const {
    const int64_t kk = e % K, r = e / K, grp = r / Cog, o = r - grp * Cog;
    const T* p = part + (grp * stride * K + kk) * Cog + o;
    T s = T(0);
    for (int64_t j = 0; j < slices; ++j) s += p[j * K * Cog];
    dw[e] = accumulate ? dw[e] + s : s;
  }
};

// e over (N, Cout, L): y[e] += bias[channel] (the 1x1 path, whose GEMM writes y directly).
template <typename T>
struct AddBias {
  int64_t Cout, L;
  const T* bias;
  T* y;

  GRADFLOW_HD void operator()(int64_t e) const { y[e] += bias[e / L % Cout]; }
};

// channel_sum: item j of channel c's N*L values sits at this offset of x (N, C, L).
GRADFLOW_HD int64_t channel_item(int64_t C, int64_t L, int64_t c, int64_t j) {
  const int64_t n = j / L;
  return (n * C + c) * L + (j - n * L);
}

}  // namespace gradflow::cuda::conv
