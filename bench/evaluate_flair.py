"""Score a model through the real classify pipeline (overlapping tiles, Hann blending) on the
validation blocks of a training config (the rightmost `val_fraction` of each scene's columns),
optionally with the blocks resampled to another pixel size first (imagery cubic when finer, average
when coarser; labels by mode), as imagery at another GSD would arrive.

Usage: .venv/bin/python bench/evaluate_flair.py [--config models/flair-rgb.train.json]
       [--model models/flair-rgb.onnx] [--pixel-size M] [--gsd auto|off|M] [--json out.json]
Prints per-class IoU/F1, mIoU (over classes present in the validation blocks) and overall accuracy.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from osgeo import gdal

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
from landcover_plugin.engine.classify import ClassifyParams, classify  # noqa: E402
from landcover_plugin.engine.reader import copy_window, open_raster  # noqa: E402
from landcover_plugin.engine.windows import PixelWindow  # noqa: E402
from landcover_plugin.metrics import confusion_matrix, scores  # noqa: E402
from landcover_plugin.train.config import load_config  # noqa: E402
from landcover_plugin.train.data import code_lut, split_column  # noqa: E402


def resampled(path: Path, pixel_size: float, how: str, out: Path) -> Path:
    gdal.Warp(str(out), str(path), options=gdal.WarpOptions(xRes=pixel_size, yRes=pixel_size, resampleAlg=how))
    return out


def validation_blocks(config, work: Path, pixel_size: float | None = None, images: bool = True):
    """Per scene of ``config``: (scene image path, its validation block as a file in ``work`` (``None``
    without ``images``), reference class indices ``(H, W)`` uint8, 255 unlabelled). The block is the
    rightmost ``val_fraction`` of the columns, resampled to ``pixel_size`` m when given (imagery cubic
    when finer, average when coarser than the config's ``gsd``; labels nearest or by mode). The files are
    overwritten per scene. Raises ``ValueError`` for a ``pixel_size`` when the config states no ``gsd``."""
    if pixel_size and not config.gsd:
        raise ValueError("the training config states no gsd (m/px), so its blocks cannot be resampled")
    lut = code_lut(config)
    coarser = bool(pixel_size) and pixel_size > config.gsd
    for image_path, label_path in config.pairs:
        lab = open_raster(label_path)
        split = split_column(image_path, lab.RasterXSize, config.val_fraction)
        win = PixelWindow(split, 0, lab.RasterXSize - split, lab.RasterYSize)
        labels = copy_window(lab, win, work / "labels.tif")
        block = copy_window(open_raster(image_path), win, work / "block.tif") if images else None
        if pixel_size:
            labels = resampled(labels, pixel_size, "mode" if coarser else "near", work / "labels_r.tif")
            if block is not None:
                block = resampled(block, pixel_size, "average" if coarser else "cubic", work / "block_r.tif")
        ds = gdal.Open(str(labels))
        reference = lut[ds.GetRasterBand(1).ReadAsArray()]
        ds = None
        yield image_path, block, reference


def score(config_path: str, model: str, pixel_size: float | None = None, gsd: str = "auto", tile_size=None, overlap=None,
          tta: bool = False, verbose: bool = True) -> dict:
    """mIoU and friends of ``model`` on the validation blocks (at ``pixel_size`` m when given)."""
    config = load_config(config_path)
    k = len(config.classes)
    value_to_index = np.full(256, 255, np.uint8)
    for i, c in enumerate(config.classes):
        value_to_index[c.value] = i
    cm = np.zeros((k, k), np.int64)
    seconds = pixels = 0.0
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for image_path, block, reference in validation_blocks(config, work, pixel_size):
            out = work / "classes.tif"
            result = classify(ClassifyParams(block, out, model, tile_size, overlap, device="cpu", tta=tta, gsd=gsd))
            seconds += result.seconds
            pixels += result.width * result.height
            ds = gdal.Open(str(out))
            predicted = value_to_index[ds.GetRasterBand(1).ReadAsArray()]
            ds = None
            cm += confusion_matrix(reference, predicted, k)
            if verbose:
                print(f"{Path(image_path).name}: {reference.size / 1e6:.1f} MP validated in {result.seconds:.1f} s",
                      flush=True)
    s = scores(cm)
    return {"classes": [c.name for c in config.classes], "confusion": cm.tolist(), "seconds": seconds,
            "megapixels": pixels / 1e6, **s}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--config", default=str(REPO / "models" / "flair-rgb.train.json"))
    ap.add_argument("--model", default=str(REPO / "models" / "flair-rgb.onnx"))
    ap.add_argument("--tile-size", type=int)
    ap.add_argument("--overlap", type=int)
    ap.add_argument("--tta", action="store_true", help="test-time augmentation (8× slower)")
    ap.add_argument("--pixel-size", type=float, help="resample the validation blocks to this pixel size (m) first")
    ap.add_argument("--gsd", default="auto", help="classify's --gsd: auto (resample to the model's GSD) or off")
    ap.add_argument("--json")
    args = ap.parse_args()
    started = time.perf_counter()
    s = score(args.config, args.model, args.pixel_size, args.gsd, args.tile_size, args.overlap, args.tta)
    print(f"\n{'class':<24}{'IoU':>8}{'F1':>8}{'pixels':>12}")
    for name, iou, f1, n in zip(s["classes"], s["iou"], s["f1"], np.array(s["confusion"]).sum(axis=1)):
        print(f"{name:<24}{iou:>8.3f}{f1:>8.3f}{n:>12,}")
    print(f"\nmIoU {s['miou']:.4f} over {sum(s['present'])} classes present; overall accuracy {s['overall_accuracy']:.4f}; "
          f"classify {s['seconds']:.1f} s for {s['megapixels']:.1f} MP ({time.perf_counter() - started:.0f} s in all)")
    if args.json:
        Path(args.json).write_text(json.dumps(s, indent=2))


if __name__ == "__main__":
    main()
