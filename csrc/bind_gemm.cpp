// gemm / gemm_batched on numpy arrays. Every argument is checked before the kernel runs: dtype,
// rank, shapes (after the transposes), a unit column stride with a non-negative row stride
// (C-contiguous or row-strided views), a writable C that overlaps neither input.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <string>
#include <vector>

#include "array_checks.hpp"
#include "symdiff/cpu/gemm.hpp"
#include "symdiff/cpu/services.hpp"

namespace py = pybind11;

namespace {

using symdiff::bind::dtype_name;
using symdiff::bind::shape_str;

std::string strides_str(const py::array& a) {
  std::string s = "(";
  for (py::ssize_t d = 0; d < a.ndim(); ++d) s += (d ? ", " : "") + std::to_string(a.strides(d));
  return s + (a.ndim() == 1 ? ",)" : ")");
}

[[noreturn]] void fail(const std::string& fn, const char* arg, const std::string& what) {
  throw py::value_error(fn + "(" + arg + "): " + what);
}

// Element stride of dimension d; size-1 dimensions may carry any stride, so they report `fallback`.
int64_t element_stride(const py::array& x, int d, int64_t fallback, const std::string& fn, const char* arg) {
  if (x.shape(d) <= 1) return fallback;
  const int64_t bytes = x.strides(d), item = x.itemsize();
  if (bytes < 0 || bytes % item != 0)
    fail(fn, arg, "dimension " + std::to_string(d) + " has stride " + std::to_string(bytes) +
                      " bytes; only non-negative whole-element strides are supported (use numpy.ascontiguousarray)");
  return bytes / item;
}

// A matrix (the last two dimensions of x): rows, cols, row stride; the column stride must be 1.
struct matrix_view {
  int64_t batch = 1, rows, cols, ld, batch_stride = 0;
};

matrix_view view_of(const py::array& x, int ndim, const std::string& fn, const char* arg) {
  if (x.ndim() != ndim)
    fail(fn, arg, "expected a " + std::to_string(ndim) + "-D array, got shape " + shape_str(x));
  const int r = ndim - 2, c = ndim - 1;
  matrix_view v;
  v.rows = x.shape(r);
  v.cols = x.shape(c);
  if (element_stride(x, c, 1, fn, arg) != 1)
    fail(fn, arg, "columns must be contiguous (unit column stride), got strides " + strides_str(x) +
                      " for shape " + shape_str(x) + "; pass the untransposed array with trans_" + arg +
                      "=True, or use numpy.ascontiguousarray");
  v.ld = element_stride(x, r, std::max<int64_t>(v.cols, 1), fn, arg);
  if (ndim == 3) {
    v.batch = x.shape(0);
    v.batch_stride = element_stride(x, 0, 0, fn, arg);
  }
  return v;
}

struct byte_range {
  const char *lo, *hi;
};

byte_range extent(const py::array& x) {
  const char* p = static_cast<const char*>(x.data());
  int64_t last = 0;
  for (py::ssize_t d = 0; d < x.ndim(); ++d) {
    if (x.shape(d) == 0) return {p, p};
    last += (x.shape(d) - 1) * x.strides(d);
  }
  return {p, p + last + x.itemsize()};
}

bool overlaps(const py::array& x, const py::array& y) {
  const byte_range a = extent(x), b = extent(y);
  return a.lo < a.hi && b.lo < b.hi && a.lo < b.hi && b.lo < a.hi;
}

void require_same_float_dtype(const py::array& a, const py::array& b, const std::string& fn) {
  symdiff::bind::require_float(a, (fn + "(a)").c_str());
  if (symdiff::bind::float_bytes(b) != symdiff::bind::float_bytes(a))
    throw py::type_error(fn + "(b): dtype " + dtype_name(b) + " does not match a's " + dtype_name(a));
}

// The operands after checks: op(A) is m x k, op(B) is k x n, C is m x n (per batch entry).
struct problem {
  int64_t batch, m, n, k;
  matrix_view a, b, c;
  py::array out;
};

problem check(const py::array& a, const py::array& b, const py::object& c_arg, bool ta, bool tb, int ndim,
              const std::string& fn) {
  require_same_float_dtype(a, b, fn);
  problem p;
  p.a = view_of(a, ndim, fn, "a");
  p.b = view_of(b, ndim, fn, "b");
  p.m = ta ? p.a.cols : p.a.rows;
  p.k = ta ? p.a.rows : p.a.cols;
  p.n = tb ? p.b.rows : p.b.cols;
  const int64_t kb = tb ? p.b.cols : p.b.rows;
  if (kb != p.k)
    fail(fn, "b", "inner dimensions differ: op(a) is " + std::to_string(p.m) + " x " + std::to_string(p.k) +
                      " (a " + shape_str(a) + (ta ? ", transposed" : "") + ") but op(b) is " + std::to_string(kb) +
                      " x " + std::to_string(p.n) + " (b " + shape_str(b) + (tb ? ", transposed" : "") + ")");
  p.batch = std::max(p.a.batch, p.b.batch);
  if (ndim == 3 && ((p.a.batch != p.batch && p.a.batch != 1) || (p.b.batch != p.batch && p.b.batch != 1)))
    fail(fn, "b", "batch sizes " + std::to_string(p.a.batch) + " (a) and " + std::to_string(p.b.batch) +
                      " (b) differ and neither is 1");
  if (p.a.batch == 1) p.a.batch_stride = 0;  // a single matrix is shared by every batch entry
  if (p.b.batch == 1) p.b.batch_stride = 0;

  std::vector<py::ssize_t> shape = {p.m, p.n};
  if (ndim == 3) shape.insert(shape.begin(), p.batch);
  if (c_arg.is_none()) {
    p.out = py::array(a.dtype(), shape);
  } else {
    if (!py::isinstance<py::array>(c_arg)) fail(fn, "c", "expected a numpy array or None");
    p.out = py::reinterpret_borrow<py::array>(c_arg);
    if (symdiff::bind::float_bytes(p.out) != symdiff::bind::float_bytes(a))
      throw py::type_error(fn + "(c): dtype " + dtype_name(p.out) + " does not match a's " + dtype_name(a));
    if (!p.out.writeable()) fail(fn, "c", "the array is read-only");
    if (p.out.ndim() != ndim || std::vector<py::ssize_t>(p.out.shape(), p.out.shape() + ndim) != shape) {
      std::string want = "(";
      for (size_t i = 0; i < shape.size(); ++i) want += (i ? ", " : "") + std::to_string(shape[i]);
      fail(fn, "c", "expected shape " + want + "), got " + shape_str(p.out));
    }
    if (overlaps(p.out, a)) fail(fn, "c", "shares memory with a; pass a separate output array");
    if (overlaps(p.out, b)) fail(fn, "c", "shares memory with b; pass a separate output array");
  }
  p.c = view_of(p.out, ndim, fn, "c");
  // Rows (and batch entries) of C must not overlap each other, or the result would depend on order.
  if (p.m > 1 && p.c.ld < p.n) fail(fn, "c", "rows overlap (row stride smaller than the row length)");
  if (ndim == 3 && p.batch > 1 && p.c.batch_stride < (p.m - 1) * p.c.ld + p.n)
    fail(fn, "c", "batch entries overlap (batch stride smaller than one matrix)");
  return p;
}

template <class T>
void run(problem& p, const py::array& a, const py::array& b, bool ta, bool tb, double alpha, double beta) {
  const T* pa = static_cast<const T*>(a.data());
  const T* pb = static_cast<const T*>(b.data());
  T* pc = static_cast<T*>(p.out.mutable_data());
  py::gil_scoped_release release;
  symdiff::cpu::gemm_batched<T>(ta, tb, p.batch, p.m, p.n, p.k, T(alpha), pa, p.a.ld, p.a.batch_stride, pb, p.b.ld,
                                p.b.batch_stride, T(beta), pc, p.c.ld, p.c.batch_stride);
}

py::array gemm_any(const py::array& a, const py::array& b, const py::object& c, bool ta, bool tb, double alpha,
                   double beta, int ndim, const char* fn) {
  problem p = check(a, b, c, ta, tb, ndim, fn);
  if (c.is_none()) beta = 0.0;  // the fresh output is uninitialised: never read it
  if (symdiff::bind::is_f32(a))
    run<float>(p, a, b, ta, tb, alpha, beta);
  else
    run<double>(p, a, b, ta, tb, alpha, beta);
  return p.out;
}

const char* isa_name(symdiff::cpu::gemm_isa isa) { return symdiff::cpu::gemm_detail::isa_name(isa); }

// "6x16": the register tile (rows x columns of C) of the general kernels for T in family isa.
template <class T>
std::string tile_name(symdiff::cpu::gemm_isa isa) {
  const auto ks = symdiff::cpu::gemm_detail::kernels_for<T>(isa);
  return std::to_string(ks.mr) + "x" + std::to_string(ks.nr());
}

}  // namespace

// The kernels generated programs call (symdiff/cpu/gemm_call.hpp), handed to each at load time.
const symdiff_services* program_services() {
  (void)symdiff::cpu::current_gemm_isa();  // an unusable $SYMDIFF_GEMM_ISA fails the load, not a call
  static const symdiff_services services{kSymdiffServicesVersion, &symdiff::cpu::gemm<float>,
                                         &symdiff::cpu::gemm<double>};
  return &services;
}

void bind_gemm(py::module_& m) {
  m.def("gemm",
        [](const py::array& a, const py::array& b, const py::object& c, bool trans_a, bool trans_b, double alpha,
           double beta) { return gemm_any(a, b, c, trans_a, trans_b, alpha, beta, 2, "gemm"); },
        py::arg("a"), py::arg("b"), py::arg("c") = py::none(), py::arg("trans_a") = false,
        py::arg("trans_b") = false, py::arg("alpha") = 1.0, py::arg("beta") = 0.0,
        "C = alpha * op(a) @ op(b) + beta * C for 2-D float32/float64 arrays; returns C (c, or a new array).");
  m.def("gemm_batched",
        [](const py::array& a, const py::array& b, const py::object& c, bool trans_a, bool trans_b, double alpha,
           double beta) { return gemm_any(a, b, c, trans_a, trans_b, alpha, beta, 3, "gemm_batched"); },
        py::arg("a"), py::arg("b"), py::arg("c") = py::none(), py::arg("trans_a") = false,
        py::arg("trans_b") = false, py::arg("alpha") = 1.0, py::arg("beta") = 0.0,
        "gemm over the first axis of 3-D arrays (a batch of 1 in a or b is shared by every entry).");
  m.def("current_gemm_isa", [] { return std::string(isa_name(symdiff::cpu::current_gemm_isa())); },
        "Kernel family gemm uses now: 'avx512', 'avx2' or 'scalar'.");
  m.def("gemm_kernel",
        [] {
          const auto isa = symdiff::cpu::current_gemm_isa();
          py::dict d;
          d["isa"] = isa_name(isa);
          d["cpu_isa"] = isa_name(symdiff::cpu::gemm_detail::cpu_isa());
          d["float32"] = tile_name<float>(isa);
          d["float64"] = tile_name<double>(isa);
          return d;
        },
        "The general kernels gemm uses now: {'isa', 'cpu_isa' (the best this CPU runs), 'float32', "
        "'float64' (register tiles, rows x columns of C)}.");
  m.def("set_gemm_isa",
        [](const std::string& name) {
          int isa = name == "auto" ? -1 : name == "scalar" ? 0 : name == "avx2" ? 1 : name == "avx512" ? 2 : -2;
          if (isa == -2) throw py::value_error("set_gemm_isa(name): expected 'auto', 'avx512', 'avx2' or 'scalar', got '" + name + "'");
          try {
            symdiff::cpu::set_gemm_isa(isa);
          } catch (const std::invalid_argument&) {
            throw py::value_error("set_gemm_isa(name): this CPU cannot run the '" + name + "' kernels");
          }
        },
        py::arg("name"), "Pin gemm's kernel family (tests, benchmarks); 'auto' picks the best the CPU has.");
}
