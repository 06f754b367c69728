// Argument checks shared by the bindings: everything is validated before a kernel touches memory.
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <string>

namespace symdiff::bind {

namespace py = pybind11;

inline std::string dtype_name(const py::array& a) { return py::str(a.dtype()).cast<std::string>(); }

// "(2, 3)", "(5,)": numpy's spelling, for error messages.
inline std::string shape_str(const py::array& a) {
  std::string s = "(";
  for (py::ssize_t d = 0; d < a.ndim(); ++d) s += (d ? ", " : "") + std::to_string(a.shape(d));
  return s + (a.ndim() == 1 ? ",)" : ")");
}

inline void require_float(const py::array& a, const char* arg) {
  if (!a.dtype().equal(py::dtype::of<float>()) && !a.dtype().equal(py::dtype::of<double>()))
    throw py::type_error(std::string(arg) + ": expected float32 or float64, got " + dtype_name(a));
}

inline void require_contiguous(const py::array& a, const char* arg) {
  if (!(a.flags() & py::array::c_style))
    throw py::value_error(std::string(arg) + ": the array must be C-contiguous (use numpy.ascontiguousarray)");
}

inline int normalize_axis(int axis, int ndim, const char* arg) {
  if (axis < -ndim || axis >= ndim)
    throw py::value_error(std::string(arg) + ": axis " + std::to_string(axis) + " is out of range for " +
                          std::to_string(ndim) + " dimensions");
  return axis < 0 ? axis + ndim : axis;
}

}  // namespace symdiff::bind
