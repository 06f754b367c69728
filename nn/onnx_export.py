"""ONNX export of symdiff.nn models (work in progress)."""
