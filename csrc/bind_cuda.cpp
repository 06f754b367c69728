#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#ifdef SYMDIFF_WITH_CUDA
#include "symdiff/cuda/api.hpp"
#endif

namespace py = pybind11;

void bind_cuda(py::module_& m) {
  m.def("cuda_info", [] {
    py::dict d;
#ifdef SYMDIFF_WITH_CUDA
    const int count = symdiff::cuda::device_count();
    py::list names;
    for (int i = 0; i < count; ++i) names.append(symdiff::cuda::device_name(i));
    d["built"] = true;
    d["device_count"] = count;
    d["devices"] = names;
#else
    d["built"] = false;
    d["device_count"] = 0;
    d["devices"] = py::list();
#endif
    return d;
  }, "Whether the CUDA kernels were built, and the devices present.");
}
