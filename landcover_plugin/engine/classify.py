"""Classify a raster: window grid → reader → model adapter → blender → writer, streamed row by row.

One row of windows is read (in a background thread, one row ahead of inference), run through the
model in batches, blended into a ``RowAccumulator``, and the rows no later window can touch are
written at once, so peak memory depends on the raster's width and the tile size, not its height.
"""
from __future__ import annotations

import json
import logging
import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
from affine import Affine

from .. import __version__
from ..errors import Cancelled, LandcoverError
from ..model.adapter import OnnxModel
from ..model.registry import resolve_model
from .blend import RowAccumulator, tile_weights
from .reader import InputRaster, open_input
from .windows import Window, window_rows
from .writer import NODATA, ClassRasterWriter

log = logging.getLogger(__name__)
GSD_TOLERANCE = 2.0  # warn when the input's GSD differs from the model's by more than this factor


@dataclass
class ClassifyParams:
    """What to classify and how. ``tile_size``/``overlap`` px (``None``: the model's defaults);
    ``bands`` 1-based (``None``: chosen from the model's metadata); ``device`` ``auto|cpu|cuda``;
    ``row_range`` ``(y0, y1)`` px: the output covers only those input rows, computed from exactly the
    windows of the whole raster's grid that touch them, so parts are identical to the same rows of a
    whole-raster run."""

    input: str | Path
    output: str | Path
    model: str | Path | None = None
    tile_size: int | None = None
    overlap: int | None = None
    batch_size: int = 4
    device: str = "auto"
    confidence: str | Path | None = None
    bands: tuple[int, ...] | None = None
    threads: int | None = None
    row_range: tuple[int, int] | None = None  # write only input rows [y0, y1) (a part, for scale-out)
    tta: bool = False  # test-time augmentation: flips and 90° rotations averaged (8× slower)
    model_output: int = 0  # which output of a multi-output network is read


@dataclass
class ClassifyResult:
    """What a run did: sizes (px), time (s), the execution provider used and pixels per class."""

    output: Path
    confidence: Path | None
    width: int
    height: int
    valid_pixels: int
    seconds: float
    provider: str
    model_name: str
    bands: str
    class_pixels: dict[str, int]
    pixel_area_m2: float | None
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
        import csv

        with open(path, "w", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow(["class", "pixels", "km2", "percent"])
            for name, pixels, km2, pct in self.class_table():
                writer.writerow([name, pixels, "" if km2 is None else f"{km2:.6f}", f"{pct:.4f}"])


def check_output(input_path: Path, output: Path, what: str = "output", suffixes: tuple[str, ...] = (".tif", ".tiff")) -> None:
    """Raise ``LandcoverError`` when ``output`` is the input, its folder is missing or not writable, or
    its extension is not one of ``suffixes``."""
    if output.resolve() == input_path.resolve() or (output.exists() and os.path.samefile(output, input_path)):
        raise LandcoverError(f"{what} {output} is the input raster: choose another {what} path (the input is never overwritten)")
    folder = output.resolve().parent
    if not folder.is_dir():
        raise LandcoverError(f"{what} folder {folder} does not exist: create it or choose another {what} path")
    if not os.access(folder, os.W_OK):
        raise LandcoverError(f"{what} folder {folder} is not writable: choose another {what} path")
    if output.suffix.lower() not in suffixes:
        raise LandcoverError(f"{what} {output} must end in {' or '.join(suffixes)}: change the file extension")


def _batches(windows: list[Window], size: int):
    for i in range(0, len(windows), size):
        yield windows[i:i + size]


def blended_rows(src: InputRaster, model: OnnxModel, tile: int, overlap: int, region: tuple[int, int, int, int],
                 batch_size: int = 4, tta: bool = False, progress: Callable[[float], None] | None = None,
                 cancelled: Callable[[], bool] | None = None) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
    """Classify ``region`` ``(x0, y0, x1, y1)`` px of ``src``, yielding ``(y, classes, confidence)`` top-down:
    row ``y`` of the raster and the finished rows below it, classes ``(n, x1 - x0)`` uint8 (the model's
    class values, ``NODATA`` where invalid) and confidence ``(n, x1 - x0)`` float32.

    Exactly the windows of the whole raster's grid (``tile``/``overlap`` px) that touch the region are
    run and blended, so any region equals the same pixels of a whole-raster run: regions tile
    seamlessly. Windows are read one row ahead in a background thread and inferred ``batch_size`` at a
    time; ``cancelled()`` is polled between batches (raises ``Cancelled``); ``progress(fraction)``.
    """
    x0, y0, x1, y1 = region
    if not (0 <= x0 < x1 <= src.width and 0 <= y0 < y1 <= src.height):
        raise LandcoverError(f"region {region} is outside the raster's {src.width}×{src.height} px")
    meta = model.meta
    grid = window_rows(src.width, src.height, tile, overlap)
    first = next(i for i, r in enumerate(grid) if r[0].row + r[0].height > y0)
    last = max(i for i, r in enumerate(grid) if r[0].row < y1)
    rows = [[w for w in r if w.col < x1 and w.col + w.width > x0] for r in grid[first:last + 1]]
    left, right = rows[0][0].col, rows[0][-1].col + rows[0][-1].width
    total = sum(len(r) for r in rows)
    fill = meta.nodata_fill if meta.nodata_fill is not None else meta.value_range[0]
    values = np.asarray(meta.class_values, np.uint8)
    acc = RowAccumulator(right - left, meta.num_classes, rows[0][0].height, top=rows[0][0].row, left=left)
    done = 0

    def read_row(row):
        return [src.read(w) for w in row]

    with ThreadPoolExecutor(1) as pool:
        pending = pool.submit(read_row, rows[0])
        for i, row in enumerate(rows):
            tiles = pending.result()
            if i + 1 < len(rows):
                pending = pool.submit(read_row, rows[i + 1])
            work = [(w, d, v, v.all()) for w, (d, v) in zip(row, tiles) if v.any()]
            for batch in _batches(work, batch_size):
                if cancelled and cancelled():
                    raise Cancelled("cancelled by the user; no output was written")
                x = np.stack([d if full else np.where(v, d, np.asarray(fill, d.dtype)) for _, d, v, full in batch])
                probs = model.predict(x, tta)
                for (w, _, v, full), p in zip(batch, probs):
                    weight = tile_weights(w, src.width, src.height, meta.padding_px)
                    acc.add(w, p, weight if full else weight * v)
            done += len(row)
            if progress:
                progress(done / total)
            final = grid[first + i + 1][0].row if first + i + 1 < len(grid) else src.height
            top = acc.top
            classes, confidence = acc.release(final, values, NODATA)
            a, b = max(top, y0) - top, min(final, y1) - top  # the released rows inside the region
            if b > a:
                yield top + a, classes[a:b, x0 - left:x1 - left], confidence[a:b, x0 - left:x1 - left]
    if cancelled and cancelled():
        raise Cancelled("cancelled by the user; no output was written")


def classify(params: ClassifyParams, progress: Callable[[float], None] | None = None,
             cancelled: Callable[[], bool] | None = None, info: Callable[[str], None] | None = None) -> ClassifyResult:
    """Classify ``params.input`` into ``params.output``; see the module docstring.

    ``progress(fraction)`` is called as windows finish; ``cancelled()`` is polled between batches and,
    when true, the run stops with ``Cancelled`` and no output; ``info(message)`` receives progress
    notes and warnings. Raises ``LandcoverError`` (or its subclasses ``ModelError``, ``Cancelled``)
    for bad input; the input file is only read.
    """
    started = time.perf_counter()
    say = info or log.info
    input_path, output = Path(params.input), Path(params.output)
    notes: list[str] = []

    def warn(message: str) -> None:
        notes.append(message)
        say(f"Warning: {message}")

    if params.batch_size < 1:
        raise LandcoverError(f"batch size must be at least 1, got {params.batch_size}")
    if not input_path.exists():
        raise LandcoverError(f"input raster not found: {input_path}")
    check_output(input_path, output)
    conf_path = Path(params.confidence) if params.confidence else None
    if conf_path:
        check_output(input_path, conf_path, "confidence output")
        if conf_path.resolve() == output.resolve():
            raise LandcoverError("the confidence output must differ from the class output: choose another path")
    model = OnnxModel(resolve_model(params.model), params.device, params.threads, params.model_output)
    meta = model.meta
    tile = params.tile_size or meta.tile_size_px
    overlap = meta.overlap_px if params.overlap is None else params.overlap
    if overlap < 2 * meta.padding_px:
        raise LandcoverError(f"overlap {overlap} px must be at least twice the model's padding ({meta.padding_px} px): raise --overlap")
    src = open_input(input_path, model.num_bands, meta.input_bands, params.bands)
    try:
        say(f"Model {meta.name or model.path.stem} on {model.provider}; input {src.width}×{src.height} px, {src.band_note}")
        for note in meta.notes:
            warn(note)
        if not src.georeferenced:
            warn(f"{input_path.name} is not georeferenced: the output has no CRS and pixel coordinates")
        if src.gsd and meta.gsd_m and not 1 / GSD_TOLERANCE <= src.gsd / meta.gsd_m <= GSD_TOLERANCE:
            warn(f"input pixel size {src.gsd:.3g} m differs from the model's {meta.gsd_m:.3g} m by more than "
                 f"{GSD_TOLERANCE:g}×: results may be poor; resample the input to about {meta.gsd_m:g} m")
        y0, y1 = params.row_range or (0, src.height)
        if not 0 <= y0 < y1 <= src.height:
            raise LandcoverError(f"row range {y0}..{y1} is outside the raster's rows 0..{src.height}")
        counts = np.zeros(256, np.int64)
        tags = {
            "LANDCOVER_MODEL": meta.name or model.path.stem, "LANDCOVER_MODEL_SHA256": model.sha256,
            "LANDCOVER_CLASSES": json.dumps(dict(zip(map(str, meta.class_values), meta.class_names))),
            "LANDCOVER_TILE_SIZE": str(tile), "LANDCOVER_OVERLAP": str(overlap), "LANDCOVER_TTA": str(params.tta),
            "LANDCOVER_DEVICE": params.device, "LANDCOVER_PROVIDER": model.provider,
            "LANDCOVER_BANDS": ",".join(map(str, src.bands)), "LANDCOVER_VERSION": __version__,
            "LANDCOVER_CREATED": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        }
        profile = {"width": src.width, "height": y1 - y0, "crs": src.dataset.crs,
                   "transform": src.dataset.transform * Affine.translation(0, y0) if src.georeferenced else None}
        with ClassRasterWriter(output, meta, profile, tags, conf_path) as writer:
            for y, classes, confidence in blended_rows(src, model, tile, overlap, (0, y0, src.width, y1),
                                                       params.batch_size, params.tta, progress, cancelled):
                writer.write(y - y0, classes, confidence if conf_path else None)
                counts += np.bincount(classes.ravel(), minlength=256)
            writer.commit()
        class_pixels = {n: int(counts[v]) for v, n in zip(meta.class_values, meta.class_names)}
        return ClassifyResult(output, conf_path, src.width, y1 - y0, int(counts[:NODATA].sum()),
                              time.perf_counter() - started, model.provider, meta.name or model.path.stem,
                              src.band_note, class_pixels, src.pixel_area, notes)
    finally:
        src.close()
