// 2-D convolution (cross-correlation, as in PyTorch), NCHW, C-contiguous, float or double.
//
//   y[n, o, oh, ow] = b[o] + sum_{c in group(o), i, j}
//                     w[o, c', i, j] * x[n, c, oh*sh - ph + i*dh, ow*sw - pw + j*dw]
//
// x (N, G*g.C, g.H, g.W), w (Cout, g.C, kh, kw), y (N, Cout, g.OH, g.OW); Cout = G * Cog and
// output channel o reads input channels [(o / Cog) * g.C, (o / Cog + 1) * g.C). `g` is the
// per-group geometry (see im2col.h). Zero padding; the caller has validated every size.
// g.OH/g.OW may be smaller than the natural output size: the conv is then evaluated at the
// leading output rows/columns only (conv_transpose2d with output_padding >= stride needs it).
//
// Images are processed in chunks of nb; per chunk and group the three products are GEMMs on
// col = [im2col(x[n0, grp]) | im2col(x[n0+1, grp]) | ...]  (K, nb*L), one column block per image:
//   forward          Y (Cog, nb*L)  = w[grp] (Cog, K) @ col,            y[n, grp] = Y's block n
//   backward-input   col            = w[grp]^T @ DY (Cog, nb*L),        dx[n] = col2im(block n)
//   backward-weight  dw[grp]^T (K, Cog) += col @ DY^T,                  transposed into dw
// with K = g.C*kh*kw, L = OH*OW and DY the chunk's dy blocks side by side. nb is chosen so that
// nb*L is about kChunkColumns (wide enough for an efficient GEMM) and every thread gets a chunk.
// A 1x1, stride-1, unpadded conv with nb == 1 uses x[n, grp] as col directly: no copy.
//
// Threads: when there are at least as many chunks as threads, chunks are spread over the
// threads and each runs its GEMMs single-threaded; otherwise chunks run one after another with
// a multi-threaded GEMM. Workspace per thread: col (K * nb*L elements) plus Y/DY (Cog * nb*L),
// plus, for the weight gradient, a Cout*K accumulator -- never the whole batch's im2col.
#pragma once
#include <cstdint>

#include "cpu/im2col.h"

namespace gradflow::cpu {

template <typename T>
void conv2d_forward(int64_t N, int64_t groups, int64_t Cout, const ConvGeom& g, const T* x,
                    const T* w, const T* bias, T* y);  // bias may be null

template <typename T>
void conv2d_backward_input(int64_t N, int64_t groups, int64_t Cout, const ConvGeom& g,
                           const T* dy, const T* w, T* dx);  // dx is overwritten

template <typename T>
void conv2d_backward_weight(int64_t N, int64_t groups, int64_t Cout, const ConvGeom& g,
                            const T* x, const T* dy, T* dw);  // dw is overwritten

// db[o] = sum over n and the L positions of dy (N, Cout, L).
template <typename T>
void channel_sum(int64_t N, int64_t C, int64_t L, const T* dy, T* db);

// y[n, c, :] += b[c] for y (N, C, L).
template <typename T>
void add_channel_bias(int64_t N, int64_t C, int64_t L, const T* b, T* y);

}  // namespace gradflow::cpu
