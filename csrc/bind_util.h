// Argument checks shared by the binding files (the only code that sees pybind11).
// Every bound entry point validates its arrays with these before a kernel touches memory.
#pragma once
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <string>
#include <utility>
#include <vector>

#include "out_of_memory.h"

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

// Runs kernel() with the GIL released. A workspace it cannot allocate becomes a MemoryError
// naming the op, the bytes asked for and the shapes of `arrays`.
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

}  // namespace gradflow::bind
