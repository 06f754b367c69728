// im2col / col2im on numpy arrays. Everything is checked before the kernel runs: dtype,
// C-contiguity, rank, positive kernel/stride/dilation, non-negative padding, an output of at
// least 1 x 1, and for col2im that cols has exactly the shape im2col gives for input_shape.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <algorithm>
#include <array>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "array_checks.hpp"
#include "symdiff/cpu/im2col.hpp"

namespace py = pybind11;

namespace {

using pair = std::array<int64_t, 2>;
using symdiff::cpu::conv2d_geometry;

std::string tuple_str(const int64_t* v, size_t n) {
  std::string s = "(";
  for (size_t i = 0; i < n; ++i) s += (i ? ", " : "") + std::to_string(v[i]);
  return s + (n == 1 ? ",)" : ")");
}

template <size_t N>
std::string tuple_str(const std::array<int64_t, N>& v) { return tuple_str(v.data(), N); }

std::string shape_str(const py::array& a) {
  std::vector<int64_t> shape(a.shape(), a.shape() + a.ndim());
  return tuple_str(shape.data(), shape.size());
}

[[noreturn]] void fail(const char* fn, const char* arg, const std::string& what) {
  throw py::value_error(std::string(fn) + "(" + arg + "): " + what);
}

// The geometry for input (N, C, H, W), after checking every parameter; `input_arg` names the
// argument that carries the input shape (x for im2col, input_shape for col2im).
conv2d_geometry geometry(const char* fn, const char* input_arg, const std::array<int64_t, 4>& in, pair kernel_size,
                         pair stride, pair padding, pair dilation) {
  // Every size below 2^31 keeps the kernels' index arithmetic far from int64 overflow.
  constexpr int64_t limit = std::numeric_limits<int32_t>::max();
  for (int64_t size : in)
    if (size > limit) fail(fn, input_arg, "input shape " + tuple_str(in) + " has a dimension of 2**31 or more");
  const std::array<std::pair<const char*, pair>, 4> params = {
      {{"kernel_size", kernel_size}, {"stride", stride}, {"padding", padding}, {"dilation", dilation}}};
  for (const auto& [name, value] : params) {
    const int64_t lowest = std::string(name) == "padding" ? 0 : 1;
    if (value[0] < lowest || value[1] < lowest)
      fail(fn, name, std::string(lowest ? "must be positive" : "must be non-negative") + ", got " + tuple_str(value));
    if (value[0] > limit || value[1] > limit) fail(fn, name, "must be below 2**31, got " + tuple_str(value));
  }
  const conv2d_geometry g{in[0], in[1], in[2], in[3], kernel_size[0], kernel_size[1], stride[0], stride[1],
                          padding[0], padding[1], dilation[0], dilation[1]};
  const int64_t oh = symdiff::cpu::conv_output_height(g), ow = symdiff::cpu::conv_output_width(g);
  if (oh < 1 || ow < 1) {
    const pair span{dilation[0] * (kernel_size[0] - 1) + 1, dilation[1] * (kernel_size[1] - 1) + 1};
    const pair padded{in[2] + 2 * padding[0], in[3] + 2 * padding[1]};
    fail(fn, input_arg, "input shape " + tuple_str(in) + " gives no output: the dilated kernel spans " +
                            tuple_str(span) + " but the padded input is only " + tuple_str(padded) +
                            " (kernel_size " + tuple_str(kernel_size) + ", padding " + tuple_str(padding) +
                            ", dilation " + tuple_str(dilation) + ")");
  }
  const double entries = double(g.n) * double(g.c * g.kh * g.kw) * double(oh) * double(ow);  // no int overflow
  if (entries > 0x1p62)
    fail(fn, input_arg, "input shape " + tuple_str(in) + " with kernel_size " + tuple_str(kernel_size) +
                            " would need " + std::to_string(entries) + " column entries");
  return g;
}

std::array<int64_t, 3> cols_shape(const conv2d_geometry& g) {
  return {g.n, g.c * g.kh * g.kw, symdiff::cpu::conv_output_height(g) * symdiff::cpu::conv_output_width(g)};
}

void require_float_contiguous(const py::array& a, const char* fn, const char* arg) {
  const std::string name = std::string(fn) + "(" + arg + ")";
  symdiff::bind::require_float(a, name.c_str());
  symdiff::bind::require_contiguous(a, name.c_str());
}

template <class T, class Kernel>
void run(const py::array& in, py::array& out, const conv2d_geometry& g, Kernel kernel) {
  const T* src = static_cast<const T*>(in.data());
  T* dst = static_cast<T*>(out.mutable_data());
  py::gil_scoped_release release;
  kernel(src, dst, g);
}

py::array im2col(const py::array& x, pair kernel_size, pair stride, pair padding, pair dilation) {
  require_float_contiguous(x, "im2col", "x");
  if (x.ndim() != 4) fail("im2col", "x", "expected a 4-D (N, C, H, W) array, got shape " + shape_str(x));
  const conv2d_geometry g =
      geometry("im2col", "x", {x.shape(0), x.shape(1), x.shape(2), x.shape(3)}, kernel_size, stride, padding, dilation);
  const std::array<int64_t, 3> shape = cols_shape(g);
  py::array cols(x.dtype(), std::vector<py::ssize_t>(shape.begin(), shape.end()));
  if (symdiff::bind::is_f32(x))
    run<float>(x, cols, g, symdiff::cpu::im2col<float>);
  else
    run<double>(x, cols, g, symdiff::cpu::im2col<double>);
  return cols;
}

py::array col2im(const py::array& cols, std::array<int64_t, 4> input_shape, pair kernel_size, pair stride,
                 pair padding, pair dilation) {
  require_float_contiguous(cols, "col2im", "cols");
  for (int64_t size : input_shape)
    if (size < 0) fail("col2im", "input_shape", "sizes must be non-negative, got " + tuple_str(input_shape));
  const conv2d_geometry g = geometry("col2im", "input_shape", input_shape, kernel_size, stride, padding, dilation);
  const std::array<int64_t, 3> want = cols_shape(g);
  if (cols.ndim() != 3 || !std::equal(want.begin(), want.end(), cols.shape()))
    fail("col2im", "cols", "expected shape " + tuple_str(want) + " = (N, C*KH*KW, OH*OW) for input_shape " +
                               tuple_str(input_shape) + " and kernel_size " + tuple_str(kernel_size) + ", got " +
                               shape_str(cols));
  py::array x(cols.dtype(), std::vector<py::ssize_t>(input_shape.begin(), input_shape.end()));
  if (symdiff::bind::is_f32(cols))
    run<float>(cols, x, g, symdiff::cpu::col2im<float>);
  else
    run<double>(cols, x, g, symdiff::cpu::col2im<double>);
  return x;
}

}  // namespace

void bind_conv(py::module_& m) {
  m.def("im2col", &im2col, py::arg("x"), py::arg("kernel_size"), py::arg("stride"), py::arg("padding"),
        py::arg("dilation"),
        "Patches of a C-contiguous float32/float64 (N, C, H, W) array as (N, C*KH*KW, OH*OW) (OpenMP).");
  m.def("col2im", &col2im, py::arg("cols"), py::arg("input_shape"), py::arg("kernel_size"), py::arg("stride"),
        py::arg("padding"), py::arg("dilation"),
        "The adjoint of im2col: sums (N, C*KH*KW, OH*OW) columns back onto a new (N, C, H, W) array.");
}
