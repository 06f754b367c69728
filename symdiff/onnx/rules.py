"""Per-op ONNX export rules (work in progress)."""
