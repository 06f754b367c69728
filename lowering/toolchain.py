"""Compilers for generated programs: finding them, their flags, running them safely.

The compiler runs without a shell, in a private temporary directory, with a time
limit; a failure raises :class:`CompileError` with the command and the first lines
of the diagnostics. No compiler raises :class:`CompilerNotFound`, whose message
suggests ``backend="numpy"``. ``$CXX`` and ``$SYMDIFF_NVCC`` choose the compilers;
``$SYMDIFF_INCLUDE_DIR`` overrides where the kernel headers are found; ``$SYMDIFF_CXXFLAGS``
adds flags (they are part of every cache key).

>>> flags = cxx_flags()
>>> "-fopenmp" in flags and "-march=native" in flags
True
>>> (include_dir() / "symdiff" / "cpu" / "gemm.hpp").exists()
True
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

KERNEL_ABI_VERSION = "symdiff-abi-1/kernels-1"  # bump when the headers or the program ABI change
TIMEOUT_SECONDS = 300
DIAGNOSTIC_LINES = 60


class CompilerNotFound(RuntimeError):
    """No C++ (or CUDA) compiler: native backends cannot run here."""


class CompileError(RuntimeError):
    """The compiler rejected a generated program."""


def cxx() -> str:
    """Path of the C++ compiler: ``$CXX``, else the first of c++, g++, clang++ on PATH."""
    env = os.environ.get("CXX")
    candidates = [env] if env else ["c++", "g++", "clang++"]
    for name in candidates:
        path = shutil.which(name)
        if path:
            return path
    raise CompilerNotFound("no C++ compiler found (" + (f"CXX={env!r} does not exist" if env else
                           "tried c++, g++, clang++") + "); install one, or use backend='numpy', "
                           "which needs no compiler")


def nvcc() -> str:
    """Path of nvcc: ``$SYMDIFF_NVCC``, PATH, or /usr/local/cuda/bin/nvcc."""
    for candidate in (os.environ.get("SYMDIFF_NVCC"), shutil.which("nvcc"), "/usr/local/cuda/bin/nvcc"):
        if candidate and Path(candidate).exists():
            return candidate
    raise CompilerNotFound("nvcc was not found (set SYMDIFF_NVCC or put CUDA's bin on PATH); "
                           "use backend='cpu' or backend='numpy'")


@functools.lru_cache(maxsize=None)
def compiler_version(path: str) -> str:
    """First line of ``path --version`` (part of every cache key)."""
    try:
        out = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=60)
    except OSError as e:
        raise CompilerNotFound(f"cannot run {path}: {e}; use backend='numpy'") from e
    lines = (out.stdout or out.stderr).strip().splitlines()
    return lines[0] if lines else path


def include_dir() -> Path:
    """Directory holding ``symdiff/cpu/*.hpp``: installed with the package, or the source tree."""
    here = Path(__file__).resolve().parent
    candidates = [os.environ.get("SYMDIFF_INCLUDE_DIR"), here / "include", here.parent / "csrc" / "include"]
    try:
        from . import _native

        candidates.insert(1, Path(_native.__file__).resolve().parent / "include")
    except ImportError:
        pass
    for c in candidates:
        if c and (Path(c) / "symdiff" / "cpu").is_dir():
            return Path(c)
    raise CompilerNotFound("the symdiff kernel headers were not found (looked in "
                           + ", ".join(str(c) for c in candidates if c) + "); set SYMDIFF_INCLUDE_DIR")


def cxx_flags() -> list[str]:
    """Flags for generated C++; ``$SYMDIFF_CXXFLAGS`` appends more (``make asan`` adds sanitizers)."""
    extra = os.environ.get("SYMDIFF_CXXFLAGS", "").split()
    return ["-O3", "-march=native", "-fopenmp", "-fPIC", "-shared", "-std=c++17", "-fno-math-errno",
            "-w", f"-I{include_dir()}", *extra]


def cuda_source_dir() -> Path | None:
    """Directory holding the CUDA kernel sources (``gemm.cu``, ``common.cuh``), which generated
    CUDA programs include; None when only the headers were installed."""
    here = Path(__file__).resolve().parent
    for c in (include_dir().parent / "cuda", here.parent / "csrc" / "cuda"):
        if (c / "gemm.cu").is_file():
            return c
    return None


def nvcc_flags() -> list[str]:
    sources = cuda_source_dir()
    # relaxed constexpr: sympy prints mixed-type calls such as fmax(0, v0), which libstdc++ resolves
    # with constexpr templates that the device side may call only under this flag
    return ["-O3", "-shared", "-std=c++17", "-w", "--expt-relaxed-constexpr", "-Xcompiler", "-fPIC,-fopenmp",
            f"-I{include_dir()}",
            *([f"-I{sources}"] if sources else [])]


def toolchain_id(kind: str) -> str:
    """What besides the source decides the binary: compiler, its version, flags, kernel ABI."""
    compiler = cxx() if kind == "cpp" else nvcc()
    flags = cxx_flags() if kind == "cpp" else nvcc_flags()
    return "\n".join([kind, compiler, compiler_version(compiler), " ".join(flags), KERNEL_ABI_VERSION])


def compile_shared(source: str, kind: str, workdir: str | os.PathLike) -> Path:
    """Compile ``source`` into a shared library inside ``workdir`` (a private directory)."""
    if kind not in ("cpp", "cuda"):
        raise ValueError(f"compile_shared: kind must be 'cpp' or 'cuda', got {kind!r}")
    work = Path(tempfile.mkdtemp(prefix="build-", dir=workdir))
    src = work / ("program.cpp" if kind == "cpp" else "program.cu")
    lib = work / "program.so"
    src.write_text(source)
    compiler = cxx() if kind == "cpp" else nvcc()
    cmd = [compiler, *(cxx_flags() if kind == "cpp" else nvcc_flags()), str(src), "-o", str(lib)]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=TIMEOUT_SECONDS, cwd=work)
    except subprocess.TimeoutExpired as e:
        raise CompileError(f"the compiler ran longer than {TIMEOUT_SECONDS} s: {' '.join(cmd)}") from e
    except OSError as e:
        raise CompilerNotFound(f"cannot run {compiler}: {e}; use backend='numpy'") from e
    if done.returncode != 0 or not lib.exists():
        diagnostics = "\n".join((done.stderr or done.stdout).splitlines()[:DIAGNOSTIC_LINES])
        raise CompileError(f"compiling a generated program failed (exit {done.returncode})\n"
                           f"command: {' '.join(cmd)}\n{diagnostics}")
    return lib
