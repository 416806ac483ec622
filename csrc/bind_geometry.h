// The window geometry of convolution and pooling, validated: stride, padding, dilation,
// kernel and groups against the input's shape. Both bindings run these checks before any
// kernel, so a bad shape raises the same ValueError on every device. Shapes are plain
// integer vectors (the CPU's NumPy arrays and the CUDA module's device arrays alike).
#pragma once
#include <array>
#include <string>
#include <vector>

#include "bind_util.h"
#include "conv_geom.h"
#include "cpu/pool.h"

namespace gradflow::bind {

// ------------------------------------------------------------------------------ convolution
// The checks of the conv entry points of both modules, on plain shapes, so that a bad call
// fails with the same ValueError on the CPU and on CUDA. Pool entry points share the pairs.
using Pair = std::array<int64_t, 2>;

inline std::string pair_str(const Pair& p) { return shape_str({p[0], p[1]}); }

inline void check_pair(const std::string& op, const char* name, const Pair& p, int64_t min) {
  if (p[0] < min || p[1] < min) fail(op, name, " must be >= ", min, ", got ", pair_str(p));
  if (p[0] >= kMaxDim || p[1] >= kMaxDim)
    fail(op, name, " must be below 2^31, got ", pair_str(p));
}

// The window parameters of conv and pooling: stride and dilation >= 1, padding >= 0.
inline void check_window(const std::string& op, Pair stride, Pair padding, Pair dilation) {
  check_pair(op, "stride", stride, 1);
  check_pair(op, "padding", padding, 0);
  check_pair(op, "dilation", dilation, 1);
}

inline void check_groups(const std::string& op, int64_t groups) {
  at_least<int64_t>(op, "groups", groups, 1);
}

// Output size of a strided window: floor((in + 2p - d(k-1) - 1) / s) + 1.
inline int64_t conv_out(int64_t in, int64_t k, int64_t s, int64_t p, int64_t d) {
  return (in + 2 * p - d * (k - 1) - 1) / s + 1;
}

inline ConvGeom conv_geom(const std::string& op, int64_t C, int64_t H, int64_t W, int64_t kh,
                          int64_t kw, Pair stride, Pair padding, Pair dilation) {
  check_window(op, stride, padding, dilation);
  ConvGeom g{C, H, W, kh, kw, stride[0], stride[1], padding[0], padding[1],
             dilation[0], dilation[1], 0, 0};
  const int64_t eh = dilation[0] * (kh - 1) + 1, ew = dilation[1] * (kw - 1) + 1;
  if (eh > H + 2 * padding[0] || ew > W + 2 * padding[1])
    fail(op, "kernel ", shape_str({kh, kw}), " with dilation ", pair_str(dilation),
         " is larger than the padded input ", shape_str({H + 2 * padding[0], W + 2 * padding[1]}));
  g.OH = conv_out(H, kh, stride[0], padding[0], dilation[0]);
  g.OW = conv_out(W, kw, stride[1], padding[1], dilation[1]);
  int64_t ws = C;  // C*kh*kw*OH*OW, each partial product checked (kernel_size is any pair)
  for (const int64_t f : {kh, kw, g.OH, g.OW})
    if (__builtin_mul_overflow(ws, f, &ws) || ws > (int64_t(1) << 40))
      fail(op, "im2col workspace too large");
  return g;
}

// Checks the (checked, 4-D) weight shape w (Cout, Cin/groups, kh, kw) against Cin and groups;
// returns the per-group geometry.
inline ConvGeom conv_check(const std::string& op, int64_t Cin, int64_t H, int64_t W,
                           const Shape& w, Pair stride, Pair padding, Pair dilation,
                           int64_t groups) {
  check_groups(op, groups);
  if (Cin % groups != 0 || w[0] % groups != 0)
    fail(op, "in_channels ", Cin, " and out_channels ", w[0], " must be divisible by groups ",
         groups);
  if (w[1] * groups != Cin)
    fail(op, "weight ", shape_str(w), " expects ", w[1] * groups, " input channels, got ", Cin);
  return conv_geom(op, Cin / groups, H, W, w[2], w[3], stride, padding, dilation);
}

// g with the output size of dy (N, Cout, OH, OW), which may be below g's natural one (the
// leading rows and columns: conv_transpose2d's output_padding, see cpu/conv.h).
inline ConvGeom with_output_of(ConvGeom g, const Shape& dy) {
  g.OH = dy[2];
  g.OW = dy[3];
  return g;
}

// conv2d_backward_input: the geometry of the conv whose output gradient is dy (N, Cout, OH, OW)
// (checked, 4-D) for weight w; OH/OW may be below the natural size (see cpu/conv.h).
inline ConvGeom conv_input_check(const std::string& op, const Shape& dy, const Shape& w,
                                 Pair input_size, Pair stride, Pair padding, Pair dilation,
                                 int64_t groups) {
  check_pair(op, "input_size", input_size, 1);
  check_groups(op, groups);
  int64_t Cin = 0;
  if (__builtin_mul_overflow(w[1], groups, &Cin))
    fail(op, "groups ", groups, " is too large for weight ", shape_str(w));
  const ConvGeom g = conv_check(op, Cin, input_size[0], input_size[1], w, stride, padding,
                                dilation, groups);
  if (dy[1] != w[0] || dy[2] > g.OH || dy[3] > g.OW)
    fail(op, "grad_output ", shape_str(dy), " does not match weight ", shape_str(w),
         " and input size ", pair_str(input_size), " (expected ",
         shape_str({dy[0], w[0], g.OH, g.OW}), ")");
  return with_output_of(g, dy);
}

// conv2d_backward_weight: the geometry of the conv of x (N, Cin, H, W) whose output gradient
// is dy (N, Cout, OH, OW), both checked and 4-D.
inline ConvGeom conv_weight_check(const std::string& op, const Shape& x, const Shape& dy,
                                  Pair kernel_size, Pair stride, Pair padding, Pair dilation,
                                  int64_t groups) {
  check_pair(op, "kernel_size", kernel_size, 1);
  check_groups(op, groups);
  if (x[1] % groups != 0 || dy[1] % groups != 0)
    fail(op, "channels ", x[1], " and ", dy[1], " must be divisible by groups ", groups);
  const ConvGeom g = conv_geom(op, x[1] / groups, x[2], x[3], kernel_size[0], kernel_size[1],
                               stride, padding, dilation);
  if (dy[0] != x[0] || dy[2] > g.OH || dy[3] > g.OW)
    fail(op, "grad_output ", shape_str(dy), " does not match input ", shape_str(x));
  return with_output_of(g, dy);
}

// unfold: the windows of the conv of x (N, C, H, W) (checked, 4-D) with kernel_size, whose im2col
// columns (N, C*kh*kw, OH*OW) must be of valid sizes.
inline ConvGeom unfold_geom(const std::string& op, const Shape& x, Pair kernel_size, Pair stride,
                            Pair padding, Pair dilation) {
  check_pair(op, "kernel_size", kernel_size, 1);
  const ConvGeom g = conv_geom(op, x[1], x[2], x[3], kernel_size[0], kernel_size[1], stride,
                               padding, dilation);
  check_sizes(op, "output", {x[0], g.C * g.kh * g.kw, g.OH * g.OW});
  return g;
}

// fold: the windows of the conv whose im2col columns cols (N, C*kh*kw, L) (checked, 3-D)
// fold back into (N, C, *output_size); L must be their number, the output of valid sizes.
inline ConvGeom fold_geom(const std::string& op, const Shape& cols, Pair output_size,
                          Pair kernel_size, Pair stride, Pair padding, Pair dilation) {
  check_pair(op, "output_size", output_size, 1);
  check_pair(op, "kernel_size", kernel_size, 1);
  const int64_t area = kernel_size[0] * kernel_size[1];  // each factor < 2^31: no overflow
  if (cols[1] % area != 0)
    fail(op, "input ", shape_str(cols), ": dimension 1 must be a multiple of the kernel area ",
         area);
  const ConvGeom g = conv_geom(op, cols[1] / area, output_size[0], output_size[1],
                               kernel_size[0], kernel_size[1], stride, padding, dilation);
  if (cols[2] != g.OH * g.OW)
    fail(op, "input ", shape_str(cols), " has ", cols[2], " blocks, but output size ",
         pair_str(output_size), " has ", g.OH, " * ", g.OW);
  check_sizes(op, "output", {cols[0], g.C, output_size[0], output_size[1]});
  return g;
}

// ------------------------------------------------------------------------------ pooling
// Output size of a pooling window (PyTorch's rule): with ceil_mode the last window must
// start inside the input or its left padding.
inline int64_t pool_out(int64_t in, int64_t k, int64_t s, int64_t p, int64_t d, bool ceil_mode) {
  const int64_t span = in + 2 * p - d * (k - 1) - 1;
  int64_t out = (span + (ceil_mode ? s - 1 : 0)) / s + 1;
  if (span < 0) out = span / s + (span % s != 0 && !ceil_mode ? 0 : 1);  // floor division
  if (ceil_mode && (out - 1) * s >= in + p) --out;
  return out;
}

// The windows of pooling an (N, C, H, W) input of shape x, whose sizes are already checked.
inline cpu::PoolGeom pool_geom(const std::string& op, const Shape& x, Pair kernel, Pair stride,
                        Pair padding, Pair dilation, bool ceil_mode) {
  check_pair(op, "kernel_size", kernel, 1);
  check_window(op, stride, padding, dilation);
  if (2 * padding[0] > kernel[0] || 2 * padding[1] > kernel[1])
    fail(op, "padding ", pair_str(padding), " must be at most half of kernel_size ",
         pair_str(kernel));
  cpu::PoolGeom g{x[0] * x[1], x[2], x[3], 0, 0, kernel[0], kernel[1],
                  stride[0], stride[1], padding[0], padding[1], dilation[0], dilation[1]};
  g.OH = pool_out(g.H, kernel[0], stride[0], padding[0], dilation[0], ceil_mode);
  g.OW = pool_out(g.W, kernel[1], stride[1], padding[1], dilation[1], ceil_mode);
  if (g.OH < 1 || g.OW < 1)
    fail(op, "input ", shape_str(x), " is too small for kernel_size ", pair_str(kernel),
         ": output size ", shape_str({g.OH, g.OW}));
  return g;
}

// The backward of pooling an (N, C, *input_size) input whose output gradient is dy (checked,
// 4-D): the windows of the forward, whose output size dy must have.
inline cpu::PoolGeom pool_backward_geom(const std::string& op, const Shape& dy, Pair input_size,
                                        Pair kernel, Pair stride, Pair padding, Pair dilation,
                                        bool ceil_mode) {
  check_pair(op, "input_size", input_size, 1);
  const cpu::PoolGeom g = pool_geom(op, {dy[0], dy[1], input_size[0], input_size[1]}, kernel,
                                    stride, padding, dilation, ceil_mode);
  if (dy[2] != g.OH || dy[3] != g.OW)
    fail(op, "grad_output ", shape_str(dy), " does not match input size ", pair_str(input_size));
  return g;
}

// The N*C planes of (H, W) input and `out` output of an adaptive pool (or a scatter when
// `in` and `out` are swapped): no window.
inline cpu::PoolGeom plane_geom(const Shape& x, Pair in, Pair out) {
  return cpu::PoolGeom{x[0] * x[1], in[0], in[1], out[0], out[1], 0, 0, 0, 0, 0,
                       0, 0, 0};
}

// (H, W) of an NCHW shape.
inline Pair hw(const Shape& x) { return {x[2], x[3]}; }

// The planes of an adaptive pool of x (N, C, H, W) to `size` (the argument `name`), or, with
// `backward`, of a gradient x of the pool's output back to the input's `size`.
inline cpu::PoolGeom adaptive_geom(const std::string& op, const char* name, const Shape& x,
                                   Pair size, bool backward) {
  check_pair(op, name, size, 1);
  return backward ? plane_geom(x, size, hw(x)) : plane_geom(x, hw(x), size);
}

}  // namespace gradflow::bind
