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
// Images are processed in chunks; per chunk and group the three products are GEMMs on
// col = [im2col(x[n0, grp]) | im2col(x[n0+1, grp]) | ...]  (K, nb*lc), one column block per image:
//   forward          Y (Cog, nb*lc) = w[grp] (Cog, K) @ col,            y[n, grp] = Y's block n
//   backward-input   col            = w[grp]^T @ DY (Cog, nb*lc),       dx[n] += col2im(block n)
//   backward-weight  dw[grp]^T (K, Cog) += col @ DY^T,                  transposed into dw
// with K = g.C*kh*kw, L = OH*OW and DY the chunk's dy blocks side by side. A chunk is nb whole
// images (lc = L), nb chosen so that nb*L is about kChunkColumns (wide enough for an efficient
// GEMM); or, when one image's columns would not fit the workspace cap (conv_workspace_bytes(),
// all threads together), a run of lc < L output positions of one image.
// A 1x1, stride-1, unpadded conv with nb == 1 uses x[n, grp] as col directly: no copy.
// backward-weight of an ungrouped conv whose stride s > 1 divides its kernel into more than one
// tap per phase (at its natural output size, whole images per chunk) takes flat columns instead:
// each image's s*s phases gathered, zero-padded, (OH + kh/s - 1) x (OW + kw/s - 1) each, and
// each col row one contiguous copy of OH*(OW + kw/s - 1) elements of a phase, its kw/s - 1
// extra columns per row garbage that zero columns in the DY blocks cancel (cheaper than the
// strided im2col's short rows); its rows come in the phases' tap order, put back in dw's.
//
// Direct path (AVX2 or AVX-512, float32): an undilated, ungrouped conv whose stride s (1, or the
// same both ways) divides its kernel into more than one tap, at its natural output size, skips
// im2col. The forward is the stride-1 correlation of the image's s*s phases, stacked as channels
// (space to depth), with (kh/s, kw/s) taps; the input gradient is, per phase (rh, rw) of dx, the
// stride-1 correlation of dy, zero-padded once, with the taps (s*i + rh, s*j + rw) of the kernel
// flipped and its channels swapped, scattered into dx (for s = 1, the correlation of dy with the
// flipped kernel, straight into dx). Each image is copied once into a zero-padded buffer, and a
// register-tiled micro-kernel (cpu/conv_direct.h) computes 4 output channels x up to 3 vectors
// of 8 positions (AVX2) or 6 of 16 (AVX-512) per tile, straight from it. The vectors are whole
// output rows when the output width is a multiple of the vector width; otherwise a flat grid over
// the padded rows (Wp = OW + kw - 1 positions each, rounded up to whole vectors) whose garbage
// columns are dropped. A last block of fewer than 4 channels runs with zero weights. The path
// runs when at least half of the channels of its blocks and half of its grid's positions are real
// outputs, and a flat grid only up to 288 taps C*kh*kw (576 on AVX-512; beyond, its image falls
// out of cache and the GEMM wins). Threads take even shares of the (image, block of 4 channels)
// pairs. backward-weight takes the forward's conditions and at most 288 taps (576 at stride 1 on
// AVX-512), as the weight gradient of the forward's stride-1 correlation of phases: runs of
// images are gathered at once (and dy laid out as a flat grid, or filled up to whole blocks of 4
// channels with zero planes) under the workspace cap, and a tile sums 4 output channels x 3 taps
// (6) over every position of the run, the threads sharing out the (channel block, tap group)
// pairs.
//
// Threads: when the batch divides evenly among the threads (N a multiple of the thread count,
// or at least 4 images per thread) and images are not split, thread t takes the images
// [N*t/T, N*(t+1)/T) in chunks of equal size and runs its GEMMs single-threaded; otherwise
// chunks run one after another with a multi-threaded GEMM. Workspace: col (K * nb*lc elements)
// plus Y/DY (Cog * nb*lc) per thread, under the cap; the weight gradient adds a Cout*K
// accumulator per thread. All of it is allocated before any thread starts; a failed
// allocation throws OutOfMemory (out_of_memory.h).
#pragma once
#include <atomic>
#include <cstdint>

#include "cpu/im2col.h"

namespace gradflow::cpu {

#include "conv_entry_points.h"

}  // namespace gradflow::cpu
