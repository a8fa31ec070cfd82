"""Model metadata schema, bundled-model registry and the ONNX model adapter."""
