#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

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

py::array sum_axis(const py::array& a, int axis, bool keepdims, bool on_gpu) {
  require_float(a, "sum_axis(a)");
  require_contiguous(a, "sum_axis(a)");
  if (a.ndim() == 0) throw py::value_error("sum_axis(a): needs at least one dimension");
  axis = normalize_axis(axis, static_cast<int>(a.ndim()), "sum_axis(axis)");
  const split_t s = split(a, axis, keepdims);
  const bool f32 = a.dtype().equal(py::dtype::of<float>());
  if (!on_gpu) {
    if (f32) return run<float>(a, s, symdiff::cpu::sum_axis<float>);
    return run<double>(a, s, symdiff::cpu::sum_axis<double>);
  }
#ifdef SYMDIFF_WITH_CUDA
  if (symdiff::cuda::device_count() == 0) throw std::runtime_error("cuda_sum_axis: no CUDA device is available");
  if (f32) return run<float>(a, s, [](const float* i, float* o, int64_t x, int64_t y, int64_t z) {
      symdiff::cuda::sum_axis(i, o, x, y, z); });
  return run<double>(a, s, [](const double* i, double* o, int64_t x, int64_t y, int64_t z) {
      symdiff::cuda::sum_axis(i, o, x, y, z); });
#else
  throw std::runtime_error("cuda_sum_axis: symdiff was built without CUDA (nvcc was not found)");
#endif
}

}  // namespace

void bind_reduce(py::module_& m) {
  m.def("sum_axis", [](const py::array& a, int axis, bool keepdims) { return sum_axis(a, axis, keepdims, false); },
        py::arg("a"), py::arg("axis"), py::arg("keepdims") = false,
        "Sum of a C-contiguous float32/float64 array along one axis (OpenMP).");
  m.def("cuda_sum_axis", [](const py::array& a, int axis, bool keepdims) { return sum_axis(a, axis, keepdims, true); },
        py::arg("a"), py::arg("axis"), py::arg("keepdims") = false,
        "sum_axis on the GPU (copies in and out).");
}
