// im2col / col2im for one image of a 2-D convolution (NCHW, row-major, C-contiguous).
//
// Geometry: input (C, H, W), kernel (kh, kw), stride (sh, sw), zero padding (ph, pw),
// dilation (dh, dw), output (OH, OW) with OH = (H + 2ph - dh(kh-1) - 1) / sh + 1 (likewise OW).
//
// im2col writes the columns l = oh*OW + ow in [l0, l0 + n) of col (C*kh*kw, OH*OW) -- all of
// them when l0 = 0 and n = OH*OW -- into a matrix whose rows are `ld` >= n elements apart (so
// several images can fill side-by-side column blocks of one wider matrix):
//   col[(c*kh + i)*kw + j, l - l0] = x[c, oh*sh - ph + i*dh, ow*sw - pw + j*dw]
// with 0 where the input index falls in the padding. col2im is its adjoint over the same
// columns: it ADDS every col entry back to the input pixel it was read from (pixels in the
// padding are dropped), so x must be zeroed (or hold a value to accumulate onto) beforehand.
#pragma once
#include <cstdint>

#include "conv_geom.h"

namespace gradflow::cpu {

using ::gradflow::ConvGeom;  // conv_geom.h

template <typename T>
void im2col(const ConvGeom& g, const T* x, int64_t l0, int64_t n, T* col, int64_t ld);

template <typename T>
void col2im(const ConvGeom& g, const T* col, int64_t l0, int64_t n, int64_t ld, T* x);

// F.unfold and F.fold over a batch of N images x (N, C, H, W) and their columns
// cols (N, C*kh*kw, L), L = OH*OW, image n's (C*kh*kw, L) block after the previous one:
// unfold writes every block with im2col; fold overwrites x with col2im of each block (so
// entries read by several windows get the sum of their columns). Threads split the images.
template <typename T>
void unfold(int64_t N, const ConvGeom& g, const T* x, T* cols);

template <typename T>
void fold(int64_t N, const ConvGeom& g, const T* cols, T* x);

}  // namespace gradflow::cpu
