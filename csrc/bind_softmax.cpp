// The softmax family over the LAST axis of an N-d C-contiguous float32/float64 array
// (rows = product of the leading dimensions). Every argument is checked before a kernel runs.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <string>
#include <vector>

#include "array_checks.hpp"
#include "symdiff/cpu/softmax.hpp"

namespace py = pybind11;
using namespace symdiff::bind;

namespace {

struct rows_t {
  int64_t rows = 1, n = 0;
};

rows_t check_rows(const py::array& a, const std::string& fn, const char* arg) {
  const std::string where = fn + "(" + arg + ")";
  require_float(a, where.c_str());
  require_contiguous(a, where.c_str());
  if (a.ndim() == 0) throw py::value_error(where + ": needs at least one dimension (rows are along the last axis)");
  rows_t r;
  r.n = a.shape(a.ndim() - 1);
  for (py::ssize_t d = 0; d + 1 < a.ndim(); ++d) r.rows *= a.shape(d);
  return r;
}

// The vjps' pair (y, g): g must match y in dtype and shape.
rows_t check_pair(const py::array& y, const py::array& g, const std::string& fn) {
  const rows_t r = check_rows(y, fn, "y");
  check_rows(g, fn, "g");
  if (!g.dtype().equal(y.dtype()))
    throw py::type_error(fn + "(g): dtype " + dtype_name(g) + " does not match y's " + dtype_name(y));
  if (g.ndim() != y.ndim() || !std::equal(y.shape(), y.shape() + y.ndim(), g.shape()))
    throw py::value_error(fn + "(g): shape " + shape_str(g) + " does not match y's shape " + shape_str(y));
  return r;
}

template <class T, class Kernel>
py::array rowwise(const py::array& x, const rows_t& r, Kernel kernel) {
  py::array_t<T> out(std::vector<py::ssize_t>(x.shape(), x.shape() + x.ndim()));
  const T* in = static_cast<const T*>(x.data());
  T* o = out.mutable_data();
  {
    py::gil_scoped_release release;
    kernel(in, o, r.rows, r.n);
  }
  return out;
}

py::array softmax_rows(const py::array& x) {
  const rows_t r = check_rows(x, "softmax_rows", "x");
  if (is_f32(x)) return rowwise<float>(x, r, [](auto... a) { symdiff::cpu::softmax_rows(a...); });
  return rowwise<double>(x, r, [](auto... a) { symdiff::cpu::softmax_rows(a...); });
}

py::array log_softmax_rows(const py::array& x) {
  const rows_t r = check_rows(x, "log_softmax_rows", "x");
  if (is_f32(x)) return rowwise<float>(x, r, [](auto... a) { symdiff::cpu::log_softmax_rows(a...); });
  return rowwise<double>(x, r, [](auto... a) { symdiff::cpu::log_softmax_rows(a...); });
}

template <class T>
py::array logsumexp_any(const py::array& x, const rows_t& r, bool keepdims) {
  std::vector<py::ssize_t> shape(x.shape(), x.shape() + x.ndim() - 1);
  if (keepdims) shape.push_back(1);
  py::array_t<T> out(shape);
  const T* in = static_cast<const T*>(x.data());
  T* o = out.mutable_data();
  {
    py::gil_scoped_release release;
    symdiff::cpu::logsumexp_rows<T>(in, o, r.rows, r.n);
  }
  return out;
}

py::array logsumexp_rows(const py::array& x, bool keepdims) {
  const rows_t r = check_rows(x, "logsumexp_rows", "x");
  return is_f32(x) ? logsumexp_any<float>(x, r, keepdims) : logsumexp_any<double>(x, r, keepdims);
}

template <class T, class Kernel>
py::array vjp(const py::array& y, const py::array& g, const rows_t& r, Kernel kernel) {
  py::array_t<T> dx(std::vector<py::ssize_t>(y.shape(), y.shape() + y.ndim()));
  const T* py_ = static_cast<const T*>(y.data());
  const T* pg = static_cast<const T*>(g.data());
  T* pd = dx.mutable_data();
  {
    py::gil_scoped_release release;
    kernel(py_, pg, pd, r.rows, r.n);
  }
  return dx;
}

py::array softmax_rows_vjp(const py::array& y, const py::array& g) {
  const rows_t r = check_pair(y, g, "softmax_rows_vjp");
  if (is_f32(y)) return vjp<float>(y, g, r, [](auto... a) { symdiff::cpu::softmax_rows_vjp(a...); });
  return vjp<double>(y, g, r, [](auto... a) { symdiff::cpu::softmax_rows_vjp(a...); });
}

py::array log_softmax_rows_vjp(const py::array& y, const py::array& g) {
  const rows_t r = check_pair(y, g, "log_softmax_rows_vjp");
  if (is_f32(y)) return vjp<float>(y, g, r, [](auto... a) { symdiff::cpu::log_softmax_rows_vjp(a...); });
  return vjp<double>(y, g, r, [](auto... a) { symdiff::cpu::log_softmax_rows_vjp(a...); });
}

}  // namespace

void bind_softmax(py::module_& m) {
  m.def("softmax_rows", &softmax_rows, py::arg("x"),
        "Softmax over the last axis of a C-contiguous float32/float64 array (OpenMP over rows).");
  m.def("log_softmax_rows", &log_softmax_rows, py::arg("x"), "log(softmax) over the last axis, computed stably.");
  m.def("logsumexp_rows", &logsumexp_rows, py::arg("x"), py::arg("keepdims") = false,
        "log(sum(exp(x))) over the last axis; the last axis is dropped (kept as 1 with keepdims).");
  m.def("softmax_rows_vjp", &softmax_rows_vjp, py::arg("y"), py::arg("g"),
        "dx = y * (g - sum(g * y)) per row, for y = softmax_rows(x) and the cotangent g.");
  m.def("log_softmax_rows_vjp", &log_softmax_rows_vjp, py::arg("y"), py::arg("g"),
        "dx = g - exp(y) * sum(g) per row, for y = log_softmax_rows(x) and the cotangent g.");
  m.def("current_softmax_isa",
        [] { return std::string(symdiff::cpu::current_softmax_isa() == symdiff::cpu::softmax_isa::avx2 ? "avx2" : "baseline"); },
        "Code path the softmax kernels use now: 'avx2' or 'baseline'.");
  m.def("set_softmax_isa",
        [](const std::string& name) {
          const int isa = name == "auto" ? -1 : name == "baseline" ? 0 : name == "avx2" ? 1 : -2;
          if (isa == -2)
            throw py::value_error("set_softmax_isa(name): expected 'auto', 'avx2' or 'baseline', got '" + name + "'");
          try {
            symdiff::cpu::set_softmax_isa(isa);
          } catch (const std::invalid_argument&) {
            throw py::value_error("set_softmax_isa(name): this CPU cannot run the 'avx2' path");
          }
        },
        py::arg("name"), "Pin the softmax code path (tests); 'auto' picks AVX2+FMA when the CPU has it.");
}
