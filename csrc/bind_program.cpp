// Loading and calling generated programs (symdiff.lowering.program): the program ABI is
//
//   extern "C" const char* symdiff_program_abi(void);   // "symdiff-abi-1"
//   extern "C" int symdiff_program(void* const* buffers, const int64_t* dims,
//                                  char* error, int64_t error_size);
//
// buffers are the data pointers of C-contiguous numpy arrays; a nonzero return means the program
// wrote a NUL-terminated message into `error`. The GIL is released while the program runs; the library
// stays loaded (dlopen RTLD_NOW|RTLD_LOCAL) for the object's lifetime and is dlclosed with it.
#include <dlfcn.h>
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

namespace py = pybind11;

namespace {

constexpr const char* kAbi = "symdiff-abi-1";
using program_fn = int (*)(void* const*, const int64_t*, char*, int64_t);
using abi_fn = const char* (*)();

class native_program {
 public:
  native_program(const std::string& path, const std::string& symbol) : path_(path) {
    dlerror();  // clear a stale message
    handle_ = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (!handle_) {
      const char* why = dlerror();
      throw std::runtime_error("native_program: cannot load " + path + ": " + (why ? why : "unknown error"));
    }
    auto abi = reinterpret_cast<abi_fn>(dlsym(handle_, "symdiff_program_abi"));
    if (!abi) fail(path + " exports no symdiff_program_abi(): not a symdiff program");
    const char* got = abi();
    if (!got || std::string(got) != kAbi)
      fail(path + " has program ABI " + (got ? "'" + std::string(got) + "'" : "(null)") + ", expected '" +
           kAbi + "'");
    fn_ = reinterpret_cast<program_fn>(dlsym(handle_, symbol.c_str()));
    if (!fn_) fail(path + " exports no symbol " + symbol);
  }
  native_program(const native_program&) = delete;
  native_program& operator=(const native_program&) = delete;
  ~native_program() {
    if (handle_) dlclose(handle_);
  }

  // `written`: indices of the arrays the program writes; they must be writeable. The loader cannot
  // know them (only the generator does), and read-only inputs are legitimate, so the caller says.
  void call(const py::list& arrays, const std::vector<int64_t>& dims, const std::vector<int64_t>& written) {
    const size_t n = arrays.size();
    std::vector<void*> buffers;
    std::vector<py::array> keep;  // owned references: the list may change while the GIL is released
    buffers.reserve(n);
    keep.reserve(n);
    for (size_t i = 0; i < n; ++i) {
      py::handle item = arrays[i];
      if (!py::isinstance<py::array>(item))
        throw py::type_error("native_program: argument " + std::to_string(i) + " is not a numpy array (got " +
                             std::string(py::str(py::type::handle_of(item).attr("__name__"))) + ")");
      auto a = py::reinterpret_borrow<py::array>(item);
      if (!(a.flags() & py::array::c_style))
        throw py::value_error("native_program: argument " + std::to_string(i) +
                              " is not C-contiguous; use numpy.ascontiguousarray");
      buffers.push_back(const_cast<void*>(a.data()));
      keep.push_back(a);
    }
    for (int64_t i : written) {
      if (i < 0 || static_cast<size_t>(i) >= n)
        throw py::index_error("native_program: written index " + std::to_string(i) + " is out of range for " +
                              std::to_string(n) + " arrays");
      if (!keep[static_cast<size_t>(i)].writeable())
        throw py::value_error("native_program: argument " + std::to_string(i) +
                              " is written by the program but is read-only");
    }
    run(buffers, dims);
  }

  // Run on raw buffers (the caller holds the arrays). GIL released while the program runs.
  void run(const std::vector<void*>& buffers, const std::vector<int64_t>& dims = {}) {
    char error[1024] = {0};
    int rc;
    {
      py::gil_scoped_release release;
      rc = fn_(buffers.data(), dims.data(), error, static_cast<int64_t>(sizeof(error)));
    }
    error[sizeof(error) - 1] = '\0';  // a program that ignores error_size must not run us off the end
    if (rc != 0)
      throw std::runtime_error(error[0] ? std::string(error)
                                        : "the program failed (code " + std::to_string(rc) +
                                              ") without a message");
  }

  const std::string& path() const { return path_; }

 private:
  [[noreturn]] void fail(const std::string& why) {
    dlclose(handle_);
    handle_ = nullptr;
    throw std::runtime_error("native_program: " + why);
  }

  std::string path_;
  void* handle_ = nullptr;
  program_fn fn_ = nullptr;
};

// One specialization's fast path: the argument signature (dtypes, shapes, which inputs are written)
// checked in C++, outputs allocated here, the arena kept alive. A call that does not match raises
// signature_mismatch, and the Python side takes its slow path (conversions, the clear errors).
struct signature_mismatch : std::exception {
  const char* what() const noexcept override { return "the arguments do not match this specialization"; }
};

class bound_program {
 public:
  bound_program(py::object program, std::vector<py::dtype> in_dtypes, std::vector<std::vector<py::ssize_t>> in_shapes,
                std::vector<bool> written, std::vector<py::dtype> out_dtypes,
                std::vector<std::vector<py::ssize_t>> out_shapes, py::array arena)
      : program_obj_(std::move(program)), in_dtypes_(std::move(in_dtypes)), in_shapes_(std::move(in_shapes)),
        written_(std::move(written)), out_dtypes_(std::move(out_dtypes)), out_shapes_(std::move(out_shapes)),
        arena_(std::move(arena)) {
    program_ = program_obj_.cast<native_program*>();
    if (in_dtypes_.size() != in_shapes_.size() || written_.size() != in_shapes_.size() ||
        out_dtypes_.size() != out_shapes_.size())
      throw py::value_error("bound_program: signature lists differ in length");
  }

  py::list call(const py::args& inputs) {
    const size_t n = in_shapes_.size();
    if (inputs.size() != n) throw signature_mismatch();
    std::vector<void*> buffers;
    buffers.reserve(n + out_shapes_.size() + 1);
    for (size_t i = 0; i < n; ++i) {
      PyObject* obj = inputs[i].ptr();
      if (!py::isinstance<py::array>(obj)) throw signature_mismatch();
      auto a = py::reinterpret_borrow<py::array>(obj);
      if (!(a.flags() & py::array::c_style) || !a.dtype().is(in_dtypes_[i]) && !a.dtype().equal(in_dtypes_[i]))
        throw signature_mismatch();
      const auto& want = in_shapes_[i];
      if (a.ndim() != static_cast<py::ssize_t>(want.size())) throw signature_mismatch();
      for (size_t d = 0; d < want.size(); ++d)
        if (a.shape(d) != want[d]) throw signature_mismatch();
      if (written_[i] && !a.writeable()) throw signature_mismatch();
      buffers.push_back(const_cast<void*>(a.data()));
    }
    py::list outs(out_shapes_.size());
    for (size_t k = 0; k < out_shapes_.size(); ++k) {
      py::array out(out_dtypes_[k], out_shapes_[k]);
      buffers.push_back(out.mutable_data());
      outs[k] = out;
    }
    buffers.push_back(arena_.mutable_data());
    program_->run(buffers);
    return outs;
  }

 private:
  py::object program_obj_;  // keeps the library loaded
  native_program* program_ = nullptr;
  std::vector<py::dtype> in_dtypes_;
  std::vector<std::vector<py::ssize_t>> in_shapes_;
  std::vector<bool> written_;
  std::vector<py::dtype> out_dtypes_;
  std::vector<std::vector<py::ssize_t>> out_shapes_;
  py::array arena_;
};

}  // namespace

void bind_program(py::module_& m) {
  py::register_exception<signature_mismatch>(m, "SignatureMismatch", PyExc_TypeError);
  py::class_<native_program>(m, "native_program", "A loaded generated program (see symdiff.lowering.cache).")
      .def(py::init<const std::string&, const std::string&>(), py::arg("path"),
           py::arg("symbol") = "symdiff_program")
      .def("__call__", &native_program::call, py::arg("arrays"), py::arg("dims"),
           py::arg("written") = std::vector<int64_t>{},
           "Run the program on C-contiguous arrays (GIL released); `written` lists the indices that must "
           "be writeable. A nonzero return raises RuntimeError with the program's message.")
      .def_property_readonly("path", &native_program::path);
  py::class_<bound_program>(m, "bound_program",
                            "A program bound to one argument signature: checks and output allocation in C++.")
      .def(py::init<py::object, std::vector<py::dtype>, std::vector<std::vector<py::ssize_t>>, std::vector<bool>,
                    std::vector<py::dtype>, std::vector<std::vector<py::ssize_t>>, py::array>(),
           py::arg("program"), py::arg("in_dtypes"), py::arg("in_shapes"), py::arg("written"), py::arg("out_dtypes"),
           py::arg("out_shapes"), py::arg("arena"))
      .def("__call__", &bound_program::call,
           "Run on arrays matching the signature; returns the new output arrays. Anything else raises "
           "SignatureMismatch (a TypeError) before the program runs.");
}
