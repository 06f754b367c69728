// Counter-based random numbers (Philox4x32-10) as numpy arrays. seed and offset are Python ints
// in [0, 2**64), shape an int or a sequence of non-negative ints, dtype float32 or float64; all
// of it is checked before the kernel runs, and errors name the argument.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <array>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "symdiff/cpu/philox.hpp"

namespace py = pybind11;

namespace {

std::string arg_name(const char* fn, const char* arg) { return std::string(fn) + "(" + arg + ")"; }

// An integer in [0, max] from anything with __index__ (int, numpy integers; not bool or float).
uint64_t to_unsigned(const py::handle& h, uint64_t max, const char* fn, const char* arg, const char* range) {
  if (PyBool_Check(h.ptr()) || !PyIndex_Check(h.ptr()))
    throw py::type_error(arg_name(fn, arg) + ": expected an int, got " + std::string(py::str(py::type::of(h))));
  const py::int_ value = py::reinterpret_steal<py::int_>(PyNumber_Index(h.ptr()));
  if (!value) throw py::error_already_set();
  const unsigned long long v = PyLong_AsUnsignedLongLong(value.ptr());
  if ((v == static_cast<unsigned long long>(-1) && PyErr_Occurred()) || v > max) {
    PyErr_Clear();
    throw py::value_error(arg_name(fn, arg) + ": must be in " + range + ", got " + std::string(py::repr(h)));
  }
  return v;
}

uint64_t to_u64(const py::handle& h, const char* fn, const char* arg) {
  return to_unsigned(h, std::numeric_limits<uint64_t>::max(), fn, arg, "[0, 2**64)");
}

std::vector<py::ssize_t> to_shape(const py::handle& shape, const char* fn) {
  constexpr uint64_t max_size = uint64_t{1} << 62;
  std::vector<py::ssize_t> dims;
  if (PyIndex_Check(shape.ptr()) && !PyBool_Check(shape.ptr())) {
    dims.push_back(static_cast<py::ssize_t>(to_unsigned(shape, max_size, fn, "shape", "[0, 2**62]")));
  } else if (py::isinstance<py::sequence>(shape) && !py::isinstance<py::str>(shape)) {
    for (const py::handle& d : py::reinterpret_borrow<py::sequence>(shape))
      dims.push_back(static_cast<py::ssize_t>(to_unsigned(d, max_size, fn, "shape", "[0, 2**62]")));
  } else {
    throw py::type_error(arg_name(fn, "shape") + ": expected an int or a sequence of ints, got " +
                         std::string(py::str(py::type::of(shape))));
  }
  uint64_t count = 1;
  for (py::ssize_t d : dims) {
    if (d != 0 && count > max_size / static_cast<uint64_t>(d))
      throw py::value_error(arg_name(fn, "shape") + ": " + std::string(py::repr(shape)) + " has too many elements");
    count *= static_cast<uint64_t>(d);
  }
  return dims;
}

py::dtype to_float_dtype(const py::object& dtype, const char* fn) {
  py::dtype dt;
  try {
    dt = py::dtype::from_args(dtype);
  } catch (const py::error_already_set&) {
    throw py::type_error(arg_name(fn, "dtype") + ": expected float32 or float64, got " + std::string(py::repr(dtype)));
  }
  if (!dt.equal(py::dtype::of<float>()) && !dt.equal(py::dtype::of<double>()))
    throw py::type_error(arg_name(fn, "dtype") + ": expected float32 or float64, got " + std::string(py::str(dt)));
  return dt;
}

// Checks every argument, then fills a new array with fill<T>(out, count, seed, offset).
template <class FillF, class FillD>
py::array generate(const char* fn, const py::object& seed_arg, const py::object& offset_arg,
                   const py::object& shape_arg, const py::object& dtype_arg, FillF fill_f, FillD fill_d) {
  const uint64_t seed = to_u64(seed_arg, fn, "seed"), offset = to_u64(offset_arg, fn, "offset");
  const std::vector<py::ssize_t> shape = to_shape(shape_arg, fn);
  const py::dtype dt = to_float_dtype(dtype_arg, fn);
  py::array out(dt, shape);
  const int64_t count = out.size();
  if (count > 0 && offset > std::numeric_limits<uint64_t>::max() - static_cast<uint64_t>(count - 1))
    throw py::value_error(arg_name(fn, "offset") + ": offset + count runs past the end of the stream (2**64)");
  const bool f32 = dt.equal(py::dtype::of<float>());
  void* data = out.mutable_data();
  {
    py::gil_scoped_release release;
    if (f32)
      fill_f(static_cast<float*>(data), count, seed, offset);
    else
      fill_d(static_cast<double*>(data), count, seed, offset);
  }
  return out;
}

template <size_t N>
std::array<uint32_t, N> to_words(const py::object& words, const char* arg) {
  if (!py::isinstance<py::sequence>(words) || py::len(words) != N)
    throw py::value_error(arg_name("philox4x32", arg) + ": expected a sequence of " + std::to_string(N) +
                          " ints, got " + std::string(py::repr(words)));
  std::array<uint32_t, N> out;
  const auto seq = py::reinterpret_borrow<py::sequence>(words);
  for (size_t i = 0; i < N; ++i)
    out[i] = static_cast<uint32_t>(to_unsigned(seq[i], 0xFFFFFFFFu, "philox4x32", arg, "[0, 2**32)"));
  return out;
}

}  // namespace

void bind_random(py::module_& m) {
  namespace cpu = symdiff::cpu;
  m.def("philox4x32",
        [](const py::object& counter, const py::object& key) {
          const cpu::philox_counter r = cpu::philox4x32(to_words<4>(counter, "counter"), to_words<2>(key, "key"));
          return py::make_tuple(r[0], r[1], r[2], r[3]);
        },
        py::arg("counter"), py::arg("key"), "The Philox4x32-10 block function: 4 uint32 words from 4 + 2.");
  m.def("uniform",
        [](const py::object& seed, const py::object& offset, const py::object& shape, const py::object& dtype) {
          return generate("uniform", seed, offset, shape, dtype, cpu::uniform<float>, cpu::uniform<double>);
        },
        py::arg("seed"), py::arg("offset"), py::arg("shape"), py::arg("dtype"),
        "Uniform values in [0, 1): element i is stream element offset + i of seed (OpenMP).");
  m.def("normal",
        [](const py::object& seed, const py::object& offset, const py::object& shape, const py::object& dtype) {
          return generate("normal", seed, offset, shape, dtype, cpu::normal<float>, cpu::normal<double>);
        },
        py::arg("seed"), py::arg("offset"), py::arg("shape"), py::arg("dtype"),
        "Standard normal values (Box-Muller): element i is stream element offset + i of seed (OpenMP).");
  m.def("bernoulli_mask",
        [](const py::object& seed, const py::object& offset, const py::object& shape, double p,
           const py::object& dtype) {
          if (!(p >= 0.0 && p <= 1.0))
            throw py::value_error("bernoulli_mask(p): must be in [0, 1], got " + std::to_string(p));
          return generate(
              "bernoulli_mask", seed, offset, shape, dtype,
              [p](float* o, int64_t n, uint64_t s, uint64_t k) { cpu::bernoulli_mask<float>(o, n, s, k, p); },
              [p](double* o, int64_t n, uint64_t s, uint64_t k) { cpu::bernoulli_mask<double>(o, n, s, k, p); });
        },
        py::arg("seed"), py::arg("offset"), py::arg("shape"), py::arg("p"), py::arg("dtype"),
        "1 with probability p (the keep probability of dropout), else 0, as float32/float64 (OpenMP).");
}
