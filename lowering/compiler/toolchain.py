"""Compilers for generated programs: finding them, their flags, running them safely.

**The program ABI.** A generated program is a shared library exporting two C symbols::

    extern "C" const char* symdiff_program_abi(void);  // returns render.writer.ABI, "symdiff-abi-1"
    extern "C" int symdiff_program(void* const* buffers, const int64_t* dims,
                                   char* error, int64_t error_size);

``buffers`` holds the data pointers of C-contiguous arrays in the order the generator
fixed (for :mod:`symdiff.lowering.render.cpu_unit`: inputs, outputs, then the arena); ``dims`` holds
the bound symbolic dimensions. ``symdiff_program`` returns 0 on success; otherwise it
writes a NUL-terminated message of at most ``error_size`` bytes into ``error`` and
returns nonzero. The loader (:func:`~symdiff.lowering.kernels.native.load_program`) refuses a library whose
``symdiff_program_abi`` is missing or returns another string.

The compiler runs without a shell, in a private temporary directory, with a time
limit; a failure raises :class:`CompileError` with the command and the first lines
of the diagnostics. No compiler raises :class:`CompilerNotFound`, whose message
suggests ``backend="numpy"``. ``$CXX`` (one program name or path) and ``$SYMDIFF_NVCC``
choose the compilers; ``$SYMDIFF_INCLUDE_DIR`` overrides where the kernel headers are
found; ``$SYMDIFF_CXXFLAGS`` adds flags. Everything that decides the binary is in
:func:`toolchain_id`, which is part of every cache key.

>>> flags = cxx_flags()
>>> "-fopenmp" in flags and "-march=native" in flags
True
>>> (include_dir() / "symdiff" / "cpu" / "gemm.hpp").exists()
True
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import os
import shlex
import shutil
import subprocess
import tempfile
from pathlib import Path

from ..kernels import native

KERNEL_ABI_VERSION = "symdiff-abi-1/kernels-1"  # bump when the headers or the program ABI change
TIMEOUT_SECONDS = 300
DIAGNOSTIC_LINES = 60
PACKAGE = Path(__file__).resolve().parents[1]  # lowering/ (symdiff/lowering/ when installed)
CHECKOUT = PACKAGE.parent  # the source tree's root, in an editable install
# the variables that decide which compiler, flags and headers are used (see toolchain_id)
ENVIRONMENT = ("CXX", "PATH", "SYMDIFF_NVCC", "SYMDIFF_CXXFLAGS", "SYMDIFF_INCLUDE_DIR")


class CompilerNotFound(RuntimeError):
    """No C++ (or CUDA) compiler, or no kernel headers: native backends cannot run here."""


class CompileError(RuntimeError):
    """The compiler rejected a generated program (the message holds the command and diagnostics)."""


def cxx() -> str:
    """Path of the C++ compiler: ``$CXX``, else the first of c++, g++, clang++ on PATH.

    An explicit ``$CXX`` that does not exist is an error, not a reason to pick another compiler.

    >>> Path(cxx()).exists()
    True
    """
    env = os.environ.get("CXX")
    candidates = [env] if env else ["c++", "g++", "clang++"]
    for name in candidates:
        path = shutil.which(name)
        if path:
            return path
    why = f"CXX={env!r} does not exist" if env else "tried c++, g++, clang++ on PATH"
    raise CompilerNotFound(f"no C++ compiler found ({why}); install one or set CXX, "
                           "or use backend='numpy', which needs no compiler")


def nvcc() -> str:
    """Path of nvcc: ``$SYMDIFF_NVCC``, PATH, or /usr/local/cuda/bin/nvcc.

    >>> try:
    ...     path = nvcc()
    ... except CompilerNotFound as e:
    ...     path = str(e)
    >>> "nvcc" in path
    True
    """
    env = os.environ.get("SYMDIFF_NVCC")
    if env:
        path = shutil.which(env)
        if path:
            return path
        raise CompilerNotFound(f"SYMDIFF_NVCC={env!r} does not exist; use backend='cpu' or backend='numpy'")
    for candidate in (shutil.which("nvcc"), "/usr/local/cuda/bin/nvcc"):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    raise CompilerNotFound("nvcc was not found (set SYMDIFF_NVCC or put CUDA's bin on PATH); "
                           "use backend='cpu' or backend='numpy'")


@functools.cache
def compiler_version(path: str) -> str:
    """First line of ``path --version`` (part of every cache key).

    >>> "++" in compiler_version(cxx()) or "clang" in compiler_version(cxx())
    True
    """
    try:
        out = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=60, check=False)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise CompilerNotFound(f"cannot run {path} --version: {e}; use backend='numpy'") from e
    lines = [line for line in (out.stdout or out.stderr).splitlines() if line.strip()]
    return lines[0].strip() if lines else path


def include_dir() -> Path:
    """Directory holding ``symdiff/cpu/*.hpp``: ``$SYMDIFF_INCLUDE_DIR``, else the headers
    installed next to the compiled module (a wheel), else the source tree's ``csrc/include``
    (an editable install).

    >>> include_dir().name
    'include'
    """
    env = os.environ.get("SYMDIFF_INCLUDE_DIR")
    if env:
        if (Path(env) / "symdiff" / "cpu").is_dir():
            return Path(env)
        raise CompilerNotFound(f"SYMDIFF_INCLUDE_DIR={env!r} does not hold the symdiff kernel headers "
                               "(symdiff/cpu/*.hpp)")
    # a source checkout (editable install) first: its headers are the ones being edited; an
    # installed wheel ships a copy next to the module
    candidates = [CHECKOUT / "csrc" / "include", PACKAGE / "include"]
    candidates.append(native.module_dir() / "include")  # a wheel installs the headers beside the module
    for c in candidates:
        if (c / "symdiff" / "cpu").is_dir():
            return c
    raise CompilerNotFound("the symdiff kernel headers were not found (looked in "
                           + ", ".join(map(str, candidates)) + "); set SYMDIFF_INCLUDE_DIR to the folder "
                           "holding symdiff/cpu/*.hpp, or use backend='numpy'")


def cxx_flags() -> list[str]:
    """Flags for generated C++; ``$SYMDIFF_CXXFLAGS`` appends more (``make asan`` adds sanitizers).

    >>> cxx_flags()[:3]
    ['-O3', '-march=native', '-fopenmp']
    """
    extra = shlex.split(os.environ.get("SYMDIFF_CXXFLAGS", ""))
    return ["-O3", "-march=native", "-fopenmp", "-fPIC", "-shared", "-std=c++17", "-fno-math-errno",
            "-fno-trapping-math", "-w", f"-I{include_dir()}", *extra]


def cuda_source_dir() -> Path | None:
    """Directory holding the CUDA kernel sources (``gemm.cu``, ``common.cuh``), which generated
    CUDA programs include; None when only the headers were installed."""
    for c in (include_dir().parent / "cuda", CHECKOUT / "csrc" / "cuda"):
        if (c / "gemm.cu").is_file():
            return c
    return None


def nvcc_flags() -> list[str]:
    """Flags for generated CUDA (the host side is built with OpenMP, position-independent).

    >>> nvcc_flags()[:3]
    ['-O3', '-shared', '-std=c++17']
    """
    sources = cuda_source_dir()
    # relaxed constexpr: sympy prints mixed-type calls such as fmax(0, v0), which libstdc++ resolves
    # with constexpr templates that the device side may call only under this flag
    return ["-O3", "-shared", "-std=c++17", "-w", "--expt-relaxed-constexpr", "-Xcompiler", "-fPIC,-fopenmp",
            f"-I{include_dir()}",
            *([f"-I{sources}"] if sources else [])]


@functools.cache
def headers_digest(root: str) -> str:
    """SHA-256 of every kernel header under ``root``: generated code includes them, so an edited
    header must not be served from a cache entry compiled against the old one."""
    h = hashlib.sha256()
    for path in sorted(Path(root).rglob("*")):
        if path.suffix in (".hpp", ".h", ".cuh") and path.is_file():
            h.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes())
    return h.hexdigest()


@dataclasses.dataclass(frozen=True)
class Kind:
    """How one backend's generated source is built: the file it is written to, its compiler and flags."""

    source_name: str
    compiler: object  # () -> path
    flags: object  # () -> list of flags


# backend -> how its programs are built ("cpu" is C++ with OpenMP); the lambdas look the functions
# up when called, so a test that patches toolchain.cxx or toolchain.nvcc_flags is obeyed
KINDS = {"cpu": Kind("program.cpp", lambda: cxx(), lambda: cxx_flags()),
         "cuda": Kind("program.cu", lambda: nvcc(), lambda: nvcc_flags())}


def kind_of(kind: str) -> Kind:
    """The build recipe for ``kind``, a backend name ("cpu" or "cuda").

    >>> kind_of("cpu").source_name
    'program.cpp'
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {', '.join(map(repr, KINDS))}, got {kind!r}")
    return KINDS[kind]


def compiler_and_flags(kind: str) -> tuple[str, list[str]]:
    """(compiler path, flags) for ``kind`` ("cpu" or "cuda").

    >>> compiler_and_flags("cpu")[1] == cxx_flags()
    True
    """
    recipe = kind_of(kind)
    return recipe.compiler(), recipe.flags()


def toolchain_id(kind: str) -> str:
    """What besides the source decides the binary: kind, compiler, its version, flags, kernel ABI.

    Memoized on the environment variables that can change it, so a warm cache hit stays cheap.

    >>> toolchain_id("cpu").splitlines()[0]
    'cpu'
    """
    return _toolchain_id(kind, tuple(os.environ.get(v) for v in ENVIRONMENT))


@functools.lru_cache(maxsize=64)
def _toolchain_id(kind: str, environment: tuple) -> str:
    compiler, flags = compiler_and_flags(kind)
    return "\n".join([kind, compiler, compiler_version(compiler), shlex.join(flags), KERNEL_ABI_VERSION,
                      headers_digest(str(include_dir()))])


def compile_shared(source: str, kind: str = "cpu", workdir: str | os.PathLike | None = None) -> Path:
    """Compile ``source`` into a shared library and return its path.

    The build happens in a fresh private directory (made inside ``workdir`` when given,
    else in the system's temporary folder); the caller owns the returned file and its folder.
    A failed build leaves nothing behind.

    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as d:
    ...     compile_shared("int nothing;", workdir=d).suffix
    '.so'
    """
    compiler, flags = compiler_and_flags(kind)
    work = Path(tempfile.mkdtemp(prefix="build-", dir=workdir))
    try:
        src = work / kind_of(kind).source_name
        lib = work / "program.so"
        src.write_text(source, encoding="utf-8")  # kernel comments hold the formulas, in Unicode
        cmd = [compiler, *flags, str(src), "-o", str(lib)]
        try:
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=TIMEOUT_SECONDS,
                                  cwd=work, check=False)
        except subprocess.TimeoutExpired as e:
            raise CompileError(f"the compiler ran longer than {TIMEOUT_SECONDS} s\n"
                               f"command: {shlex.join(cmd)}") from e
        except OSError as e:
            raise CompilerNotFound(f"cannot run {compiler}: {e}; use backend='numpy'") from e
        if done.returncode != 0 or not lib.is_file():
            lines = (done.stderr + done.stdout).splitlines()
            shown = "\n".join(lines[:DIAGNOSTIC_LINES])
            extra = len(lines) - DIAGNOSTIC_LINES
            more = f"\n[... {extra} more lines]" if extra > 0 else ""
            raise CompileError(f"compiling a generated {kind} program failed (exit {done.returncode})\n"
                               f"command: {shlex.join(cmd)}\n{shown}{more}")
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    return lib
