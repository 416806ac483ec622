// im2col / col2im for one image of a 2-D convolution (NCHW, row-major, C-contiguous).
//
// Geometry: input (C, H, W), kernel (kh, kw), stride (sh, sw), zero padding (ph, pw),
// dilation (dh, dw), output (OH, OW) with OH = (H + 2ph - dh(kh-1) - 1) / sh + 1 (likewise OW).
//
// im2col writes col (C*kh*kw, OH*OW), rows `ld` >= OH*OW elements apart (so several images can
// fill side-by-side column blocks of one wider matrix):
//   col[(c*kh + i)*kw + j, oh*OW + ow] = x[c, oh*sh - ph + i*dh, ow*sw - pw + j*dw]
// with 0 where the input index falls in the padding. col2im is its adjoint: it ADDS every col
// entry back to the input pixel it was read from (pixels in the padding are dropped), so
// x must be zeroed (or hold a value to accumulate onto) beforehand.
#pragma once
#include <cstdint>

namespace gradflow::cpu {

struct ConvGeom {
  int64_t C, H, W;     // input plane count and size (per group for grouped convs)
  int64_t kh, kw;      // kernel
  int64_t sh, sw;      // stride
  int64_t ph, pw;      // zero padding
  int64_t dh, dw;      // dilation
  int64_t OH, OW;      // output size
};

template <typename T>
void im2col(const ConvGeom& g, const T* x, T* col, int64_t ld);

template <typename T>
void col2im(const ConvGeom& g, const T* col, int64_t ld, T* x);

}  // namespace gradflow::cpu
