// gradflow._C: the CPU kernels as Python functions. Each entry point checks dtypes, shapes
// and sizes (bind_util.h), raising TypeError/ValueError, then runs the kernel without the GIL.
// Entry points on float arrays are templates on the float type, bound with DEF.
#include <pybind11/stl.h>

#include <array>
#include <utility>

#include "bind_geometry.h"
#include "bind_util.h"
#include "cpu/batchnorm.h"
#include "cpu/conv.h"
#include "cpu/elementwise.h"
#include "cpu/gemm.h"
#include "cpu/pool.h"
#include "cpu/runtime.h"

namespace py = pybind11;
using namespace gradflow;
using namespace pybind11::literals;
using namespace gradflow::bind;  // Arg, Out, computed, fail, the geometry checks, ...

namespace {

// ------------------------------------------------------------------------------ gemm
// a of dtype float32 or float64, b of a's dtype, both `ndim`-D: gemm's and matmul's operands.
void check_operands(const std::string& op, const py::array& a, const py::array& b, int ndim) {
  check_dtype(op, "a", a.dtype(), {py::dtype::of<float>(), py::dtype::of<double>()});
  check_dtype(op, "b", b.dtype(), {a.dtype()}, " like a");
  check_rank(op, "a", a, ndim);
  check_rank(op, "b", b, ndim);
}

template <typename T>
py::array gemm(const py::array& a, const py::array& b, OptArray c_in, bool trans_a,
               bool trans_b, double alpha, double beta) {
  const std::string op = "gemm";
  check_operands(op, a, b, 2);
  const Matrix<T> ma = as_matrix<T>(op, "a", a).op(trans_a);
  const Matrix<T> mb = as_matrix<T>(op, "b", b).op(trans_b);
  if (ma.cols != mb.rows)
    fail(op, "shapes ", shape_str(a), trans_a ? ".T" : "", " and ", shape_str(b),
         trans_b ? ".T" : "", " cannot be multiplied");
  if (c_in) {
    const py::array& c = *c_in;
    check_dtype(op, "c", c.dtype(), {a.dtype()}, " like a");
    if (c.ndim() != 2 || c.shape(0) != ma.rows || c.shape(1) != mb.cols)
      fail(op, "c must have shape ", shape_str({ma.rows, mb.cols}), ", got ", shape_str(c));
    if (!c.writeable()) fail(op, "c must be writable");
    if (overlaps(c, a) || overlaps(c, b)) fail(op, "c must not overlap a or b");
  }
  const py::array c = c_in ? *c_in : Out<T>(op, {ma.rows, mb.cols}).array;
  const Matrix<T> mc = as_matrix<T>(op, "c", c);
  run_nogil(op, [&] { cpu::gemm(ma, mb, mc, T(alpha), c_in ? T(beta) : T(0)); }, a, b);
  return c;
}

template <typename T>
py::array matmul(const py::array& a, const py::array& b) {
  const std::string op = "matmul";
  check_operands(op, a, b, 3);
  const Matrix<T> ma = as_matrix<T>(op, "a", a), mb = as_matrix<T>(op, "b", b);
  if (b.shape(0) != a.shape(0) || mb.rows != ma.cols)
    fail(op, "shapes ", shape_str(a), " and ", shape_str(b), " cannot be multiplied");
  const int64_t sa = batch_stride(op, "a", a), sb = batch_stride(op, "b", b);
  return computed<T>(op, {a.shape(0), ma.rows, mb.cols}, [&](T* out) {
    cpu::gemm_batched<T>(a.shape(0), ma, sa, mb, sb, out);
  }, a, b);
}

// ------------------------------------------------------------------------------ elementwise
// The native kernels by name: the names are rows of gradflow/op_table.py's UNARY and BINARY
// (tests/test_op_table.py checks), exported as _C.unary_ops and _C.binary_ops.
constexpr std::pair<const char*, cpu::UnaryOp> kUnaryOps[] = {{"erf", cpu::UnaryOp::erf},
                                                              {"relu", cpu::UnaryOp::relu}};
constexpr std::pair<const char*, cpu::BinaryOp> kBinaryOps[] = {
    {"add", cpu::BinaryOp::add}, {"sub", cpu::BinaryOp::sub},
    {"mul", cpu::BinaryOp::mul}, {"div", cpu::BinaryOp::div}};

cpu::BinaryOp binary_op(const std::string& name) {
  for (const auto& [n, op] : kBinaryOps)
    if (name == n) return op;
  fail("binary", "no native kernel named '", name, "'");
}

template <typename T>
py::array unary(const py::array& x, const char* name, cpu::UnaryOp op) {
  const Arg<T> in(name, "input", x, -1, Sizes::any);
  return computed<T>(name, in.shape(), [&](T* y) { cpu::unary(op, in.data(), y, in.size()); }, x);
}

template <typename T>
py::array binary(const py::array& a, const std::string& name, const py::array& b,
                 const OptArray& out, int64_t inner, bool swap) {
  const cpu::BinaryOp op = binary_op(name);
  const Arg<T> x(name, "a", a, -1, Sizes::any), y(name, "b", b, -1, Sizes::any);
  const int64_t n = x.size(), mid = y.size();
  at_least<int64_t>(name, "inner", inner, 1);
  if (mid < 1 || (n > 0 && (inner > n / mid || n % (mid * inner) != 0)))
    fail(name, "b ", shape_str(b), " does not repeat evenly over a ", shape_str(a),
         " with inner = ", inner);
  auto kernel = [&](T* dst) { cpu::binary<T>(op, swap, x.data(), y.data(), dst, n, mid, inner); };
  if (!out) return computed<T>(name, x.shape(), kernel, a, b);
  T* dst = inout<T>(name, "out", *out, a);
  if (overlaps(*out, b) || (overlaps(*out, a) && dst != x.data()))
    fail(name, "out must be a itself or not overlap a and b");
  run_nogil(name, [&] { kernel(dst); }, a, b);
  return *out;
}

template <typename T>
py::array relu_backward(const py::array& grad, const py::array& y) {
  const std::string op = "relu_backward";
  const Arg<T> g(op, "grad", grad, -1, Sizes::any), out(op, "y", y, -1, Sizes::any);
  check_same_shape(op, "grad", grad, "y", y);
  return computed<T>(op, g.shape(), [&](T* dx) {
    cpu::relu_backward<T>(g.data(), out.data(), dx, g.size());
  }, grad, y);
}

template <typename T>
void axpy_(const py::array& y, double alpha, const py::array& x) {
  const std::string op = "axpy_";
  const Arg<T> in(op, "x", x, -1, Sizes::any);
  T* dst = inout<T>(op, "y", y, x);
  if (overlaps(y, x) && dst != in.data()) fail(op, "y must be x itself or not overlap it");
  run_nogil(op, [&] { cpu::axpy<T>(T(alpha), in.data(), dst, in.size()); }, y, x);
}

// ------------------------------------------------------------------------------ conv
template <typename T>
py::array conv2d_forward(const py::array& x, const py::array& w, const OptArray& bias,
                         Pair stride, Pair padding, Pair dilation, int64_t groups) {
  const std::string op = "conv2d";
  const Arg<T> in(op, "input", x, 4), wt(op, "weight", w, 4);
  const ConvGeom g = conv_check(op, in.shape(1), in.shape(2), in.shape(3), wt.shape(), stride,
                                padding, dilation, groups);
  const int64_t N = in.shape(0), Cout = wt.shape(0);
  const T* pb = opt_vector<T>(op, "bias", bias, Cout);
  return computed<T>(op, {N, Cout, g.OH, g.OW}, [&](T* y) {
    cpu::conv2d_forward<T>(N, groups, Cout, g, in.data(), wt.data(), pb, y);
  }, x, w);
}

template <typename T>
py::array conv2d_backward_input(const py::array& dy, const py::array& w, Pair input_size,
                                Pair stride, Pair padding, Pair dilation, int64_t groups) {
  const std::string op = "conv2d_backward_input";
  const Arg<T> gy(op, "grad_output", dy, 4), wt(op, "weight", w, 4);
  const ConvGeom g = conv_input_check(op, gy.shape(), wt.shape(), input_size, stride, padding,
                                      dilation, groups);
  const int64_t N = gy.shape(0), Cout = wt.shape(0), Cin = wt.shape(1) * groups;
  return computed<T>(op, {N, Cin, input_size[0], input_size[1]}, [&](T* dx) {
    cpu::conv2d_backward_input<T>(N, groups, Cout, g, gy.data(), wt.data(), dx);
  }, dy, w);
}

template <typename T>
py::array conv2d_backward_weight(const py::array& x, const py::array& dy, Pair kernel_size,
                                 Pair stride, Pair padding, Pair dilation, int64_t groups) {
  const std::string op = "conv2d_backward_weight";
  const Arg<T> in(op, "input", x, 4), gy(op, "grad_output", dy, 4);
  const ConvGeom g = conv_weight_check(op, in.shape(), gy.shape(), kernel_size, stride, padding,
                                       dilation, groups);
  const int64_t N = in.shape(0), Cin = in.shape(1), Cout = gy.shape(1);
  return computed<T>(op, {Cout, Cin / groups, kernel_size[0], kernel_size[1]}, [&](T* dw) {
    cpu::conv2d_backward_weight<T>(N, groups, Cout, g, in.data(), gy.data(), dw);
  }, x, dy);
}

// ------------------------------------------------------------------------------ unfold / fold
template <typename T>
py::array unfold(const py::array& x, Pair kernel_size, Pair stride, Pair padding,
                 Pair dilation) {
  const std::string op = "unfold";
  const Arg<T> in(op, "input", x, 4);
  const ConvGeom g = unfold_geom(op, in.shape(), kernel_size, stride, padding, dilation);
  const Shape shape{in.shape(0), g.C * g.kh * g.kw, g.OH * g.OW};
  return computed<T>(op, shape, [&](T* cols) { cpu::unfold<T>(shape[0], g, in.data(), cols); }, x);
}

template <typename T>
py::array fold(const py::array& cols, Pair output_size, Pair kernel_size, Pair stride,
               Pair padding, Pair dilation) {
  const std::string op = "fold";
  const Arg<T> in(op, "input", cols, 3);
  const ConvGeom g = fold_geom(op, in.shape(), output_size, kernel_size, stride, padding,
                               dilation);
  const Shape shape{in.shape(0), g.C, output_size[0], output_size[1]};
  return computed<T>(op, shape, [&](T* x) { cpu::fold<T>(shape[0], g, in.data(), x); }, cols);
}

template <typename T>
py::array channel_sum(const py::array& dy) {
  const std::string op = "channel_sum";
  const Arg<T> in(op, "input", dy);
  if (in.ndim() < 2) fail(op, "input must be at least 2-D, got shape ", shape_str(dy));
  const int64_t N = in.shape(0), C = in.shape(1), L = N ? in.size() / (N * C) : 0;
  return computed<T>(op, {C}, [&](T* db) { cpu::channel_sum<T>(N, C, L, in.data(), db); }, dy);
}

// ------------------------------------------------------------------------------ pool
// A new (N, C, h, w) array, N and C those of `like`, written by kernel(data) without the GIL.
template <typename T, typename Kernel>
py::array new_planes(const std::string& op, const Arg<T>& like, Pair hw, Kernel kernel) {
  return computed<T>(op, {like.shape(0), like.shape(1), hw[0], hw[1]}, kernel, like.array);
}

// (values, flat h*W+w indices) of max pooling x (N, C, H, W) over the windows of g.
template <typename T>
py::tuple max_pool(const std::string& op, const Arg<T>& in, const cpu::PoolGeom& g,
                   void (*kernel)(const cpu::PoolGeom&, const T*, T*, int64_t*)) {
  Out<int64_t> idx(op, {in.shape(0), in.shape(1), g.OH, g.OW});
  const py::array values = new_planes(op, in, {g.OH, g.OW}, [&](T* y) {
    kernel(g, in.data(), y, idx.data);
  });
  return py::make_tuple(values, idx.array);
}

template <typename T>
py::tuple max_pool2d(const py::array& x, Pair kernel, Pair stride, Pair padding,
                     Pair dilation, bool ceil_mode) {
  const std::string op = "max_pool2d";
  const Arg<T> in(op, "input", x, 4);
  const cpu::PoolGeom g = pool_geom(op, in.shape(), kernel, stride, padding, dilation, ceil_mode);
  return max_pool(op, in, g, cpu::max_pool2d_forward<T>);
}

template <typename T>
py::tuple adaptive_max_pool2d(const py::array& x, Pair output_size) {
  const std::string op = "adaptive_max_pool2d";
  const Arg<T> in(op, "input", x, 4);
  const cpu::PoolGeom g = adaptive_geom(op, "output_size", in.shape(), output_size, false);
  return max_pool(op, in, g, cpu::adaptive_max_pool2d_forward<T>);
}

// y (N, C, size) = 0, then y[idx] = v, or += v when `add` (max pools' backward), for values
// v (N, C, h, w) and int64 indices of the same shape. Unpooling needs every index in
// [0, size[0] * size[1]); the backward drops the others (windows that held only padding).
template <typename T, bool add>
py::array scatter(const py::array& v, const py::array& idx, Pair size) {
  const std::string op = add ? "max_pool2d_backward" : "max_unpool2d";
  const Arg<T> in(op, "input", v, 4);
  const Arg<int64_t> ix(op, "indices", idx, 4, Sizes::any);
  const cpu::PoolGeom g = adaptive_geom(op, "output_size", in.shape(), size, true);
  check_same_shape(op, "indices", idx, "input", v);
  for (int64_t i = 0; i < ix.size() && !add; ++i)
    if (ix.data()[i] < 0 || ix.data()[i] >= size[0] * size[1])
      fail(op, "index ", ix.data()[i], " is out of range for output size ", pair_str(size));
  return new_planes(op, in, size, [&](T* y) {
    (add ? cpu::index_scatter_add<T> : cpu::index_scatter<T>)(g, in.data(), ix.data(), y);
  });
}

template <typename T>
constexpr auto max_pool2d_backward = scatter<T, true>;
template <typename T>
constexpr auto max_unpool2d = scatter<T, false>;

template <typename T>
py::array avg_pool2d(const py::array& x, Pair kernel, Pair stride, Pair padding,
                     bool ceil_mode, bool count_include_pad, int64_t divisor_override) {
  const std::string op = "avg_pool2d";
  const Arg<T> in(op, "input", x, 4);
  if (divisor_override < 0) fail(op, "divisor_override must be positive");
  const cpu::PoolGeom g = pool_geom(op, in.shape(), kernel, stride, padding, {1, 1}, ceil_mode);
  return new_planes(op, in, {g.OH, g.OW}, [&](T* y) {
    cpu::avg_pool2d_forward<T>(g, count_include_pad, divisor_override, in.data(), y);
  });
}

template <typename T>
py::array avg_pool2d_backward(const py::array& dy, Pair input_size, Pair kernel, Pair stride,
                              Pair padding, bool ceil_mode, bool count_include_pad,
                              int64_t divisor_override) {
  const std::string op = "avg_pool2d_backward";
  const Arg<T> gy(op, "grad_output", dy, 4);
  if (divisor_override < 0) fail(op, "divisor_override must be positive");
  const cpu::PoolGeom g = pool_backward_geom(op, gy.shape(), input_size, kernel, stride, padding,
                                             {1, 1}, ceil_mode);
  return new_planes(op, gy, input_size, [&](T* dx) {
    cpu::avg_pool2d_backward<T>(g, count_include_pad, divisor_override, gy.data(), dx);
  });
}

// The adaptive average pool of x to `size` (its output_size), or with `backward` the
// gradient of that pool given its output gradient x, back to the input's `size`.
template <typename T, bool backward>
py::array adaptive_avg(const py::array& x, Pair size) {
  const std::string op = backward ? "adaptive_avg_pool2d_backward" : "adaptive_avg_pool2d";
  const Arg<T> in(op, backward ? "grad_output" : "input", x, 4);
  const char* size_name = backward ? "input_size" : "output_size";
  const cpu::PoolGeom g = adaptive_geom(op, size_name, in.shape(), size, backward);
  return new_planes(op, in, size, [&](T* y) {
    (backward ? cpu::adaptive_avg_pool2d_backward<T>
              : cpu::adaptive_avg_pool2d_forward<T>)(g, in.data(), y);
  });
}

template <typename T>
constexpr auto adaptive_avg_pool2d = adaptive_avg<T, false>;
template <typename T>
constexpr auto adaptive_avg_pool2d_backward = adaptive_avg<T, true>;

// ------------------------------------------------------------------------------ batchnorm
// x is (N, C, L); weight, bias, mean and invstd are (C,) (weight and bias may be None).
template <typename T>
py::tuple batch_norm_forward_train(const py::array& x, const OptArray& w, const OptArray& b,
                                   double eps) {
  const std::string op = "batch_norm";
  const Arg<T> in(op, "input", x, 3);
  const int64_t N = in.shape(0), C = in.shape(1), L = in.shape(2);
  if (N * L < 1) fail(op, "expected at least 1 value per channel, got input ", shape_str(x));
  if (!(eps >= 0)) fail(op, "eps must be >= 0");
  const T *pw = opt_vector<T>(op, "weight", w, C), *pb = opt_vector<T>(op, "bias", b, C);
  Out<T> mean(op, {C}), var(op, {C}), invstd(op, {C});
  const py::array normalized = computed<T>(op, {N, C, L}, [&](T* y) {
    cpu::batch_norm_forward_train<T>(N, C, L, in.data(), pw, pb, static_cast<T>(eps), y,
                                     mean.data, var.data, invstd.data);
  }, x);
  return py::make_tuple(normalized, mean.array, var.array, invstd.array);
}

template <typename T>
py::array batch_norm_apply(const py::array& x, const py::array& mean, const py::array& invstd,
                           const OptArray& w, const OptArray& b) {
  const std::string op = "batch_norm";
  const Arg<T> in(op, "input", x, 3);
  const int64_t N = in.shape(0), C = in.shape(1), L = in.shape(2);
  const T *pm = opt_vector<T>(op, "mean", mean, C), *pi = opt_vector<T>(op, "invstd", invstd, C);
  const T *pw = opt_vector<T>(op, "weight", w, C), *pb = opt_vector<T>(op, "bias", b, C);
  return computed<T>(op, {N, C, L}, [&](T* y) {
    cpu::batch_norm_apply<T>(N, C, L, in.data(), pm, pi, pw, pb, y);
  }, x);
}

template <typename T>
py::tuple batch_norm_backward(const py::array& x, const py::array& dy, const py::array& mean,
                              const py::array& invstd, const OptArray& w, bool training,
                              std::array<bool, 3> needs) {
  const std::string op = "batch_norm_backward";
  const Arg<T> in(op, "input", x, 3), gy(op, "grad_output", dy, 3, Sizes::any);
  const int64_t N = in.shape(0), C = in.shape(1), L = in.shape(2);
  check_same_shape(op, "grad_output", dy, "input", x);
  const T *pm = opt_vector<T>(op, "mean", mean, C), *pi = opt_vector<T>(op, "invstd", invstd, C);
  const T* pw = opt_vector<T>(op, "weight", w, C);
  std::optional<Out<T>> grads[3];  // dx, dweight, dbias
  for (int i = 0; i < 3; ++i)
    if (needs[i]) grads[i].emplace(op, i == 0 ? Shape{N, C, L} : Shape{C});
  auto data = [&](int i) { return grads[i] ? grads[i]->data : nullptr; };
  auto array = [&](int i) { return grads[i] ? py::object(grads[i]->array) : py::none(); };
  run_nogil(op, [&] {
    cpu::batch_norm_backward<T>(N, C, L, in.data(), gy.data(), pm, pi, pw, training, data(0),
                                data(1), data(2));
  }, x);
  return py::make_tuple(array(0), array(1), array(2));
}

}  // namespace

// Binds the float32 and float64 instances of the entry point template f as one function f.
#define DEF(f, ...) m.def(#f, by_dtype(f<float>, f<double>), __VA_ARGS__)

PYBIND11_MODULE(_C, m) {
  m.doc() = "gradflow CPU kernels";
  cpu::install_fork_handler();
  cpu::keep_freed_memory();

  // ---- runtime
  m.def("set_num_threads",
        [](int n) { cpu::set_num_threads(at_least("set_num_threads", "n", n, 1)); });
  m.def("get_num_threads", &cpu::get_num_threads);
  m.def("openmp_enabled", &cpu::openmp_enabled);
  m.def("simd_level", &cpu::simd_level);
  m.def("cpu_has_avx2_fma", &cpu::cpu_has_avx2_fma);
  m.def("simd_levels", &cpu::simd_levels);
  m.def("cap_simd", &cpu::cap_simd, "level"_a,
        "Caps the SIMD level of the kernels at `level`, one of simd_levels() (for tests).");
  m.attr("compiler") = GRADFLOW_COMPILER;

  // ---- elementwise
  py::list unary_names, binary_names;
  for (const auto& [name, op] : kUnaryOps) {
    m.def(name, [name = name, op = op](const py::array& x) {
      return by_dtype(unary<float>, unary<double>)(x, name, op);
    }, "x"_a, "y = op(x) elementwise (erf, or relu = max(x, 0) keeping NaN), a new array like "
              "the C-contiguous float array x.");
    unary_names.append(name);
  }
  for (const auto& [name, op] : kBinaryOps) binary_names.append(name);
  m.attr("unary_ops") = py::tuple(unary_names);
  m.attr("binary_ops") = py::tuple(binary_names);
  DEF(binary, "a"_a, "op"_a, "b"_a, "out"_a = py::none(), "inner"_a = 1, "swap"_a = false,
      "out[i] = a[i] op b[(i // inner) % b.size] (swap: b[...] op a[i]) for C-contiguous "
      "float arrays of one dtype; out (None: a new array like a) may be a itself, and must not "
      "overlap b.");
  DEF(relu_backward, "grad"_a, "y"_a,
      "grad where y > 0, else 0 (relu's backward from its output y), for grad and y of one "
      "shape.");
  DEF(axpy_, "y"_a, "alpha"_a, "x"_a,
      "y += alpha * x in place, for C-contiguous float arrays of one dtype and size (x may be "
      "y itself).");

  // ---- gemm
  DEF(gemm, "a"_a, "b"_a, "c"_a = py::none(), "trans_a"_a = false, "trans_b"_a = false,
      "alpha"_a = 1.0, "beta"_a = 0.0,
      "c = alpha * op(a) @ op(b) + beta * c for 2-D float arrays with unit stride on one axis "
      "(op = transpose when trans_*). Writes c in place and returns it; c=None allocates a new "
      "array (beta ignored).");
  DEF(matmul, "a"_a, "b"_a,
      "out[i] = a[i] @ b[i]: a new (B, m, n) from (B, m, k) and (B, k, n) float arrays, each "
      "matrix with unit stride on one axis; batch strides are free (0 broadcasts).");
  m.def("fma_peak_gflops", [](double seconds) {
    if (!(seconds > 0.0 && seconds <= 60.0))
      fail("fma_peak_gflops", "seconds must be in (0, 60], got ", seconds);
    double gflops = 0.0;
    run_nogil("fma_peak_gflops", [&] { gflops = cpu::fma_peak_gflops(seconds); });
    return gflops;
  }, "seconds"_a = 0.2, "Measured float32 FMA peak of one core in GFLOP/s (0 without AVX2+FMA).");

  // ---- conv
  // Arrays are C-contiguous float32/float64 NCHW; (h, w) pairs are tuples of two ints.
  DEF(conv2d_forward, "input"_a, "weight"_a, "bias"_a, "stride"_a, "padding"_a, "dilation"_a,
      "groups"_a, "y = conv2d(input, weight) + bias (im2col + GEMM).");
  DEF(conv2d_backward_input, "grad_output"_a, "weight"_a, "input_size"_a, "stride"_a,
      "padding"_a, "dilation"_a, "groups"_a,
      "dx (N, Cin, *input_size): the gradient of conv2d w.r.t. its input (= conv_transpose2d "
      "forward).");
  DEF(conv2d_backward_weight, "input"_a, "grad_output"_a, "kernel_size"_a, "stride"_a,
      "padding"_a, "dilation"_a, "groups"_a, "Gradient of conv2d w.r.t. its weight.");
  m.def("set_conv_workspace_bytes", [](int64_t bytes) {
    cpu::set_conv_workspace_bytes(at_least<int64_t>("set_conv_workspace_bytes", "bytes", bytes, 1));
  }, "bytes"_a, "Cap on one convolution call's im2col workspace, all threads together (default "
                "256 MiB); larger images are processed in runs of output positions.");
  m.def("conv_workspace_bytes", &cpu::conv_workspace_bytes);
  DEF(unfold, "input"_a, "kernel_size"_a, "stride"_a, "padding"_a, "dilation"_a,
      "cols (N, C*kh*kw, OH*OW) = F.unfold(input (N, C, H, W)) (im2col per image, cpu/im2col.h).");
  DEF(fold, "input"_a, "output_size"_a, "kernel_size"_a, "stride"_a, "padding"_a, "dilation"_a,
      "image (N, C, *output_size) = F.fold(input): unfold's adjoint, overlapping entries summed "
      "(col2im per image).");
  DEF(channel_sum, "input"_a, "(N, C, ...) -> (C,): the sum over every axis but 1 (the bias "
      "gradient).");

  // ---- pool
  DEF(max_pool2d, "input"_a, "kernel_size"_a, "stride"_a, "padding"_a, "dilation"_a,
      "ceil_mode"_a, "(values, flat h*W+w indices) of a 2-D max pool.");
  DEF(adaptive_max_pool2d, "input"_a, "output_size"_a);
  DEF(max_pool2d_backward, "grad_output"_a, "indices"_a, "input_size"_a,
      "dx[indices] += grad_output per plane (max pools' backward).");
  DEF(max_unpool2d, "input"_a, "indices"_a, "output_size"_a);
  DEF(avg_pool2d, "input"_a, "kernel_size"_a, "stride"_a, "padding"_a, "ceil_mode"_a,
      "count_include_pad"_a, "divisor_override"_a);
  DEF(avg_pool2d_backward, "grad_output"_a, "input_size"_a, "kernel_size"_a, "stride"_a,
      "padding"_a, "ceil_mode"_a, "count_include_pad"_a, "divisor_override"_a);
  DEF(adaptive_avg_pool2d, "input"_a, "output_size"_a);
  DEF(adaptive_avg_pool2d_backward, "grad_output"_a, "input_size"_a);

  // ---- batchnorm
  DEF(batch_norm_forward_train, "input"_a, "weight"_a, "bias"_a, "eps"_a,
      "(y, mean, biased var, invstd) with batch statistics.");
  DEF(batch_norm_apply, "input"_a, "mean"_a, "invstd"_a, "weight"_a, "bias"_a);
  DEF(batch_norm_backward, "input"_a, "grad_output"_a, "mean"_a, "invstd"_a, "weight"_a,
      "training"_a, "needs_grad"_a, "(dx, dweight, dbias), None where not needed.");
}
