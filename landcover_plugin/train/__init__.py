"""Training (PyTorch): networks, georeferenced image/label pairs, the training loop and ONNX export."""
