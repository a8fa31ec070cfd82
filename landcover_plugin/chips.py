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
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from osgeo import gdal

from .engine.reader import GdalSource, copy_window, grid_of, image_bands, on_grid, open_raster, read_window
from .engine.windows import PixelWindow, window_rows
from .engine.writer import create_gtiff
from .errors import LandcoverError
from .outputs import AtomicOutputs, check_output_path
from .polygons import VECTOR_SUFFIXES, burn_polygons

OUTSIDE = 255  # label code of pixels outside every polygon


@dataclass
class ChipParams:
    """``size_px``/``stride_px``; ``max_ignore`` a fraction in [0, 1]; ``ignore`` label codes;
    ``label_field``: for polygon labels, the field holding each polygon's integer code."""

    image: str | Path
    label: str | Path
    output: str | Path
    size_px: int = 256
    stride_px: int | None = None
    max_ignore: float = 0.5
    ignore: tuple[int, ...] = (0,)
    label_field: str | None = None


@dataclass
class ChipsResult:
    """Chip pairs written, chips skipped (too many ignore pixels), and the output folder."""

    chips: int
    skipped: int
    output: Path

    def summary(self) -> str:
        return f"Wrote {self.chips} chip pairs to {self.output} (manifest.csv; {self.skipped} skipped)"


def _code(text: str) -> int | None:
    return int(text) if text.isdigit() and int(text) <= OUTSIDE else None  # 255 means "ignore" either way


@contextmanager
def _labels(params: ChipParams, img: gdal.Dataset):
    """A function (``PixelWindow`` of ``img``) → label codes ``(h, w)`` on ``img``'s grid."""
    if Path(params.label).suffix.lower() in VECTOR_SUFFIXES:
        if not params.label_field:
            raise LandcoverError(f"labels {params.label} are polygons: give the field that holds their codes (--label-field)")
        burnt = burn_polygons(grid_of(img), str(params.image), params.label, params.label_field, _code, OUTSIDE,
                              f"polygon labels must be integer codes 0–{OUTSIDE}")
        yield lambda w: burnt[w.row:w.row + w.height, w.col:w.col + w.width]
        return
    lab_ds = open_raster(params.label, "label")
    if lab_ds.RasterCount != 1:
        raise LandcoverError(f"the label raster must have 1 band, it has {lab_ds.RasterCount}")
    lab = on_grid(lab_ds, grid_of(img), str(params.label), f"image {params.image}")
    yield lambda w: read_window(lab, (1,), w, str(params.label))[0]


def _write_label(label: np.ndarray, img: gdal.Dataset, w: PixelWindow, path: Path) -> None:
    ds = create_gtiff(path, grid_of(img).sub(w.col, w.row, w.width, w.height), gdal.GDT_Byte, [], "label chip")
    ds.GetRasterBand(1).WriteArray(label)
    ds = None


def export_chips(params: ChipParams) -> ChipsResult:
    """Write the chips and ``manifest.csv`` into ``params.output`` (which must not exist yet), through a
    temporary folder renamed when complete. Raises ``LandcoverError`` for bad input."""
    output = Path(params.output)
    stride = params.stride_px or params.size_px
    if params.size_px < 1 or not 0 < stride <= params.size_px:
        raise LandcoverError(f"chip size must be >= 1 and stride in 1..size, got size {params.size_px}, stride {stride}")
    if not 0 <= params.max_ignore <= 1:
        raise LandcoverError(f"max ignore must be a fraction in [0, 1], got {params.max_ignore}")
    if output.exists():
        raise LandcoverError(f"output folder {output} already exists: choose a new folder")
    check_output_path(output, "output folder", inputs=(params.image, params.label))
    img = open_raster(params.image, "image")
    rows: list[dict[str, str | int | float]] = []  # the index CSV: chip, paths, window, labelled share, counts
    skipped = 0
    with AtomicOutputs() as outputs:
        tmp = outputs.add(output)
        (tmp / "images").mkdir(parents=True)
        (tmp / "labels").mkdir()
        ignore = params.ignore + ((OUTSIDE,) if Path(params.label).suffix.lower() in VECTOR_SUFFIXES else ())
        mask = GdalSource(img, str(params.image), image_bands(img), "image bands")
        with _labels(params, img) as read_label:
            for row in window_rows(img.RasterXSize, img.RasterYSize, params.size_px, params.size_px - stride):
                for w in row:
                    label = read_label(w)
                    ignored = np.isin(label, ignore) | ~mask.validity(w)
                    if ignored.mean() > params.max_ignore:
                        skipped += 1
                        continue
                    name = f"chip_{len(rows):06d}.tif"
                    copy_window(img, w, tmp / "images" / name)
                    _write_label(label, img, w, tmp / "labels" / name)
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
        outputs.commit()
    return ChipsResult(len(rows), skipped, output)
