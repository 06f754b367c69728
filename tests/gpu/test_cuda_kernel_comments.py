"""A generated CUDA program whose input has a hostile name still compiles with nvcc: the name
reaches the kernels' comments only, escaped (see tests/lowering/test_kernel_formulas.py)."""

import pytest
from symdiff.lowering.compiler import toolchain
from symdiff.lowering.programs.cuda import CudaProgram

import symdiff as sd
import symdiff.node

HOSTILE = 'W\n*/ int pwned = 1; /* "q" \\ ??/ \u202e \u2028\\'


def _nvcc():
    try:
        return toolchain.nvcc()
    except toolchain.CompilerNotFound:
        return None


@pytest.mark.skipif(_nvcc() is None, reason="needs nvcc (no device: it is only compiled)")
def test_a_hostile_name_compiles_with_nvcc(monkeypatch, tmp_path):
    monkeypatch.setattr(symdiff.node, "check_name", lambda name: name)  # as if a name could be any text
    X, W = sd.tensor("X", (5, 4)), sd.tensor(HOSTILE, (4, 3))
    source = CudaProgram([sd.tanh(X @ W) - W[0]], [X, W]).translate({}).source
    assert "// t0[5,3] = X·W\\x0a* / int pwned = 1;" in source
    assert toolchain.compile_shared(source, "cuda", tmp_path).stat().st_size > 0
