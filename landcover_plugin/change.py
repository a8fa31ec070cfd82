"""Land-cover change between two dates: a change raster, a transition matrix with areas, and a report.

Each date is a Landcover class raster (its ``LANDCOVER_CLASSES`` names define its classes) or an
image, which is classified first with the engine (seam-free, GSD-aware; ``--model``, and
``--after-model`` for the second date) into a class raster and a confidence raster in a temporary
folder beside the output. Both dates' classes are put onto one legend: by name, or through an
explicit mapping (``NAME=COMMON`` or ``VALUE=COMMON``; ``NAME=-`` leaves a class out as nodata).

**Alignment.** The output is on BEFORE's grid, cut to the common extent (BEFORE's pixels covering the
intersection of both rasters' bounds); AFTER is warped onto it with nearest neighbour, so classes are
never blended. Rasters that do not overlap are refused; pixel sizes that differ by more than 2× give
a warning. Two rasters without georeferencing (JPEG, PNG) are taken to be on the same grid, pixel for
pixel, when they have the same size, and refused otherwise.

**Coding of band 1** (K classes of the common legend indexed 0..K−1 in legend order):

- ``0``: unchanged (the same class on both dates);
- ``from·K + to + 1`` (1..K²; ``from`` ≠ ``to``): changed from class ``from`` to class ``to``, both dates
  confident;
- ``K² + 1``: uncertain — the classes differ but at least one date is below ``min_confidence`` there:
  possible change, left out of the change figures;
- nodata (``255`` for uint8, ``65535`` for uint16): either date is nodata, or outside the common
  extent. The band is uint8 when K² + 1 ≤ 254 (K ≤ 15), else uint16.

Optional band 2 ("changed to class k"): ``k + 1`` (1..K) where changed to class ``k``, ``0`` where
unchanged, ``K + 1`` where uncertain, nodata as band 1. The coding, the legend and the threshold are
stored in the raster's metadata (``LANDCOVER_CHANGE_*``).

**Confidence.** Change is only reported where both dates are confident: the maximum class probability
is at least ``min_confidence`` (default 0.6, the smallest threshold that kept the change between two
shifted tilings of the same image at most 1 % on six FLAIR zones; README). Images bring their
confidence from the model; a class raster needs its confidence raster (``confidence_before``/``_after``,
as written by ``landcover classify --confidence``), else the filter is not applied to that date and the
result says so. The transition matrix, the areas and the per-class gains and losses count the
unchanged and the confidently changed pixels; the area left out as uncertain is reported beside them.
Rasters are compared in blocks of rows: memory does not grow with their size. Every output is written
under a temporary name and renamed when complete.
"""
from __future__ import annotations

import csv
import json
import math
import re
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .engine.grid import Grid, gsd_m
from .engine.reader import color_names, gdal_errors, grid_of, last_error, open_raster, read_window, transform_bounds
from .engine.windows import PixelWindow
from .engine.writer import CLASSES_TAG, GTIFF, paletted_qml, read_classes_tag
from .errors import LandcoverError
from .feedback import Feedback, RecordingFeedback
from .outputs import AtomicOutputs, check_output_path, temp_name

DEFAULT_MIN_CONFIDENCE = 0.6  # measured on the no-change test (README, "Land-cover change")
BLOCK_PIXELS = 1 << 22  # pixels compared per block (rows × width): about 60 MB of working arrays
DROP = "-"  # mapping target that leaves a class out (nodata)
PIXEL_RATIO_WARNING = 2.0
UNCERTAIN_COLOR = "#9e9e9e"
# 19 colours that stay distinct from each other (Trubetskoy's list without its grey), by transition area
PALETTE = ("#e6194b", "#3cb44b", "#4363d8", "#f58231", "#911eb4", "#42d4f4", "#f032e6", "#bfef45", "#469990",
           "#9a6324", "#800000", "#808000", "#000075", "#ffe119", "#fabed4", "#dcbeff", "#aaffc3", "#ffd8b1", "#000000")
TAG_PREFIX = "LANDCOVER_CHANGE_"


@dataclass
class ChangeParams:
    """What to compare and how.

    ``before``/``after``: a Landcover class raster or an image (file paths); ``model`` classifies image
    dates (``None``: flair-rgb) and ``after_model`` the AFTER image (``None``: ``model``);
    ``map_before``/``map_after``: ``"NAME=COMMON,VALUE=COMMON,NAME=-"`` (or a dict) onto the common legend;
    ``min_confidence`` 0–1 (0: no filter); ``confidence_before``/``_after``: confidence rasters of class-raster
    dates; ``transitions`` CSV and ``report`` Markdown (a heat-map PNG beside it) are optional;
    ``to_class_band`` adds band 2; ``device``/``batch_size``/``threads`` go to the classifier."""

    before: str | Path
    after: str | Path
    output: str | Path
    model: str | Path | None = None
    after_model: str | Path | None = None
    map_before: str | dict[str, str] | None = None
    map_after: str | dict[str, str] | None = None
    min_confidence: float = DEFAULT_MIN_CONFIDENCE
    confidence_before: str | Path | None = None
    confidence_after: str | Path | None = None
    transitions: str | Path | None = None
    report: str | Path | None = None
    to_class_band: bool = False
    device: str = "auto"
    batch_size: int = 4
    threads: int | None = None


@dataclass
class DateInfo:
    """One date: its file, what it is (``class raster`` or ``image``), the model that classified it, and
    where its confidence came from (``model``, a confidence raster's path, or ``None``: none, so the
    min-confidence filter was not applied to it)."""

    label: str
    path: str
    kind: str
    model: str | None
    confidence: str | None

    def describe(self) -> str:
        what = f"image classified with {self.model}" if self.kind == "image" else "class raster"
        conf = ("confidence from the model" if self.confidence == "model" else f"confidence {self.confidence}") \
            if self.confidence else "no confidence raster: min-confidence not applied to it"
        return f"{self.label} {self.path} ({what}; {conf})"


@dataclass
class ChangeResult:
    """What a comparison found. ``matrix[i][j]``: pixels of class ``classes[i]`` on BEFORE and
    ``classes[j]`` on AFTER (off the diagonal: both dates confident); ``uncertain_pixels``: classes
    differ but a date is below the threshold (in no cell); ``common_pixels``: valid on both dates;
    ``pixel_area_m2`` ``None`` when not georeferenced (areas are then in pixels)."""

    output: Path
    transitions_csv: Path | None
    report: Path | None
    classes: list[str]
    colors: list[str]
    matrix: list[list[int]]
    common_pixels: int
    uncertain_pixels: int
    width: int
    height: int
    pixel_area_m2: float | None
    min_confidence: float
    dates: list[DateInfo]
    data_type: str
    nodata: int
    seconds: float
    notes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def k(self) -> int:
        return len(self.classes)

    @property
    def changed_pixels(self) -> int:
        m = np.asarray(self.matrix, np.int64)
        return int(m.sum() - np.trace(m))

    @property
    def unchanged_pixels(self) -> int:
        return int(np.trace(np.asarray(self.matrix, np.int64)))

    def share(self, pixels: int) -> float:
        """``pixels`` as % of the common area (0 when there is none)."""
        return 100.0 * pixels / self.common_pixels if self.common_pixels else 0.0

    @property
    def changed_percent(self) -> float:
        return self.share(self.changed_pixels)

    @property
    def uncertain_percent(self) -> float:
        return self.share(self.uncertain_pixels)

    def area(self, pixels: int) -> str:
        """``pixels`` as hectares (and m² when small), or as pixels without georeferencing."""
        if self.pixel_area_m2 is None:
            return f"{pixels:,} px"
        m2 = pixels * self.pixel_area_m2
        return f"{m2 / 1e4:,.2f} ha" if m2 >= 1e4 else f"{m2:,.1f} m²"

    def code(self, i: int, j: int) -> int:
        """Band 1's value for class ``i`` → class ``j`` (0 when ``i == j``)."""
        return 0 if i == j else i * self.k + j + 1

    def transitions(self, changed_only: bool = False) -> list[tuple[str, str, int, int]]:
        """Rows ``(from, to, code, pixels)`` of the non-empty matrix cells in legend order."""
        return [(self.classes[i], self.classes[j], self.code(i, j), n) for i, row in enumerate(self.matrix)
                for j, n in enumerate(row) if n and not (changed_only and i == j)]

    def present(self) -> list[int]:
        """Indexes of the classes that occur on either date (in the matrix)."""
        m = np.asarray(self.matrix, np.int64)
        return [i for i in range(self.k) if m[i].sum() or m[:, i].sum()]

    def class_changes(self) -> list[tuple[str, int, int, int, int, int]]:
        """Per class present ``(name, before, after, gains, losses, net)`` in pixels of the matrix
        (uncertain pixels excluded)."""
        m = np.asarray(self.matrix, np.int64)
        diag = np.diag(m)
        before, after = m.sum(axis=1), m.sum(axis=0)
        return [(self.classes[i], int(before[i]), int(after[i]), int(after[i] - diag[i]), int(before[i] - diag[i]),
                 int(after[i] - before[i])) for i in self.present()]

    def write_transitions(self, path: Path) -> None:
        """CSV: from, to, code, pixels, m2, ha, percent (of the common area); unchanged rows have code 0."""
        with open(path, "w", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow(["from", "to", "code", "pixels", "m2", "ha", "percent"])
            for a, b, code, n in self.transitions():
                m2 = n * self.pixel_area_m2 if self.pixel_area_m2 is not None else None
                writer.writerow([a, b, code, n, "" if m2 is None else f"{m2:.2f}", "" if m2 is None else f"{m2 / 1e4:.6f}",
                                 f"{self.share(n):.4f}"])

    def summary(self) -> str:
        """The closing summary: outputs, the dates, the common area, change and uncertain shares, the
        largest transitions and every warning."""
        written = [str(p) for p in (self.transitions_csv, self.report) if p]
        lines = [f"Wrote {self.output} (+ .qml)" + (f", {', '.join(written)}" if written else "")]
        lines += [d.describe() for d in self.dates]
        lines += self.notes
        pixels = f" ({self.common_pixels:,} px)" if self.pixel_area_m2 is not None else ""
        lines.append(f"Common area (valid on both dates) {self.area(self.common_pixels)}{pixels} on a {self.width}×{self.height} "
                     f"px grid, {self.k} classes; {self.data_type}, nodata {self.nodata}")
        lines.append(f"Changed {self.area(self.changed_pixels)} = {self.changed_percent:.2f} % of the common area; "
                     f"unchanged {self.share(self.unchanged_pixels):.2f} %; left out as uncertain (classes differ, confidence < "
                     f"{self.min_confidence:g} on a date) {self.area(self.uncertain_pixels)} = {self.uncertain_percent:.2f} %")
        top = sorted(self.transitions(changed_only=True), key=lambda t: -t[3])[:5]
        for a, b, code, n in top:
            lines.append(f"  {a} → {b} (code {code}): {self.area(n)}, {self.share(n):.2f} %")
        lines += [f"Warning: {w}" for w in self.warnings]
        return "\n".join(lines)


# ---------------------------------------------------------------------------------------------- legend

def _norm(name: str) -> str:
    return " ".join(str(name).split()).casefold()


def parse_class_mapping(text: str | dict[str, str] | None, option: str = "--map-before") -> dict[str, str]:
    """``"coniferous=woodland, 7=woodland, other=-"`` → {class name (normalised) or value: common name or
    ``-``}. Raises ``LandcoverError`` naming ``option`` on bad syntax."""
    if isinstance(text, dict):
        items = list(text.items())
    else:
        items = []
        for item in filter(None, (t.strip() for t in re.split(r"[,;]", text or ""))):
            source, sep, target = item.partition("=")
            if not sep or not source.strip() or not target.strip():
                raise LandcoverError(f"{option} entry {item!r} must look like CLASS=COMMON (a class name or value, '=', "
                                     "the common class name, or - to leave it out)")
            items.append((source, target))
    return {_norm(s): " ".join(str(t).split()) for s, t in items}


@dataclass
class Legend:
    """The common legend: names and colours; ``lut_before``/``lut_after`` map each date's class values
    (0–255) to the legend index, 255 for nodata and left-out classes."""

    names: list[str]
    colors: list[str]
    lut_before: np.ndarray
    lut_after: np.ndarray


def _mapped(classes: dict[int, tuple[str, str]], mapping: dict[str, str], label: str, option: str) -> dict[int, str]:
    """Each class value of one date → its common name (or ``DROP``)."""
    known = {str(v) for v in classes} | {_norm(n) for n, _ in classes.values()}
    unknown = [k for k in mapping if k not in known]
    if unknown:
        names = ", ".join(f"{v}={n}" for v, (n, _) in sorted(classes.items()))
        raise LandcoverError(f"{option} names {', '.join(map(repr, unknown))}, which is not a class of {label} ({names}): "
                             "use its class names or values")
    out = {}
    for v, (n, _) in sorted(classes.items()):
        out[v] = mapping.get(str(v), mapping.get(_norm(n), n))
    return out


def common_legend(before: dict[int, tuple[str, str]], after: dict[int, tuple[str, str]],
                  map_before: dict[str, str] | None = None, map_after: dict[str, str] | None = None) -> Legend:
    """One legend for both dates from their classes (value → (name, colour)), each mapped by
    ``map_before``/``map_after`` (normalised name or value → common name, ``-``: left out) and otherwise
    by name (case and spacing ignored). Legend order: BEFORE's values; colours: the first class mapped
    to each name.

    Raises ``LandcoverError`` when the two dates' mapped class sets differ (a class only one date can
    have would show as change), naming the classes and the fix."""
    mb = _mapped(before, map_before or {}, "BEFORE", "--map-before")
    ma = _mapped(after, map_after or {}, "AFTER", "--map-after")
    names: dict[str, int] = {}
    display: list[str] = []
    colors: list[str] = []
    for v, n in mb.items():
        if n != DROP and _norm(n) not in names:
            names[_norm(n)] = len(display)
            display.append(n)
            colors.append(before[v][1])
    in_after = {_norm(n) for n in ma.values() if n != DROP}
    only_before = [n for n in display if _norm(n) not in in_after]
    only_after = sorted({n for n in ma.values() if n != DROP and _norm(n) not in names})
    if only_before or only_after:
        parts = ([f"only BEFORE has {', '.join(map(repr, only_before))}"] if only_before else []) + \
                ([f"only AFTER has {', '.join(map(repr, only_after))}"] if only_after else [])
        raise LandcoverError(f"the two dates have different classes ({'; '.join(parts)}): map them onto one legend with "
                             "--map-before/--map-after CLASS=COMMON (CLASS=- leaves a class out)")
    if not display:
        raise LandcoverError("every class was left out by --map-before/--map-after: keep at least one class")
    lut_b, lut_a = np.full(256, 255, np.int64), np.full(256, 255, np.int64)
    for lut, mapped in ((lut_b, mb), (lut_a, ma)):
        for v, n in mapped.items():
            if n != DROP:
                lut[v] = names[_norm(n)]
    return Legend(display, colors, lut_b, lut_a)


def coding(k: int) -> tuple[str, int, int]:
    """(GDAL type name, nodata, uncertain code) of a change raster over ``k`` classes: uint8 with nodata
    255 when K² + 1 ≤ 254, else uint16 with nodata 65535; uncertain = K² + 1."""
    if k * k + 1 <= 254:
        return "Byte", 255, k * k + 1
    return "UInt16", 65535, k * k + 1


# ---------------------------------------------------------------------------------------------- dates

@dataclass
class _Date:
    label: str
    path: Path
    kind: str  # "classes" or "image"
    ds: Any  # gdal.Dataset
    classes: dict[int, tuple[str, str]]
    model: str | None = None
    confidence: Path | None = None
    class_path: Path | None = None  # the class raster compared (the input, or the classified image)


def _colors_of(ds, values) -> dict[int, str]:
    ct = ds.GetRasterBand(1).GetColorTable()
    return {v: "#{:02x}{:02x}{:02x}".format(*ct.GetColorEntry(v)[:3]) if ct and v < ct.GetCount() else "#888888"
            for v in values}


def _open_date(label: str, path: Path, model: str | Path | None, confidence: str | Path | None) -> _Date:
    """Open a date and tell a class raster from an image. Raises ``LandcoverError`` for a raster that is
    neither a Landcover class raster nor an image ``model`` can read."""
    from osgeo import gdal

    ds = open_raster(path, label)
    if ds.GetMetadataItem(CLASSES_TAG):
        names = read_classes_tag(ds, str(path))
        colors = _colors_of(ds, names)
        return _Date(label, path, "classes", ds, {v: (n, colors[v]) for v, n in names.items()},
                     confidence=Path(confidence) if confidence else None, class_path=path)
    band = ds.GetRasterBand(1)
    if band.GetColorTable() is not None or band.GetColorInterpretation() == gdal.GCI_PaletteIndex or band.GetCategoryNames():
        raise LandcoverError(f"{label} {path} is a class raster without Landcover's {CLASSES_TAG} metadata, so its classes "
                             "are unknown: give a class raster written by landcover classify, or the image itself")
    if confidence:
        raise LandcoverError(f"--confidence-{label.lower()} is for a class raster, but {label} {path} is an image (its "
                             "confidence comes from the model): drop that option")
    from .engine.source import choose_bands
    from .model.adapter import read_metadata
    from .model.registry import resolve_model

    model_path = resolve_model(model)
    meta = read_metadata(model_path)
    try:
        choose_bands(color_names(ds), meta.num_bands or ds.RasterCount, meta.input_bands)
    except LandcoverError as exc:
        raise LandcoverError(f"{label} {path} is neither a Landcover class raster (no {CLASSES_TAG} metadata) nor an image "
                             f"the model {meta.name or model_path.stem} reads ({exc})") from None
    classes = {v: (n, c) for v, n, c in zip(meta.class_values, meta.class_names, meta.class_colors)}
    return _Date(label, path, "image", ds, classes, model=meta.name or model_path.stem)


def _georeferenced(grid: Grid) -> bool:
    return grid.geotransform is not None and bool(grid.crs_wkt)


@dataclass
class Alignment:
    """The output grid (a window of BEFORE's grid over the common extent, or BEFORE's grid itself),
    its offset in BEFORE's pixels, and notes and warnings about how the dates were aligned."""

    grid: Grid
    col: int
    row: int
    notes: list[str]
    warnings: list[str]


def align(before: Grid, after: Grid, before_name: str, after_name: str) -> Alignment:
    """Where the two grids meet, on BEFORE's grid. Raises ``LandcoverError`` when they do not overlap,
    when only one is georeferenced and the sizes differ, or when BEFORE's grid is rotated."""
    notes: list[str] = []
    warnings: list[str] = []
    if not (_georeferenced(before) and _georeferenced(after)):
        if (before.width, before.height) != (after.width, after.height):
            raise LandcoverError(f"BEFORE {before_name} ({before.width}×{before.height} px) and AFTER {after_name} "
                                 f"({after.width}×{after.height} px) cannot be aligned: without georeferencing (CRS and "
                                 "geotransform) on both, two dates must have the same size; georeference them or crop "
                                 "them to the same pixels")
        if _georeferenced(before) or _georeferenced(after):
            warnings.append("only one date is georeferenced: both are taken to be on the same grid, pixel for pixel")
        else:
            notes.append("Neither date is georeferenced: they have the same size and are taken to be on the same grid, "
                         "pixel for pixel")
        return Alignment(before, 0, 0, notes, warnings)
    gt = before.geotransform
    assert gt is not None and before.crs_wkt and after.crs_wkt
    if gt[2] or gt[4]:
        raise LandcoverError(f"BEFORE {before_name} has a rotated geotransform: warp it to a north-up grid first "
                             "(gdalwarp) or swap BEFORE and AFTER")
    left, bottom, right, top = transform_bounds(after.bounds(), after.crs_wkt, before.crs_wkt)
    xmin, ymin, xmax, ymax = before.bounds()
    ix0, iy0, ix1, iy1 = max(left, xmin), max(bottom, ymin), min(right, xmax), min(top, ymax)
    if ix0 >= ix1 or iy0 >= iy1:
        raise LandcoverError(f"BEFORE {before_name} and AFTER {after_name} do not overlap (BEFORE covers x {xmin:.1f}..{xmax:.1f}, "
                             f"y {ymin:.1f}..{ymax:.1f}; AFTER x {left:.1f}..{right:.1f}, y {bottom:.1f}..{top:.1f} in BEFORE's "
                             "CRS): give two rasters of the same place")
    cols = sorted(before.to_pixel(x, y)[0] for x in (ix0, ix1) for y in (iy0, iy1))
    rows = sorted(before.to_pixel(x, y)[1] for x in (ix0, ix1) for y in (iy0, iy1))
    c0, c1 = max(0, math.floor(cols[0] + 1e-6)), min(before.width, math.ceil(cols[-1] - 1e-6))
    r0, r1 = max(0, math.floor(rows[0] + 1e-6)), min(before.height, math.ceil(rows[-1] - 1e-6))
    if c1 <= c0 or r1 <= r0:
        raise LandcoverError(f"BEFORE {before_name} and AFTER {after_name} overlap by less than one pixel: give two rasters "
                             "of the same place")
    grid = before.sub(c0, r0, c1 - c0, r1 - r0)
    if (c0, r0, c1, r1) != (0, 0, before.width, before.height):
        notes.append(f"Common extent: {c1 - c0}×{r1 - r0} px of BEFORE's {before.width}×{before.height} px grid "
                     f"(from column {c0}, row {r0})")
    size_b, size_a = gsd_m(before)[0], gsd_m(after)[0]
    if size_b and size_a and max(size_b, size_a) / min(size_b, size_a) > PIXEL_RATIO_WARNING:
        warnings.append(f"the dates' pixel sizes differ by more than {PIXEL_RATIO_WARNING:g}× (BEFORE {size_b:.3g} m, "
                        f"AFTER {size_a:.3g} m): AFTER is resampled onto BEFORE's grid with nearest neighbour, and "
                        "change at the finer date's detail is not comparable; resample to similar pixels")
    return Alignment(grid, c0, r0, notes, warnings)


def _window_of(grid: Grid, target: Grid, margin: int) -> PixelWindow:
    """``grid``'s pixels covering ``target``'s bounds (same CRS assumed after transform), plus ``margin``."""
    assert grid.crs_wkt and target.crs_wkt
    left, bottom, right, top = transform_bounds(target.bounds(), target.crs_wkt, grid.crs_wkt)
    pts = [grid.to_pixel(x, y) for x in (left, right) for y in (bottom, top)]
    c0 = max(0, math.floor(min(p[0] for p in pts) + 1e-6) - margin)
    c1 = min(grid.width, math.ceil(max(p[0] for p in pts) - 1e-6) + margin)
    r0 = max(0, math.floor(min(p[1] for p in pts) + 1e-6) - margin)
    r1 = min(grid.height, math.ceil(max(p[1] for p in pts) - 1e-6) + margin)
    return PixelWindow(c0, r0, max(1, c1 - c0), max(1, r1 - r0))


def _same_crs(a: str, b: str) -> bool:
    from osgeo import osr

    if a == b:
        return True
    sa, sb = osr.SpatialReference(), osr.SpatialReference()
    return sa.ImportFromWkt(a) == 0 and sb.ImportFromWkt(b) == 0 and bool(sa.IsSame(sb))


def _view(ds, target: Grid, nodata: float, name: str):
    """``ds`` read on ``target``: ``(dataset, col, row)`` whose window at (col, row) of ``target``'s size is
    ``target``. ``ds`` itself when ``target`` is a whole-pixel window of its grid (or neither is
    georeferenced), else a nearest-neighbour warped VRT with ``nodata`` outside ``ds``."""
    from osgeo import gdal

    grid = grid_of(ds)
    if not (_georeferenced(grid) and _georeferenced(target)):
        return ds, 0, 0
    g, t = grid.geotransform, target.geotransform
    assert g is not None and t is not None and grid.crs_wkt and target.crs_wkt
    if all(math.isclose(g[i], t[i], rel_tol=1e-9, abs_tol=1e-12) for i in (1, 2, 4, 5)) and not g[2] and not g[4] \
            and _same_crs(grid.crs_wkt, target.crs_wkt):
        col, row = grid.to_pixel(t[0], t[3])
        c, r = round(col), round(row)
        if abs(col - c) < 1e-6 and abs(row - r) < 1e-6 and c >= 0 and r >= 0 and c + target.width <= grid.width \
                and r + target.height <= grid.height:
            return ds, c, r
    xmin, ymin, xmax, ymax = target.bounds()
    with gdal_errors():
        vrt = gdal.Warp("", ds, options=gdal.WarpOptions(
            format="VRT", dstSRS=target.crs_wkt, outputBounds=(xmin, ymin, xmax, ymax), width=target.width,
            height=target.height, resampleAlg="near", srcNodata=nodata, dstNodata=nodata, multithread=False))
        if vrt is None:
            raise LandcoverError(f"GDAL could not put {name} on the common grid ({last_error()})")
    return vrt, 0, 0


class _Span(Feedback):
    """Forwards to ``inner`` with progress mapped onto ``[a, b]`` and messages prefixed."""

    def __init__(self, inner: Feedback, a: float, b: float, prefix: str = ""):
        self.inner, self.a, self.b, self.prefix = inner, a, b, prefix

    def progress(self, fraction: float) -> None:
        self.inner.progress(self.a + (self.b - self.a) * fraction)

    def is_cancelled(self) -> bool:
        return self.inner.is_cancelled()

    def info(self, message: str) -> None:
        self.inner.info(self.prefix + message)

    def warning(self, message: str) -> None:
        self.inner.warning(self.prefix + message)


def _check_confidence(path: Path, class_grid: Grid, label: str):
    ds = open_raster(path, f"{label} confidence")
    grid = grid_of(ds)
    if (grid.width, grid.height) != (class_grid.width, class_grid.height) or (
            grid.geotransform and class_grid.geotransform and
            not all(math.isclose(p, q, rel_tol=1e-9, abs_tol=1e-6) for p, q in zip(grid.geotransform, class_grid.geotransform))):
        raise LandcoverError(f"the {label} confidence raster {path} ({grid.width}×{grid.height} px) is not on the grid of "
                             f"{label}'s class raster ({class_grid.width}×{class_grid.height} px): give the confidence "
                             "raster written with it (landcover classify --confidence)")
    from osgeo import gdal

    if ds.RasterCount != 1 or not gdal.GetDataTypeName(ds.GetRasterBand(1).DataType).startswith("Float"):
        raise LandcoverError(f"the {label} confidence raster {path} is not a 1-band float raster of probabilities: give the "
                             "confidence raster written by landcover classify --confidence")
    return ds


def _classify_date(date: _Date, params: ChangeParams, model: str | Path | None, work: Path, target: Grid,
                   feedback: Feedback) -> tuple[Path, Path]:
    """Classify an image date into ``work`` (class + confidence raster), over the common extent plus a
    margin of one tile when that is smaller than the image; sets and returns ``class_path`` and
    ``confidence``."""
    from osgeo import gdal

    from .engine.classify import ClassifyParams, classify
    from .model.adapter import read_metadata
    from .model.registry import resolve_model

    grid = grid_of(date.ds)
    source: Path = date.path
    if _georeferenced(grid) and _georeferenced(target):
        meta = read_metadata(resolve_model(model))
        image_gsd = gsd_m(grid)[0]
        # one tile of the grid the model sees, in image pixels (the engine resamples beyond 10 %)
        factor = meta.gsd_m / image_gsd if meta.gsd_m and image_gsd and meta.gsd_m > 1.1 * image_gsd else 1.0
        w = _window_of(grid, target, math.ceil(meta.tile_size_px * factor))
        if (w.width, w.height) != (grid.width, grid.height):
            source = work / f"{date.label.lower()}_window.vrt"
            with gdal_errors():
                vrt = gdal.Translate(str(source), date.ds, options=gdal.TranslateOptions(
                    format="VRT", srcWin=[w.col, w.row, w.width, w.height]))
                if vrt is None:
                    raise LandcoverError(f"GDAL could not cut the common extent out of {date.path} ({last_error()})")
                vrt = None
            feedback.info(f"classifying the common extent plus one tile: {w.width}×{w.height} px of {grid.width}×{grid.height}")
    classes, confidence = work / f"{date.label.lower()}_classes.tif", work / f"{date.label.lower()}_confidence.tif"
    result = classify(ClassifyParams(source, classes, model, batch_size=params.batch_size, device=params.device,
                                     confidence=confidence, threads=params.threads), feedback)
    feedback.info(f"classified in {result.seconds:.1f} s on {result.provider}; {result.band_note}")
    date.class_path, date.confidence = classes, confidence
    return classes, confidence


# ---------------------------------------------------------------------------------------------- styling

def transition_colors(codes_by_area: list[int]) -> dict[int, str]:
    """Distinct colours for transition codes, the largest area first (19 fixed colours, then hues at the
    golden angle)."""
    import colorsys

    colors = {}
    for rank, code in enumerate(codes_by_area):
        if rank < len(PALETTE):
            colors[code] = PALETTE[rank]
        else:
            r, g, b = colorsys.hsv_to_rgb((rank * 0.618034) % 1.0, 0.65 if rank % 2 else 0.9, 0.85 if rank % 3 else 0.6)
            colors[code] = f"#{int(r * 255):02x}{int(g * 255):02x}{int(b * 255):02x}"
    return colors


def legend_entries(result: ChangeResult) -> list[tuple[int, str, str]]:
    """(value, colour, label) of band 1's legend: the transitions present, largest first, named
    "from → to", then "uncertain" when any pixel is."""
    changed = sorted(result.transitions(changed_only=True), key=lambda t: (-t[3], t[2]))
    colors = transition_colors([code for _, _, code, _ in changed])
    entries = [(code, colors[code], f"{a} → {b}") for a, b, code, _ in changed]
    if result.uncertain_pixels:
        entries.append((coding(result.k)[2], UNCERTAIN_COLOR, f"uncertain (confidence < {result.min_confidence:g})"))
    return entries


# ---------------------------------------------------------------------------------------------- run

def _check(params: ChangeParams) -> tuple[Path, Path, Path, Path | None, Path | None]:
    before, after = Path(params.before), Path(params.after)
    for label, path in (("BEFORE", before), ("AFTER", after)):
        if not path.exists():
            raise LandcoverError(f"{label} raster not found: {path}")
    if not isinstance(params.min_confidence, (int, float)) or not 0 <= params.min_confidence <= 1:
        raise LandcoverError(f"--min-confidence must be a probability in [0, 1], got {params.min_confidence!r}")
    inputs = tuple(Path(p) for p in (before, after, params.confidence_before, params.confidence_after) if p)
    for label, conf in (("BEFORE", params.confidence_before), ("AFTER", params.confidence_after)):
        if conf and not Path(conf).exists():
            raise LandcoverError(f"{label} confidence raster not found: {conf}")
    output = check_output_path(params.output, "output", (".tif", ".tiff"), inputs)
    csv_path = check_output_path(params.transitions, "transitions CSV", (".csv",), inputs) if params.transitions else None
    report = check_output_path(params.report, "report", (".md",), inputs) if params.report else None
    written = [output, output.with_suffix(".qml"), *([csv_path] if csv_path else []),
               *([report, report.with_suffix(".png")] if report else [])]
    if len({p.resolve() for p in written}) < len(written):
        raise LandcoverError("the change raster, its .qml, the transitions CSV and the report (and its .png) must be "
                             "different files: change one of the names")
    clash = [p for p in written if p.resolve() in {i.resolve() for i in inputs}]
    if clash:
        raise LandcoverError(f"{clash[0]} is an input: choose other output names (inputs are never overwritten)")
    return before, after, output, csv_path, report


def change(params: ChangeParams, feedback: Feedback | None = None) -> ChangeResult:
    """Compare two dates into ``params.output`` (see the module docstring for the coding).

    Every parameter, output path, the legend and the alignment are checked before any classification.
    Raises ``LandcoverError`` (one line: problem and fix) for missing or unreadable rasters, a raster
    that is neither a Landcover class raster nor an image the model reads, different class sets
    without a mapping, rasters that do not overlap, or bad options; ``Cancelled`` when ``feedback``
    asks. Nothing is written then, and the temporary folder of classified images is removed."""
    started = time.perf_counter()
    fb = RecordingFeedback(feedback)
    before_path, after_path, output, csv_path, report = _check(params)
    map_b = parse_class_mapping(params.map_before, "--map-before")
    map_a = parse_class_mapping(params.map_after, "--map-after")
    after_model = params.after_model or params.model
    dates = [_open_date("BEFORE", before_path, params.model, params.confidence_before),
             _open_date("AFTER", after_path, after_model, params.confidence_after)]
    if params.model and all(d.kind == "classes" for d in dates):
        fb.warning("both dates are class rasters: --model is not used")
    elif params.after_model and dates[1].kind == "classes":
        fb.warning("AFTER is a class raster: --after-model is not used")
    legend = common_legend(dates[0].classes, dates[1].classes, map_b, map_a)
    grids = [grid_of(d.ds) for d in dates]
    al = align(grids[0], grids[1], str(before_path), str(after_path))
    for note in al.notes:
        fb.info(note)
    for warning in al.warnings:
        fb.warning(warning)
    conf_ds = {}
    for d, g in zip(dates, grids):
        if d.kind == "classes" and d.confidence:
            conf_ds[d.label] = _check_confidence(d.confidence, g, d.label)
    k = len(legend.names)
    dtype_name, nodata, uncertain_code = coding(k)
    work: Path | None = None
    try:
        images = [d for d in dates if d.kind == "image"]
        if images:
            work = temp_name(output.with_name(output.name + ".work"))
            work.mkdir()
        for n, d in enumerate(images):
            assert work is not None
            model = params.model if d.label == "BEFORE" else after_model
            share = 0.85 / len(images)
            classes, confidence = _classify_date(d, params, model, work, al.grid,
                                                 _Span(fb, n * share, (n + 1) * share, f"{d.label}: "))
            d.ds = open_raster(classes, f"{d.label} classes")
            conf_ds[d.label] = open_raster(confidence, f"{d.label} confidence")
        fb.check_cancelled()
        infos = [DateInfo(d.label, str(d.path), "image" if d.kind == "image" else "class raster", d.model,
                          ("model" if d.kind == "image" else str(d.confidence)) if d.label in conf_ds else None)
                 for d in dates]
        for info in infos:
            if info.label not in conf_ds and params.min_confidence > 0:
                fb.warning(f"{info.label} has no confidence raster: the min-confidence filter is not applied to it "
                           f"(pass --confidence-{info.label.lower()})")
        result = _compare(dates, conf_ds, legend, al, params, output, csv_path, report, dtype_name, nodata,
                          uncertain_code, infos, _Span(fb, 0.85 if images else 0.0, 1.0), fb)
        result.seconds = time.perf_counter() - started
        result.warnings = list(fb.warnings)
        return result
    finally:
        for d in dates:
            d.ds = None
        conf_ds.clear()
        if work is not None:
            shutil.rmtree(work, ignore_errors=True)


def _compare(dates: list[_Date], conf_ds: dict, legend: Legend, al: Alignment, params: ChangeParams, output: Path,
             csv_path: Path | None, report: Path | None, dtype_name: str, nodata: int, uncertain_code: int,
             infos: list[DateInfo], feedback: Feedback, recorder: RecordingFeedback) -> ChangeResult:
    from osgeo import gdal

    grid = al.grid
    k = len(legend.names)
    views, confs = [], []
    for d in dates:
        nd = d.ds.GetRasterBand(1).GetNoDataValue()
        views.append(_view(d.ds, grid, 255 if nd is None else nd, str(d.class_path)))
        c = conf_ds.get(d.label)
        confs.append(_view(c, grid, -1.0, f"{d.label} confidence") if c is not None and params.min_confidence > 0 else None)
    np_type = np.uint8 if dtype_name == "Byte" else np.uint16
    bands = 2 if params.to_class_band else 1
    matrix = np.zeros(k * k, np.int64)
    common = uncertain = 0
    area = gsd_m(grid)[1]
    tags = {
        f"{TAG_PREFIX}CODING": (f"0 = unchanged; from*K + to + 1 = changed from class index 'from' to 'to' (0-based, in "
                                f"{TAG_PREFIX}CLASSES order, K = {k}), both dates confident; {uncertain_code} = uncertain "
                                f"(classes differ, confidence below {TAG_PREFIX}MIN_CONFIDENCE on a date); {nodata} = nodata "
                                "(either date nodata or outside the common extent)"),
        f"{TAG_PREFIX}CLASSES": json.dumps(legend.names),
        f"{TAG_PREFIX}K": str(k), f"{TAG_PREFIX}UNCERTAIN": str(uncertain_code),
        f"{TAG_PREFIX}MIN_CONFIDENCE": f"{params.min_confidence:g}",
        f"{TAG_PREFIX}BEFORE": infos[0].describe(), f"{TAG_PREFIX}AFTER": infos[1].describe(),
    }
    rows_per_block = max(1, BLOCK_PIXELS // max(grid.width, 1))
    with AtomicOutputs() as outputs:
        tmp = outputs.add(output)
        with gdal_errors():
            dst = gdal.GetDriverByName("GTiff").Create(str(tmp), grid.width, grid.height, bands,
                                                       gdal.GetDataTypeByName(dtype_name), options=GTIFF)
            if dst is None:
                raise LandcoverError(f"cannot create the change raster ({last_error()}): check the folder's free space "
                                     "and permissions")
        try:
            if grid.geotransform is not None:
                dst.SetGeoTransform(grid.geotransform)
            if grid.crs_wkt:
                dst.SetProjection(grid.crs_wkt)
            dst.SetMetadata(tags)
            for b in range(bands):
                dst.GetRasterBand(b + 1).SetNoDataValue(nodata)
            dst.GetRasterBand(1).SetDescription(f"land-cover change: 0 unchanged, from*{k}+to+1 changed, {uncertain_code} uncertain")
            if bands == 2:
                dst.GetRasterBand(2).SetDescription(f"changed to class k: k+1 (1..{k}), 0 unchanged, {k + 1} uncertain")
            for y in range(0, grid.height, rows_per_block):
                feedback.check_cancelled()
                h = min(rows_per_block, grid.height - y)
                idx, ok = [], []
                for (view, dx, dy), conf, d, lut in zip(views, confs, dates, (legend.lut_before, legend.lut_after)):
                    raw = read_window(view, (1,), PixelWindow(dx, dy + y, grid.width, h), str(d.class_path))[0]
                    if raw.dtype != np.uint8:
                        raw = np.where((raw >= 0) & (raw <= 255), raw, 255).astype(np.int64)
                    i = lut[raw]
                    idx.append(i)
                    valid = i != 255
                    if conf is None:
                        confident = valid
                    else:
                        cds, cx, cy = conf
                        p = read_window(cds, (1,), PixelWindow(cx, cy + y, grid.width, h), f"{d.label} confidence")[0]
                        confident = valid & (p >= params.min_confidence)
                    ok.append((valid, confident))
                valid = ok[0][0] & ok[1][0]
                a, b = idx
                same = a == b
                counted = valid & (same | (ok[0][1] & ok[1][1]))  # unchanged, or changed with both dates confident
                unsure = valid & ~counted
                code = np.full((h, grid.width), nodata, np.int64)
                code[unsure] = uncertain_code
                pair = a * k + b
                code[counted] = np.where(same[counted], 0, pair[counted] + 1)
                matrix += np.bincount(pair[counted], minlength=k * k)
                common += int(valid.sum())
                uncertain += int(unsure.sum())
                with gdal_errors():
                    if dst.GetRasterBand(1).WriteArray(code.astype(np_type), 0, y) != 0:
                        raise LandcoverError(f"writing {output} failed ({last_error()}): the disk may be full")
                    if bands == 2:
                        to = np.full((h, grid.width), nodata, np.int64)
                        to[unsure] = k + 1
                        to[counted] = np.where(same[counted], 0, b[counted] + 1)
                        if dst.GetRasterBand(2).WriteArray(to.astype(np_type), 0, y) != 0:
                            raise LandcoverError(f"writing {output} failed ({last_error()}): the disk may be full")
                feedback.progress(min(1.0, (y + h) / grid.height))
            result = ChangeResult(output, csv_path, report, legend.names, legend.colors,
                                  matrix.reshape(k, k).tolist(), common, uncertain, grid.width, grid.height, area,
                                  float(params.min_confidence), infos, dtype_name, nodata, 0.0, list(al.notes))
            entries = legend_entries(result)
            names = [""] * (uncertain_code + 1)
            names[0] = "unchanged"
            for i in range(k):
                for j in range(k):
                    if i != j:
                        names[i * k + j + 1] = f"{legend.names[i]} → {legend.names[j]}"
            names[uncertain_code] = "uncertain"
            dst.GetRasterBand(1).SetCategoryNames(names)
            if bands == 2:
                dst.GetRasterBand(2).SetCategoryNames(["unchanged", *[f"to {n}" for n in legend.names], "uncertain"])
            elif dtype_name == "Byte":
                table = gdal.ColorTable()
                for v in range(256):
                    table.SetColorEntry(v, (0, 0, 0, 0))
                for v, c, _ in entries:
                    table.SetColorEntry(v, (int(c[1:3], 16), int(c[3:5], 16), int(c[5:7], 16), 255))
                dst.GetRasterBand(1).SetColorTable(table)
            with gdal_errors():
                dst.FlushCache()
                failed = gdal.GetLastErrorType() >= gdal.CE_Failure
        finally:
            dst = None
        if failed:
            raise LandcoverError(f"writing {output} failed ({last_error()}): the disk may be full — free some space")
        outputs.add(output.with_suffix(".qml")).write_text(paletted_qml(entries))
        result.warnings = list(recorder.warnings)
        if csv_path:
            result.write_transitions(outputs.add(csv_path))
        if report:
            write_change_report(result, report, outputs)
        outputs.commit()
    return result


# ---------------------------------------------------------------------------------------------- report

def heat_map(result: ChangeResult, path: Path) -> None:
    """The transition matrix as a PNG (the classes present on either date): rows BEFORE, columns AFTER,
    cells coloured by their share of the common area (changes in reds on a log scale, persistence in
    greys) and labelled in %."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.colors import LogNorm

    keep = result.present() or list(range(result.k))
    m = np.asarray(result.matrix, float)[np.ix_(keep, keep)]
    share = 100.0 * m / max(result.common_pixels, 1)
    k = len(keep)
    names = [result.classes[i] for i in keep]
    off = np.where(~np.eye(k, dtype=bool) & (m > 0), share, np.nan)
    diag = np.where(np.eye(k, dtype=bool) & (m > 0), share, np.nan)
    size = 1.6 + 0.55 * k
    fig, ax = plt.subplots(figsize=(size + 1.2, size), dpi=110)
    from matplotlib.colors import ListedColormap

    ax.imshow(np.where(np.isfinite(diag), 0.0, np.nan), cmap=ListedColormap(["#d9d9d9"]), vmin=0, vmax=1)
    if np.isfinite(off).any():
        lo, hi = np.nanmin(off), np.nanmax(off)
        im = ax.imshow(off, cmap="Reds", norm=LogNorm(vmin=min(lo, hi / 10), vmax=hi))
        fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label="changed, % of the common area")
    for i in range(k):
        for j in range(k):
            if m[i, j]:
                v = share[i, j]
                ax.text(j, i, f"{v:.2f}" if v >= 0.01 else "<.01", ha="center", va="center", fontsize=7,
                        color="black" if i == j or v < (np.nanmax(off) if np.isfinite(off).any() else 1) / 3 else "white")
    ax.set_xticks(range(k), names, rotation=60, ha="right", fontsize=8)
    ax.set_yticks(range(k), names, fontsize=8)
    ax.set_xlabel("AFTER")
    ax.set_ylabel("BEFORE")
    ax.set_title(f"transitions, % of the common area (grey diagonal: unchanged)\nchanged {result.changed_percent:.2f} %, "
                 f"uncertain {result.uncertain_percent:.2f} % left out (confidence < {result.min_confidence:g})", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, format="png")
    plt.close(fig)


def write_change_report(result: ChangeResult, report: Path, outputs: AtomicOutputs) -> None:
    """Markdown report (and its heat-map PNG beside it) under temporary names of ``outputs``."""
    png = report.with_suffix(".png")
    heat_map(result, outputs.add(png))
    unit = "ha" if result.pixel_area_m2 is not None else "px"

    def amount(n: int) -> str:
        return f"{n * result.pixel_area_m2 / 1e4:,.4f}" if result.pixel_area_m2 is not None else f"{n:,}"

    keep = result.present() or list(range(result.k))
    names = [result.classes[i] for i in keep]
    matrix = [[result.matrix[i][j] for j in keep] for i in keep]
    header = f"| BEFORE ↓ AFTER → ({unit}) | " + " | ".join(names) + " | total |"
    rows = "\n".join(f"| **{n}** | " + " | ".join(amount(c) if c else "·" for c in row) + f" | {amount(sum(row))} |"
                     for n, row in zip(names, matrix))
    totals = [sum(col) for col in zip(*matrix)]
    rows += "\n| **total** | " + " | ".join(amount(t) for t in totals) + f" | {amount(sum(totals))} |"

    def signed(n: int) -> str:
        return f"{'+' if n >= 0 else '−'}{amount(abs(n))}"

    changes = "\n".join(f"| {n} | {amount(b)} | {amount(a)} | +{amount(g)} | −{amount(lost)} | {signed(net)} | "
                        + (f"{'+' if net >= 0 else '−'}{abs(100.0 * net / b):.1f} % |" if b else "new |")
                        for n, b, a, g, lost, net in result.class_changes())
    absent = result.k - len(keep)
    absent_note = f"; {absent} classes of the legend occur on neither date and are not shown" if absent else ""
    top = sorted(result.transitions(changed_only=True), key=lambda t: -t[3])
    top_rows = "\n".join(f"| {a} → {b} | {code} | {n:,} | {amount(n)} | {result.share(n):.3f} |" for a, b, code, n in top[:15])
    dates = "\n".join(f"- {d.describe()}" for d in result.dates)
    notes = "\n".join(f"- {n}" for n in result.notes)
    warnings = "\n".join(f"- **Warning**: {w}" for w in result.warnings)
    k = result.k
    report_text = f"""# Land-cover change report

{dates}
{notes}
{warnings}

**Common area** (valid on both dates): {result.area(result.common_pixels)} ({result.common_pixels:,} px of a
{result.width}×{result.height} px grid).

| | area | % of the common area |
|---|---|---|
| changed | {result.area(result.changed_pixels)} | {result.changed_percent:.3f} |
| unchanged | {result.area(result.unchanged_pixels)} | {result.share(result.unchanged_pixels):.3f} |
| left out as uncertain (classes differ, confidence < {result.min_confidence:g} on a date) | {result.area(result.uncertain_pixels)} | \
{result.uncertain_percent:.3f} |

Change raster `{result.output.name}` ({result.data_type}, nodata {result.nodata}): 0 unchanged, `from·{k} + to + 1`
changed (classes indexed 0..{k - 1} in the order below), {coding(k)[2]} uncertain.

## Transition matrix ({unit})

Rows BEFORE, columns AFTER; changes counted where both dates are confident, uncertain pixels left out{absent_note}.

{header}
|{'---|' * (len(keep) + 2)}
{rows}

![transition heat map]({png.name})

## Gains, losses and net change per class ({unit})

| class | BEFORE | AFTER | gains | losses | net | net / BEFORE |
|---|---|---|---|---|---|---|
{changes}

## Largest transitions

| transition | code | pixels | {unit} | % of the common area |
|---|---|---|---|---|
{top_rows}
"""
    outputs.add(report).write_text(re.sub(r"\n{3,}", "\n\n", report_text))
