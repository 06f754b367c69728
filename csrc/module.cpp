// The one private extension module: symdiff.lowering._native. Each kernel family binds itself.
#include <pybind11/pybind11.h>

namespace py = pybind11;

void bind_runtime(py::module_& m);
void bind_reduce(py::module_& m);
void bind_cuda(py::module_& m);
void bind_gemm(py::module_& m);
void bind_program(py::module_& m);
void bind_softmax(py::module_& m);
void bind_cuda_kernels(py::module_& m);
void bind_conv(py::module_& m);
void bind_random(py::module_& m);

PYBIND11_MODULE(_native, m) {
  m.doc() = "symdiff's native kernels (private: use symdiff.lowering)";
  bind_runtime(m);
  bind_reduce(m);
  bind_cuda(m);
  bind_gemm(m);
  bind_program(m);
  bind_softmax(m);
  bind_cuda_kernels(m);
  bind_conv(m);
  bind_random(m);
}
