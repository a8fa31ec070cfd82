"""How does a model hold up when the imagery's GSD differs from its own (and nothing resamples it)?

The validation blocks of a georeferenced training config (the rightmost ``val_fraction`` of each
scene's columns) are resampled with GDAL to ``factor`` × the model's GSD — cubic when refining
(factor < 1), average when coarsening; the labels with mode — and classified with today's classify
pipeline at the model's default tiling, which does not resample. Prints mIoU and OA per factor and
the difference from the native GSD.

Usage: .venv/bin/python bench/gsd_robustness.py [--config models/flair-rgb.train.json]
       [--model models/flair-rgb.onnx] [--factors 0.5 1 2] [--json out.json]
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np
import rasterio
from osgeo import gdal
from rasterio.windows import Window

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
from landcover_plugin.engine.classify import ClassifyParams, classify  # noqa: E402
from landcover_plugin.engine.reader import copy_window  # noqa: E402
from landcover_plugin.metrics import confusion_matrix, scores  # noqa: E402
from landcover_plugin.model.adapter import read_metadata  # noqa: E402
from landcover_plugin.train.config import load_config  # noqa: E402
from landcover_plugin.train.data import code_lut  # noqa: E402

gdal.UseExceptions()


def resample(src: Path, dst: Path, factor: float, method: str) -> Path:
    """``src`` warped onto the same bounds at ``factor`` × its pixel size."""
    info = gdal.Info(str(src), format="json")
    res = abs(info["geoTransform"][1]) * factor
    gdal.Warp(str(dst), str(src), xRes=res, yRes=res, resampleAlg=method, targetAlignedPixels=False,
              outputBounds=None, format="GTiff")
    return dst


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--config", default=str(REPO / "models" / "flair-rgb.train.json"))
    ap.add_argument("--model", default=str(REPO / "models" / "flair-rgb.onnx"))
    ap.add_argument("--factors", nargs="+", type=float, default=[0.5, 1.0, 2.0])
    ap.add_argument("--tile-size", type=int)
    ap.add_argument("--overlap", type=int)
    ap.add_argument("--label", default="")
    ap.add_argument("--json")
    args = ap.parse_args()
    config = load_config(args.config)
    meta = read_metadata(args.model)
    lut = code_lut(config)
    k = len(config.classes)
    value_to_index = np.full(256, 255, np.uint8)
    for i, v in enumerate(meta.class_values):
        value_to_index[v] = i
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        blocks = []
        for n, (image_path, label_path) in enumerate(config.pairs):
            with rasterio.open(image_path) as img, rasterio.open(label_path) as lab:
                split = int(round(img.width * (1 - config.val_fraction)))
                win = Window(split, 0, img.width - split, img.height)
                blocks.append((copy_window(img, win, tmp / f"image{n}.tif"), copy_window(lab, win, tmp / f"label{n}.tif")))
        for factor in args.factors:
            cm = np.zeros((k, k), np.int64)
            seconds = 0.0
            for n, (image, label) in enumerate(blocks):
                if factor != 1:
                    image = resample(image, tmp / f"image{n}_x.tif", factor, "cubic" if factor < 1 else "average")
                    label = resample(label, tmp / f"label{n}_x.tif", factor, "mode")
                out = tmp / "classes.tif"
                result = classify(ClassifyParams(image, out, args.model, args.tile_size, args.overlap, device="cpu"),
                                  info=lambda m: None)
                seconds += result.seconds
                with rasterio.open(out) as o, rasterio.open(label) as ref:
                    cm += confusion_matrix(lut[ref.read(1)], value_to_index[o.read(1)], k)
            s = scores(cm)
            results[factor] = {"gsd": meta.gsd * factor if meta.gsd else None, "miou": s["miou"],
                               "overall_accuracy": s["overall_accuracy"], "seconds": seconds,
                               "iou": dict(zip(meta.class_names, s["iou"]))}
            print(f"  factor {factor:g}: mIoU {s['miou']:.4f}, OA {s['overall_accuracy']:.4f} ({seconds:.0f} s)",
                  file=sys.stderr, flush=True)
    native = results.get(1.0, {}).get("miou")
    label = args.label or Path(args.model).stem
    print(f"\n{label}: validation blocks of {Path(args.config).name} resampled with GDAL, classified at the "
          f"model's tiling without resampling")
    print("| model | GSD factor | GSD (m) | mIoU | OA | mIoU − native |")
    print("|---|---|---|---|---|---|")
    for factor, r in results.items():
        delta = f"{r['miou'] - native:+.4f}" if native is not None else "n/a"
        gsd = f"{r['gsd']:g}" if r["gsd"] else "n/a"
        print(f"| {label} | {factor:g}× | {gsd} | {r['miou']:.4f} | {r['overall_accuracy']:.4f} | {delta} |")
    if args.json:
        Path(args.json).write_text(json.dumps({"model": args.model, "label": label,
                                               "results": {str(f): r for f, r in results.items()}}, indent=2))


if __name__ == "__main__":
    main()
