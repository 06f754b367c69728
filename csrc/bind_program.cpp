// Loading and calling generated programs (symdiff.lowering.program): the program ABI is
//
//   extern "C" const char* symdiff_program_abi(void);   // "symdiff-abi-1"
//   extern "C" int symdiff_program(void* const* buffers, const int64_t* dims, char* error, int64_t error_size);
//
// buffers are the data pointers of C-contiguous numpy arrays; a nonzero return means the program
// wrote a message into `error`. The GIL is released while the program runs.
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
    handle_ = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (!handle_) {
      const char* why = dlerror();
      throw std::runtime_error("native_program: cannot load " + path + ": " + (why ? why : "unknown error"));
    }
    auto abi = reinterpret_cast<abi_fn>(dlsym(handle_, "symdiff_program_abi"));
    if (!abi || std::string(abi()) != kAbi) {
      dlclose(handle_);
      handle_ = nullptr;
      throw std::runtime_error("native_program: " + path + " is not a symdiff program of ABI " + kAbi);
    }
    fn_ = reinterpret_cast<program_fn>(dlsym(handle_, symbol.c_str()));
    if (!fn_) {
      dlclose(handle_);
      handle_ = nullptr;
      throw std::runtime_error("native_program: " + path + " has no symbol " + symbol);
    }
  }
  native_program(const native_program&) = delete;
  native_program& operator=(const native_program&) = delete;
  ~native_program() {
    if (handle_) dlclose(handle_);
  }

  void call(const py::list& arrays, const std::vector<int64_t>& dims) {
    std::vector<void*> buffers;
    buffers.reserve(arrays.size());
    for (size_t i = 0; i < arrays.size(); ++i) {
      py::handle item = arrays[i];
      if (!py::isinstance<py::array>(item))
        throw py::type_error("native_program: argument " + std::to_string(i) + " is not a numpy array");
      auto a = py::reinterpret_borrow<py::array>(item);
      if (!(a.flags() & py::array::c_style))
        throw py::value_error("native_program: argument " + std::to_string(i) + " is not C-contiguous");
      // read-only inputs are fine: programs write only outputs, the arena and update targets,
      // which symdiff.lowering checks are writeable before calling
      buffers.push_back(const_cast<void*>(a.data()));
    }
    char error[512] = {0};
    int rc;
    {
      py::gil_scoped_release release;
      rc = fn_(buffers.data(), dims.data(), error, sizeof(error));
    }
    if (rc != 0) throw std::runtime_error(error[0] ? error : "the program failed without a message");
  }

  const std::string& path() const { return path_; }

 private:
  std::string path_;
  void* handle_ = nullptr;
  program_fn fn_ = nullptr;
};

}  // namespace

void bind_program(py::module_& m) {
  py::class_<native_program>(m, "native_program", "A loaded generated program (see symdiff.lowering.cache).")
      .def(py::init<const std::string&, const std::string&>(), py::arg("path"),
           py::arg("symbol") = "symdiff_program")
      .def("__call__", &native_program::call, py::arg("arrays"), py::arg("dims"))
      .def_property_readonly("path", &native_program::path);
}
