// Loading and calling generated programs (symdiff.lowering.program): the program ABI is
//
//   extern "C" const char* symdiff_program_abi(void);   // "symdiff-abi-1"
//   extern "C" int symdiff_program(void* const* buffers, const int64_t* dims,
//                                  char* error, int64_t error_size);
//
//   extern "C" const char* symdiff_program_signature(void);  // optional: what the program expects
//   extern "C" int64_t symdiff_program_arena_bytes(const int64_t* dims);  // programs with run-time
//                                                                          // dimensions: scratch bytes
//   extern "C" int symdiff_program_services(const symdiff_services*);  // programs that call the
//                                                                      // module's GEMM (services.hpp)
//
// `dims` holds the program's run-time dimensions (D0, D1, ...; see symdiff.lowering.plan.dims),
// null for a program specialized to one signature.
// buffers are the data pointers of C-contiguous numpy arrays; a nonzero return means the program
// wrote a NUL-terminated message into `error`. The GIL is released while the program runs; the library
// stays loaded (dlopen RTLD_NOW|RTLD_LOCAL) for the object's lifetime and is dlclosed with it.
//
// Calling from many threads: a generated program keeps its temporaries in the scratch arena it is
// given and in nothing global, so each call of a bound_program leases an arena of its own from the
// program's pool. Calls that touch the same input memory are ordered by a process-wide claim table:
// a call that writes an array (an update) waits for every other call reading or writing it, and a
// call reading it waits for a call writing it. Two updates of one array from two threads are thus
// applied one after the other, each on the other's result, in the order the calls got there.
#include <dlfcn.h>
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <algorithm>
#include <condition_variable>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <new>
#include <stdexcept>
#include <string>
#include <vector>

#include "symdiff/cpu/services.hpp"

namespace py = pybind11;

const symdiff_services* program_services();  // bind_gemm.cpp: the module's kernels

namespace {

constexpr const char* kAbi = "symdiff-abi-1";
using program_fn = int (*)(void* const*, const int64_t*, char*, int64_t);
using abi_fn = const char* (*)();
using arena_fn = int64_t (*)(const int64_t*);
using services_fn = int (*)(const symdiff_services*);

// A program that refused to run (a label out of range, a negative integer exponent, no device):
// Python sees ProgramError, both a ValueError (what numpy raises for such values) and a RuntimeError.
struct program_error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

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
    if (auto describe = reinterpret_cast<abi_fn>(dlsym(handle_, "symdiff_program_signature"))) {
      const char* text = describe();
      signature_ = text ? text : "";
    }
    arena_ = reinterpret_cast<arena_fn>(dlsym(handle_, "symdiff_program_arena_bytes"));
    // a program that calls the module's kernels (GEMM) gets their addresses before any call
    if (auto give = reinterpret_cast<services_fn>(dlsym(handle_, "symdiff_program_services")))
      if (give(program_services()) != 0) fail(path + " refuses this module's kernel table (a different version)");
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
      rc = invoke(buffers.data(), dims.data(), error, static_cast<int64_t>(sizeof(error)));
    }
    check(rc, error, sizeof(error));
  }

  // The bare call, for callers that manage the GIL themselves.
  int invoke(void* const* buffers, const int64_t* dims, char* error, int64_t error_size) const {
    return fn_(buffers, dims, error, error_size);
  }

  static void check(int rc, char* error, size_t error_size) {
    error[error_size - 1] = '\0';  // a program that ignores error_size must not run us off the end
    if (rc != 0)
      throw program_error(error[0] ? std::string(error)
                                   : "the program failed (code " + std::to_string(rc) + ") without a message");
  }

  const std::string& path() const { return path_; }
  const std::string& signature() const { return signature_; }
  bool has_runtime_dims() const { return arena_ != nullptr; }

  // The scratch bytes a call with run-time dimensions `dims` needs (programs that take them).
  int64_t arena_bytes(const std::vector<int64_t>& dims) const {
    if (!arena_) throw py::value_error("native_program: " + path_ + " is specialized: it takes no dimensions");
    for (int64_t d : dims)
      if (d < 1) throw py::value_error("native_program: run-time dimensions must be >= 1");
    const int64_t bytes = arena_(dims.data());
    if (bytes < 0) throw py::value_error("native_program: the program asks for a negative arena");
    return bytes;
  }

 private:
  [[noreturn]] void fail(const std::string& why) {
    dlclose(handle_);
    handle_ = nullptr;
    throw std::runtime_error("native_program: " + why);
  }

  std::string path_;
  std::string signature_;  // what the library says it expects ("" when it does not say)
  void* handle_ = nullptr;
  program_fn fn_ = nullptr;
  arena_fn arena_ = nullptr;
};

// Scratch arenas of one size, 64-byte aligned, one per call in flight; kept for the next call.
class arena_pool {
 public:
  explicit arena_pool(size_t bytes) : bytes_((std::max<size_t>(bytes, 1) + 63) / 64 * 64) {}
  arena_pool(const arena_pool&) = delete;
  arena_pool& operator=(const arena_pool&) = delete;
  ~arena_pool() {
    for (void* p : free_) std::free(p);
  }

  void* acquire() {
    {
      std::lock_guard<std::mutex> guard(mutex_);
      if (!free_.empty()) {
        void* p = free_.back();
        free_.pop_back();
        return p;
      }
    }
    void* p = std::aligned_alloc(64, bytes_);
    if (!p) throw std::bad_alloc();
    return p;
  }

  void release(void* p) {
    std::lock_guard<std::mutex> guard(mutex_);
    free_.push_back(p);
  }

  size_t bytes() const { return bytes_; }

  size_t pooled() {
    std::lock_guard<std::mutex> guard(mutex_);
    return free_.size();
  }

 private:
  size_t bytes_;
  std::mutex mutex_;
  std::vector<void*> free_;
};

// The memory of one input argument of a call in flight.
struct claim {
  uintptr_t lo, hi;  // [lo, hi)
  bool write;
};

// Which input memory the calls in flight read and write (see the file's comment). A call takes all
// its claims at once or waits, so no two calls can each hold what the other waits for.
class claim_table {
 public:
  void acquire(const std::vector<claim>& mine) {
    if (mine.empty()) return;
    std::unique_lock<std::mutex> lock(mutex_);
    if (conflicts(mine)) {
      ++waiting_;
      cv_.wait(lock, [&] { return !conflicts(mine); });
      --waiting_;
    }
    held_.insert(held_.end(), mine.begin(), mine.end());
  }

  void release(const std::vector<claim>& mine) {
    if (mine.empty()) return;
    bool wake;
    {
      std::lock_guard<std::mutex> guard(mutex_);
      for (const claim& c : mine) {
        auto it = std::find_if(held_.begin(), held_.end(), [&](const claim& h) {
          return h.lo == c.lo && h.hi == c.hi && h.write == c.write;
        });
        if (it != held_.end()) held_.erase(it);
      }
      wake = waiting_ > 0;
    }
    if (wake) cv_.notify_all();  // a futex call saved on every call nobody waits for
  }

 private:
  bool conflicts(const std::vector<claim>& mine) const {
    for (const claim& h : held_)
      for (const claim& c : mine)
        if ((h.write || c.write) && c.lo < h.hi && h.lo < c.hi) return true;
    return false;
  }

  std::mutex mutex_;
  std::condition_variable cv_;
  std::vector<claim> held_;
  int waiting_ = 0;  // calls blocked in acquire
};

struct arena_lease {
  explicit arena_lease(arena_pool& pool) : pool(pool), data(pool.acquire()) {}
  ~arena_lease() { pool.release(data); }
  arena_pool& pool;
  void* data;
};

struct claim_lease {
  claim_lease(claim_table& table, const std::vector<claim>& mine) : table(table), mine(mine) { table.acquire(mine); }
  ~claim_lease() { table.release(mine); }
  claim_table& table;
  const std::vector<claim>& mine;
};

struct call_lists {
  std::vector<void*> buffers;
  std::vector<claim> claims;
  bool busy = false;
};

struct lists_lease {
  explicit lists_lease(call_lists& lists) : lists(lists) {
    lists.busy = true;
    lists.buffers.clear();
    lists.claims.clear();
  }
  ~lists_lease() { lists.busy = false; }
  call_lists& lists;
};

claim_table& claims_in_flight() {
  static claim_table table;  // one per process: two programs may update the same array
  return table;
}

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
                std::vector<std::vector<py::ssize_t>> out_shapes, int64_t arena_bytes,
                std::vector<int64_t> dims)
      : program_obj_(std::move(program)), in_dtypes_(std::move(in_dtypes)), in_shapes_(std::move(in_shapes)),
        written_(std::move(written)), out_dtypes_(std::move(out_dtypes)), out_shapes_(std::move(out_shapes)),
        dims_(std::move(dims)),
        arenas_(arena_bytes < 0 ? throw py::value_error("bound_program: arena_bytes must be >= 0")
                                : static_cast<size_t>(arena_bytes)) {
    program_ = program_obj_.cast<native_program*>();
    if (!dims_.empty() && !program_->has_runtime_dims())
      throw py::value_error("bound_program: dimensions given to a specialized program");
    if (program_->has_runtime_dims() && dims_.empty())
      throw py::value_error("bound_program: the program takes run-time dimensions, and none were given");
    if (program_->has_runtime_dims() && program_->arena_bytes(dims_) > arena_bytes)
      throw py::value_error("bound_program: the arena is smaller than the program needs for these dimensions");
    if (in_dtypes_.size() != in_shapes_.size() || written_.size() != in_shapes_.size() ||
        out_dtypes_.size() != out_shapes_.size())
      throw py::value_error("bound_program: signature lists differ in length");
  }

  py::list call(const py::args& inputs) {
    const size_t n = in_shapes_.size();
    if (inputs.size() != n) throw signature_mismatch();
    // this thread's lists, reused (no allocation per call) unless a call of it is already using
    // them: allocating the outputs can run a finalizer that calls a program on this thread
    thread_local call_lists reused;
    call_lists own;
    call_lists& lists = reused.busy ? own : reused;
    lists_lease lease(lists);
    std::vector<void*>& buffers = lists.buffers;
    std::vector<claim>& claims = lists.claims;
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
      const auto lo = reinterpret_cast<uintptr_t>(a.data());
      if (a.nbytes() > 0) claims.push_back({lo, lo + static_cast<uintptr_t>(a.nbytes()), bool(written_[i])});
    }
    // an updated array sharing memory with another argument of this call: the slow path copies
    // the other argument (every backend reads the values from before the call) or refuses
    for (const claim& w : claims)
      if (w.write)
        for (const claim& c : claims)
          if (&c != &w && c.lo < w.hi && w.lo < c.hi) throw signature_mismatch();
    py::list outs(out_shapes_.size());
    for (size_t k = 0; k < out_shapes_.size(); ++k) {
      py::array out(out_dtypes_[k], out_shapes_[k]);
      buffers.push_back(out.mutable_data());
      outs[k] = out;
    }
    char error[1024] = {0};
    int rc;
    {
      py::gil_scoped_release release;
      arena_lease arena(arenas_);
      buffers.push_back(arena.data);
      claim_lease held(claims_in_flight(), claims);
      rc = program_->invoke(buffers.data(), dims_.empty() ? nullptr : dims_.data(), error,
                            static_cast<int64_t>(sizeof(error)));
    }
    native_program::check(rc, error, sizeof(error));
    return outs;
  }

  int64_t arena_bytes() const { return static_cast<int64_t>(arenas_.bytes()); }
  int64_t pooled_arenas() { return static_cast<int64_t>(arenas_.pooled()); }

 private:
  py::object program_obj_;  // keeps the library loaded
  native_program* program_ = nullptr;
  std::vector<py::dtype> in_dtypes_;
  std::vector<std::vector<py::ssize_t>> in_shapes_;
  std::vector<bool> written_;
  std::vector<py::dtype> out_dtypes_;
  std::vector<std::vector<py::ssize_t>> out_shapes_;
  std::vector<int64_t> dims_;  // the run-time dimensions of this signature (empty: specialized)
  arena_pool arenas_;
};

}  // namespace

void bind_program(py::module_& m) {
  py::register_exception<signature_mismatch>(m, "SignatureMismatch", PyExc_TypeError);
  py::register_exception<program_error>(m, "ProgramError",
                                        py::make_tuple(py::handle(PyExc_ValueError), py::handle(PyExc_RuntimeError)));
  py::class_<native_program>(m, "native_program", "A loaded generated program (see symdiff.lowering.cache).")
      .def(py::init<const std::string&, const std::string&>(), py::arg("path"),
           py::arg("symbol") = "symdiff_program")
      .def("__call__", &native_program::call, py::arg("arrays"), py::arg("dims"),
           py::arg("written") = std::vector<int64_t>{},
           "Run the program on C-contiguous arrays (GIL released); `written` lists the indices that must "
           "be writeable. A nonzero return raises RuntimeError with the program's message.")
      .def_property_readonly("path", &native_program::path)
      .def_property_readonly("signature", &native_program::signature,
                             "What the library says it expects (symdiff_program_signature), '' if it does not.")
      .def_property_readonly("has_runtime_dims", &native_program::has_runtime_dims,
                             "Whether the program takes run-time dimensions (symdiff_program_arena_bytes).")
      .def("arena_bytes", &native_program::arena_bytes, py::arg("dims"),
           "Scratch bytes a call with run-time dimensions `dims` needs.");
  py::class_<bound_program>(m, "bound_program",
                            "A program bound to one argument signature: checks and output allocation in C++.")
      .def(py::init<py::object, std::vector<py::dtype>, std::vector<std::vector<py::ssize_t>>, std::vector<bool>,
                    std::vector<py::dtype>, std::vector<std::vector<py::ssize_t>>, int64_t, std::vector<int64_t>>(),
           py::arg("program"), py::arg("in_dtypes"), py::arg("in_shapes"), py::arg("written"), py::arg("out_dtypes"),
           py::arg("out_shapes"), py::arg("arena_bytes"), py::arg("dims") = std::vector<int64_t>{})
      .def("__call__", &bound_program::call,
           "Run on arrays matching the signature; returns the new output arrays. Anything else (and an "
           "updated array sharing memory with another argument) raises SignatureMismatch (a TypeError) "
           "before the program runs. Safe to call from many threads: each call leases its own arena.")
      .def_property_readonly("arena_bytes", &bound_program::arena_bytes)
      .def_property_readonly("pooled_arenas", &bound_program::pooled_arenas,
                             "Arenas kept for the next calls (as many as calls ever ran at once).");
}
