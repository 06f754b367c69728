// cuda_gemm, cuda_max_axis, cuda_mean_axis and the row-wise softmax family on numpy arrays (the
// host wrappers of symdiff/cuda/api.hpp: copy in, run, copy out). Every argument is checked before
// CUDA is touched; then a build without CUDA, or a machine without a device, is a RuntimeError.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "array_checks.hpp"
#ifdef SYMDIFF_WITH_CUDA
#include "symdiff/cuda/api.hpp"
#endif

namespace py = pybind11;
using namespace symdiff::bind;

namespace {

std::string arg_of(const char* fn, const char* arg) { return std::string(fn) + "(" + arg + ")"; }

std::string shape_str(const py::array& a) {
  std::string s = "(";
  for (py::ssize_t d = 0; d < a.ndim(); ++d) s += (d ? ", " : "") + std::to_string(a.shape(d));
  return s + (a.ndim() == 1 ? ",)" : ")");
}

void require_float_contiguous(const py::array& a, const char* fn, const char* arg) {
  require_float(a, arg_of(fn, arg).c_str());
  require_contiguous(a, arg_of(fn, arg).c_str());
}

void require_same_dtype(const py::array& x, const py::array& a, const char* fn, const char* arg) {
  if (!x.dtype().equal(a.dtype()))
    throw py::type_error(arg_of(fn, arg) + ": dtype " + dtype_name(x) + " does not match a's " + dtype_name(a));
}

void require_ndim(const py::array& x, int ndim, const char* fn, const char* arg) {
  if (x.ndim() != ndim)
    throw py::value_error(arg_of(fn, arg) + ": expected a " + std::to_string(ndim) + "-D array, got shape " +
                          shape_str(x));
}

// Called after the argument checks, right before the kernel.
void require_device(const char* fn) {
#ifdef SYMDIFF_WITH_CUDA
  if (symdiff::cuda::device_count() == 0) throw std::runtime_error(std::string(fn) + ": no CUDA device is available");
#else
  throw std::runtime_error(std::string(fn) + ": symdiff was built without CUDA (nvcc was not found)");
#endif
}

template <class T>
const T* in_ptr(const py::array& a) { return static_cast<const T*>(a.data()); }
template <class T>
T* out_ptr(py::array& a) { return static_cast<T*>(a.mutable_data()); }

// alpha, beta and the sizes are unused in a build without CUDA, hence [[maybe_unused]].
py::array gemm(const py::array& a, const py::array& b, const py::object& c_arg, bool ta, bool tb,
               [[maybe_unused]] double alpha, [[maybe_unused]] double beta) {
  const char* fn = "cuda_gemm";
  require_float_contiguous(a, fn, "a");
  require_ndim(a, 2, fn, "a");
  require_same_dtype(b, a, fn, "b");
  require_contiguous(b, arg_of(fn, "b").c_str());
  require_ndim(b, 2, fn, "b");
  const int64_t m = ta ? a.shape(1) : a.shape(0), k = ta ? a.shape(0) : a.shape(1);
  const int64_t kb = tb ? b.shape(1) : b.shape(0), n = tb ? b.shape(0) : b.shape(1);
  if (kb != k)
    throw py::value_error(arg_of(fn, "b") + ": inner dimensions differ: op(a) is " + std::to_string(m) + " x " +
                          std::to_string(k) + " (a " + shape_str(a) + (ta ? ", transposed" : "") + ") but op(b) is " +
                          std::to_string(kb) + " x " + std::to_string(n) + " (b " + shape_str(b) +
                          (tb ? ", transposed" : "") + ")");
  py::array c;
  if (c_arg.is_none()) {
    c = py::array(a.dtype(), std::vector<py::ssize_t>{m, n});
    beta = 0.0;  // the fresh output is uninitialised: never read it
  } else {
    if (!py::isinstance<py::array>(c_arg)) throw py::type_error(arg_of(fn, "c") + ": expected a numpy array or None");
    c = py::reinterpret_borrow<py::array>(c_arg);
    require_same_dtype(c, a, fn, "c");
    require_contiguous(c, arg_of(fn, "c").c_str());
    if (!c.writeable()) throw py::value_error(arg_of(fn, "c") + ": the array is read-only");
    if (c.ndim() != 2 || c.shape(0) != m || c.shape(1) != n)
      throw py::value_error(arg_of(fn, "c") + ": expected shape (" + std::to_string(m) + ", " + std::to_string(n) +
                            "), got " + shape_str(c));
  }
  require_device(fn);
#ifdef SYMDIFF_WITH_CUDA
  // Inputs are copied to the device before C is copied back, so c may even alias a or b.
  const bool f32 = is_f32(a);  // dtype() makes a Python reference: not without the GIL
  {
    py::gil_scoped_release release;  // only around the kernel: `return c` needs the GIL again
    if (f32)
      symdiff::cuda::gemm(ta, tb, m, n, k, float(alpha), in_ptr<float>(a), in_ptr<float>(b), float(beta),
                          out_ptr<float>(c));
    else
      symdiff::cuda::gemm(ta, tb, m, n, k, alpha, in_ptr<double>(a), in_ptr<double>(b), beta, out_ptr<double>(c));
  }
#endif
  return c;
}

enum class reduction { max, mean };

#ifdef SYMDIFF_WITH_CUDA
template <class T>
void run_reduction(reduction r, const T* in, T* out, int64_t outer, int64_t n, int64_t inner) {
  if (r == reduction::max) symdiff::cuda::max_axis(in, out, outer, n, inner);
  else symdiff::cuda::mean_axis(in, out, outer, n, inner);
}
#endif

py::array reduce_axis(reduction r, const py::array& a, int axis, bool keepdims) {
  const char* fn = r == reduction::max ? "cuda_max_axis" : "cuda_mean_axis";
  require_float_contiguous(a, fn, "a");
  if (a.ndim() == 0) throw py::value_error(arg_of(fn, "a") + ": needs at least one dimension");
  axis = normalize_axis(axis, static_cast<int>(a.ndim()), arg_of(fn, "axis").c_str());
  int64_t outer = 1, n = a.shape(axis), inner = 1;
  std::vector<py::ssize_t> out_shape;
  for (int d = 0; d < a.ndim(); ++d) {
    if (d < axis) outer *= a.shape(d);
    if (d > axis) inner *= a.shape(d);
    if (d != axis || keepdims) out_shape.push_back(d == axis ? 1 : a.shape(d));
  }
  if (r == reduction::max && n == 0)
    throw py::value_error(arg_of(fn, "a") + ": axis " + std::to_string(axis) + " has size 0 and max has no identity");
  py::array out(a.dtype(), out_shape);
  require_device(fn);
#ifdef SYMDIFF_WITH_CUDA
  const bool f32 = is_f32(a);
  {
    py::gil_scoped_release release;
    if (f32) run_reduction(r, in_ptr<float>(a), out_ptr<float>(out), outer, n, inner);
    else run_reduction(r, in_ptr<double>(a), out_ptr<double>(out), outer, n, inner);
  }
#endif
  return out;
}

enum class row_op { softmax, log_softmax, logsumexp };

#ifdef SYMDIFF_WITH_CUDA
template <class T>
void run_row_op(row_op op, const T* in, T* out, int64_t rows, int64_t n) {
  if (op == row_op::softmax) symdiff::cuda::softmax_rows(in, out, rows, n);
  if (op == row_op::log_softmax) symdiff::cuda::log_softmax_rows(in, out, rows, n);
  if (op == row_op::logsumexp) symdiff::cuda::logsumexp_rows(in, out, rows, n);
}
#endif

// Along the last axis of an array of any rank >= 1 (all leading axes are rows).
py::array along_rows(row_op op, const py::array& a) {
  const char* fn = op == row_op::softmax ? "cuda_softmax_rows"
                   : op == row_op::log_softmax ? "cuda_log_softmax_rows" : "cuda_logsumexp_rows";
  require_float_contiguous(a, fn, "a");
  if (a.ndim() == 0) throw py::value_error(arg_of(fn, "a") + ": needs at least one dimension");
  [[maybe_unused]] const int64_t n = a.shape(a.ndim() - 1);
  int64_t rows = 1;
  std::vector<py::ssize_t> out_shape(a.shape(), a.shape() + a.ndim());
  for (int d = 0; d + 1 < a.ndim(); ++d) rows *= a.shape(d);
  if (op == row_op::logsumexp) out_shape.pop_back();
  py::array out(a.dtype(), out_shape);
  require_device(fn);
#ifdef SYMDIFF_WITH_CUDA
  const bool f32 = is_f32(a);
  {
    py::gil_scoped_release release;
    if (f32) run_row_op(op, in_ptr<float>(a), out_ptr<float>(out), rows, n);
    else run_row_op(op, in_ptr<double>(a), out_ptr<double>(out), rows, n);
  }
#endif
  return out;
}

}  // namespace

void bind_cuda_kernels(py::module_& m) {
  m.def("cuda_gemm", &gemm, py::arg("a"), py::arg("b"), py::arg("c") = py::none(), py::arg("trans_a") = false,
        py::arg("trans_b") = false, py::arg("alpha") = 1.0, py::arg("beta") = 0.0,
        "C = alpha * op(a) @ op(b) + beta * C on the GPU for C-contiguous 2-D float32/float64 arrays; "
        "returns C (c, or a new array).");
  m.def("cuda_max_axis",
        [](const py::array& a, int axis, bool keepdims) { return reduce_axis(reduction::max, a, axis, keepdims); },
        py::arg("a"), py::arg("axis"), py::arg("keepdims") = false, "Max along one axis on the GPU (NaN propagates).");
  m.def("cuda_mean_axis",
        [](const py::array& a, int axis, bool keepdims) { return reduce_axis(reduction::mean, a, axis, keepdims); },
        py::arg("a"), py::arg("axis"), py::arg("keepdims") = false,
        "Mean along one axis on the GPU (double accumulation).");
  m.def("cuda_softmax_rows", [](const py::array& a) { return along_rows(row_op::softmax, a); }, py::arg("a"),
        "Softmax along the last axis on the GPU (max-subtracted).");
  m.def("cuda_log_softmax_rows", [](const py::array& a) { return along_rows(row_op::log_softmax, a); },
        py::arg("a"), "log(softmax) along the last axis on the GPU, without forming softmax.");
  m.def("cuda_logsumexp_rows", [](const py::array& a) { return along_rows(row_op::logsumexp, a); }, py::arg("a"),
        "log(sum(exp(a))) along the last axis on the GPU; the last axis is dropped.");
}
