"""Fixtures shared by the kernel tests."""

import pytest
from symdiff.lowering import native


@pytest.fixture(params=[1, 2], ids=["1 thread", "2 threads"])
def threads(request):
    """Run the test with 1 and with 2 OpenMP threads, restoring the count afterwards."""
    before = native.num_threads()
    native.set_num_threads(request.param)
    yield request.param
    native.set_num_threads(before)
