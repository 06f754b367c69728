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

// 4 for a float32 array, 8 for float64 (native byte order), 0 for anything else. Read from the
// type number: numpy 2 compares two different dtypes through its casting tables (about 70 ns a
// comparison; the two a float64 gemm call made were a fifth of a 1 x 1 product).
inline int float_bytes(const py::array& a) {
  const py::dtype d = a.dtype();
  if (d.byteorder() != '=') return 0;
  const int num = d.num();
  return num == py::detail::npy_api::NPY_FLOAT_ ? 4 : num == py::detail::npy_api::NPY_DOUBLE_ ? 8 : 0;
}

inline bool is_f32(const py::array& a) { return float_bytes(a) == 4; }

inline void require_float(const py::array& a, const char* arg) {
  if (!float_bytes(a)) throw py::type_error(std::string(arg) + ": expected float32 or float64, got " + dtype_name(a));
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
