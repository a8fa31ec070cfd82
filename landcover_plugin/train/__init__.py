"""Training (PyTorch): networks, georeferenced image/label pairs, the training loop and ONNX export.

Importing this package sets ``OMP_WAIT_POLICY=PASSIVE`` unless it is already set (before PyTorch
loads its OpenMP runtime): with spinning waits, PyTorch's CPU threads slowed training 2-10× whenever
another process took one of the cores (measured on a shared 2-core machine: 1.3-15 s per step
instead of 2.5-4 s). Results are identical either way; only the waiting differs.
"""
import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
