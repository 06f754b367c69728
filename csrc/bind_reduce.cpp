#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <string>
#include <vector>

#include "array_checks.hpp"
#include "symdiff/cpu/reduce.hpp"
#ifdef SYMDIFF_WITH_CUDA
#include "symdiff/cuda/api.hpp"
#endif

namespace py = pybind11;
using namespace symdiff::bind;

namespace {

struct split_t {
  int64_t outer = 1, n = 1, inner = 1;
  std::vector<py::ssize_t> out_shape;
};

split_t split(const py::array& a, int axis, bool keepdims) {
  split_t s;
  for (int d = 0; d < a.ndim(); ++d) {
    const int64_t size = a.shape(d);
    if (d < axis) s.outer *= size;
    else if (d == axis) s.n = size;
    else s.inner *= size;
    if (d != axis) s.out_shape.push_back(size);
    else if (keepdims) s.out_shape.push_back(1);
  }
  return s;
}

template <class T, class Kernel>
py::array run(const py::array& a, const split_t& s, Kernel kernel) {
  py::array_t<T> out(s.out_shape);
  const T* in = static_cast<const T*>(a.data());
  T* o = out.mutable_data();
  {
    py::gil_scoped_release release;
    kernel(in, o, s.outer, s.n, s.inner);
  }
  return out;
}

// The checks every axis reduction shares; returns the normalised axis.
int check_reduce(const py::array& a, int axis, const std::string& fn) {
  require_float(a, (fn + "(a)").c_str());
  require_contiguous(a, (fn + "(a)").c_str());
  if (a.ndim() == 0) throw py::value_error(fn + "(a): needs at least one dimension");
  return normalize_axis(axis, static_cast<int>(a.ndim()), (fn + "(axis)").c_str());
}

template <template <class> class Kernel>
py::array reduce_cpu(const py::array& a, int axis, bool keepdims, const std::string& fn) {
  axis = check_reduce(a, axis, fn);
  const split_t s = split(a, axis, keepdims);
  if (symdiff::bind::is_f32(a)) return run<float>(a, s, Kernel<float>::fn);
  return run<double>(a, s, Kernel<double>::fn);
}

// Class wrappers so reduce_cpu can pick the float or double instantiation of a kernel template.
template <class T> struct sum_kernel { static constexpr auto fn = symdiff::cpu::sum_axis<T>; };
template <class T> struct mean_kernel { static constexpr auto fn = symdiff::cpu::mean_axis<T>; };
template <class T> struct max_kernel { static constexpr auto fn = symdiff::cpu::max_axis<T>; };

py::array max_axis(const py::array& a, int axis, bool keepdims) {
  const int ax = check_reduce(a, axis, "max_axis");
  if (a.shape(ax) == 0)
    throw py::value_error("max_axis(a): axis " + std::to_string(axis) + " of shape " + shape_str(a) +
                          " has length 0, and the maximum of nothing is undefined");
  return reduce_cpu<max_kernel>(a, axis, keepdims, "max_axis");
}

py::array cuda_sum_axis(const py::array& a, int axis, bool keepdims) {
  axis = check_reduce(a, axis, "cuda_sum_axis");
  const split_t s = split(a, axis, keepdims);
  const bool f32 = symdiff::bind::is_f32(a);
#ifdef SYMDIFF_WITH_CUDA
  if (symdiff::cuda::device_count() == 0) throw std::runtime_error("cuda_sum_axis: no CUDA device is available");
  if (f32) return run<float>(a, s, [](const float* i, float* o, int64_t x, int64_t y, int64_t z) {
      symdiff::cuda::sum_axis(i, o, x, y, z); });
  return run<double>(a, s, [](const double* i, double* o, int64_t x, int64_t y, int64_t z) {
      symdiff::cuda::sum_axis(i, o, x, y, z); });
#else
  (void)s;
  (void)f32;
  throw std::runtime_error("cuda_sum_axis: symdiff was built without CUDA (nvcc was not found)");
#endif
}

}  // namespace

void bind_reduce(py::module_& m) {
  m.def("sum_axis",
        [](const py::array& a, int axis, bool keepdims) { return reduce_cpu<sum_kernel>(a, axis, keepdims, "sum_axis"); },
        py::arg("a"), py::arg("axis"), py::arg("keepdims") = false,
        "Sum of a C-contiguous float32/float64 array along one axis (OpenMP).");
  m.def("mean_axis",
        [](const py::array& a, int axis, bool keepdims) { return reduce_cpu<mean_kernel>(a, axis, keepdims, "mean_axis"); },
        py::arg("a"), py::arg("axis"), py::arg("keepdims") = false,
        "Mean along one axis (double accumulation, OpenMP); an empty axis gives NaN like numpy.");
  m.def("max_axis", &max_axis, py::arg("a"), py::arg("axis"), py::arg("keepdims") = false,
        "Maximum along one axis (OpenMP); NaN propagates like numpy; an empty axis is a ValueError.");
  m.def("cuda_sum_axis", &cuda_sum_axis,
        py::arg("a"), py::arg("axis"), py::arg("keepdims") = false,
        "sum_axis on the GPU (copies in and out).");
}
