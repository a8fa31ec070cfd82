"""The mIoU ceiling that a network's output stride puts on a map: the validation labels of a training
config, at each pixel size the model may be given, reduced to per-cell class shares on the stride grid
(the best stride-s logits can say), upsampled bilinearly to the pixels (as the FPN head does) and
arg-maxed, scored against the labels themselves. A perfect model with stride-4 logits scores this.

    .venv/bin/python bench/output_stride_ceiling.py [--config models/flair-rgb.train.json] [--stride 4]

The blocks are those of bench/evaluate_flair.py (labels resampled by mode when coarser, nearest when
finer). Prints mIoU and overall accuracy per pixel size.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
from bench.evaluate_flair import validation_blocks  # noqa: E402
from landcover_plugin.metrics import confusion_matrix, scores  # noqa: E402
from landcover_plugin.train.config import load_config  # noqa: E402


def stride_limited(reference: np.ndarray, k: int, stride: int, chunk: int = 1024) -> np.ndarray:
    """``reference`` ``(H, W)`` class indices (255 = unlabelled) as the best stride-``stride`` logits
    would draw it: one-hot averaged over ``stride × stride`` cells, bilinear back to ``(H, W)``,
    arg-max. Processed in row strips of ``chunk`` px (plus a cell of context) to bound memory."""
    h, w = reference.shape
    out = np.empty((h, w), np.uint8)
    for top in range(0, h, chunk):
        lo, hi = max(0, top - stride), min(h, top + chunk + stride)
        lo -= lo % stride
        strip = torch.from_numpy(reference[lo:hi].astype(np.int64))
        onehot = F.one_hot(strip.clamp(max=k), k + 1)[..., :k].permute(2, 0, 1)[None].float()
        sh, sw = strip.shape
        pad = (0, (-sw) % stride, 0, (-sh) % stride)
        cells = F.avg_pool2d(F.pad(onehot, pad), stride)
        up = F.interpolate(cells, scale_factor=stride, mode="bilinear", align_corners=False)[..., :sh, :sw]
        out[top:min(h, top + chunk)] = up[0].argmax(0).numpy()[top - lo:top - lo + min(chunk, h - top)]
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default=str(REPO / "models" / "flair-rgb.train.json"))
    ap.add_argument("--stride", type=int, default=4, help="output stride of the logits (px)")
    args = ap.parse_args()
    config = load_config(args.config)
    if not config.gsd:
        ap.error(f"{args.config} states no gsd (m/px)")
    gsd = float(config.gsd)
    k = len(config.classes)
    for pixel_size in (gsd / 2, gsd, gsd * 2):
        cm = np.zeros((k, k), np.int64)
        with tempfile.TemporaryDirectory() as tmp:
            for _, _, reference in validation_blocks(config, Path(tmp), None if pixel_size == gsd else pixel_size,
                                                     images=False):
                cm += confusion_matrix(reference, stride_limited(reference, k, args.stride), k)
        s = scores(cm)
        cell = pixel_size * args.stride
        print(f"{pixel_size:.2f} m pixels, stride-{args.stride} logits ({cell:.1f} m cells): "
              f"ceiling mIoU {s['miou']:.4f}, OA {s['overall_accuracy']:.4f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
