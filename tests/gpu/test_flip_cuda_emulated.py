"""The flip graph of test_flip_cuda.py as a generated CUDA program on the CPU emulation
(tests/gpu/cuda_emulator, see test_cuda_emulated.py): runs on every machine with g++ and nvcc."""

import pytest
from test_cuda_emulated import CXX, emulated_programs  # noqa: F401  (the fixture: builds on the emulation)
from test_flip_cuda import check_against_the_reference

pytestmark = pytest.mark.skipif(CXX is None, reason="the emulation needs a C++ compiler")


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_flips_equal_the_reference_evaluator_on_the_emulation(emulated_programs, dtype):  # noqa: F811
    check_against_the_reference(dtype)
