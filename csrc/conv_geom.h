// The geometry of a 2-D convolution, shared by the CPU kernels (cpu/im2col.h), the CUDA kernels
// (cuda/conv_index.h) and the one validation both bindings run (bind_util.h). Plain C++.
//
// Input (C, H, W) per image and group, kernel (kh, kw), stride (sh, sw), zero padding (ph, pw),
// dilation (dh, dw), output (OH, OW) with OH = (H + 2ph - dh(kh-1) - 1) / sh + 1 (likewise OW)
// or fewer rows/columns (the leading ones: conv_transpose2d with output_padding, see cpu/conv.h).
#pragma once
#include <cstdint>

namespace gradflow {

struct ConvGeom {
  int64_t C, H, W;     // input plane count and size (per group for grouped convs)
  int64_t kh, kw;      // kernel
  int64_t sh, sw;      // stride
  int64_t ph, pw;      // zero padding
  int64_t dh, dw;      // dilation
  int64_t OH, OW;      // output size
};

}  // namespace gradflow
