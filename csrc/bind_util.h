// What the binding files (the only code that sees pybind11) share: the one dtype check, typed
// host-array arguments and outputs, the float/double dispatch and run_nogil. Every bound entry
// point validates its arguments with these before a kernel touches memory, then runs the
// kernel through run_nogil.
#pragma once
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <algorithm>
#include <initializer_list>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "cpu/gemm.h"
#include "out_of_memory.h"

namespace gradflow::bind {
namespace py = pybind11;
using Shape = std::vector<int64_t>;
using OptArray = std::optional<py::array>;  // an array argument that may be None

// "(2, 3)" / "(4,)". Built with std::to_string rather than iostreams: a std::ostringstream
// crashed inside the CUDA module on a GPU machine (its stream locale was not set up).
inline std::string shape_str(const Shape& shape) {
  std::string s = "(";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + (shape.size() == 1 ? ",)" : ")");
}

inline Shape shape_of(const py::array& a) { return Shape(a.shape(), a.shape() + a.ndim()); }

inline std::string shape_str(const py::array& a) { return shape_str(shape_of(a)); }

// A message from its parts: strings as they are, numbers in decimal.
template <typename T>
std::string to_str(const T& part) {
  if constexpr (std::is_arithmetic_v<T>)
    return std::to_string(part);
  else
    return std::string(part);
}

template <typename... Parts>
std::string cat(const Parts&... parts) {
  std::string s;
  ((s += to_str(parts)), ...);
  return s;
}

// Raises ValueError "op: " + the parts: fail(op, "groups must be >= 1, got ", groups).
template <typename... Parts>
[[noreturn]] void fail(const std::string& op, const Parts&... parts) {
  throw py::value_error(cat(op, ": ", parts...));
}

// `value`, checked to be at least `min`: else "op: name must be >= min, got value".
template <typename I>
I at_least(const std::string& op, const char* name, I value, I min) {
  if (value < min) fail(op, name, " must be >= ", min, ", got ", value);
  return value;
}

// ------------------------------------------------------------------------------ dtypes
// D is a NumPy py::dtype or the CUDA module's DType, which brings its own dtype_name
// (found by argument-dependent lookup).
inline std::string dtype_name(const py::dtype& d) { return py::str(d); }
// Equal, not only identical: an unpickled array carries an equal copy of NumPy's float32.
inline bool same_dtype(const py::dtype& a, const py::dtype& b) { return a.is(b) || a.equal(b); }
template <typename D>
bool same_dtype(D a, D b) { return a == b; }

// The dtype check of both modules: `got` must be one of `want`, else a TypeError
// "op: name must have dtype float32 or float64, got int64"; `like` follows the wanted names
// (" like a": the dtype of another argument).
template <typename D>
void check_dtype(const std::string& op, const char* name, const D& got,
                 std::initializer_list<D> want, const char* like = "") {
  for (const D& w : want)
    if (same_dtype(got, w)) return;
  std::string names;
  for (const D& w : want) names += cat(names.empty() ? "" : " or ", dtype_name(w));
  throw py::type_error(cat(op, ": ", name, " must have dtype ", names, like, ", got ",
                           dtype_name(got)));
}

// ------------------------------------------------------------------------------ host arrays
constexpr int64_t kMaxDim = int64_t(1) << 31;

inline void check_rank(const std::string& op, const char* name, const py::array& a, int ndim) {
  if (a.ndim() != ndim)
    fail(op, name, " must be ", ndim, "-D, got shape ", shape_str(a));
}

// Every dimension in [1, 2^31), except the first, which may be 0 (an empty batch), and an
// element count below 2^62 (Sizes::checked below; the CUDA module checks its arrays with it too).
inline void check_sizes(const std::string& op, const char* name, const Shape& shape) {
  int64_t total = 1;
  for (size_t i = 0; i < shape.size(); ++i) {
    const int64_t d = shape[i];
    if (d < (i == 0 ? 0 : 1) || d >= kMaxDim)
      fail(op, name, " has an invalid size: shape ", shape_str(shape));
    if (d != 0 && total > (int64_t(1) << 62) / d) fail(op, name, " is too large");
    total *= d;
  }
}

// Sizes::checked: every dimension in [1, 2^31), except the first, which may be 0 (an empty
// batch), and an element count below 2^62. Sizes::any: elementwise inputs, and arrays whose
// shape is compared with a checked one next (so that the mismatch is what gets reported).
enum class Sizes { checked, any };

// An array argument of dtype T, rank `ndim` (-1: any), C-contiguous and of valid sizes, in
// that order of checks; the kernel gets data() and the shape. It refers to the argument, so
// it lives no longer than the call.
template <typename T>
class Arg {
 public:
  Arg(const std::string& op, const char* name, const py::array& a, int ndim = -1,
      Sizes sizes = Sizes::checked)
      : array(a) {
    check_dtype(op, name, a.dtype(), {py::dtype::of<T>()});
    if (ndim >= 0) check_rank(op, name, a, ndim);
    if (!(a.flags() & py::array::c_style))
      fail(op, name, " must be C-contiguous (shape ", shape_str(a), ")");
    if (sizes == Sizes::checked)
      check_sizes(op, name, shape_of(a));
  }

  const T* data() const { return static_cast<const T*>(array.data()); }
  int64_t shape(int i) const { return array.shape(i); }
  Shape shape() const { return shape_of(array); }
  int ndim() const { return static_cast<int>(array.ndim()); }
  int64_t size() const { return array.size(); }

  const py::array& array;
};

template <typename T>
std::string shape_str(const Arg<T>& a) {
  return shape_str(a.array);
}

// Two arguments of one shape: "op: grad (8,) and y (4,) must have the same shape".
inline void check_same_shape(const std::string& op, const char* name, const py::array& a,
                             const char* other_name, const py::array& other) {
  if (shape_of(a) != shape_of(other))
    fail(op, name, " ", shape_str(a), " and ", other_name, " ", shape_str(other),
         " must have the same shape");
}

// An optional (n,) vector argument of dtype T (a bias, weight or batch statistic): its data,
// or null for None.
template <typename T>
const T* opt_vector(const std::string& op, const char* name, const OptArray& v, int64_t n) {
  if (!v) return nullptr;
  const Arg<T> a(op, name, *v, 1, Sizes::any);
  if (a.shape(0) != n) fail(op, name, " must have shape (", n, ",), got ", shape_str(*v));
  return a.data();
}

// An argument of dtype T that the kernel writes in place: C-contiguous, writable and with as
// many elements as `like`. Returns its data.
template <typename T>
T* inout(const std::string& op, const char* name, py::array a, const py::array& like) {
  const Arg<T> checked(op, name, a, -1, Sizes::any);
  if (checked.size() != like.size())
    fail(op, name, " ", shape_str(a), " must have as many elements as ", shape_str(like));
  if (!a.writeable()) fail(op, name, " must be writable");
  return static_cast<T*>(a.mutable_data());
}

// A new C-contiguous output of dtype T: `array` to return, `data` for the kernel to write.
// An output too large for memory is a MemoryError naming the op and the shape.
template <typename T>
struct Out {
  Out(const std::string& op, const Shape& shape)
      : array(allocate(op, shape)), data(static_cast<T*>(array.mutable_data())) {}

  py::array array;
  T* data;

 private:
  static py::array allocate(const std::string& op, const Shape& shape) {
    try {
      return py::array_t<T>(shape);
    } catch (py::error_already_set& e) {
      if (!e.matches(PyExc_MemoryError)) throw;
      const std::string what = op + ": out of memory: could not allocate the output of shape " +
                               shape_str(shape);
      PyErr_SetString(PyExc_MemoryError, what.c_str());
      throw py::error_already_set();
    }
  }
};

// ------------------------------------------------------------------------------ matrices
using cpu::Matrix;

// The last two axes of `arr` as a GEMM operand (cpu/gemm.h). Either of them must have unit
// stride; the other stride becomes the leading dimension (no copy).
template <typename T>
Matrix<T> as_matrix(const std::string& op, const char* name, const py::array& arr) {
  const int nd = static_cast<int>(arr.ndim());
  const int64_t rows = arr.shape(nd - 2), cols = arr.shape(nd - 1);
  const int64_t e = arr.itemsize(), s0 = arr.strides(nd - 2), s1 = arr.strides(nd - 1);
  T* data = static_cast<T*>(const_cast<void*>(arr.data()));
  auto leading = [e](int64_t stride, int64_t other) {
    return stride % e == 0 && stride / e >= std::max<int64_t>(1, other);
  };
  if (rows == 0 || cols == 0) return {data, rows, cols, std::max<int64_t>(1, cols), false};
  if ((cols <= 1 || s1 == e) && (rows <= 1 || leading(s0, cols)))
    return {data, rows, cols, rows <= 1 ? std::max<int64_t>(1, cols) : s0 / e, false};
  if ((rows <= 1 || s0 == e) && (cols <= 1 || leading(s1, rows)))
    return {data, rows, cols, cols <= 1 ? std::max<int64_t>(1, rows) : s1 / e, true};
  fail(op, name, " must have unit stride along one of its last two axes, got strides ",
       shape_str({s0, s1}), " bytes for shape ", shape_str(arr));
}

// The stride of axis 0 of `arr` in elements: the step between the matrices of a batch (0: one
// matrix broadcast).
inline int64_t batch_stride(const std::string& op, const char* name, const py::array& arr) {
  if (arr.strides(0) % arr.itemsize() != 0)
    fail(op, name, " has a batch stride that is not a whole element");
  return arr.strides(0) / arr.itemsize();
}

// Byte range [lo, hi) spanned by the elements of a non-empty host array.
inline std::pair<const char*, const char*> byte_span(const py::array& arr) {
  const char* lo = static_cast<const char*>(arr.data());
  const char* hi = lo + arr.itemsize();
  for (py::ssize_t i = 0; i < arr.ndim(); ++i) {
    const int64_t reach = (arr.shape(i) - 1) * arr.strides(i);
    (reach < 0 ? lo : hi) += reach;
  }
  return {lo, hi};
}

// Whether two host arrays share any byte (an output must not alias an input).
inline bool overlaps(const py::array& x, const py::array& y) {
  if (x.size() == 0 || y.size() == 0) return false;
  const auto [xl, xh] = byte_span(x);
  const auto [yl, yh] = byte_span(y);
  return xl < yh && yl < xh;
}

// ------------------------------------------------------------------------------ dispatch
// The float/double dispatch: f(T()) with T = double when `f64`, else float. The lambda names
// its type with `using T = decltype(t);` and returns the same type for both.
template <typename F>
auto dispatch_float(bool f64, F&& f) {
  if (f64) return f(double());
  return f(float());
}

inline bool is_float64(const py::array& x) {
  return same_dtype(x.dtype(), py::dtype::of<double>());
}

// The same as a binding, for entry points whose first argument is a host array:
// m.def("op", by_dtype(op<float>, op<double>), ...) runs op<double> for a float64 array and
// op<float> otherwise, whose checks then reject any other dtype.
template <typename R, typename... A>
auto by_dtype(R (*f32)(const py::array&, A...), R (*f64)(const py::array&, A...)) {
  return [f32, f64](const py::array& x, A... args) {
    return (is_float64(x) ? f64 : f32)(x, std::forward<A>(args)...);
  };
}

// ------------------------------------------------------------------------------ running
// Runs kernel() with the GIL released. A workspace it cannot allocate becomes a MemoryError
// naming the op, the bytes asked for and the shapes of `arrays` (host arrays, Args or shapes).
template <typename F, typename... Arrays>
void run_nogil(const std::string& op, F&& kernel, const Arrays&... arrays) {
  int64_t bytes = -1;
  try {
    py::gil_scoped_release nogil;
    std::forward<F>(kernel)();
    return;
  } catch (const OutOfMemory& e) {
    bytes = e.bytes();
  } catch (const std::bad_alloc&) {
  }
  std::string shapes;
  ((shapes += (shapes.empty() ? "" : ", ") + shape_str(arrays)), ...);
  const std::string size = bytes < 0 ? "its workspace" : std::to_string(bytes) + " bytes";
  PyErr_SetString(PyExc_MemoryError, (op + ": out of memory: could not allocate " + size +
                                      " for inputs of shapes " + shapes).c_str());
  throw py::error_already_set();
}

// A new array of dtype T and `shape`, written by kernel(data) through run_nogil (whose
// MemoryError names the shapes of `inputs`): the last step of most entry points.
template <typename T, typename Kernel, typename... Inputs>
py::array computed(const std::string& op, const Shape& shape, Kernel&& kernel,
                   const Inputs&... inputs) {
  Out<T> out(op, shape);
  run_nogil(op, [&] { kernel(out.data); }, inputs...);
  return out.array;
}

}  // namespace gradflow::bind
