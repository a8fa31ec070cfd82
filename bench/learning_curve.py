"""A learning curve from training runs that differ only in ``label_fraction``: for each run folder the
labelled share of the training part (computed from its config's pairs, split and stripes), that share in
512 px patches, the training loop's best validation mIoU and, where the folder holds ``pipeline.json``
(``bench/evaluate_flair.py --json``), the mIoU through the classify pipeline. Then a least-squares line
of mIoU against log2(labelled share): the gain per doubling of labelled area, and how many times the
labels a model at ``--from`` mIoU would need to reach ``--target`` if that line held.

Usage: .venv/bin/python bench/learning_curve.py docs/runs/flair-lc-* [--from 0.617] [--target 0.64]
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
from landcover_plugin.engine.reader import open_raster  # noqa: E402
from landcover_plugin.train.data import IGNORE, keep_label_stripes, split_column  # noqa: E402


def local(path: str) -> Path:
    """A data path a run recorded, found again under this checkout's ../shared if it moved."""
    p = Path(path)
    if not p.exists() and "shared" in p.parts:
        p = REPO.parent.joinpath(*p.parts[p.parts.index("shared"):])
    return p


def labelled_pixels(config: dict) -> tuple[int, int]:
    """(labelled, total) pixels of the training part of every pair (``split_column``), labels kept in
    ``keep_label_stripes``' stripes; from the rasters' sizes."""
    labelled = total = 0
    fraction = config.get("label_fraction", 1.0)
    for image, _ in config["pairs"]:
        dataset = open_raster(local(image))
        width, height = dataset.RasterXSize, dataset.RasterYSize
        dataset = None
        split = split_column(image, width, config.get("val_fraction", 0.2), config.get("val_pairs", ()))
        row = np.zeros((1, width), np.uint8)
        kept = keep_label_stripes(row, split, fraction) if fraction < 1 else row
        labelled += int((kept[0, :split] != IGNORE).sum()) * height
        total += split * height
    return labelled, total


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", nargs="+", help="run folders (summary.json, config.json, optionally pipeline.json)")
    ap.add_argument("--from", dest="start", type=float, default=0.617, help="mIoU of the model to extrapolate from")
    ap.add_argument("--target", type=float, default=0.64)
    args = ap.parse_args()
    rows = []
    for folder in map(Path, args.runs):
        config = json.loads((folder / "config.json").read_text())
        summary = json.loads((folder / "summary.json").read_text())
        pipeline = folder / "pipeline.json"
        labelled, total = labelled_pixels(config)
        rows.append((folder.name, config.get("label_fraction", 1.0), labelled / total, labelled / 512 ** 2,
                     summary["val_miou"], json.loads(pipeline.read_text())["miou"] if pipeline.exists() else None))
    rows.sort(key=lambda r: r[2])
    print("| run | label_fraction | labelled share | 512 px patches | loop best mIoU | pipeline mIoU |")
    print("|---|---|---|---|---|---|")
    for name, fraction, share, patches, loop, pipe in rows:
        print(f"| {name} | {fraction:g} | {share:.1%} | {patches:.0f} | {loop:.3f} | {'—' if pipe is None else f'{pipe:.3f}'} |")
    x = np.log2([r[2] for r in rows])
    for label, column in (("training loop", 4), ("pipeline", 5)):
        y = [r[column] for r in rows]
        if len(rows) < 2 or None in y:
            continue
        slope, at_full = np.polyfit(x, y, 1)
        r = float(np.corrcoef(x, y)[0, 1])
        needed = 2 ** ((args.target - args.start) / slope) if slope > 0 else float("inf")
        print(f"{label}: +{slope:.4f} mIoU per doubling of labelled area (line at 100 %: {at_full:.3f}, r {r:.2f}); "
              f"from {args.start} to {args.target}: {needed:.2f}× the labels if the line held")
    return 0


if __name__ == "__main__":
    sys.exit(main())
