#include <pybind11/pybind11.h>

#include "symdiff/cpu/runtime.hpp"

namespace py = pybind11;

void bind_runtime(py::module_& m) {
  m.def("cpu_features", [] {
    auto f = symdiff::cpu::cpu_features();
    py::dict d;
    d["sse4_2"] = f.sse42;
    d["avx"] = f.avx;
    d["avx2"] = f.avx2;
    d["fma"] = f.fma;
    d["avx512f"] = f.avx512f;
    d["avx512bw"] = f.avx512bw;
    d["avx512vl"] = f.avx512vl;
    d["avx512dq"] = f.avx512dq;
    d["l1d_bytes"] = f.l1d_bytes;
    d["l2_bytes"] = f.l2_bytes;
    d["l3_bytes"] = f.l3_bytes;
    return d;
  }, "Instruction-set features and cache sizes the kernels dispatch on.");
  m.def("num_threads", &symdiff::cpu::num_threads, "OpenMP threads the kernels use.");
  m.def("set_num_threads", &symdiff::cpu::set_num_threads, py::arg("n"), "Set the OpenMP thread count (n >= 1).");
}
