"""Score a model through the real classify pipeline (overlapping tiles, Hann blending) on the
validation blocks of a training config (the rightmost `val_fraction` of each scene's columns).

Usage: .venv/bin/python bench/evaluate_flair.py [--config models/flair-rgb.train.json]
       [--model models/flair-rgb.onnx] [--json out.json]
Prints per-class IoU/F1, mIoU (over classes present in the validation blocks) and overall accuracy.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np
import rasterio
from rasterio.windows import Window

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
from landcover_plugin.engine.classify import ClassifyParams, classify  # noqa: E402
from landcover_plugin.engine.reader import copy_window  # noqa: E402
from landcover_plugin.metrics import confusion_matrix, scores  # noqa: E402
from landcover_plugin.train.config import load_config  # noqa: E402
from landcover_plugin.train.data import code_lut  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--config", default=str(REPO / "models" / "flair-rgb.train.json"))
    ap.add_argument("--model", default=str(REPO / "models" / "flair-rgb.onnx"))
    ap.add_argument("--tile-size", type=int)
    ap.add_argument("--overlap", type=int)
    ap.add_argument("--tta", action="store_true", help="test-time augmentation (8× slower)")
    ap.add_argument("--json")
    args = ap.parse_args()
    config = load_config(args.config)
    lut = code_lut(config)
    k = len(config.classes)
    value_to_index = np.full(256, 255, np.uint8)
    for i, c in enumerate(config.classes):
        value_to_index[c.value] = i
    cm = np.zeros((k, k), np.int64)
    with tempfile.TemporaryDirectory() as tmp:
        for image_path, label_path in config.pairs:
            with rasterio.open(image_path) as img, rasterio.open(label_path) as lab:
                split = int(round(img.width * (1 - config.val_fraction)))
                win = Window(split, 0, img.width - split, img.height)
                block = copy_window(img, win, Path(tmp) / "block.tif")
                reference = lut[lab.read(1, window=win)]
            out = Path(tmp) / "classes.tif"
            classify(ClassifyParams(block, out, args.model, args.tile_size, args.overlap, device="cpu", tta=args.tta), info=lambda m: None)
            with rasterio.open(out) as o:
                predicted = value_to_index[o.read(1)]
            cm += confusion_matrix(reference, predicted, k)
            print(f"{Path(image_path).name}: {reference.size / 1e6:.1f} MP validated", flush=True)
    s = scores(cm)
    names = [c.name for c in config.classes]
    print(f"\n{'class':<24}{'IoU':>8}{'F1':>8}{'pixels':>12}")
    for name, iou, f1, n in zip(names, s["iou"], s["f1"], cm.sum(axis=1)):
        print(f"{name:<24}{iou:>8.3f}{f1:>8.3f}{n:>12,}")
    print(f"\nmIoU {s['miou']:.4f} over {sum(s['present'])} classes present; overall accuracy {s['overall_accuracy']:.4f}")
    if args.json:
        Path(args.json).write_text(json.dumps({"classes": names, "confusion": cm.tolist(), **s}, indent=2))


if __name__ == "__main__":
    main()
