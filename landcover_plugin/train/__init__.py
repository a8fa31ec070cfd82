"""Training (PyTorch): networks, georeferenced image/label pairs, the training loop and ONNX export.

Importing this package, before PyTorch loads, sets (each only unless it is already set):

- ``OMP_WAIT_POLICY=PASSIVE``: with spinning waits, PyTorch's CPU threads slowed training 2-10×
  whenever another process took one of the cores (measured on a shared 2-core machine: 1.3-15 s per
  step instead of 2.5-4 s). Results are identical either way; only the waiting differs.
- on an x86-64 CPU with AVX2 (read from ``/proc/cpuinfo``, Linux), ``ATEN_CPU_CAPABILITY=avx2`` and
  ``ONEDNN_MAX_CPU_ISA=AVX2``: PyTorch's own kernels and oneDNN's convolutions use AVX2 code even
  where the CPU has AVX-512. The two code paths round differently, so without this a seeded run on an
  AVX-512 machine drifts from the same run on an AVX2 machine (flair-rgb's stage 1: identical for 100
  steps, then validation mIoU 0.408 instead of 0.390 at step 300). With it, ``make train-flair``
  reproduces the shipped weights on either; AVX2 cost about 4 % more time per step on an AVX-512
  machine (AMD EPYC, 2 threads: 354 s instead of 341 s for 300 steps and one validation).
"""
import os


def cpu_has_avx2() -> bool:
    """Whether ``/proc/cpuinfo`` lists AVX2 (False where there is no such file: not Linux)."""
    try:
        with open("/proc/cpuinfo") as fh:
            return any(line.startswith("flags") and " avx2" in line for line in fh)
    except OSError:
        return False


os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
if cpu_has_avx2():
    os.environ.setdefault("ATEN_CPU_CAPABILITY", "avx2")
    os.environ.setdefault("ONEDNN_MAX_CPU_ISA", "AVX2")
