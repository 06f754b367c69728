"""Import ONNX inference graphs into symdiff (work in progress)."""
