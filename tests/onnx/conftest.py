"""ONNX tests need the onnx and onnxruntime packages (the test extras): skipped without them."""

import pytest

pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")
