"""Training chips: aligned image/label chips cut from an image and a label raster, with a manifest.

Chips of ``size`` px every ``stride`` px (the last row and column flush with the image's edge, as the
classify window grid); the label is read on the image's grid (warped with nearest when its grid
differs), or burnt from polygons whose ``label_field`` holds integer codes 0–255 (255, also outside
every polygon, is always ignored). A chip is skipped when more than ``max_ignore`` of its pixels are ignore (label code in
``ignore``, or image nodata/alpha 0). Chips keep the image's georeferencing. ``manifest.csv`` lists,
per chip, its files, position (px) and the pixel count of every label code, for stratified splits.
Everything is written into a temporary folder renamed to ``output`` when complete.
"""
from __future__ import annotations

import csv
import shutil
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import rasterio
from rasterio.windows import Window

from .engine.reader import copy_window, on_grid, open_raster
from .engine.windows import window_rows
from .errors import LandcoverError
from .polygons import VECTOR_SUFFIXES, burn_polygons

OUTSIDE = 255  # label code of pixels outside every polygon


@dataclass
class ChipParams:
    """``size``/``stride`` px; ``max_ignore`` a fraction in [0, 1]; ``ignore`` label codes;
    ``label_field``: for polygon labels, the field holding each polygon's integer code."""

    image: str | Path
    label: str | Path
    output: str | Path
    size: int = 256
    stride: int | None = None
    max_ignore: float = 0.5
    ignore: tuple[int, ...] = (0,)
    label_field: str | None = None


def _code(text: str) -> int | None:
    return int(text) if text.isdigit() and int(text) <= OUTSIDE else None  # 255 means "ignore" either way


@contextmanager
def _labels(params: ChipParams, img):
    """A function (rasterio ``Window`` of ``img``) → label codes ``(h, w)`` on ``img``'s grid."""
    if Path(params.label).suffix.lower() in VECTOR_SUFFIXES:
        if not params.label_field:
            raise LandcoverError(f"labels {params.label} are polygons: give the field that holds their codes (--label-field)")
        burnt = burn_polygons(img, params.label, params.label_field, _code, OUTSIDE,
                              f"polygon labels must be integer codes 0–{OUTSIDE}")
        yield lambda win: burnt[win.row_off:win.row_off + win.height, win.col_off:win.col_off + win.width]
        return
    with open_raster(params.label, "label") as lab_ds:
        if lab_ds.count != 1:
            raise LandcoverError(f"the label raster must have 1 band, it has {lab_ds.count}")
        lab = on_grid(lab_ds, img)
        try:
            yield lambda win: lab.read(1, window=win)
        finally:
            if lab is not lab_ds:
                lab.close()


def export_chips(params: ChipParams) -> dict:
    """Write the chips and ``manifest.csv`` into ``params.output`` (which must not exist yet).
    Returns {"chips": n, "skipped": m, "output": path}. Raises ``LandcoverError`` for bad input."""
    output = Path(params.output)
    stride = params.stride or params.size
    if params.size < 1 or not 0 < stride <= params.size:
        raise LandcoverError(f"chip size must be >= 1 and stride in 1..size, got size {params.size}, stride {stride}")
    if not 0 <= params.max_ignore <= 1:
        raise LandcoverError(f"max ignore must be a fraction in [0, 1], got {params.max_ignore}")
    if output.exists():
        raise LandcoverError(f"output folder {output} already exists: choose a new folder")
    if not output.resolve().parent.is_dir():
        raise LandcoverError(f"folder {output.resolve().parent} does not exist: create it first")
    tmp = output.with_name(f".{output.name}.part")
    shutil.rmtree(tmp, ignore_errors=True)
    (tmp / "images").mkdir(parents=True)
    (tmp / "labels").mkdir()
    rows, skipped = [], 0
    try:
        ignore = params.ignore + ((OUTSIDE,) if Path(params.label).suffix.lower() in VECTOR_SUFFIXES else ())
        with open_raster(params.image, "image") as img, _labels(params, img) as read_label:
            georeferenced = img.crs is not None or not img.transform.is_identity
            for row in window_rows(img.width, img.height, params.size, params.size - stride):
                for w in row:
                    win = Window(w.col, w.row, w.width, w.height)
                    label = read_label(win)
                    ignored = np.isin(label, ignore) | (img.dataset_mask(window=win) == 0)
                    if ignored.mean() > params.max_ignore:
                        skipped += 1
                        continue
                    name = f"chip_{len(rows):06d}.tif"
                    copy_window(img, win, tmp / "images" / name)
                    profile = {"driver": "GTiff", "width": w.width, "height": w.height}
                    if georeferenced:
                        profile.update(crs=img.crs, transform=img.window_transform(win))
                    with rasterio.open(tmp / "labels" / name, "w", count=1, dtype=label.dtype, **profile) as dst:
                        dst.write(label, 1)
                    codes, counts = np.unique(label, return_counts=True)
                    rows.append({"chip": name, "image": f"images/{name}", "label": f"labels/{name}", "col": w.col,
                                 "row": w.row, "labelled_fraction": round(1 - float(ignored.mean()), 4),
                                 **{f"count_{c}": int(n) for c, n in zip(codes.tolist(), counts.tolist())}})
        if not rows:
            raise LandcoverError(f"no chip kept: every chip has more than {params.max_ignore:.0%} ignore pixels; "
                                 "raise max ignore or check the ignore codes")
        codes = sorted({k for r in rows for k in r if k.startswith("count_")}, key=lambda k: int(k[6:]))
        fields = ["chip", "image", "label", "col", "row", "labelled_fraction", *codes]
        with open(tmp / "manifest.csv", "w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=fields, restval=0)
            writer.writeheader()
            writer.writerows(rows)
        tmp.rename(output)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return {"chips": len(rows), "skipped": skipped, "output": str(output)}
