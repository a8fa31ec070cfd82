"""Classify a raster: source → window grid → model adapter → blender → writer, streamed.

The raster is read on the grid the model sees (its own, or at the model's GSD: ``resample``), in
column strips no wider than a memory budget allows, each strip top to bottom: one row of windows is
read (in a background thread, one row ahead of inference), run through the model in batches, blended
into a ``RowAccumulator``, and the rows no later window can touch are released at once — as classes,
or as probabilities resampled onto the output grid before the argmax. Peak memory depends on the
tile size and the strip width, not on the raster's width or height.
"""
from __future__ import annotations

import csv
import math
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal, Optional, TypeVar, overload

import numpy as np
from numpy.typing import NDArray

from .. import __version__
from ..errors import LandcoverError
from ..feedback import Feedback, RecordingFeedback
from ..model.adapter import OnnxModel
from ..model.registry import resolve_model
from ..outputs import AtomicOutputs, check_free_space, check_output_path, remove_stale, sidecars
from .blend import RowAccumulator, finalize, tile_weights
from .grid import Grid
from .reader import open_source
from .resample import GridResampler, ResolutionPlan, parse_gsd_option, plan_resolution, work_span
from .source import RasterSource
from .windows import PixelWindow, region_windows, starts
from .writer import CLASSES_TAG, NODATA, ClassRasterWriter, classes_tag

# Blending buffers of one strip (float32 planes); wider rasters go in column strips. 176 MiB holds 13 classes + weights
# over 3,200 px of 1024 px tiles (flair-rgb's default; 6,400 px of 512 px tiles); with onnxruntime's activations
# (about 350 MB for one 1024 px tile) and GDAL's cache it keeps a 100,000 px wide raster under 1 GB
# (bench/memory_width.py: 0.92 GB).
BLEND_BUDGET_MB = 176
# Pixels per inference call when no batch size is given, in 512 px tiles. On the CPU a batch of 2 such tiles costs the
# same CPU time per tile as 4 (flair-rgb: 0.195 vs 0.189 s, medians of 5 interleaved rounds) and holds half the
# activation memory (onnxruntime keeps its peak); a GPU gains from larger batches and its memory is its own.
DEFAULT_BATCH = {"CPUExecutionProvider": 2}
DEFAULT_BATCH_OTHER = 4


def default_batch_size(provider: str, tile_px: int = 512) -> int:
    """Tiles per inference call for ``provider`` when the user gives none: ``DEFAULT_BATCH`` tiles of
    512 px, i.e. the same pixels (at least one tile) for other tile sizes (a 1024 px tile: 1 on the CPU)."""
    return max(1, DEFAULT_BATCH.get(provider, DEFAULT_BATCH_OTHER) * 512 * 512 // (tile_px * tile_px))
READ_ERRORS = ("fail", "nodata")
T = TypeVar("T")
# A window as read: raw values (C, h, w) in the raster's data type and validity (h, w); (None, None) when it could not be
# read and on_read_error is "nodata".
ReadTile = tuple[Optional[NDArray[Any]], Optional[NDArray[np.bool_]]]


@dataclass
class ClassifyParams:
    """What to classify and how.

    ``input``: a raster file path, or an open ``RasterSource`` (hosts: e.g. a QGIS layer's provider);
    ``tile_size_px``/``overlap_px`` (``None``: the model's defaults); ``bands`` 1-based (``None``: chosen
    from the model's metadata); ``device`` ``auto|cpu|cuda``; ``gsd``: ``auto`` (from the CRS), ``off``
    (never resample) or the input's true GSD in metres; ``output_resolution``: ``input`` (the input's
    grid), ``model`` (the model's GSD) or a pixel size in metres; ``row_range`` ``(y0, y1)``: write only
    those output rows, computed from exactly the windows of the whole raster's grid that touch them (a
    part for scale-out: parts equal the same rows of a whole run); ``on_read_error``: ``fail``, or
    ``nodata`` (an unreadable window is left as nodata and reported); ``areas``: class-area CSV;
    ``batch_size``: tiles per inference call (``None``: ``default_batch_size`` for the execution provider)."""

    input: str | Path | RasterSource
    output: str | Path
    model: str | Path | None = None
    tile_size_px: int | None = None
    overlap_px: int | None = None
    batch_size: int | None = None
    device: str = "auto"
    confidence: str | Path | None = None
    bands: tuple[int, ...] | None = None
    threads: int | None = None
    row_range: tuple[int, int] | None = None
    tta: bool = False  # test-time augmentation: flips and 90° rotations averaged (8× slower)
    gsd: str | float = "auto"
    output_resolution: str | float = "input"
    on_read_error: str = "fail"
    areas: str | Path | None = None
    model_output: int = 0  # which output of a multi-output network is read


@dataclass
class ClassifyResult:
    """What a run did: output size (px), time (s), the execution provider used, pixels per class, the
    resolution plan and every warning."""

    output: Path
    confidence: Path | None
    width: int
    height: int
    valid_pixels: int
    seconds: float
    provider: str
    model_name: str
    band_note: str
    class_pixels: dict[str, int]
    pixel_area_m2: float | None
    resolution: ResolutionPlan | None = None
    warnings: list[str] = field(default_factory=list)

    @property
    def megapixels_per_second(self) -> float:
        return self.width * self.height / 1e6 / max(self.seconds, 1e-9)

    def class_table(self) -> list[tuple[str, int, float | None, float]]:
        """Rows (class, pixels, km² or None, % of valid pixels)."""
        total = max(self.valid_pixels, 1)
        return [(name, n, n * self.pixel_area_m2 / 1e6 if self.pixel_area_m2 else None, 100.0 * n / total)
                for name, n in self.class_pixels.items()]

    def write_class_areas(self, path: str | Path) -> None:
        """The class table as CSV: class, pixels, km2 (empty when not georeferenced), percent."""
        with open(path, "w", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow(["class", "pixels", "km2", "percent"])
            for name, pixels, km2, pct in self.class_table():
                writer.writerow([name, pixels, "" if km2 is None else f"{km2:.6f}", f"{pct:.4f}"])

    def summary(self) -> str:
        """The closing summary: output, pixels, seconds, MP/s, provider, resolution and the class table."""
        lines = [f"Wrote {self.output}" + (f" and {self.confidence}" if self.confidence else ""),
                 f"{self.width}×{self.height} px ({self.width * self.height / 1e6:.2f} MP, {self.valid_pixels:,} valid) "
                 f"in {self.seconds:.1f} s = {self.megapixels_per_second:.2f} MP/s on {self.provider}; model "
                 f"{self.model_name}, {self.band_note}"]
        if self.resolution is not None:
            lines.append(f"Resolution: {self.resolution.note}")
        georef = self.pixel_area_m2 is not None
        lines.append(f"{'class':<24}{'pixels':>14}" + (f"{'km²':>12}" if georef else "") + f"{'%':>8}")
        for name, pixels, km2, pct in self.class_table():
            lines.append(f"{name:<24}{pixels:>14,}" + (f"{km2:>12.6f}" if georef else "") + f"{pct:>8.2f}")
        lines += [f"Warning: {w}" for w in self.warnings]
        return "\n".join(lines)


@dataclass(frozen=True)
class Tiling:
    """Window size and overlap (px) on the grid the model sees, and the model's unreliable border."""

    tile_size_px: int
    overlap_px: int
    padding_px: int = 0


@dataclass
class RunStats:
    """Counted while classifying: valid pixels outside the model's value range, windows left as nodata."""

    out_of_range: int = 0
    checked: int = 0
    read_errors: list[str] = field(default_factory=list)


def _batches(items: list[T], size: int) -> Iterator[list[T]]:
    for i in range(0, len(items), size):
        yield items[i:i + size]


@overload
def blended_rows(src: RasterSource, model: OnnxModel, tiling: Tiling, region: tuple[int, int, int, int],
                 feedback: Feedback | None = ..., batch_size: int = ..., tta: bool = ..., probabilities: Literal[False] = ...,
                 on_read_error: str = ..., stats: RunStats | None = ..., progress_span: tuple[float, float] = ...,
                 ) -> Iterator[tuple[int, NDArray[np.uint8], NDArray[np.float32]]]: ...
@overload
def blended_rows(src: RasterSource, model: OnnxModel, tiling: Tiling, region: tuple[int, int, int, int],
                 feedback: Feedback | None = ..., batch_size: int = ..., tta: bool = ..., *, probabilities: Literal[True],
                 on_read_error: str = ..., stats: RunStats | None = ..., progress_span: tuple[float, float] = ...,
                 ) -> Iterator[tuple[int, NDArray[np.float32], NDArray[np.float32]]]: ...
@overload
def blended_rows(src: RasterSource, model: OnnxModel, tiling: Tiling, region: tuple[int, int, int, int],
                 feedback: Feedback | None = ..., batch_size: int = ..., tta: bool = ..., probabilities: bool = ...,
                 on_read_error: str = ..., stats: RunStats | None = ..., progress_span: tuple[float, float] = ...,
                 ) -> Iterator[tuple[int, NDArray[np.uint8] | NDArray[np.float32], NDArray[np.float32]]]: ...
def blended_rows(src: RasterSource, model: OnnxModel, tiling: Tiling, region: tuple[int, int, int, int],
                 feedback: Feedback | None = None, batch_size: int = 4, tta: bool = False, probabilities: bool = False,
                 on_read_error: str = "fail", stats: RunStats | None = None, progress_span: tuple[float, float] = (0.0, 1.0),
                 ) -> Iterator[tuple[int, NDArray[np.uint8] | NDArray[np.float32], NDArray[np.float32]]]:
    """Classify ``region`` ``(x0, y0, x1, y1)`` px of ``src``, yielding ``(y, a, b)`` top-down for row ``y``
    of the raster and the finished rows below it: classes ``(n, x1 - x0)`` uint8 (the model's class
    values, ``NODATA`` where invalid) and confidence ``(n, x1 - x0)`` float32; or, with
    ``probabilities``, blended probabilities ``(K, n, x1 - x0)`` float32 and their weight ``(n, x1 - x0)``
    (0: no valid window covered the pixel).

    Exactly the windows of the whole raster's grid (anchored to its CRS's pixel lattice, see
    ``windows``) that touch the region are run and blended, so any
    region equals the same pixels of a whole-raster run: regions tile seamlessly. Windows are read one
    row ahead in a background thread and inferred ``batch_size`` at a time; cancellation is checked
    between batches (raises ``Cancelled``); progress goes from ``progress_span[0]`` to ``[1]``."""
    feedback = feedback or Feedback()
    x0, y0, x1, y1 = region
    if not (0 <= x0 < x1 <= src.width and 0 <= y0 < y1 <= src.height):
        raise LandcoverError(f"region {region} is outside the raster's {src.width}×{src.height} px")
    meta = model.meta
    rows, row_starts = region_windows(src.width, src.height, tiling.tile_size_px, tiling.overlap_px, region,
                                      src.grid.lattice_origin())
    left, right = rows[0][0].col, rows[0][-1].col + rows[0][-1].width
    total = sum(len(r) for r in rows)
    fill = meta.nodata_fill if meta.nodata_fill is not None else meta.value_range[0]
    low, high = meta.value_range
    values = np.asarray(meta.class_values, np.uint8)
    acc = RowAccumulator(right - left, meta.num_classes, rows[0][0].height, top=rows[0][0].row, left=left)
    done = 0

    def read(w: PixelWindow) -> ReadTile:
        try:
            return src.read(w)
        except LandcoverError as exc:
            if on_read_error != "nodata":
                raise
            if stats is not None:
                stats.read_errors.append(f"{w.width}×{w.height} px at column {w.col}, row {w.row}: {exc}")
            return None, None

    def read_row(row: list[PixelWindow]) -> list[ReadTile]:
        return [read(w) for w in row]

    def blend_row(row: list[PixelWindow], tiles: list[ReadTile]) -> None:
        """Infer and blend one row of windows; its tiles and predictions are freed on return, before the
        released rows are finalised (they would otherwise add to the peak)."""
        work = [(w, d, v, v.all()) for w, (d, v) in zip(row, tiles) if d is not None and v is not None and v.any()]
        tiles.clear()
        for batch in _batches(work, batch_size):
            feedback.check_cancelled()
            x = np.stack([d if full else np.where(v, d, np.asarray(fill, d.dtype)) for _, d, v, full in batch])
            if stats is not None:
                lo, hi = x.min(), x.max()
                stats.checked += sum(int(v.sum()) for _, _, v, _ in batch)
                if lo < low or hi > high:
                    stats.out_of_range += sum(int((((d < low) | (d > high)).any(axis=0) & v).sum()) for _, d, v, _ in batch)
            probs = model.predict(x, tta)
            for (w, _, v, full), p in zip(batch, probs):
                weight = tile_weights(w, src.width, src.height, tiling.padding_px)
                acc.add(w, p, weight if full else weight * v)

    with ThreadPoolExecutor(1) as pool:
        pending = pool.submit(read_row, rows[0])
        for i, row in enumerate(rows):
            tiles = pending.result()
            if i + 1 < len(rows):
                pending = pool.submit(read_row, rows[i + 1])
            blend_row(row, tiles)
            done += len(row)
            a, b = progress_span
            feedback.progress(a + (b - a) * done / total)
            final = row_starts[i + 1]  # rows above the next window row are final
            top = acc.top
            if probabilities:
                p, wgt = acc.release_probabilities(final)
                r0, r1 = max(top, y0) - top, min(final, y1) - top
                if r1 > r0:
                    yield top + r0, p[:, r0:r1, x0 - left:x1 - left], wgt[r0:r1, x0 - left:x1 - left]
            else:
                classes, confidence = acc.release(final, values, NODATA)
                r0, r1 = max(top, y0) - top, min(final, y1) - top  # the released rows inside the region
                if r1 > r0:
                    yield top + r0, classes[r0:r1, x0 - left:x1 - left], confidence[r0:r1, x0 - left:x1 - left]
    feedback.check_cancelled()


def strips(width: int, max_width: int, window_starts: list[int] | None = None) -> list[tuple[int, int]]:
    """Column ranges ``[(x0, x1), ...]`` of at most ``max_width`` px covering ``0..width``, of about equal
    width. With ``window_starts`` (the window grid's column offsets) every inner edge is put on a
    window's start where one is near: then only that window column is run for both strips beside the
    edge (an edge elsewhere falls under two overlapping windows, each run twice)."""
    n = max(1, math.ceil(width / max(max_width, 1)))
    edges = [round(i * width / n) for i in range(n + 1)]
    if window_starts:
        for i in range(1, n):
            near = min(window_starts, key=lambda c: abs(c - edges[i]))
            if edges[i - 1] < near < edges[i + 1] and near - edges[i - 1] <= max_width and edges[i + 1] - near <= max_width:
                edges[i] = near
    return list(zip(edges[:-1], edges[1:]))


def strip_width(num_classes: int, tile_px: int, resampled: bool) -> int:
    """Widest strip (px of the grid the model sees) whose blending buffers fit ``BLEND_BUDGET_MB``:
    (K + 1) float32 planes of a tile's height, three times more when probabilities are resampled."""
    planes = (num_classes + 1) * tile_px * (3 if resampled else 1)
    return max(2 * tile_px, BLEND_BUDGET_MB * 2 ** 20 // (4 * planes))


@dataclass
class Plan:
    """The grids of a run: ``work`` (what the model sees) and ``out`` (what is written), with ``ratio``
    = output pixel size / work pixel size (1: the same grid)."""

    work: RasterSource
    out: Grid
    ratio: float
    resolution: ResolutionPlan


def plan_grids(native: RasterSource, model: OnnxModel, gsd: str | float, output_resolution: str | float) -> Plan:
    """Choose the work grid (``plan_resolution``) and the output grid for ``native``."""
    resolution = plan_resolution(native.gsd_m, model.meta.gsd_m, gsd)
    work = native.rescaled(resolution.factor) if resolution.resampled else native
    if output_resolution == "input":
        scale = 1.0  # output pixel in native pixels
    elif output_resolution == "model":
        scale = resolution.factor
    else:
        input_gsd_m = resolution.input_gsd_m or native.gsd_m  # unknown: no CRS and no --gsd the plan could use
        if input_gsd_m is None:
            raise LandcoverError("an output pixel size in metres needs a georeferenced input (or --gsd METRES)")
        scale = float(output_resolution) / input_gsd_m
    out = native.grid if scale == 1.0 else native.grid.scaled(scale)
    ratio = scale / resolution.factor
    if abs(ratio - 1) < 1e-9:
        out, ratio = work.grid, 1.0
    return Plan(work, out, ratio, resolution)


def parse_output_resolution(value: str | float | None) -> str | float:
    """``input``, ``model`` or a positive pixel size in metres. Raises ``LandcoverError`` otherwise."""
    if value is None or value == "":
        return "input"
    if isinstance(value, str) and value.lower() in ("input", "model"):
        return value.lower()
    try:
        metres = float(value)
    except (TypeError, ValueError):
        raise LandcoverError(f"--output-resolution must be input, model or a pixel size in metres, got {value!r}") from None
    if not 0 < metres < float("inf"):
        raise LandcoverError(f"--output-resolution must be a positive number of metres, got {value!r}")
    return metres


def _check_params(params: ClassifyParams) -> None:
    for name, value, least in (("batch size", params.batch_size, 1), ("tile size", params.tile_size_px, 16),
                               ("overlap", params.overlap_px, 0), ("threads", params.threads, 1)):
        if value is not None and (not isinstance(value, int) or value < least):
            raise LandcoverError(f"{name} must be a whole number of at least {least}, got {value!r}")
    if params.on_read_error not in READ_ERRORS:
        raise LandcoverError(f"on-read-error must be one of {', '.join(READ_ERRORS)}, got {params.on_read_error!r}")


def classify_rows(native: RasterSource, plan: Plan, model: OnnxModel, tiling: Tiling, rows: tuple[int, int],
                  feedback: Feedback, batch_size: int = 4, tta: bool = False, on_read_error: str = "fail",
                  stats: RunStats | None = None) -> Iterator[tuple[int, int, NDArray[np.uint8], NDArray[np.float32]]]:
    """Output rows ``rows`` ``(Y0, Y1)`` of ``plan.out`` as blocks ``(col, row, classes, confidence)``
    (``(n, w)`` uint8 and float32), column strip by column strip, each strip top to bottom.

    On the work grid itself the blender's classes are used as they are; otherwise its probabilities
    are resampled onto the output grid (``GridResampler``) and the class is taken there, nodata where
    the input is invalid (when the output is the input's grid)."""
    work, out, ratio = plan.work, plan.out, plan.ratio
    meta = model.meta
    values = np.asarray(meta.class_values, np.uint8)
    resampled = ratio != 1.0
    widest = strip_width(meta.num_classes, tiling.tile_size_px, resampled)
    columns = (strips(out.width, max(1, int(widest / ratio))) if resampled
               else strips(out.width, widest, starts(work.width, tiling.tile_size_px, tiling.overlap_px,
                                                     work.grid.lattice_origin()[0])))
    y0, y1 = rows
    for i, (x0, x1) in enumerate(columns):
        span = (i / len(columns), (i + 1) / len(columns))
        if not resampled:
            for y, classes, confidence in blended_rows(work, model, tiling, (x0, y0, x1, y1), feedback, batch_size, tta,
                                                       on_read_error=on_read_error, stats=stats, progress_span=span):
                yield x0, y, classes, confidence
            continue
        wx, wy = work_span((x0, x1), ratio, work.width), work_span((y0, y1), ratio, work.height)
        resampler = GridResampler(ratio, (x0, x1), wx, (y0, y1), work.height, work.width)
        on_input_grid = out == native.grid
        for y, probs, weights in blended_rows(work, model, tiling, (wx[0], wy[0], wx[1], wy[1]), feedback, batch_size,
                                              tta, probabilities=True, on_read_error=on_read_error, stats=stats,
                                              progress_span=span):
            for row, p, valid in resampler.feed(y, probs, weights):
                if on_input_grid and not native.all_valid:
                    valid *= native.validity(PixelWindow(x0, row, x1 - x0, valid.shape[0]))
                classes, confidence = finalize(p, valid, values, NODATA)
                yield x0, row, classes, confidence


@dataclass
class Run:
    """A checked, opened run: the model, its tiling, the input source, the grids, the output paths."""

    params: ClassifyParams
    model: OnnxModel
    tiling: Tiling
    native: RasterSource
    plan: Plan
    output: Path
    confidence: Path | None
    areas: Path | None
    owns_source: bool
    batch_size: int = DEFAULT_BATCH_OTHER

    def close(self) -> None:
        if self.plan.work is not self.native:
            self.plan.work.close()
        if self.owns_source:
            self.native.close()


def prepare(params: ClassifyParams, suffixes: tuple[str, ...] = (".tif", ".tiff")) -> Run:
    """Check every parameter and output path (the output must end in one of ``suffixes``), open the
    model and the input and choose the grids, before any work. Close the returned ``Run``. Raises
    ``LandcoverError`` naming the first problem."""
    _check_params(params)
    gsd = parse_gsd_option(params.gsd)
    output_resolution = parse_output_resolution(params.output_resolution)
    input_path = None if isinstance(params.input, RasterSource) else Path(params.input)
    if input_path is not None and not input_path.exists():
        raise LandcoverError(f"input raster not found: {input_path}")
    inputs = (input_path,) if input_path else ()
    output = check_output_path(params.output, "output", suffixes, inputs, sidecars(params.output))
    conf_path = (check_output_path(params.confidence, "confidence output", (".tif", ".tiff"), inputs,
                                   sidecars(params.confidence, style=False)) if params.confidence else None)
    areas = check_output_path(params.areas, "class-area CSV", (".csv",), inputs) if params.areas else None
    written = [p for p in (output, conf_path, areas) if p is not None]
    if len({p.resolve() for p in written}) < len(written):
        raise LandcoverError("the class output, confidence output and class-area CSV must be different files")
    for folder in {p.resolve().parent for p in written}:
        remove_stale(folder)  # temporaries of killed runs (kill -9, power loss) in the folders written to
    model = OnnxModel(resolve_model(params.model), params.device, params.threads, params.model_output)
    meta = model.meta
    tiling = Tiling(params.tile_size_px or meta.tile_size_px, meta.overlap_px if params.overlap_px is None else params.overlap_px,
                    meta.padding_px)
    if tiling.overlap_px >= tiling.tile_size_px:
        raise LandcoverError(f"overlap {tiling.overlap_px} px must be smaller than the tile size {tiling.tile_size_px} px: "
                             "lower --overlap")
    if tiling.overlap_px < 2 * tiling.padding_px:
        raise LandcoverError(f"overlap {tiling.overlap_px} px must be at least twice the model's padding "
                             f"({tiling.padding_px} px): raise --overlap")
    fixed = model.fixed_size[0]
    if fixed is not None and tiling.tile_size_px > fixed:
        raise LandcoverError(f"tile size {tiling.tile_size_px} px is larger than the network's fixed input of {fixed} px: "
                             f"use --tile-size {fixed} (or less)")
    if isinstance(params.input, RasterSource):
        native, owns = params.input, False
    else:
        native, owns = open_source(params.input, model.num_bands, meta.input_bands, params.bands), True
    batch_size = params.batch_size or default_batch_size(model.provider, tiling.tile_size_px)
    try:
        plan = plan_grids(native, model, gsd, output_resolution)
        check_tile_memory(tiling, plan.work, model, batch_size, params.tta)
    except BaseException:
        if owns:
            native.close()
        raise
    return Run(params, model, tiling, native, plan, output, conf_path, areas, owns, batch_size)


def tile_memory(tiling: Tiling, work: RasterSource, model: OnnxModel, batch_size: int, tta: bool = False) -> int:
    """Bytes a batch needs outside the network itself: raw and normalised tiles, probabilities (and
    their TTA sum), and the blending buffers of the narrowest strip (two windows wide). Windows are
    clipped to the raster, so a tile larger than the raster costs only the raster."""
    h, w = min(tiling.tile_size_px, work.height), min(tiling.tile_size_px, work.width)
    ph, pw = model.padded_size(h, w)
    k, c = model.meta.num_classes, (model.num_bands or 1) * model.meta.band_repeat
    per_tile = 4 * ph * pw * (2 * c + (3 if tta else 2) * max(k, 2))
    blending = 4 * (k + 1) * h * min(2 * w, work.width)
    return batch_size * per_tile + blending


def check_tile_memory(tiling: Tiling, work: RasterSource, model: OnnxModel, batch_size: int, tta: bool = False) -> None:
    """Raise ``LandcoverError`` when a batch of tiles could not fit in half of this machine's memory."""
    need = tile_memory(tiling, work, model, batch_size, tta)
    total = physical_memory()
    if total and need > total // 2:
        raise LandcoverError(f"tile size {tiling.tile_size_px} px with batches of {batch_size} needs about {need / 2 ** 30:.1f} GiB "
                             f"of memory before the network's own, more than half of this machine's {total / 2 ** 30:.1f} GiB: "
                             "lower --tile-size or --batch-size")


def physical_memory() -> int | None:
    """The machine's RAM in bytes (``None`` when the OS does not say)."""
    import os

    try:
        return int(os.sysconf("SC_PAGE_SIZE")) * int(os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):
        return None


def output_grid(params: ClassifyParams, suffixes: tuple[str, ...] = (".tif", ".tiff")) -> Grid:
    """The grid ``classify(params)`` writes (all of it, whatever ``row_range``), after every check."""
    run = prepare(params, suffixes)
    try:
        return run.plan.out
    finally:
        run.close()


def classify(params: ClassifyParams, feedback: Feedback | None = None) -> ClassifyResult:
    """Classify ``params.input`` into ``params.output``; see the module docstring.

    Every parameter and output path is checked before any work (``prepare``). ``feedback`` receives
    progress and messages and is polled for cancellation between batches (``Cancelled``: nothing is
    written). Raises ``LandcoverError`` (or ``ModelError``) for bad input; the input is only read."""
    started = time.perf_counter()
    fb = RecordingFeedback(feedback)
    run = prepare(params)
    model, meta, native, plan, tiling = run.model, run.model.meta, run.native, run.plan, run.tiling
    output, conf_path, areas = run.output, run.confidence, run.areas
    try:
        out = plan.out
        y0, y1 = params.row_range or (0, out.height)
        if not 0 <= y0 < y1 <= out.height:
            raise LandcoverError(f"row range {y0}..{y1} is outside the output's rows 0..{out.height}")
        rows = y1 - y0
        # deflate shrinks class maps well (estimate: a quarter), float confidence less (a half)
        check_free_space({output: out.width * rows // 4, **({conf_path: out.width * rows * 2} if conf_path else {})})
        fb.info(f"Model {meta.name or model.path.stem} on {model.provider}; input {native.width}×{native.height} px, "
                f"{native.band_note}")
        fb.info(f"Resolution: {plan.resolution.note}")
        for note in meta.notes:
            fb.warning(note)
        if not native.georeferenced:
            fb.warning(f"{native.name} is not georeferenced: the output has no CRS and pixel coordinates")
        counts = np.zeros(256, np.int64)
        stats = RunStats()
        tags = {
            "LANDCOVER_MODEL": meta.name or model.path.stem, "LANDCOVER_MODEL_SHA256": model.sha256,
            CLASSES_TAG: classes_tag(meta),
            "LANDCOVER_TILE_SIZE": str(tiling.tile_size_px), "LANDCOVER_OVERLAP": str(tiling.overlap_px),
            "LANDCOVER_TTA": str(params.tta), "LANDCOVER_DEVICE": params.device, "LANDCOVER_PROVIDER": model.provider,
            "LANDCOVER_BANDS": ",".join(map(str, native.bands)), "LANDCOVER_VERSION": __version__,
            "LANDCOVER_GSD_INPUT_M": f"{plan.resolution.input_gsd_m:.6g}" if plan.resolution.input_gsd_m else "unknown",
            "LANDCOVER_GSD_MODEL_M": f"{meta.gsd_m:g}" if meta.gsd_m else "unknown",
            "LANDCOVER_RESAMPLING_FACTOR": f"{plan.resolution.factor:.6g}",
            "LANDCOVER_CREATED": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        }
        with AtomicOutputs() as outputs:
            with ClassRasterWriter(outputs, output, meta, out.sub(0, y0, out.width, rows), tags, conf_path) as writer:
                for x, y, classes, confidence in classify_rows(native, plan, model, tiling, (y0, y1), fb, run.batch_size,
                                                               params.tta, params.on_read_error, stats):
                    writer.write(y - y0, x, classes, confidence)
                    for r in range(0, len(classes), 64):  # bincount counts in int64: a few rows at a time
                        counts += np.bincount(classes[r:r + 64].ravel(), minlength=256)
                if stats.out_of_range:
                    share = stats.out_of_range / max(stats.checked, 1)
                    fb.warning(f"{stats.out_of_range:,} valid pixels ({share:.1%}) lie outside the model's input range "
                               f"[{meta.value_range[0]:g}, {meta.value_range[1]:g}]: the imagery is probably not what the "
                               "model expects (e.g. 16-bit values for an 8-bit model); rescale it or use a model for this data")
                for note in native.notes():
                    fb.warning(note)
                if stats.read_errors:
                    fb.warning(f"{len(stats.read_errors)} window(s) could not be read and are nodata; first: "
                               f"{stats.read_errors[0]}")
                if not counts[:NODATA].any():
                    fb.warning("no valid pixel: the input is nodata (or alpha 0) everywhere it was read, so the whole "
                               "output is nodata; check the input's nodata value and mask")
                writer.close(small_segment_px=meta.small_segment_px,
                             extra_tags={"LANDCOVER_WARNINGS": " | ".join(fb.warnings)} if fb.warnings else None)
            class_pixels = {n: int(counts[v]) for v, n in zip(meta.class_values, meta.class_names)}
            scale = plan.ratio * plan.resolution.factor  # output pixel size / input pixel size
            area = native.pixel_area_m2 * scale ** 2 if native.pixel_area_m2 is not None else None
            result = ClassifyResult(output, conf_path, out.width, rows, int(counts[:NODATA].sum()),
                                    time.perf_counter() - started, model.provider, meta.name or model.path.stem,
                                    native.band_note, class_pixels, area, plan.resolution, fb.warnings)
            if areas is not None:
                result.write_class_areas(outputs.add(areas))
            outputs.commit()
        return result
    finally:
        run.close()
