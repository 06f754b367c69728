"""ONNX export and import (work in progress)."""
