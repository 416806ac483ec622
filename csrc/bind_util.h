// Argument checks shared by the binding files (the only code that sees pybind11).
// Every bound entry point validates its arrays with these before a kernel touches memory.
#pragma once
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <string>
#include <vector>

namespace gradflow::bind {
namespace py = pybind11;

// "(2, 3)" / "(4,)". Built with std::to_string rather than iostreams: a std::ostringstream
// crashed inside the CUDA module on a GPU machine (its stream locale was not set up).
inline std::string shape_str(const std::vector<int64_t>& shape) {
  std::string s = "(";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + (shape.size() == 1 ? ",)" : ")");
}

inline std::string shape_str(const py::array& a) {
  return shape_str(std::vector<int64_t>(a.shape(), a.shape() + a.ndim()));
}

[[noreturn]] inline void fail(const std::string& op, const std::string& msg) {
  throw py::value_error(op + ": " + msg);
}

// The array must be C-contiguous, of dtype T, with `ndim` dimensions (ndim < 0: any).
template <typename T>
void check_array(const std::string& op, const char* name, const py::array& a, int ndim = -1) {
  if (!py::isinstance<py::array_t<T>>(a) || !a.dtype().is(py::dtype::of<T>()))
    throw py::type_error(op + ": " + name + " must have dtype " +
                         std::string(py::str(py::dtype::of<T>())) + ", got " +
                         std::string(py::str(a.dtype())));
  if (ndim >= 0 && a.ndim() != ndim)
    fail(op, std::string(name) + " must be " + std::to_string(ndim) + "-D, got shape " +
                 shape_str(a));
  if (!(a.flags() & py::array::c_style))
    fail(op, std::string(name) + " must be C-contiguous (shape " + shape_str(a) + ")");
}

template <typename T>
void check_writable(const std::string& op, const char* name, const py::array& a) {
  if (!a.writeable()) fail(op, std::string(name) + " must be writable");
}

}  // namespace gradflow::bind
