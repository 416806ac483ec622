// gradflow._cuda: device discovery, device arrays over the caching allocator, and the CUDA
// kernels as Python functions. The CUDA runtime is linked statically, so the module imports
// on a machine with no GPU or no driver; calls that need a device then raise CudaError.
// Every entry point validates dtypes, ranks and shapes (and views their storage bounds)
// before a kernel sees a pointer, then queues the kernel on the module's one stream through
// bind::run_nogil, without waiting for it.
#include <cuda_runtime.h>
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <array>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <type_traits>
#include <vector>

#include "bind_geometry.h"
#include "bind_util.h"
#include "cuda/dlpack_exchange.h"
#include "cuda/kernels.h"
#include "cuda/runtime.h"

namespace py = pybind11;
using namespace gradflow::cuda;
namespace bind = gradflow::bind;
using bind::fail;
using gradflow::ConvGeom;
using bind::shape_str;
using Shape = std::vector<int64_t>;

namespace {

// ------------------------------------------------------------------------------ devices
// Number of usable devices; 0 (never an exception) when there is no GPU or no driver.
int device_count() {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    cudaGetLastError();  // clear the sticky error so later calls start clean
    return 0;
  }
  return n;
}

// Why device_count() is 0, in CUDA's words; empty when a device is there.
std::string unavailable_reason() {
  int n = 0;
  cudaError_t err = cudaGetDeviceCount(&n);
  if (err != cudaSuccess) {
    cudaGetLastError();
    return cudaGetErrorString(err);
  }
  return n == 0 ? "no CUDA device found" : "";
}

cudaDeviceProp properties(int device) {
  int n = device_count();
  if (device < 0 || device >= n)
    throw py::value_error("cuda: device index " + std::to_string(device) + " out of range (" +
                          std::to_string(n) + " devices)");
  cudaDeviceProp prop;
  check(cudaGetDeviceProperties(&prop, device), "cudaGetDeviceProperties");
  return prop;
}

// ------------------------------------------------------------------------------ dtypes
DType to_dtype(const std::string& op, const py::object& obj) {
  const py::dtype d = py::dtype::from_args(obj);
  if (d.is(py::dtype::of<float>())) return DType::f32;
  if (d.is(py::dtype::of<double>())) return DType::f64;
  if (d.is(py::dtype::of<int64_t>())) return DType::i64;
  if (d.is(py::dtype::of<bool>())) return DType::b8;
  throw py::type_error(op + ": CUDA arrays hold float32, float64, int64 or bool, not " +
                       std::string(py::str(d)));
}

py::dtype np_dtype(DType t) {
  switch (t) {
    case DType::f32: return py::dtype::of<float>();
    case DType::f64: return py::dtype::of<double>();
    case DType::i64: return py::dtype::of<int64_t>();
    case DType::b8: return py::dtype::of<bool>();
  }
  return py::dtype::of<float>();
}

// ------------------------------------------------------------------------------ checks
std::string shape_of(const DeviceArray& a) { return shape_str(a.shape); }

void check_shape(const std::string& op, const Shape& shape) {
  if (shape.size() > static_cast<size_t>(kMaxDims))
    fail(op, "at most " + std::to_string(kMaxDims) + " dims are supported, got shape " +
                 shape_str(shape));
  __int128 n = 1;
  for (int64_t s : shape) {
    if (s < 0) fail(op, "negative dimension in shape " + shape_str(shape));
    n *= s;
    if (n > (__int128(1) << 48)) fail(op, "shape " + shape_str(shape) + " is too large");
  }
}

void check_same_shape(const std::string& op, const char* name, const DeviceArray& a,
                      const Shape& shape) {
  if (a.shape != shape)
    fail(op, std::string(name) + " has shape " + shape_of(a) + ", expected " + shape_str(shape));
}

// Float arrays: the dtypes of kernels that compute in floating point.
const std::initializer_list<DType> kFloat = {DType::f32, DType::f64};

// A view of x's storage; every element it can reach must lie inside the storage.
DeviceArray as_strided(const DeviceArray& x, const Shape& shape, const Shape& strides,
                       int64_t offset) {
  const std::string op = "as_strided";
  check_shape(op, shape);
  if (strides.size() != shape.size())
    fail(op, "strides " + shape_str(strides) + " do not match shape " + shape_str(shape));
  __int128 lo = offset, hi = offset, n = 1;
  for (size_t d = 0; d < shape.size(); ++d) {
    n *= shape[d];
    const __int128 span = __int128(shape[d] > 0 ? shape[d] - 1 : 0) * strides[d];
    (span < 0 ? lo : hi) += span;
  }
  const int64_t capacity = static_cast<int64_t>(x.storage->nbytes / itemsize(x.dtype));
  if (n > 0 && (lo < 0 || hi >= capacity))
    fail(op, "view of shape " + shape_str(shape) + ", strides " + shape_str(strides) +
                 " and offset " + std::to_string(offset) + " leaves its storage of " +
                 std::to_string(capacity) + " elements");
  DeviceArray v;
  v.storage = x.storage;
  v.shape = shape;
  v.strides = strides;
  v.offset = n > 0 ? offset : 0;
  v.dtype = x.dtype;
  return v;
}

DeviceArray new_array(const std::string& op, const Shape& shape, DType dtype) {
  check_shape(op, shape);
  return empty(shape, dtype);
}

DeviceArray contiguous(const DeviceArray& x) {
  if (x.is_contiguous()) return x;
  DeviceArray out = empty(x.shape, x.dtype);
  copy_cast(out, x);
  return out;
}

// ------------------------------------------------------------------------------ host copies
DeviceArray from_numpy(const py::array& src) {
  const DType t = to_dtype("from_numpy", py::reinterpret_borrow<py::object>(src.dtype()));
  py::array a = py::array::ensure(src, py::array::c_style);
  Shape shape(a.shape(), a.shape() + a.ndim());
  DeviceArray out = new_array("from_numpy", shape, t);
  const size_t nbytes = static_cast<size_t>(out.numel()) * itemsize(t);
  const void* host = a.data();
  bind::run_nogil("from_numpy", [&] { copy_to_device(out.data(), host, nbytes); }, out.shape);
  return out;
}

py::array to_numpy(const DeviceArray& x) {
  DeviceArray c;
  bind::run_nogil("to_numpy", [&] { c = contiguous(x); }, x.shape);
  py::array out(np_dtype(c.dtype), std::vector<py::ssize_t>(c.shape.begin(), c.shape.end()));
  const size_t nbytes = static_cast<size_t>(c.numel()) * itemsize(c.dtype);
  void* host = out.mutable_data();
  bind::run_nogil("to_numpy", [&] { copy_to_host(host, c.data(), nbytes); }, x.shape);
  return out;
}

// ------------------------------------------------------------------------------ elementwise
template <typename E>
E op_code(const std::string& op, const std::string& name, const std::vector<const char*>& names) {
  for (size_t i = 0; i < names.size(); ++i)
    if (name == names[i]) return static_cast<E>(i);
  fail(op, "unknown op '" + name + "'");
}

// In enum order, from the lists that make the enums (kernels.h).
const std::vector<const char*> kBinary = {GRADFLOW_BINARY_OPS(GRADFLOW_NAME_STRING)};
const std::vector<const char*> kReduce = {GRADFLOW_REDUCE_OPS(GRADFLOW_NAME_STRING)};

// An operand: a DeviceArray of `shape` and dtype `t`, or a Python number.
Operand operand(const std::string& op, const char* name, const py::object& obj, DType t,
                const Shape& shape) {
  Operand o;
  if (py::isinstance<DeviceArray>(obj)) {
    const DeviceArray& a = obj.cast<const DeviceArray&>();
    bind::check_dtype(op, name, a.dtype, {t});
    check_same_shape(op, name, a, shape);
    o.array = &a;
  } else if (py::isinstance<py::bool_>(obj) || py::isinstance<py::int_>(obj) ||
             py::isinstance<py::float_>(obj)) {
    o.value = obj.cast<double>();
  } else {
    throw py::type_error(op + ": " + name + " must be a CUDA array or a number, got " +
                         std::string(py::str(py::type::of(obj))));
  }
  return o;
}

// The unary kernels' names, in the order of unary_kernels() (their op codes).
const std::vector<const char*>& unary_names() {
  static const std::vector<const char*> names = [] {
    std::vector<const char*> n;
    for (const UnaryKernel& k : unary_kernels()) n.push_back(k.name);
    return n;
  }();
  return names;
}

void unary_op(const std::string& name, const DeviceArray& out, const DeviceArray& x) {
  const std::string op = "unary " + name;
  const int code = op_code<int>("unary", name, unary_names());
  const UnaryDtypes dtypes = unary_kernels()[code].dtypes;
  check_same_shape(op, "x", x, out.shape);
  const bool pred = dtypes == UnaryDtypes::bool_result;
  bind::check_dtype(op, "out", out.dtype, {pred ? DType::b8 : x.dtype});
  if (dtypes == UnaryDtypes::float_only) bind::check_dtype(op, "x", x.dtype, kFloat);
  if (x.dtype == DType::b8 && !pred) throw py::type_error(op + ": not defined for bool input");
  bind::run_nogil(op, [&] { unary(code, out, x); }, x.shape);
}

void binary_op(const std::string& name, const DeviceArray& out, const py::object& a,
               const py::object& b, const py::object& compute_dtype) {
  const std::string op = "binary " + name;
  const Binary code = op_code<Binary>("binary", name, kBinary);
  const DType t = to_dtype(op, compute_dtype);
  bind::check_dtype(op, "out", out.dtype, {code >= Binary::eq ? DType::b8 : t});
  if (code == Binary::div && (t == DType::i64 || t == DType::b8))
    throw py::type_error(op + ": true division needs float operands");
  const Operand oa = operand(op, "a", a, t, out.shape), ob = operand(op, "b", b, t, out.shape);
  bind::run_nogil(op, [&] { binary(code, out, t, oa, ob); }, out.shape);
}

// ------------------------------------------------------------------------------ index
std::vector<DeviceArray> index_arrays(const std::string& op, const py::list& idx, int nb) {
  std::vector<DeviceArray> arrays;
  for (const py::handle& h : idx) {
    const DeviceArray& a = h.cast<const DeviceArray&>();
    bind::check_dtype(op, "index", a.dtype, {DType::i64});
    arrays.push_back(a);
  }
  if (arrays.size() > static_cast<size_t>(kMaxDims)) fail(op, "too many index arrays");
  for (const DeviceArray& a : arrays)
    if (a.ndim() != nb) fail(op, "index arrays must have " + std::to_string(nb) + " dims");
  return arrays;
}

void index_op_checked(const std::string& mode, const DeviceArray& target, const py::list& idx,
                      int nb, const DeviceArray& values) {
  const std::string op = "index " + mode;
  const IndexMode m = mode == "gather" ? IndexMode::gather
                      : mode == "put"  ? IndexMode::put
                      : mode == "add"  ? IndexMode::add
                                       : (fail(op, "unknown mode"), IndexMode::gather);
  bind::check_dtype(op, "values", values.dtype, {target.dtype});
  std::vector<DeviceArray> arrays = index_arrays(op, idx, nb);
  const int n_idx = static_cast<int>(arrays.size());
  if (n_idx < 1 || n_idx > target.ndim()) fail(op, "bad number of index arrays");
  if (nb < 0 || nb > values.ndim()) fail(op, "bad number of index dims");
  Shape expect(values.shape.begin(), values.shape.begin() + nb);
  for (const DeviceArray& a : arrays) check_same_shape(op, "index", a, expect);
  if (values.ndim() - nb != target.ndim() - n_idx)
    fail(op, "values " + shape_of(values) + " do not fit target " + shape_of(target));
  for (int d = nb; d < values.ndim(); ++d)
    if (values.shape[d] != target.shape[n_idx + d - nb])
      fail(op, "values " + shape_of(values) + " do not fit target " + shape_of(target));
  if (m == IndexMode::add && target.dtype == DType::b8)
    throw py::type_error(op + ": cannot accumulate into a bool array");
  bool ok = true;
  bind::run_nogil(op, [&] { ok = index_op(m, target, n_idx, arrays.data(), nb, values); },
                  target.shape, values.shape);
  if (!ok)
    throw py::index_error(op + ": index out of range for target of shape " + shape_of(target));
}

void axis_op_checked(const std::string& mode, const DeviceArray& x, int axis,
                     const DeviceArray& index, const DeviceArray& values) {
  const std::string op = mode == "gather" ? "take_along_axis" : "scatter_add_";
  if (mode != "gather" && mode != "add") fail(op, "unknown mode");
  bind::check_dtype(op, "index", index.dtype, {DType::i64});
  bind::check_dtype(op, "values", values.dtype, {x.dtype});
  if (x.ndim() != index.ndim())
    fail(op, "index " + shape_of(index) + " and input " + shape_of(x) + " differ in rank");
  if (axis < 0 || axis >= x.ndim()) fail(op, "axis " + std::to_string(axis) + " out of range");
  check_same_shape(op, "values", values, index.shape);
  for (int d = 0; d < x.ndim(); ++d)
    if (d != axis && x.shape[d] != index.shape[d])
      fail(op, "index " + shape_of(index) + " does not match input " + shape_of(x) +
                   " outside axis " + std::to_string(axis));
  if (mode == "add" && x.dtype == DType::b8)
    throw py::type_error(op + ": cannot accumulate into a bool array");
  DeviceArray view = x;
  view.shape = index.shape;
  view.strides[axis] = 0;
  const IndexMode m = mode == "gather" ? IndexMode::gather : IndexMode::add;
  bool ok = true;
  bind::run_nogil(op, [&] { ok = axis_op(m, view, x.strides[axis], x.shape[axis], index, values); },
                  x.shape, index.shape);
  if (!ok)
    throw py::index_error(op + ": index out of range for axis " + std::to_string(axis) +
                          " of size " + std::to_string(x.shape[axis]));
}

// ------------------------------------------------------------------------------ gemm
void gemm_checked(const DeviceArray& a, const DeviceArray& b, const DeviceArray& out) {
  const std::string op = "matmul";
  bind::check_dtype(op, "a", a.dtype, kFloat);
  bind::check_dtype(op, "b", b.dtype, {a.dtype});
  bind::check_dtype(op, "out", out.dtype, {a.dtype});
  if (a.ndim() != 3 || b.ndim() != 3 || out.ndim() != 3)
    fail(op, "expects 3-D arrays, got " + shape_of(a) + ", " + shape_of(b) + ", " + shape_of(out));
  if (!a.is_contiguous() || !b.is_contiguous() || !out.is_contiguous())
    fail(op, "arrays must be C-contiguous");
  const int64_t batch = out.shape[0], m = a.shape[1], k = a.shape[2], n = b.shape[2];
  if (b.shape[1] != k)
    fail(op, "shapes " + shape_of(a) + " and " + shape_of(b) + " cannot be multiplied");
  if ((a.shape[0] != batch && a.shape[0] != 1) || (b.shape[0] != batch && b.shape[0] != 1) ||
      out.shape[1] != m || out.shape[2] != n)
    fail(op, "out " + shape_of(out) + " does not fit " + shape_of(a) + " @ " + shape_of(b));
  if (m > INT32_MAX || n > INT32_MAX || k > INT32_MAX) fail(op, "matrix too large");
  const int64_t sa = a.shape[0] == 1 ? 0 : m * k, sb = b.shape[0] == 1 ? 0 : k * n;
  bind::dispatch_float(a.dtype == DType::f64, [&](auto t) {
    using T = decltype(t);
    const T* pa = reinterpret_cast<const T*>(a.data());
    const T* pb = reinterpret_cast<const T*>(b.data());
    T* pc = reinterpret_cast<T*>(out.data());
    bind::run_nogil(op, [&] { gemm_batched<T>(batch, m, n, k, pa, sa, pb, sb, pc, m * n); },
                    a.shape, b.shape);
  });
}

// An array argument of dtype `t`, rank `ndim` and C-contiguous, in that order (bind::Arg's
// checks); `sizes`: each dimension in [1, 2^31) but the first (bind::check_sizes).
void check_array(const std::string& op, const char* name, const DeviceArray& a, int ndim,
                 DType t, bool sizes = true) {
  bind::check_dtype(op, name, a.dtype, {t});
  if (a.ndim() != ndim) fail(op, name, " must be ", ndim, "-D, got shape ", shape_of(a));
  if (!a.is_contiguous()) fail(op, name, " must be C-contiguous (shape ", shape_of(a), ")");
  if (sizes) bind::check_sizes(op, name, a.shape);
}

// ------------------------------------------------------------------------------ nn kernels
// Shared by the pooling, normalization and softmax/loss sections below (namespace nnk): the
// nn kernels take C-contiguous float arrays (the backend makes them so) and check every
// size before a kernel sees a pointer.
namespace nnk {

using bind::check_pair;
using bind::Pair;
using bind::pair_str;
using OptArray = std::optional<DeviceArray>;

// A float array of rank `ndim` (check_array); `like` (when given) fixes its dtype. `sizes`:
// the windowed kernels (pooling, normalization) need every dimension but the first >= 1, as
// on the CPU; the row-wise kernels take any shape (a zero-size one launches nothing).
void check_float_array(const std::string& op, const char* name, const DeviceArray& a, int ndim,
                       const DeviceArray* like = nullptr, bool sizes = true) {
  if (!like) bind::check_dtype(op, name, a.dtype, kFloat);
  check_array(op, name, a, ndim, like ? like->dtype : a.dtype, sizes);
}

void check_index_array(const std::string& op, const DeviceArray& idx, const DeviceArray& like) {
  bind::check_dtype(op, "indices", idx.dtype, {DType::i64});
  check_same_shape(op, "indices", idx, like.shape);
  if (!idx.is_contiguous()) fail(op, "indices must be C-contiguous");
}

// An optional (C,) vector (weight, bias, statistics) of x's dtype: a pointer, or null.
const DeviceArray* channel_vec(const std::string& op, const char* name, const OptArray& v,
                               const DeviceArray& x, int64_t C) {
  if (!v) return nullptr;
  check_float_array(op, name, *v, 1, &x);
  if (v->shape[0] != C) fail(op, name, " must have shape (", C, ",), got ", shape_of(*v));
  return &*v;
}

// ---- pooling
// The planes of x (N, C, H, W) and an output of (OH, OW) (or the reverse, for the scatters).
pool::Geom plane_geom(const DeviceArray& x, Pair in, Pair out) {
  return bind::plane_geom(x.shape, in, out);
}

Pair hw(const DeviceArray& x) { return {x.shape[2], x.shape[3]}; }

// The strided windows of pooling an (N, C, *input) array: the CPU module's checks.
pool::Geom window_geom(const std::string& op, const DeviceArray& x, Pair input, Pair kernel,
                       Pair stride, Pair padding, Pair dilation, bool ceil_mode) {
  return bind::pool_geom(op, {x.shape[0], x.shape[1], input[0], input[1]}, kernel, stride,
                         padding, dilation, ceil_mode);
}

Shape nchw(const DeviceArray& x, int64_t h, int64_t w) { return {x.shape[0], x.shape[1], h, w}; }

py::tuple max_pool(const std::string& op, const DeviceArray& x, const pool::Geom& g,
                   bool adaptive) {
  DeviceArray y = new_array(op, nchw(x, g.OH, g.OW), x.dtype);
  DeviceArray idx = new_array(op, y.shape, DType::i64);
  bind::run_nogil(op, [&] { max_pool2d(g, adaptive, x, y, idx); }, x.shape);
  return py::make_tuple(y, idx);
}

py::tuple max_pool2d_checked(const DeviceArray& x, Pair kernel, Pair stride, Pair padding,
                             Pair dilation, bool ceil_mode) {
  const std::string op = "max_pool2d";
  check_float_array(op, "input", x, 4);
  return max_pool(op, x, window_geom(op, x, hw(x), kernel, stride, padding, dilation, ceil_mode),
                  false);
}

py::tuple adaptive_max_pool2d_checked(const DeviceArray& x, Pair output_size) {
  const std::string op = "adaptive_max_pool2d";
  check_float_array(op, "input", x, 4);
  check_pair(op, "output_size", output_size, 1);
  return max_pool(op, x, plane_geom(x, hw(x), output_size), true);
}

// y (N, C, *size) from values v and indices (N, C, h, w): += (max pools' backward: indices
// outside the plane are windows of padding and add nothing) or = (unpool: they are errors).
DeviceArray scatter(const DeviceArray& v, const DeviceArray& idx, Pair size, bool add) {
  const std::string op = add ? "max_pool2d_backward" : "max_unpool2d";
  check_float_array(op, "input", v, 4);
  check_index_array(op, idx, v);
  check_pair(op, "output_size", size, 1);
  const pool::Geom g = plane_geom(v, size, hw(v));
  DeviceArray y = new_array(op, nchw(v, size[0], size[1]), v.dtype);
  bool ok = true;
  bind::run_nogil(op, [&] {
    if (add)
      max_pool2d_backward(g, v, idx, y);
    else
      ok = max_unpool2d(g, v, idx, y);
  }, v.shape, y.shape);
  if (!ok)
    fail(op, "an index is out of range for output size ", pair_str(size),
         " (indices must be in [0, ", size[0] * size[1], "))");
  return y;
}

DeviceArray avg_pool2d_checked(const DeviceArray& x, Pair kernel, Pair stride, Pair padding,
                               bool ceil_mode, bool count_include_pad, int64_t divisor_override) {
  const std::string op = "avg_pool2d";
  check_float_array(op, "input", x, 4);
  if (divisor_override < 0) fail(op, "divisor_override must be positive");
  const pool::Geom g = window_geom(op, x, hw(x), kernel, stride, padding, {1, 1}, ceil_mode);
  DeviceArray y = new_array(op, nchw(x, g.OH, g.OW), x.dtype);
  bind::run_nogil(op, [&] { avg_pool2d(g, count_include_pad, divisor_override, x, y); },
                  x.shape);
  return y;
}

DeviceArray avg_pool2d_backward_checked(const DeviceArray& dy, Pair input_size, Pair kernel,
                                        Pair stride, Pair padding, bool ceil_mode,
                                        bool count_include_pad, int64_t divisor_override) {
  const std::string op = "avg_pool2d_backward";
  check_float_array(op, "grad_output", dy, 4);
  check_pair(op, "input_size", input_size, 1);
  if (divisor_override < 0) fail(op, "divisor_override must be positive");
  const pool::Geom g = window_geom(op, dy, input_size, kernel, stride, padding, {1, 1},
                                   ceil_mode);
  if (dy.shape[2] != g.OH || dy.shape[3] != g.OW)
    fail(op, "grad_output ", shape_of(dy), " does not match input size ", pair_str(input_size));
  DeviceArray dx = new_array(op, nchw(dy, input_size[0], input_size[1]), dy.dtype);
  bind::run_nogil(op, [&] { avg_pool2d_backward(g, count_include_pad, divisor_override, dy, dx); },
                  dy.shape);
  return dx;
}

DeviceArray adaptive_avg_pool2d_checked(const DeviceArray& x, Pair output_size) {
  const std::string op = "adaptive_avg_pool2d";
  check_float_array(op, "input", x, 4);
  check_pair(op, "output_size", output_size, 1);
  const pool::Geom g = plane_geom(x, hw(x), output_size);
  DeviceArray y = new_array(op, nchw(x, g.OH, g.OW), x.dtype);
  bind::run_nogil(op, [&] { adaptive_avg_pool2d(g, x, y); }, x.shape);
  return y;
}

DeviceArray adaptive_avg_pool2d_backward_checked(const DeviceArray& dy, Pair input_size) {
  const std::string op = "adaptive_avg_pool2d_backward";
  check_float_array(op, "grad_output", dy, 4);
  check_pair(op, "input_size", input_size, 1);
  const pool::Geom g = plane_geom(dy, input_size, hw(dy));
  DeviceArray dx = new_array(op, nchw(dy, input_size[0], input_size[1]), dy.dtype);
  bind::run_nogil(op, [&] { adaptive_avg_pool2d_backward(g, dy, dx); }, dy.shape);
  return dx;
}

// x (N, C, H, W) resized to `out` (forward) or dy (N, C, OH, OW) taken back to `in`
// (backward); scales (sh, sw) are the scale factors given (0: none).
DeviceArray resize(const DeviceArray& a, Pair other, std::array<double, 2> scales,
                   bool bilinear, bool align_corners, bool backward) {
  const std::string op = backward ? "interpolate_backward" : "interpolate";
  check_float_array(op, backward ? "grad_output" : "input", a, 4);
  check_pair(op, backward ? "input_size" : "output_size", other, 1);
  for (double s : scales)
    if (!(s >= 0) || s > 1e300) fail(op, "scale factors must be >= 0 (0: none)");
  const pool::Resize r{scales[0], scales[1], bilinear, align_corners};
  const pool::Geom g = backward ? plane_geom(a, other, hw(a)) : plane_geom(a, hw(a), other);
  DeviceArray out = new_array(op, nchw(a, other[0], other[1]), a.dtype);
  bind::run_nogil(op, [&] {
    if (backward)
      interpolate_backward(g, r, a, out);
    else
      interpolate(g, r, a, out);
  }, a.shape, out.shape);
  return out;
}

// ---- normalization: x (N, C, L); weight, bias, mean and invstd (C,) (weight, bias optional).
py::tuple batch_norm_train_checked(const DeviceArray& x, const OptArray& w, const OptArray& b,
                                   double eps) {
  const std::string op = "batch_norm";
  check_float_array(op, "input", x, 3);
  const int64_t C = x.shape[1];
  if (x.shape[0] * x.shape[2] < 1)
    fail(op, "expected at least 1 value per channel, got input ", shape_of(x));
  if (!(eps >= 0)) fail(op, "eps must be >= 0");
  const DeviceArray* pw = channel_vec(op, "weight", w, x, C);
  const DeviceArray* pb = channel_vec(op, "bias", b, x, C);
  DeviceArray y = new_array(op, x.shape, x.dtype), mean = new_array(op, {C}, x.dtype);
  DeviceArray var = new_array(op, {C}, x.dtype), invstd = new_array(op, {C}, x.dtype);
  bind::run_nogil(op, [&] { batch_norm_train(x, pw, pb, eps, y, mean, var, invstd); }, x.shape);
  return py::make_tuple(y, mean, var, invstd);
}

DeviceArray batch_norm_apply_checked(const DeviceArray& x, const DeviceArray& mean,
                                     const DeviceArray& invstd, const OptArray& w,
                                     const OptArray& b) {
  const std::string op = "batch_norm";
  check_float_array(op, "input", x, 3);
  const int64_t C = x.shape[1];
  const DeviceArray* pm = channel_vec(op, "mean", mean, x, C);
  const DeviceArray* pi = channel_vec(op, "invstd", invstd, x, C);
  const DeviceArray* pw = channel_vec(op, "weight", w, x, C);
  const DeviceArray* pb = channel_vec(op, "bias", b, x, C);
  DeviceArray y = new_array(op, x.shape, x.dtype);
  bind::run_nogil(op, [&] { batch_norm_apply(x, *pm, *pi, pw, pb, y); }, x.shape);
  return y;
}

py::tuple batch_norm_backward_checked(const DeviceArray& x, const DeviceArray& dy,
                                      const DeviceArray& mean, const DeviceArray& invstd,
                                      const OptArray& w, bool training,
                                      std::array<bool, 3> needs) {
  const std::string op = "batch_norm_backward";
  check_float_array(op, "input", x, 3);
  check_float_array(op, "grad_output", dy, 3, &x);
  check_same_shape(op, "grad_output", dy, x.shape);
  const int64_t C = x.shape[1];
  const DeviceArray* pm = channel_vec(op, "mean", mean, x, C);
  const DeviceArray* pi = channel_vec(op, "invstd", invstd, x, C);
  const DeviceArray* pw = channel_vec(op, "weight", w, x, C);
  std::optional<DeviceArray> grads[3];
  for (int i = 0; i < 3; ++i)
    if (needs[i]) grads[i] = new_array(op, i == 0 ? x.shape : Shape{C}, x.dtype);
  auto opt = [&](int i) { return grads[i] ? &*grads[i] : nullptr; };
  bind::run_nogil(op, [&] {
    batch_norm_backward(x, dy, *pm, *pi, pw, training, opt(0), opt(1), opt(2));
  }, x.shape);
  auto out = [&](int i) { return grads[i] ? py::cast(*grads[i]) : py::none(); };
  return py::make_tuple(out(0), out(1), out(2));
}

// ---- softmax family and losses
// (outer, D, inner) of x along `axis`.
std::array<int64_t, 3> axis_view(const std::string& op, const DeviceArray& x, int axis) {
  if (axis < 0 || axis >= x.ndim())
    fail(op, "axis ", axis, " is out of range for shape ", shape_of(x));
  std::array<int64_t, 3> v{1, x.shape[axis], 1};
  for (int d = 0; d < axis; ++d) v[0] *= x.shape[d];
  for (int d = axis + 1; d < x.ndim(); ++d) v[2] *= x.shape[d];
  return v;
}

DeviceArray softmax_checked(const DeviceArray& x, int axis, bool log) {
  const std::string op = log ? "log_softmax" : "softmax";
  check_float_array(op, "input", x, x.ndim(), nullptr, false);
  const auto v = axis_view(op, x, axis);
  DeviceArray y = new_array(op, x.shape, x.dtype);
  bind::run_nogil(op, [&] { softmax_forward(x, y, v[0], v[1], v[2], log); }, x.shape);
  return y;
}

DeviceArray softmax_backward_checked(const DeviceArray& y, const DeviceArray& g, int axis,
                                     bool log) {
  const std::string op = log ? "log_softmax_backward" : "softmax_backward";
  check_float_array(op, "output", y, y.ndim(), nullptr, false);
  check_float_array(op, "grad_output", g, y.ndim(), &y, false);
  check_same_shape(op, "grad_output", g, y.shape);
  const auto v = axis_view(op, y, axis);
  DeviceArray dx = new_array(op, y.shape, y.dtype);
  bind::run_nogil(op, [&] { softmax_backward(y, g, dx, v[0], v[1], v[2], log); }, y.shape);
  return dx;
}

// logp (N, C, S), target (N, S) int64, weight (C,) or None.
void check_nll(const std::string& op, const DeviceArray& logp, const DeviceArray& target,
               const OptArray& weight) {
  check_float_array(op, "input", logp, 3, nullptr, false);
  bind::check_dtype(op, "target", target.dtype, {DType::i64});
  check_same_shape(op, "target", target, {logp.shape[0], logp.shape[2]});
  if (!target.is_contiguous()) fail(op, "target must be C-contiguous");
  if (logp.shape[1] < 1) fail(op, "input ", shape_of(logp), " has no classes");
  channel_vec(op, "weight", weight, logp, logp.shape[1]);
}

py::tuple nll_loss_checked(const DeviceArray& logp, const DeviceArray& target,
                           const OptArray& weight, int64_t ignore_index, bool smooth) {
  const std::string op = "nll_loss";
  check_nll(op, logp, target, weight);
  DeviceArray loss = new_array(op, target.shape, logp.dtype);
  DeviceArray w = new_array(op, target.shape, logp.dtype);
  std::optional<DeviceArray> sm;
  if (smooth) sm = new_array(op, target.shape, logp.dtype);
  bind::run_nogil(op, [&] {
    nll_forward(logp, target, weight ? &*weight : nullptr, ignore_index, loss, w,
                sm ? &*sm : nullptr);
  }, logp.shape);
  return py::make_tuple(loss, w, sm ? py::cast(*sm) : py::none());
}

DeviceArray nll_loss_backward_checked(const DeviceArray& g_loss, const OptArray& g_smooth,
                                      const DeviceArray& target, const OptArray& weight,
                                      int64_t ignore_index, int64_t classes) {
  const std::string op = "nll_loss_backward";
  check_float_array(op, "grad_loss", g_loss, 2, nullptr, false);
  check_same_shape(op, "grad_loss", g_loss, target.shape);
  if (g_smooth) {
    check_float_array(op, "grad_smooth", *g_smooth, 2, &g_loss, false);
    check_same_shape(op, "grad_smooth", *g_smooth, target.shape);
  }
  if (classes < 1 || classes >= bind::kMaxDim) fail(op, "classes must be >= 1, got ", classes);
  DeviceArray dlogp = new_array(op, {g_loss.shape[0], classes, g_loss.shape[1]}, g_loss.dtype);
  check_nll(op, dlogp, target, weight);
  bind::run_nogil(op, [&] {
    nll_backward(g_loss, g_smooth ? &*g_smooth : nullptr, target, weight ? &*weight : nullptr,
                 ignore_index, dlogp);
  }, dlogp.shape);
  return dlogp;
}

}  // namespace nnk

// ------------------------------------------------------------------------------ convolution
// The CPU module's checks (bind_util.h), so that a bad call raises the same error on both
// devices, then the CUDA kernels' own limits; arrays must be C-contiguous, like the CPU's.
using bind::Pair;

template <typename T>
T* data_of(const DeviceArray& a) {
  return reinterpret_cast<T*>(a.data());
}

// The GEMM of gemm.cu takes int sizes: the depth K and the output positions L must fit.
void check_gemm_limits(const std::string& op, const ConvGeom& g) {
  if (g.C * g.kh * g.kw > INT32_MAX || g.OH * g.OW > INT32_MAX)
    fail(op, "kernel ", shape_str({g.C, g.kh, g.kw}), " or output ", shape_str({g.OH, g.OW}),
         " is too large for the CUDA kernels (2^31 - 1 elements per GEMM side)");
}

DeviceArray conv2d_forward_checked(const DeviceArray& x, const DeviceArray& w,
                                   const std::optional<DeviceArray>& bias, Pair stride,
                                   Pair padding, Pair dilation, int64_t groups) {
  const std::string op = "conv2d";
  bind::check_dtype(op, "input", x.dtype, kFloat);
  check_array(op, "input", x, 4, x.dtype);
  check_array(op, "weight", w, 4, x.dtype);
  const ConvGeom g = bind::conv_check(op, x.shape[1], x.shape[2], x.shape[3], w.shape, stride,
                                      padding, dilation, groups);
  check_gemm_limits(op, g);
  const int64_t N = x.shape[0], Cout = w.shape[0];
  if (bias) {
    check_array(op, "bias", *bias, 1, x.dtype, false);
    if (bias->shape[0] != Cout)
      fail(op, "bias must have shape (", Cout, ",), got ", shape_of(*bias));
  }
  DeviceArray y = new_array(op, {N, Cout, g.OH, g.OW}, x.dtype);
  bind::dispatch_float(x.dtype == DType::f64, [&](auto t) {
    using T = decltype(t);
    const T* b = bias ? data_of<const T>(*bias) : nullptr;
    bind::run_nogil(op, [&] {
      conv2d_forward<T>(N, groups, Cout, g, data_of<const T>(x), data_of<const T>(w), b,
                        data_of<T>(y));
    }, x.shape, w.shape);
  });
  return y;
}

// dx (N, Cin, H, W) of conv2d(x, w) given dy; also the forward of conv_transpose2d.
DeviceArray conv2d_backward_input_checked(const DeviceArray& dy, const DeviceArray& w,
                                          Pair input_size, Pair stride, Pair padding,
                                          Pair dilation, int64_t groups) {
  const std::string op = "conv2d_backward_input";
  bind::check_dtype(op, "grad_output", dy.dtype, kFloat);
  check_array(op, "grad_output", dy, 4, dy.dtype);
  check_array(op, "weight", w, 4, dy.dtype);
  const ConvGeom g = bind::conv_input_check(op, dy.shape, w.shape, input_size, stride, padding,
                                            dilation, groups);
  check_gemm_limits(op, g);
  const int64_t N = dy.shape[0], Cout = w.shape[0], Cin = w.shape[1] * groups;
  DeviceArray dx = new_array(op, {N, Cin, input_size[0], input_size[1]}, dy.dtype);
  bind::dispatch_float(dy.dtype == DType::f64, [&](auto t) {
    using T = decltype(t);
    bind::run_nogil(op, [&] {
      conv2d_backward_input<T>(N, groups, Cout, g, data_of<const T>(dy), data_of<const T>(w),
                               data_of<T>(dx));
    }, dy.shape, w.shape);
  });
  return dx;
}

DeviceArray conv2d_backward_weight_checked(const DeviceArray& x, const DeviceArray& dy,
                                           Pair kernel_size, Pair stride, Pair padding,
                                           Pair dilation, int64_t groups) {
  const std::string op = "conv2d_backward_weight";
  bind::check_dtype(op, "input", x.dtype, kFloat);
  check_array(op, "input", x, 4, x.dtype);
  check_array(op, "grad_output", dy, 4, x.dtype);
  const ConvGeom g = bind::conv_weight_check(op, x.shape, dy.shape, kernel_size, stride,
                                             padding, dilation, groups);
  check_gemm_limits(op, g);
  const int64_t N = x.shape[0], Cin = x.shape[1], Cout = dy.shape[1];
  DeviceArray dw = new_array(op, {Cout, Cin / groups, kernel_size[0], kernel_size[1]}, x.dtype);
  bind::dispatch_float(x.dtype == DType::f64, [&](auto t) {
    using T = decltype(t);
    bind::run_nogil(op, [&] {
      conv2d_backward_weight<T>(N, groups, Cout, g, data_of<const T>(x), data_of<const T>(dy),
                                data_of<T>(dw));
    }, x.shape, dy.shape);
  });
  return dw;
}

// (N, C, ...) -> (C,): the sum over every axis but 1 (the bias gradient).
DeviceArray channel_sum_checked(const DeviceArray& dy) {
  const std::string op = "channel_sum";
  bind::check_dtype(op, "input", dy.dtype, kFloat);
  if (dy.ndim() < 2) fail(op, "input must be at least 2-D, got shape ", shape_of(dy));
  check_array(op, "input", dy, dy.ndim(), dy.dtype);
  const int64_t N = dy.shape[0], C = dy.shape[1], L = N ? dy.numel() / (N * C) : 0;
  DeviceArray out = new_array(op, {C}, dy.dtype);
  bind::dispatch_float(dy.dtype == DType::f64, [&](auto t) {
    using T = decltype(t);
    bind::run_nogil(op, [&] {
      channel_sum<T>(N, C, L, data_of<const T>(dy), data_of<T>(out));
    }, dy.shape);
  });
  return out;
}

// ------------------------------------------------------------------------------ DLPack
// Capsules per the DLPack Python spec (ownership rules in cuda/dlpack.h). Building and reading
// them needs no GPU; only the stream hand-over (dlpack_stream_wait) does.
namespace dl = gradflow::dlpack;

template <typename Managed>
constexpr bool kVersioned = std::is_same_v<Managed, dl::DLManagedTensorVersioned>;
template <typename Managed>
constexpr const char* kCapsuleName = kVersioned<Managed> ? "dltensor_versioned" : "dltensor";
template <typename Managed>
constexpr const char* kUsedName =
    kVersioned<Managed> ? "used_dltensor_versioned" : "used_dltensor";

// The capsule's destructor: a capsule nobody consumed still owns its tensor.
template <typename Managed>
void release_unconsumed(PyObject* capsule) {
  if (!PyCapsule_IsValid(capsule, kCapsuleName<Managed>)) return;  // renamed: consumed
  auto* m = static_cast<Managed*>(PyCapsule_GetPointer(capsule, kCapsuleName<Managed>));
  if (m->deleter != nullptr) m->deleter(m);
}

// A capsule sharing x's memory (no copy); x's storage lives until the consumer's deleter.
template <typename Managed>
py::object to_dlpack(const DeviceArray& x, bool copied) {
  for (int64_t s : x.strides)
    if (s < 0)
      throw py::buffer_error("__dlpack__: a view with negative strides " + shape_str(x.strides) +
                             " cannot be shared (DLPack consumers expect non-negative ones)");
  Managed* m = dl::make_export<Managed>(x.storage, x.storage->ptr, x.offset, x.shape, x.strides,
                                        x.dtype, {dl::kDLCUDA, 0}, copied ? dl::kFlagIsCopied : 0);
  PyObject* capsule = PyCapsule_New(m, kCapsuleName<Managed>, &release_unconsumed<Managed>);
  if (capsule == nullptr) {
    m->deleter(m);
    throw py::error_already_set();
  }
  return py::reinterpret_steal<py::object>(capsule);
}

// Before imported memory goes back to its producer, which may reuse it at once: kernels queued
// on our stream may still read it, so they finish first. Never throws (it runs in a
// destructor): without a device or a stream no kernel of ours can have used the memory, and
// after a device failure releasing is still the best left to do.
void finish_queued_work() noexcept {
  try {
    cudaStreamSynchronize(static_cast<cudaStream_t>(stream()));
  } catch (const CudaError&) {  // no device: stream() could not be made
  }
  cudaGetLastError();  // clear a non-sticky error so later calls start clean
}

// Calls the producer's deleter once the last array viewing its memory dies (from any thread:
// the GIL is taken, as a producer's deleter may need it, and a pending Python error is kept
// aside; after interpreter exit, never).
template <typename Managed>
std::function<void()> producer_release(Managed* m) {
  return [m] {
    if (m->deleter == nullptr || !Py_IsInitialized()) return;
    finish_queued_work();
    py::gil_scoped_acquire gil;
    py::error_scope keep_pending_error;
    m->deleter(m);
  };
}

// Takes the tensor out of an unconsumed capsule: checks it, renames the capsule "used_...",
// and wraps the memory in a storage that releases it through the producer's deleter. On any
// error the capsule keeps its name and so its ownership.
template <typename Managed>
DeviceArray import_capsule(PyObject* capsule) {
  auto* m = static_cast<Managed*>(PyCapsule_GetPointer(capsule, kCapsuleName<Managed>));
  if (m == nullptr) throw py::error_already_set();
  if constexpr (kVersioned<Managed>) {
    if (m->version.major != dl::kMajorVersion)
      throw py::buffer_error("from_dlpack: DLPack version " + std::to_string(m->version.major) +
                             "." + std::to_string(m->version.minor) + " is not supported "
                             "(gradflow reads major version " +
                             std::to_string(dl::kMajorVersion) + ")");
    if (m->flags & dl::kFlagReadOnly)
      throw py::buffer_error("from_dlpack: the DLPack tensor is read-only, and gradflow "
                             "tensors are writable; copy it first");
  }
  dl::ImportedView v;
  try {
    v = dl::check_import(m->dl_tensor, {dl::kDLCUDA, 0}, "from_dlpack");
  } catch (const dl::ExchangeError& e) {
    if (e.buffer) throw py::buffer_error(e.what());
    throw py::type_error(e.what());
  }
  if (PyCapsule_SetName(capsule, kUsedName<Managed>) != 0) throw py::error_already_set();
  DeviceArray a;  // from here on the deleter is ours to call
  try {
    a.storage = std::make_shared<Storage>(v.base, v.nbytes, producer_release(m));
  } catch (...) {
    if (m->deleter != nullptr) m->deleter(m);
    throw;
  }
  a.shape = std::move(v.shape);
  a.strides = std::move(v.strides);
  a.dtype = v.dtype;
  return a;
}

DeviceArray from_dlpack(const py::object& capsule) {
  PyObject* c = capsule.ptr();
  if (PyCapsule_IsValid(c, kCapsuleName<dl::DLManagedTensorVersioned>))
    return import_capsule<dl::DLManagedTensorVersioned>(c);
  if (PyCapsule_IsValid(c, kCapsuleName<dl::DLManagedTensor>))
    return import_capsule<dl::DLManagedTensor>(c);
  if (PyCapsule_IsValid(c, kUsedName<dl::DLManagedTensorVersioned>) ||
      PyCapsule_IsValid(c, kUsedName<dl::DLManagedTensor>))
    throw py::buffer_error("from_dlpack: this DLPack capsule was consumed already; a capsule "
                           "can be imported once (call __dlpack__ again for a new one)");
  throw py::type_error("from_dlpack: expected a DLPack capsule ('dltensor' or "
                       "'dltensor_versioned'), got " + std::string(py::str(py::type::of(capsule))));
}

// The stream hand-over of DLPack: the consumer's stream (a cudaStream_t as an int; 1 is the
// legacy default stream, 2 the per-thread one) waits for the work queued on ours so far, by an
// event recorded on ours. The host never blocks.
void dlpack_stream_wait(uintptr_t consumer) {
  cudaStream_t ours = static_cast<cudaStream_t>(stream());
  cudaStream_t theirs = reinterpret_cast<cudaStream_t>(consumer);
  if (theirs == ours) return;
  cudaEvent_t done;
  check(cudaEventCreateWithFlags(&done, cudaEventDisableTiming), "__dlpack__: cudaEventCreate");
  cudaError_t status = cudaEventRecord(done, ours);
  if (status == cudaSuccess) status = cudaStreamWaitEvent(theirs, done, 0);
  cudaEventDestroy(done);  // released once the wait is done with it
  check(status, "__dlpack__: making the consumer's stream wait");
}

std::string repr(const DeviceArray& x) {
  return "DeviceArray(shape=" + shape_of(x) + ", dtype=" + dtype_name(x.dtype) +
         ", strides=" + shape_str(x.strides) + ", offset=" + std::to_string(x.offset) + ")";
}

}  // namespace

PYBIND11_MODULE(_cuda, m) {
  m.doc() = "gradflow CUDA kernels";
  static py::exception<CudaError> cuda_error(m, "CudaError", PyExc_RuntimeError);

  // ---- devices and runtime
  m.def("device_count", &device_count);
  m.def("unavailable_reason", &unavailable_reason);
  m.def("get_device_name", [](int d) { return std::string(properties(d).name); },
        py::arg("device") = 0);
  m.def("total_memory", [](int d) { return static_cast<size_t>(properties(d).totalGlobalMem); },
        py::arg("device") = 0);
  m.def("get_device_capability", [](int d) {
    cudaDeviceProp p = properties(d);
    return py::make_tuple(p.major, p.minor);
  }, py::arg("device") = 0);
  int runtime = 0;
  cudaRuntimeGetVersion(&runtime);
  m.attr("runtime_version") = runtime;
  m.def("synchronize", [] { bind::run_nogil("synchronize", [] { synchronize(); }); });
  m.def("memory_allocated", &memory_allocated);
  m.def("max_memory_allocated", &max_memory_allocated);
  m.def("memory_reserved", &memory_reserved);
  m.def("reset_peak_memory_stats", &reset_peak_memory_stats);
  m.def("empty_cache", [] { bind::run_nogil("empty_cache", [] { empty_cache(); }); });
  m.def("manual_seed", [](uint64_t seed) { manual_seed(seed); });
  m.attr("max_dims") = kMaxDims;
  // the kernel names, checked against gradflow/op_table.py by tests/test_op_table.py
  m.attr("unary_ops") = py::tuple(py::cast(unary_names()));
  py::dict unary_dtypes;  // name -> op_table.py's dtype class ("float", "int", "bool")
  for (const UnaryKernel& k : unary_kernels())
    unary_dtypes[k.name] = k.dtypes == UnaryDtypes::float_only ? "float"
                           : k.dtypes == UnaryDtypes::int_ok   ? "int"
                                                               : "bool";
  m.attr("unary_dtypes") = unary_dtypes;
  m.attr("binary_ops") = py::tuple(py::cast(kBinary));
  m.attr("reduce_ops") = py::tuple(py::cast(kReduce));

  // ---- device arrays
  py::class_<DeviceArray>(m, "DeviceArray")
      .def_property_readonly("shape", [](const DeviceArray& x) {
        py::tuple t(x.shape.size());
        for (size_t i = 0; i < x.shape.size(); ++i) t[i] = x.shape[i];
        return t;
      })
      .def_property_readonly("strides", [](const DeviceArray& x) {
        py::tuple t(x.strides.size());
        for (size_t i = 0; i < x.strides.size(); ++i) t[i] = x.strides[i];
        return t;
      })
      .def_property_readonly("ndim", &DeviceArray::ndim)
      .def_property_readonly("size", &DeviceArray::numel)
      .def_property_readonly("dtype", [](const DeviceArray& x) { return np_dtype(x.dtype); })
      .def_property_readonly("itemsize", [](const DeviceArray& x) { return itemsize(x.dtype); })
      .def_property_readonly("offset", [](const DeviceArray& x) { return x.offset; })
      .def_property_readonly("storage_ptr", [](const DeviceArray& x) {
        return reinterpret_cast<uintptr_t>(x.storage->ptr);
      })
      .def_property_readonly("storage_nbytes",
                             [](const DeviceArray& x) { return x.storage->nbytes; })
      .def_property_readonly("is_contiguous", &DeviceArray::is_contiguous)
      .def("as_strided", &as_strided, py::arg("shape"), py::arg("strides"), py::arg("offset"))
      .def("__repr__", &repr);

  // ---- DLPack (gradflow/backends/cuda.py adds the protocol's stream and copy rules)
  m.def("to_dlpack", [](const DeviceArray& x, bool versioned, bool copied) {
    return versioned ? to_dlpack<dl::DLManagedTensorVersioned>(x, copied)
                     : to_dlpack<dl::DLManagedTensor>(x, copied);
  }, py::arg("x"), py::arg("versioned"), py::arg("copied") = false);
  m.def("from_dlpack", &from_dlpack, py::arg("capsule"));
  m.def("dlpack_stream_wait", [](uintptr_t consumer) {
    bind::run_nogil("__dlpack__", [&] { dlpack_stream_wait(consumer); });
  }, py::arg("consumer_stream"));
  m.def("stream_handle", [] { return reinterpret_cast<uintptr_t>(stream()); });

  m.def("empty", [](const Shape& shape, const py::object& dtype) {
    return new_array("empty", shape, to_dtype("empty", dtype));
  });
  m.def("from_numpy", &from_numpy);
  m.def("to_numpy", &to_numpy);
  m.def("copy_", [](const DeviceArray& dst, const DeviceArray& src) {
    check_same_shape("copy_", "src", src, dst.shape);
    bind::run_nogil("copy_", [&] { copy_cast(dst, src); }, dst.shape);
  });
  m.def("fill_", [](const DeviceArray& dst, const py::object& value) {
    const bool exact = dst.dtype == DType::i64 && !py::isinstance<py::float_>(value);
    const double v = exact ? 0.0 : value.cast<double>();
    const int64_t iv = exact ? value.cast<int64_t>() : static_cast<int64_t>(v);
    bind::run_nogil("fill_", [&] { fill(dst, v, iv); }, dst.shape);
  });
  m.def("arange", [](int64_t n, const py::object& start, const py::object& step,
                     const py::object& dtype) {
    DeviceArray out = new_array("arange", {n}, to_dtype("arange", dtype));
    const bool ints = out.dtype == DType::i64;
    if (out.dtype == DType::b8) throw py::type_error("arange: bool ranges are not supported");
    const double s = start.cast<double>(), d = step.cast<double>();
    const int64_t is = ints ? start.cast<int64_t>() : 0, id = ints ? step.cast<int64_t>() : 0;
    bind::run_nogil("arange", [&] { arange(out, s, d, is, id); }, out.shape);
    return out;
  });

  // ---- elementwise
  m.def("unary", &unary_op, py::arg("op"), py::arg("out"), py::arg("x"));
  m.def("binary", &binary_op, py::arg("op"), py::arg("out"), py::arg("a"), py::arg("b"),
        py::arg("dtype"));
  m.def("where", [](const DeviceArray& out, const DeviceArray& cond, const py::object& a,
                    const py::object& b) {
    bind::check_dtype("where", "cond", cond.dtype, {DType::b8});
    check_same_shape("where", "cond", cond, out.shape);
    const Operand oa = operand("where", "a", a, out.dtype, out.shape);
    const Operand ob = operand("where", "b", b, out.dtype, out.shape);
    bind::run_nogil("where", [&] { where(out, cond, oa, ob); }, out.shape);
  });

  // ---- reductions
  m.def("reduce", [](const std::string& name, const DeviceArray& out, const DeviceArray& x,
                     int n_reduce) {
    const std::string op = "reduce " + name;
    const Reduce r = op_code<Reduce>("reduce", name, kReduce);
    if (n_reduce < 0 || n_reduce > x.ndim()) fail(op, "bad number of reduced dims");
    if (!out.is_contiguous()) fail(op, "out must be contiguous");
    check_same_shape(op, "out", out, Shape(x.shape.begin(), x.shape.end() - n_reduce));
    if (r == Reduce::mean) bind::check_dtype(op, "out", out.dtype, kFloat);
    bind::run_nogil(op, [&] { reduce(r, out, x, n_reduce); }, x.shape);
  });
  m.def("argreduce", [](const std::string& name, const DeviceArray& out, const DeviceArray& x) {
    const std::string op = name;
    if (name != "argmax" && name != "argmin") fail(op, "unknown op");
    if (x.ndim() < 1 || x.shape.back() == 0)
      fail(op, "attempt to get ", name, " of an empty sequence");
    bind::check_dtype(op, "out", out.dtype, {DType::i64});
    if (!out.is_contiguous()) fail(op, "out must be contiguous");
    check_same_shape(op, "out", out, Shape(x.shape.begin(), x.shape.end() - 1));
    bind::run_nogil(op, [&] { argreduce(name == "argmax", out, x); }, x.shape);
  });

  // ---- gather / scatter
  m.def("index", &index_op_checked, py::arg("mode"), py::arg("target"), py::arg("idx"),
        py::arg("nb"), py::arg("values"));
  m.def("axis_index", &axis_op_checked, py::arg("mode"), py::arg("x"), py::arg("axis"),
        py::arg("index"), py::arg("values"));

  // ---- random numbers
  m.def("random", [](const std::string& kind, const DeviceArray& out, int64_t low, int64_t high) {
    const std::string op = "random " + kind;
    if (!out.is_contiguous()) fail(op, "out must be contiguous");
    if (kind == "uniform" || kind == "normal") {
      bind::check_dtype(op, "out", out.dtype, kFloat);
      const Random r = kind == "uniform" ? Random::uniform : Random::normal;
      bind::run_nogil(op, [&] { random(r, out, 0, 1); }, out.shape);
    } else if (kind == "integer" || kind == "bits") {
      bind::check_dtype(op, "out", out.dtype, {DType::i64});
      if (kind == "integer" && high <= low)
        fail(op, "high (", high, ") must be > low (", low, ")");
      const Random r = kind == "integer" ? Random::integer : Random::bits;
      bind::run_nogil(op, [&] { random(r, out, low, high); }, out.shape);
    } else {
      fail(op, "unknown kind");
    }
  });

  // ---- linear algebra
  m.def("gemm", &gemm_checked, py::arg("a"), py::arg("b"), py::arg("out"));

  // ---- nn kernels: pooling
  m.def("max_pool2d", &nnk::max_pool2d_checked);
  m.def("adaptive_max_pool2d", &nnk::adaptive_max_pool2d_checked);
  m.def("max_pool2d_backward", [](const DeviceArray& dy, const DeviceArray& idx,
                                  nnk::Pair input_size) {
    return nnk::scatter(dy, idx, input_size, true);
  });
  m.def("max_unpool2d", [](const DeviceArray& x, const DeviceArray& idx, nnk::Pair output_size) {
    return nnk::scatter(x, idx, output_size, false);
  });
  m.def("avg_pool2d", &nnk::avg_pool2d_checked);
  m.def("avg_pool2d_backward", &nnk::avg_pool2d_backward_checked);
  m.def("adaptive_avg_pool2d", &nnk::adaptive_avg_pool2d_checked);
  m.def("adaptive_avg_pool2d_backward", &nnk::adaptive_avg_pool2d_backward_checked);
  m.def("interpolate", [](const DeviceArray& x, nnk::Pair size, std::array<double, 2> scales,
                          bool bilinear, bool align_corners) {
    return nnk::resize(x, size, scales, bilinear, align_corners, false);
  });
  m.def("interpolate_backward", [](const DeviceArray& dy, nnk::Pair input_size,
                                   std::array<double, 2> scales, bool bilinear,
                                   bool align_corners) {
    return nnk::resize(dy, input_size, scales, bilinear, align_corners, true);
  });

  // ---- nn kernels: normalization
  m.def("batch_norm_train", &nnk::batch_norm_train_checked);
  m.def("batch_norm_apply", &nnk::batch_norm_apply_checked);
  m.def("batch_norm_backward", &nnk::batch_norm_backward_checked);

  // ---- nn kernels: softmax family and losses
  m.def("softmax", &nnk::softmax_checked, py::arg("x"), py::arg("axis"), py::arg("log"));
  m.def("softmax_backward", &nnk::softmax_backward_checked, py::arg("y"), py::arg("grad"),
        py::arg("axis"), py::arg("log"));
  m.def("nll_loss", &nnk::nll_loss_checked);
  m.def("nll_loss_backward", &nnk::nll_loss_backward_checked);
  m.def("host_waits", &host_waits);
  m.def("device_to_host_copies", &device_to_host_copies);
  // ---- convolution
  // Arrays are C-contiguous float32/float64 NCHW device arrays; (h, w) pairs are tuples of two
  // ints; the checks and errors are the CPU module's (gradflow._C).
  m.def("conv2d_forward", &conv2d_forward_checked, py::arg("input"), py::arg("weight"),
        py::arg("bias"), py::arg("stride"), py::arg("padding"), py::arg("dilation"),
        py::arg("groups"), "y = conv2d(input, weight) + bias (im2col + GEMM).");
  m.def("conv2d_backward_input", &conv2d_backward_input_checked, py::arg("grad_output"),
        py::arg("weight"), py::arg("input_size"), py::arg("stride"), py::arg("padding"),
        py::arg("dilation"), py::arg("groups"),
        "Gradient of conv2d w.r.t. its input (= conv_transpose2d forward).");
  m.def("conv2d_backward_weight", &conv2d_backward_weight_checked, py::arg("input"),
        py::arg("grad_output"), py::arg("kernel_size"), py::arg("stride"), py::arg("padding"),
        py::arg("dilation"), py::arg("groups"), "Gradient of conv2d w.r.t. its weight.");
  m.def("channel_sum", &channel_sum_checked, py::arg("input"),
        "Sum of an (N, C, ...) array over every axis but 1.");
  m.def("set_conv_workspace_bytes", [](int64_t bytes) {
    if (bytes < 1) fail("set_conv_workspace_bytes", "bytes must be >= 1, got ", bytes);
    set_conv_workspace_bytes(bytes);
  }, py::arg("bytes"),
        "Cap on one convolution call's column workspace (default 256 MiB); larger batches "
        "run in chunks of images, larger images in runs of output positions.");
  m.def("conv_workspace_bytes", &conv_workspace_bytes);

  // ---- events (timing the queued kernels, e.g. benchmarks/conv.py)
  py::class_<Event>(m, "Event")
      .def(py::init<>())
      .def("record", &Event::record)
      .def("synchronize", [](Event& e) {
        bind::run_nogil("Event.synchronize", [&] { e.synchronize(); });
      })
      .def("elapsed_time", &Event::elapsed_ms, py::arg("end"),
           "Milliseconds from this event to `end` (both recorded, end reached).");
}
