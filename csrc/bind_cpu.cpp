// gradflow._C: the CPU kernels as Python functions. Each entry point checks dtypes,
// shapes and sizes, raising TypeError/ValueError, then releases the GIL and runs the kernel.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <array>
#include <optional>
#include <utility>

#include "bind_util.h"
#include "cpu/batchnorm.h"
#include "cpu/conv.h"
#include "cpu/elementwise.h"
#include "cpu/gemm.h"
#ifdef GRADFLOW_HAVE_AVX2_KERNELS
#include "cpu/peak_avx2.h"
#endif
#include "cpu/pool.h"
#include "cpu/runtime.h"

namespace py = pybind11;
using namespace gradflow;
using bind::check_array;
using bind::fail;
using bind::shape_str;

namespace {

// ------------------------------------------------------------------------------ gemm
// A matrix as the GEMM kernel sees it: row-major (rows x cols, row stride ld), or, when the
// array is column-major (e.g. x.T of a C-contiguous x), the transpose of a row-major one.
struct Matrix {
  char* data;
  int64_t rows, cols, ld;
  bool trans;  // the array is the transpose of the row-major (cols x rows) matrix at data
};

// Reads the last two axes of `arr`. Either of them must have unit stride; the other stride
// becomes the leading dimension (no copy).
Matrix as_matrix(const std::string& op, const char* name, const py::array& arr) {
  const int nd = static_cast<int>(arr.ndim());
  const int64_t rows = arr.shape(nd - 2), cols = arr.shape(nd - 1);
  const int64_t e = arr.itemsize(), s0 = arr.strides(nd - 2), s1 = arr.strides(nd - 1);
  char* data = static_cast<char*>(const_cast<void*>(arr.data()));
  auto leading = [e](int64_t stride, int64_t other) {
    return stride % e == 0 && stride / e >= std::max<int64_t>(1, other);
  };
  if (rows == 0 || cols == 0) return {data, rows, cols, std::max<int64_t>(1, cols), false};
  if ((cols <= 1 || s1 == e) && (rows <= 1 || leading(s0, cols)))
    return {data, rows, cols, rows <= 1 ? std::max<int64_t>(1, cols) : s0 / e, false};
  if ((rows <= 1 || s0 == e) && (cols <= 1 || leading(s1, rows)))
    return {data, rows, cols, cols <= 1 ? std::max<int64_t>(1, rows) : s1 / e, true};
  std::string strides = "(" + std::to_string(s0) + ", " + std::to_string(s1) + ")";
  fail(op, std::string(name) + " must have unit stride along one of its last two axes, got " +
               "strides " + strides + " bytes for shape " + shape_str(arr));
}

// Byte range [lo, hi) spanned by the elements of a non-empty array.
std::pair<const char*, const char*> byte_span(const py::array& arr) {
  const char* lo = static_cast<const char*>(arr.data());
  const char* hi = lo + arr.itemsize();
  for (py::ssize_t i = 0; i < arr.ndim(); ++i) {
    const int64_t reach = (arr.shape(i) - 1) * arr.strides(i);
    (reach < 0 ? lo : hi) += reach;
  }
  return {lo, hi};
}

bool overlaps(const py::array& x, const py::array& y) {
  if (x.size() == 0 || y.size() == 0) return false;
  const auto [xl, xh] = byte_span(x);
  const auto [yl, yh] = byte_span(y);
  return xl < yh && yl < xh;
}

void check_dtype(const std::string& op, const char* name, const py::array& x,
                 const py::dtype& want) {
  if (!x.dtype().is(want))
    throw py::type_error(op + ": " + name + " must have dtype " + std::string(py::str(want)) +
                         " like a, got " + std::string(py::str(x.dtype())));
}

void check_float_dtype(const std::string& op, const py::array& a) {
  if (!a.dtype().is(py::dtype::of<float>()) && !a.dtype().is(py::dtype::of<double>()))
    throw py::type_error(op + ": a must have dtype float32 or float64, got " +
                         std::string(py::str(a.dtype())));
}

// c = alpha * op(a) @ op(b) + beta * c on 2-D arrays; c is written in place and returned,
// or allocated (beta then ignored) when None.
template <typename T>
py::array gemm_typed(const py::array& a, const py::array& b, std::optional<py::array> c_in,
                     bool trans_a, bool trans_b, double alpha, double beta) {
  const Matrix ma = as_matrix("gemm", "a", a), mb = as_matrix("gemm", "b", b);
  const int64_t m = trans_a ? ma.cols : ma.rows, k = trans_a ? ma.rows : ma.cols;
  const int64_t kb = trans_b ? mb.cols : mb.rows, n = trans_b ? mb.rows : mb.cols;
  if (k != kb)
    fail("gemm", "shapes " + shape_str(a) + (trans_a ? ".T" : "") + " and " + shape_str(b) +
                     (trans_b ? ".T" : "") + " cannot be multiplied");
  py::array c = c_in ? *c_in : py::array(py::array_t<T>({m, n}));
  if (c_in) {
    check_dtype("gemm", "c", c, a.dtype());
    if (c.ndim() != 2 || c.shape(0) != m || c.shape(1) != n)
      fail("gemm", "c must have shape " + shape_str(std::vector<int64_t>{m, n}) + ", got " +
                       shape_str(c));
    if (!c.writeable()) fail("gemm", "c must be writable");
    if (overlaps(c, a) || overlaps(c, b)) fail("gemm", "c must not overlap a or b");
  } else {
    beta = 0.0;
  }
  const Matrix mc = as_matrix("gemm", "c", c);
  const bool ta = trans_a != ma.trans, tb = trans_b != mb.trans;
  const T* pa = reinterpret_cast<const T*>(ma.data);
  const T* pb = reinterpret_cast<const T*>(mb.data);
  T* pc = reinterpret_cast<T*>(mc.data);
  bind::run_nogil("gemm", [&] {
    if (!mc.trans)
      cpu::gemm<T>(ta, tb, m, n, k, T(alpha), pa, ma.ld, pb, mb.ld, T(beta), pc, mc.ld);
    else  // column-major c: compute c^T = op(b)^T @ op(a)^T
      cpu::gemm<T>(!tb, !ta, n, m, k, T(alpha), pb, mb.ld, pa, ma.ld, T(beta), pc, mc.ld);
  }, a, b);
  return c;
}

py::array gemm_any(const py::array& a, const py::array& b, std::optional<py::array> c,
                   bool trans_a, bool trans_b, double alpha, double beta) {
  check_float_dtype("gemm", a);
  check_dtype("gemm", "b", b, a.dtype());
  if (a.ndim() != 2) fail("gemm", "a must be 2-D, got shape " + shape_str(a));
  if (b.ndim() != 2) fail("gemm", "b must be 2-D, got shape " + shape_str(b));
  if (a.dtype().is(py::dtype::of<double>()))
    return gemm_typed<double>(a, b, c, trans_a, trans_b, alpha, beta);
  return gemm_typed<float>(a, b, c, trans_a, trans_b, alpha, beta);
}

// out[i] = a[i] @ b[i] for 3-D a (B, m, k) and b (B, k, n). Each matrix needs unit stride on
// one axis; the batch strides are free (0 for a broadcast operand). Returns a new (B, m, n).
template <typename T>
py::array matmul3d(const py::array& a, const py::array& b) {
  const int64_t batch = a.shape(0);
  const Matrix ma = as_matrix("matmul", "a", a), mb = as_matrix("matmul", "b", b);
  if (b.shape(0) != batch || mb.rows != ma.cols)
    fail("matmul", "shapes " + shape_str(a) + " and " + shape_str(b) + " cannot be multiplied");
  const int64_t m = ma.rows, k = ma.cols, n = mb.cols, e = a.itemsize();
  for (const auto& [x, name] : {std::pair{&a, "a"}, std::pair{&b, "b"}})
    if (x->strides(0) % e != 0)
      fail("matmul", std::string(name) + " has a batch stride that is not a whole element");
  const int64_t sa = a.strides(0) / e, sb = b.strides(0) / e;
  py::array_t<T> out({batch, m, n});
  const T* pa = reinterpret_cast<const T*>(ma.data);
  const T* pb = reinterpret_cast<const T*>(mb.data);
  T* pc = out.mutable_data();
  bind::run_nogil("matmul", [&] {
    // A shared b and row-major a whose matrices follow each other: one (B*m, k) @ (k, n).
    if (batch > 1 && sb == 0 && !ma.trans && sa == m * ma.ld)
      cpu::gemm<T>(false, mb.trans, batch * m, n, k, T(1), pa, ma.ld, pb, mb.ld, T(0), pc, n);
    else
      cpu::gemm_batched<T>(batch, ma.trans, mb.trans, m, n, k, T(1), pa, ma.ld, sa, pb, mb.ld,
                           sb, T(0), pc, n, m * n);
  }, a, b);
  return out;
}

py::array matmul(const py::array& a, const py::array& b) {
  check_float_dtype("matmul", a);
  check_dtype("matmul", "b", b, a.dtype());
  if (a.ndim() != 3) fail("matmul", "a must be 3-D, got shape " + shape_str(a));
  if (b.ndim() != 3) fail("matmul", "b must be 3-D, got shape " + shape_str(b));
  if (a.dtype().is(py::dtype::of<double>())) return matmul3d<double>(a, b);
  return matmul3d<float>(a, b);
}

double fma_peak_gflops(double seconds) {
  if (!(seconds > 0.0 && seconds <= 60.0))
    fail("fma_peak_gflops", "seconds must be in (0, 60], got " + std::to_string(seconds));
#ifdef GRADFLOW_HAVE_AVX2_KERNELS
  if (cpu::cpu_has_avx2_fma()) {
    py::gil_scoped_release nogil;
    return cpu::avx2::fma_peak_gflops(seconds);
  }
#endif
  return 0.0;
}

// ------------------------------------------------------------------------------ elementwise
template <typename T>
py::array erf_typed(const py::array& x) {
  check_array<T>("erf", "input", x);
  py::array_t<T> out(std::vector<py::ssize_t>(x.shape(), x.shape() + x.ndim()));
  const T* px = static_cast<const T*>(x.data());
  T* po = out.mutable_data();
  const int64_t n = x.size();
  {
    py::gil_scoped_release nogil;
    cpu::erf<T>(px, po, n);
  }
  return out;
}

py::array erf_any(const py::array& x) {
  if (x.dtype().is(py::dtype::of<double>())) return erf_typed<double>(x);
  return erf_typed<float>(x);
}


// ------------------------------------------------------------------------------ conv
// Shared by the conv, pool and batchnorm sections: size checks on plain integers.
using Pair = std::array<int64_t, 2>;
constexpr int64_t kMaxDim = int64_t(1) << 31;

std::string pair_str(const Pair& p) {
  return "(" + std::to_string(p[0]) + ", " + std::to_string(p[1]) + ")";
}

void check_pair(const std::string& op, const char* name, const Pair& p, int64_t min) {
  if (p[0] < min || p[1] < min || p[0] >= kMaxDim || p[1] >= kMaxDim)
    fail(op, std::string(name) + " must be >= " + std::to_string(min) + ", got " + pair_str(p));
}

// Every dimension of `a` in [1, 2^31) (the first may be 0: an empty batch), and the element
// count representable.
void check_dims(const std::string& op, const char* name, const py::array& a) {
  int64_t total = 1;
  for (py::ssize_t i = 0; i < a.ndim(); ++i) {
    const int64_t d = a.shape(i);
    if (d < (i == 0 ? 0 : 1) || d >= kMaxDim)
      fail(op, std::string(name) + " has an invalid size: shape " + shape_str(a));
    if (d != 0 && total > (int64_t(1) << 62) / d) fail(op, std::string(name) + " is too large");
    total *= d;
  }
}

bool is_double(const py::array& a) { return a.dtype().is(py::dtype::of<double>()); }

// Output size of a strided window: floor((in + 2p - d(k-1) - 1) / s) + 1.
int64_t conv_out(int64_t in, int64_t k, int64_t s, int64_t p, int64_t d) {
  return (in + 2 * p - d * (k - 1) - 1) / s + 1;
}

cpu::ConvGeom conv_geom(const std::string& op, int64_t C, int64_t H, int64_t W, int64_t kh,
                        int64_t kw, const Pair& stride, const Pair& padding,
                        const Pair& dilation) {
  check_pair(op, "stride", stride, 1);
  check_pair(op, "padding", padding, 0);
  check_pair(op, "dilation", dilation, 1);
  cpu::ConvGeom g{C, H, W, kh, kw, stride[0], stride[1], padding[0], padding[1],
                  dilation[0], dilation[1], 0, 0};
  const int64_t eh = dilation[0] * (kh - 1) + 1, ew = dilation[1] * (kw - 1) + 1;
  if (eh > H + 2 * padding[0] || ew > W + 2 * padding[1])
    fail(op, "kernel (" + std::to_string(kh) + ", " + std::to_string(kw) + ") with dilation " +
                 pair_str(dilation) + " is larger than the padded input (" +
                 std::to_string(H + 2 * padding[0]) + ", " + std::to_string(W + 2 * padding[1]) +
                 ")");
  g.OH = conv_out(H, kh, stride[0], padding[0], dilation[0]);
  g.OW = conv_out(W, kw, stride[1], padding[1], dilation[1]);
  int64_t ws = 0;
  if (__builtin_mul_overflow(C * kh * kw, g.OH * g.OW, &ws) || ws > (int64_t(1) << 40))
    fail(op, "im2col workspace too large");
  return g;
}

// Checks w (Cout, Cin/groups, kh, kw) against Cin and groups; returns the per-group geometry.
cpu::ConvGeom conv_check(const std::string& op, int64_t Cin, int64_t H, int64_t W,
                         const py::array& w, const Pair& stride, const Pair& padding,
                         const Pair& dilation, int64_t groups) {
  check_dims(op, "weight", w);
  if (w.ndim() != 4) fail(op, "weight must be 4-D, got shape " + shape_str(w));
  if (groups < 1) fail(op, "groups must be >= 1, got " + std::to_string(groups));
  if (Cin % groups != 0 || w.shape(0) % groups != 0)
    fail(op, "in_channels " + std::to_string(Cin) + " and out_channels " +
                 std::to_string(w.shape(0)) + " must be divisible by groups " +
                 std::to_string(groups));
  if (w.shape(1) * groups != Cin)
    fail(op, "weight " + shape_str(w) + " expects " + std::to_string(w.shape(1) * groups) +
                 " input channels, got " + std::to_string(Cin));
  return conv_geom(op, Cin / groups, H, W, w.shape(2), w.shape(3), stride, padding, dilation);
}

template <typename T>
void check_bias(const std::string& op, const std::optional<py::array>& bias, int64_t C) {
  if (!bias) return;
  check_array<T>(op, "bias", *bias, 1);
  if (bias->shape(0) != C)
    fail(op, "bias must have shape (" + std::to_string(C) + ",), got " + shape_str(*bias));
}

template <typename T>
const T* ptr_or_null(const std::optional<py::array>& a) {
  return a ? static_cast<const T*>(a->data()) : nullptr;
}

template <typename T>
py::array conv2d_forward_t(const py::array& x, const py::array& w,
                           const std::optional<py::array>& bias, Pair stride, Pair padding,
                           Pair dilation, int64_t groups) {
  const std::string op = "conv2d";
  check_array<T>(op, "input", x, 4);
  check_array<T>(op, "weight", w, 4);
  check_dims(op, "input", x);
  const cpu::ConvGeom g =
      conv_check(op, x.shape(1), x.shape(2), x.shape(3), w, stride, padding, dilation, groups);
  const int64_t N = x.shape(0), Cout = w.shape(0);
  check_bias<T>(op, bias, Cout);
  py::array_t<T> y({N, Cout, g.OH, g.OW});
  const T* px = static_cast<const T*>(x.data());
  const T* pw = static_cast<const T*>(w.data());
  const T* pb = ptr_or_null<T>(bias);
  T* py_ = y.mutable_data();
  bind::run_nogil(
      op, [&] { cpu::conv2d_forward<T>(N, groups, Cout, g, px, pw, pb, py_); }, x, w);
  return y;
}

// dx (N, Cin, H, W) of conv2d(x, w) given dy; also the forward of conv_transpose2d.
template <typename T>
py::array conv2d_backward_input_t(const py::array& dy, const py::array& w, Pair input_size,
                                  Pair stride, Pair padding, Pair dilation, int64_t groups) {
  const std::string op = "conv2d_backward_input";
  check_array<T>(op, "grad_output", dy, 4);
  check_array<T>(op, "weight", w, 4);
  check_dims(op, "grad_output", dy);
  check_pair(op, "input_size", input_size, 1);
  if (groups < 1) fail(op, "groups must be >= 1, got " + std::to_string(groups));
  const int64_t Cin = w.ndim() == 4 ? w.shape(1) * groups : 0;
  const cpu::ConvGeom g = conv_check(op, Cin, input_size[0], input_size[1], w, stride, padding,
                                     dilation, groups);
  const int64_t N = dy.shape(0), Cout = w.shape(0);
  if (dy.shape(1) != Cout || dy.shape(2) > g.OH || dy.shape(3) > g.OW)
    fail(op, "grad_output " + shape_str(dy) + " does not match weight " + shape_str(w) +
                 " and input size " + pair_str(input_size) + " (expected (" + std::to_string(N) +
                 ", " + std::to_string(Cout) + ", " + std::to_string(g.OH) + ", " +
                 std::to_string(g.OW) + "))");
  cpu::ConvGeom gc = g;  // grad_output may cover only the leading rows/columns (see conv.h)
  gc.OH = dy.shape(2);
  gc.OW = dy.shape(3);
  py::array_t<T> dx({N, Cin, input_size[0], input_size[1]});
  const T* pdy = static_cast<const T*>(dy.data());
  const T* pw = static_cast<const T*>(w.data());
  T* pdx = dx.mutable_data();
  bind::run_nogil(
      op, [&] { cpu::conv2d_backward_input<T>(N, groups, Cout, gc, pdy, pw, pdx); },
      dy, w);
  return dx;
}

template <typename T>
py::array conv2d_backward_weight_t(const py::array& x, const py::array& dy, Pair kernel_size,
                                   Pair stride, Pair padding, Pair dilation, int64_t groups) {
  const std::string op = "conv2d_backward_weight";
  check_array<T>(op, "input", x, 4);
  check_array<T>(op, "grad_output", dy, 4);
  check_dims(op, "input", x);
  check_dims(op, "grad_output", dy);
  check_pair(op, "kernel_size", kernel_size, 1);
  if (groups < 1) fail(op, "groups must be >= 1, got " + std::to_string(groups));
  const int64_t N = x.shape(0), Cin = x.shape(1), Cout = dy.shape(1);
  if (Cin % groups != 0 || Cout % groups != 0)
    fail(op, "channels " + std::to_string(Cin) + " and " + std::to_string(Cout) +
                 " must be divisible by groups " + std::to_string(groups));
  const cpu::ConvGeom g = conv_geom(op, Cin / groups, x.shape(2), x.shape(3), kernel_size[0],
                                    kernel_size[1], stride, padding, dilation);
  if (dy.shape(0) != N || dy.shape(2) > g.OH || dy.shape(3) > g.OW)
    fail(op, "grad_output " + shape_str(dy) + " does not match input " + shape_str(x));
  cpu::ConvGeom gc = g;
  gc.OH = dy.shape(2);
  gc.OW = dy.shape(3);
  py::array_t<T> dw({Cout, Cin / groups, kernel_size[0], kernel_size[1]});
  const T* px = static_cast<const T*>(x.data());
  const T* pdy = static_cast<const T*>(dy.data());
  T* pdw = dw.mutable_data();
  bind::run_nogil(
      op, [&] { cpu::conv2d_backward_weight<T>(N, groups, Cout, gc, px, pdy, pdw); },
      x, dy);
  return dw;
}

// (N, C, ...) -> (C,): the sum over every axis but 1 (the bias gradient).
template <typename T>
py::array channel_sum_t(const py::array& dy) {
  const std::string op = "channel_sum";
  check_array<T>(op, "input", dy);
  if (dy.ndim() < 2) fail(op, "input must be at least 2-D, got shape " + shape_str(dy));
  check_dims(op, "input", dy);
  const int64_t N = dy.shape(0), C = dy.shape(1), L = N ? dy.size() / (N * C) : 0;
  py::array_t<T> out({C});
  const T* p = static_cast<const T*>(dy.data());
  T* po = out.mutable_data();
  {
    py::gil_scoped_release nogil;
    cpu::channel_sum<T>(N, C, L, p, po);
  }
  return out;
}

// ------------------------------------------------------------------------------ pool
// Output size of a pooling window (PyTorch's rule): with ceil_mode the last window must
// start inside the input or its left padding.
int64_t pool_out(int64_t in, int64_t k, int64_t s, int64_t p, int64_t d, bool ceil_mode) {
  const int64_t span = in + 2 * p - d * (k - 1) - 1;
  int64_t out = (span + (ceil_mode ? s - 1 : 0)) / s + 1;
  if (span < 0) out = span / s + (span % s != 0 && !ceil_mode ? 0 : 1);  // floor division
  if (ceil_mode && (out - 1) * s >= in + p) --out;
  return out;
}

cpu::PoolGeom pool_geom(const std::string& op, const py::array& x, Pair kernel, Pair stride,
                        Pair padding, Pair dilation, bool ceil_mode) {
  check_dims(op, "input", x);
  check_pair(op, "kernel_size", kernel, 1);
  check_pair(op, "stride", stride, 1);
  check_pair(op, "padding", padding, 0);
  check_pair(op, "dilation", dilation, 1);
  if (2 * padding[0] > kernel[0] || 2 * padding[1] > kernel[1])
    fail(op, "padding " + pair_str(padding) + " must be at most half of kernel_size " +
                 pair_str(kernel));
  cpu::PoolGeom g{x.shape(0) * x.shape(1), x.shape(2), x.shape(3), 0, 0, kernel[0], kernel[1],
                  stride[0], stride[1], padding[0], padding[1], dilation[0], dilation[1]};
  g.OH = pool_out(g.H, kernel[0], stride[0], padding[0], dilation[0], ceil_mode);
  g.OW = pool_out(g.W, kernel[1], stride[1], padding[1], dilation[1], ceil_mode);
  if (g.OH < 1 || g.OW < 1)
    fail(op, "input " + shape_str(x) + " is too small for kernel_size " + pair_str(kernel) +
                 ": output size (" + std::to_string(g.OH) + ", " + std::to_string(g.OW) + ")");
  return g;
}

template <typename T>
py::tuple max_pool2d_t(const py::array& x, Pair kernel, Pair stride, Pair padding,
                       Pair dilation, bool ceil_mode) {
  const std::string op = "max_pool2d";
  check_array<T>(op, "input", x, 4);
  const cpu::PoolGeom g = pool_geom(op, x, kernel, stride, padding, dilation, ceil_mode);
  py::array_t<T> y({x.shape(0), x.shape(1), g.OH, g.OW});
  py::array_t<int64_t> idx({x.shape(0), x.shape(1), g.OH, g.OW});
  const T* px = static_cast<const T*>(x.data());
  T* py_ = y.mutable_data();
  int64_t* pi = idx.mutable_data();
  {
    py::gil_scoped_release nogil;
    cpu::max_pool2d_forward<T>(g, px, py_, pi);
  }
  return py::make_tuple(y, idx);
}

template <typename T>
py::tuple adaptive_max_pool2d_t(const py::array& x, Pair output_size) {
  const std::string op = "adaptive_max_pool2d";
  check_array<T>(op, "input", x, 4);
  check_dims(op, "input", x);
  check_pair(op, "output_size", output_size, 1);
  const cpu::PoolGeom g{x.shape(0) * x.shape(1), x.shape(2), x.shape(3), output_size[0],
                        output_size[1], 0, 0, 0, 0, 0, 0, 0, 0};
  py::array_t<T> y({x.shape(0), x.shape(1), g.OH, g.OW});
  py::array_t<int64_t> idx({x.shape(0), x.shape(1), g.OH, g.OW});
  const T* px = static_cast<const T*>(x.data());
  T* py_ = y.mutable_data();
  int64_t* pi = idx.mutable_data();
  {
    py::gil_scoped_release nogil;
    cpu::adaptive_max_pool2d_forward<T>(g, px, py_, pi);
  }
  return py::make_tuple(y, idx);
}

// Checks values (N, C, h, w) and int64 indices of the same shape, each index in [0, H*W).
template <typename T>
cpu::PoolGeom scatter_geom(const std::string& op, const py::array& v, const py::array& idx,
                           Pair size) {
  check_array<T>(op, "input", v, 4);
  check_array<int64_t>(op, "indices", idx, 4);
  check_dims(op, "input", v);
  check_pair(op, "output_size", size, 1);
  for (int i = 0; i < 4; ++i)
    if (idx.shape(i) != v.shape(i))
      fail(op, "indices " + shape_str(idx) + " must have the shape of input " + shape_str(v));
  const int64_t HW = size[0] * size[1];
  const int64_t* pi = static_cast<const int64_t*>(idx.data());
  for (int64_t i = 0; i < idx.size(); ++i)
    if (pi[i] < 0 || pi[i] >= HW)
      fail(op, "index " + std::to_string(pi[i]) + " is out of range for output size " +
                   pair_str(size));
  return cpu::PoolGeom{v.shape(0) * v.shape(1), size[0], size[1], v.shape(2), v.shape(3),
                       0, 0, 0, 0, 0, 0, 0, 0};
}

// Max-pool backward: dx (N, C, H, W) with dx[idx] += dy.
template <typename T>
py::array max_pool2d_backward_t(const py::array& dy, const py::array& idx, Pair input_size) {
  const cpu::PoolGeom g = scatter_geom<T>("max_pool2d_backward", dy, idx, input_size);
  py::array_t<T> dx({dy.shape(0), dy.shape(1), input_size[0], input_size[1]});
  const T* pdy = static_cast<const T*>(dy.data());
  const int64_t* pi = static_cast<const int64_t*>(idx.data());
  T* pdx = dx.mutable_data();
  {
    py::gil_scoped_release nogil;
    cpu::index_scatter_add<T>(g, pdy, pi, pdx);
  }
  return dx;
}

template <typename T>
py::array max_unpool2d_t(const py::array& x, const py::array& idx, Pair output_size) {
  const cpu::PoolGeom g = scatter_geom<T>("max_unpool2d", x, idx, output_size);
  py::array_t<T> y({x.shape(0), x.shape(1), output_size[0], output_size[1]});
  const T* px = static_cast<const T*>(x.data());
  const int64_t* pi = static_cast<const int64_t*>(idx.data());
  T* py_ = y.mutable_data();
  {
    py::gil_scoped_release nogil;
    cpu::index_scatter<T>(g, px, pi, py_);
  }
  return y;
}

template <typename T>
py::array avg_pool2d_t(const py::array& x, Pair kernel, Pair stride, Pair padding,
                       bool ceil_mode, bool count_include_pad, int64_t divisor_override) {
  const std::string op = "avg_pool2d";
  check_array<T>(op, "input", x, 4);
  if (divisor_override < 0) fail(op, "divisor_override must be positive");
  const cpu::PoolGeom g = pool_geom(op, x, kernel, stride, padding, {1, 1}, ceil_mode);
  py::array_t<T> y({x.shape(0), x.shape(1), g.OH, g.OW});
  const T* px = static_cast<const T*>(x.data());
  T* py_ = y.mutable_data();
  {
    py::gil_scoped_release nogil;
    cpu::avg_pool2d_forward<T>(g, count_include_pad, divisor_override, px, py_);
  }
  return y;
}

template <typename T>
py::array avg_pool2d_backward_t(const py::array& dy, Pair input_size, Pair kernel, Pair stride,
                                Pair padding, bool ceil_mode, bool count_include_pad,
                                int64_t divisor_override) {
  const std::string op = "avg_pool2d_backward";
  check_array<T>(op, "grad_output", dy, 4);
  check_dims(op, "grad_output", dy);
  check_pair(op, "input_size", input_size, 1);
  if (divisor_override < 0) fail(op, "divisor_override must be positive");
  py::array_t<T> dx({dy.shape(0), dy.shape(1), input_size[0], input_size[1]});
  const cpu::PoolGeom g = pool_geom(op, dx, kernel, stride, padding, {1, 1}, ceil_mode);
  if (dy.shape(2) != g.OH || dy.shape(3) != g.OW)
    fail(op, "grad_output " + shape_str(dy) + " does not match input size " +
                 pair_str(input_size));
  const T* pdy = static_cast<const T*>(dy.data());
  T* pdx = dx.mutable_data();
  {
    py::gil_scoped_release nogil;
    cpu::avg_pool2d_backward<T>(g, count_include_pad, divisor_override, pdy, pdx);
  }
  return dx;
}

template <typename T>
py::array adaptive_avg_pool2d_t(const py::array& x, Pair output_size) {
  const std::string op = "adaptive_avg_pool2d";
  check_array<T>(op, "input", x, 4);
  check_dims(op, "input", x);
  check_pair(op, "output_size", output_size, 1);
  const cpu::PoolGeom g{x.shape(0) * x.shape(1), x.shape(2), x.shape(3), output_size[0],
                        output_size[1], 0, 0, 0, 0, 0, 0, 0, 0};
  py::array_t<T> y({x.shape(0), x.shape(1), g.OH, g.OW});
  const T* px = static_cast<const T*>(x.data());
  T* py_ = y.mutable_data();
  {
    py::gil_scoped_release nogil;
    cpu::adaptive_avg_pool2d_forward<T>(g, px, py_);
  }
  return y;
}

template <typename T>
py::array adaptive_avg_pool2d_backward_t(const py::array& dy, Pair input_size) {
  const std::string op = "adaptive_avg_pool2d_backward";
  check_array<T>(op, "grad_output", dy, 4);
  check_dims(op, "grad_output", dy);
  check_pair(op, "input_size", input_size, 1);
  const cpu::PoolGeom g{dy.shape(0) * dy.shape(1), input_size[0], input_size[1], dy.shape(2),
                        dy.shape(3), 0, 0, 0, 0, 0, 0, 0, 0};
  py::array_t<T> dx({dy.shape(0), dy.shape(1), input_size[0], input_size[1]});
  const T* pdy = static_cast<const T*>(dy.data());
  T* pdx = dx.mutable_data();
  {
    py::gil_scoped_release nogil;
    cpu::adaptive_avg_pool2d_backward<T>(g, pdy, pdx);
  }
  return dx;
}

// ------------------------------------------------------------------------------ batchnorm
template <typename T>
void check_channel_vec(const std::string& op, const char* name,
                       const std::optional<py::array>& v, int64_t C) {
  if (!v) return;
  check_array<T>(op, name, *v, 1);
  if (v->shape(0) != C)
    fail(op, std::string(name) + " must have shape (" + std::to_string(C) + ",), got " +
                 shape_str(*v));
}

template <typename T>
py::tuple batch_norm_forward_train_t(const py::array& x, const std::optional<py::array>& w,
                                     const std::optional<py::array>& b, double eps) {
  const std::string op = "batch_norm";
  check_array<T>(op, "input", x, 3);
  check_dims(op, "input", x);
  const int64_t N = x.shape(0), C = x.shape(1), L = x.shape(2);
  if (N * L < 1) fail(op, "expected at least 1 value per channel, got input " + shape_str(x));
  if (!(eps >= 0)) fail(op, "eps must be >= 0");
  check_channel_vec<T>(op, "weight", w, C);
  check_channel_vec<T>(op, "bias", b, C);
  py::array_t<T> y({N, C, L}), mean({C}), var({C}), invstd({C});
  const T* px = static_cast<const T*>(x.data());
  const T* pw = ptr_or_null<T>(w);
  const T* pb = ptr_or_null<T>(b);
  T *py_ = y.mutable_data(), *pm = mean.mutable_data(), *pv = var.mutable_data(),
    *pi = invstd.mutable_data();
  bind::run_nogil(op, [&] {
    cpu::batch_norm_forward_train<T>(N, C, L, px, pw, pb, static_cast<T>(eps), py_, pm, pv, pi);
  }, x);
  return py::make_tuple(y, mean, var, invstd);
}

template <typename T>
py::array batch_norm_apply_t(const py::array& x, const py::array& mean, const py::array& invstd,
                             const std::optional<py::array>& w,
                             const std::optional<py::array>& b) {
  const std::string op = "batch_norm";
  check_array<T>(op, "input", x, 3);
  check_dims(op, "input", x);
  const int64_t N = x.shape(0), C = x.shape(1), L = x.shape(2);
  check_channel_vec<T>(op, "mean", mean, C);
  check_channel_vec<T>(op, "invstd", invstd, C);
  check_channel_vec<T>(op, "weight", w, C);
  check_channel_vec<T>(op, "bias", b, C);
  py::array_t<T> y({N, C, L});
  const T* px = static_cast<const T*>(x.data());
  const T* pm = static_cast<const T*>(mean.data());
  const T* pi = static_cast<const T*>(invstd.data());
  const T* pw = ptr_or_null<T>(w);
  const T* pb = ptr_or_null<T>(b);
  T* py_ = y.mutable_data();
  {
    py::gil_scoped_release nogil;
    cpu::batch_norm_apply<T>(N, C, L, px, pm, pi, pw, pb, py_);
  }
  return y;
}

template <typename T>
py::tuple batch_norm_backward_t(const py::array& x, const py::array& dy, const py::array& mean,
                                const py::array& invstd, const std::optional<py::array>& w,
                                bool training, std::array<bool, 3> needs) {
  const std::string op = "batch_norm_backward";
  check_array<T>(op, "input", x, 3);
  check_array<T>(op, "grad_output", dy, 3);
  check_dims(op, "input", x);
  const int64_t N = x.shape(0), C = x.shape(1), L = x.shape(2);
  for (int i = 0; i < 3; ++i)
    if (dy.shape(i) != x.shape(i))
      fail(op, "grad_output " + shape_str(dy) + " must have the shape of input " + shape_str(x));
  check_channel_vec<T>(op, "mean", mean, C);
  check_channel_vec<T>(op, "invstd", invstd, C);
  check_channel_vec<T>(op, "weight", w, C);
  py::object dx = py::none(), dw = py::none(), db = py::none();
  T *pdx = nullptr, *pdw = nullptr, *pdb = nullptr;
  if (needs[0]) {
    py::array_t<T> a({N, C, L});
    pdx = a.mutable_data();
    dx = a;
  }
  if (needs[1]) {
    py::array_t<T> a({C});
    pdw = a.mutable_data();
    dw = a;
  }
  if (needs[2]) {
    py::array_t<T> a({C});
    pdb = a.mutable_data();
    db = a;
  }
  const T* px = static_cast<const T*>(x.data());
  const T* pdy = static_cast<const T*>(dy.data());
  const T* pm = static_cast<const T*>(mean.data());
  const T* pi = static_cast<const T*>(invstd.data());
  const T* pw = ptr_or_null<T>(w);
  bind::run_nogil(op, [&] {
    cpu::batch_norm_backward<T>(N, C, L, px, pdy, pm, pi, pw, training, pdx, pdw, pdb);
  }, x);
  return py::make_tuple(dx, dw, db);
}

}  // namespace

PYBIND11_MODULE(_C, m) {
  m.doc() = "gradflow CPU kernels";
  cpu::install_fork_handler();

  // ---- runtime
  m.def("set_num_threads", [](int n) {
    if (n < 1) throw py::value_error("set_num_threads: n must be >= 1, got " + std::to_string(n));
    cpu::set_num_threads(n);
  });
  m.def("get_num_threads", &cpu::get_num_threads);
  m.def("openmp_enabled", &cpu::openmp_enabled);
  m.def("simd_level", &cpu::simd_level);
  m.def("cpu_has_avx2_fma", &cpu::cpu_has_avx2_fma);
  m.def("force_portable_simd", &cpu::force_portable_simd, py::arg("on"));
  m.attr("compiler") = GRADFLOW_COMPILER;

  // ---- elementwise
  m.def("erf", &erf_any, py::arg("x"), "Elementwise erf of a C-contiguous float array.");

  // ---- gemm
  m.def("gemm", &gemm_any, py::arg("a"), py::arg("b"), py::arg("c") = py::none(),
        py::arg("trans_a") = false, py::arg("trans_b") = false, py::arg("alpha") = 1.0,
        py::arg("beta") = 0.0,
        "c = alpha * op(a) @ op(b) + beta * c for 2-D float arrays with unit stride on one "
        "axis (op = transpose when trans_*). Writes c in place and returns it; c=None "
        "allocates a new array (beta ignored).");
  m.def("matmul", &matmul, py::arg("a"), py::arg("b"),
        "Batched product of (B, m, k) and (B, k, n) float arrays, each matrix with unit stride "
        "on one axis; batch strides are free (0 broadcasts).");
  m.def("fma_peak_gflops", &fma_peak_gflops, py::arg("seconds") = 0.2,
        "Measured float32 FMA peak of one core in GFLOP/s (0 without AVX2+FMA).");

  // ---- conv
  // Arrays are C-contiguous float32/float64 NCHW; (h, w) pairs are tuples of two ints.
  m.def("conv2d_forward",
        [](const py::array& x, const py::array& w, const std::optional<py::array>& b, Pair s,
           Pair p, Pair d, int64_t g) {
          return is_double(x) ? conv2d_forward_t<double>(x, w, b, s, p, d, g)
                              : conv2d_forward_t<float>(x, w, b, s, p, d, g);
        },
        py::arg("input"), py::arg("weight"), py::arg("bias"), py::arg("stride"),
        py::arg("padding"), py::arg("dilation"), py::arg("groups"),
        "y = conv2d(input, weight) + bias (im2col + GEMM).");
  m.def("conv2d_backward_input",
        [](const py::array& dy, const py::array& w, Pair in, Pair s, Pair p, Pair d, int64_t g) {
          return is_double(dy) ? conv2d_backward_input_t<double>(dy, w, in, s, p, d, g)
                               : conv2d_backward_input_t<float>(dy, w, in, s, p, d, g);
        },
        py::arg("grad_output"), py::arg("weight"), py::arg("input_size"), py::arg("stride"),
        py::arg("padding"), py::arg("dilation"), py::arg("groups"),
        "Gradient of conv2d w.r.t. its input (= conv_transpose2d forward).");
  m.def("conv2d_backward_weight",
        [](const py::array& x, const py::array& dy, Pair k, Pair s, Pair p, Pair d, int64_t g) {
          return is_double(x) ? conv2d_backward_weight_t<double>(x, dy, k, s, p, d, g)
                              : conv2d_backward_weight_t<float>(x, dy, k, s, p, d, g);
        },
        py::arg("input"), py::arg("grad_output"), py::arg("kernel_size"), py::arg("stride"),
        py::arg("padding"), py::arg("dilation"), py::arg("groups"),
        "Gradient of conv2d w.r.t. its weight.");
  m.def("set_conv_workspace_bytes", [](int64_t bytes) {
    if (bytes < 1)
      throw py::value_error("set_conv_workspace_bytes: bytes must be >= 1, got " +
                            std::to_string(bytes));
    cpu::set_conv_workspace_bytes(bytes);
  }, py::arg("bytes"),
        "Cap on one convolution call's im2col workspace, all threads together (default "
        "256 MiB); larger images are processed in runs of output positions.");
  m.def("conv_workspace_bytes", &cpu::conv_workspace_bytes);
  m.def("channel_sum", [](const py::array& x) {
          return is_double(x) ? channel_sum_t<double>(x) : channel_sum_t<float>(x);
        }, py::arg("input"),
        "Sum of an (N, C, ...) array over every axis but 1.");

  // ---- pool
  m.def("max_pool2d", [](const py::array& x, Pair k, Pair s, Pair p, Pair d, bool c) {
          return is_double(x) ? max_pool2d_t<double>(x, k, s, p, d, c) : max_pool2d_t<float>(x, k, s, p, d, c);
        }, py::arg("input"), py::arg("kernel_size"),
        py::arg("stride"), py::arg("padding"), py::arg("dilation"), py::arg("ceil_mode"),
        "(values, flat h*W+w indices) of a 2-D max pool.");
  m.def("adaptive_max_pool2d", [](const py::array& x, Pair o) {
          return is_double(x) ? adaptive_max_pool2d_t<double>(x, o) : adaptive_max_pool2d_t<float>(x, o);
        }, py::arg("input"),
        py::arg("output_size"));
  m.def("max_pool2d_backward", [](const py::array& x, const py::array& i, Pair o) {
          return is_double(x) ? max_pool2d_backward_t<double>(x, i, o) : max_pool2d_backward_t<float>(x, i, o);
        },
        py::arg("grad_output"), py::arg("indices"), py::arg("input_size"),
        "dx[indices] += grad_output per plane (max pools' backward).");
  m.def("max_unpool2d", [](const py::array& x, const py::array& i, Pair o) {
          return is_double(x) ? max_unpool2d_t<double>(x, i, o) : max_unpool2d_t<float>(x, i, o);
        }, py::arg("input"), py::arg("indices"),
        py::arg("output_size"));
  m.def("avg_pool2d", [](const py::array& x, Pair k, Pair s, Pair p, bool c, bool inc, int64_t div) {
          return is_double(x) ? avg_pool2d_t<double>(x, k, s, p, c, inc, div) : avg_pool2d_t<float>(x, k, s, p, c, inc, div);
        }, py::arg("input"), py::arg("kernel_size"),
        py::arg("stride"), py::arg("padding"), py::arg("ceil_mode"),
        py::arg("count_include_pad"), py::arg("divisor_override"));
  m.def("avg_pool2d_backward", [](const py::array& x, Pair in, Pair k, Pair s, Pair p, bool c, bool inc, int64_t div) {
          return is_double(x) ? avg_pool2d_backward_t<double>(x, in, k, s, p, c, inc, div) : avg_pool2d_backward_t<float>(x, in, k, s, p, c, inc, div);
        },
        py::arg("grad_output"), py::arg("input_size"), py::arg("kernel_size"), py::arg("stride"),
        py::arg("padding"), py::arg("ceil_mode"), py::arg("count_include_pad"),
        py::arg("divisor_override"));
  m.def("adaptive_avg_pool2d", [](const py::array& x, Pair o) {
          return is_double(x) ? adaptive_avg_pool2d_t<double>(x, o) : adaptive_avg_pool2d_t<float>(x, o);
        }, py::arg("input"),
        py::arg("output_size"));
  m.def("adaptive_avg_pool2d_backward", [](const py::array& x, Pair o) {
          return is_double(x) ? adaptive_avg_pool2d_backward_t<double>(x, o) : adaptive_avg_pool2d_backward_t<float>(x, o);
        },
        py::arg("grad_output"), py::arg("input_size"));

  // ---- batchnorm
  // x is (N, C, L); weight/bias/mean/invstd are (C,) or None.
  m.def("batch_norm_forward_train", [](const py::array& x, const std::optional<py::array>& w, const std::optional<py::array>& b, double eps) {
          return is_double(x) ? batch_norm_forward_train_t<double>(x, w, b, eps) : batch_norm_forward_train_t<float>(x, w, b, eps);
        },
        py::arg("input"), py::arg("weight"), py::arg("bias"), py::arg("eps"),
        "(y, mean, biased var, invstd) with batch statistics.");
  m.def("batch_norm_apply", [](const py::array& x, const py::array& m, const py::array& i, const std::optional<py::array>& w, const std::optional<py::array>& b) {
          return is_double(x) ? batch_norm_apply_t<double>(x, m, i, w, b) : batch_norm_apply_t<float>(x, m, i, w, b);
        }, py::arg("input"),
        py::arg("mean"), py::arg("invstd"), py::arg("weight"), py::arg("bias"));
  m.def("batch_norm_backward", [](const py::array& x, const py::array& dy, const py::array& m, const py::array& i, const std::optional<py::array>& w, bool t, std::array<bool, 3> n) {
          return is_double(x) ? batch_norm_backward_t<double>(x, dy, m, i, w, t, n) : batch_norm_backward_t<float>(x, dy, m, i, w, t, n);
        }, py::arg("input"),
        py::arg("grad_output"), py::arg("mean"), py::arg("invstd"), py::arg("weight"),
        py::arg("training"), py::arg("needs_grad"), "(dx, dweight, dbias), None where not needed.");
}
