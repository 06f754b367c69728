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

}  // namespace

void bind_program(py::module_& m) {
  py::class_<native_program>(m, "native_program", "A loaded generated program (see symdiff.lowering.cache).")
      .def(py::init<const std::string&, const std::string&>(), py::arg("path"),
           py::arg("symbol") = "symdiff_program")
      .def("__call__", &native_program::call, py::arg("arrays"), py::arg("dims"),
           py::arg("written") = std::vector<int64_t>{},
           "Run the program on C-contiguous arrays (GIL released); `written` lists the indices that must "
           "be writeable. A nonzero return raises RuntimeError with the program's message.")
      .def_property_readonly("path", &native_program::path);
}
