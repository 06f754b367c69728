"""Export symdiff graphs to ONNX (work in progress)."""
