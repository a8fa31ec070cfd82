"""Live classification of map views: what the QGIS live layer runs in a background task.

A view is classified on a *level*: the raster's grid at the model's GSD (resampled when the raster's
pixels differ from it by more than 10 %) or, when the map is zoomed far out, a power-of-two coarser
grid near the canvas resolution. Each level is cut into fixed square live tiles; a tile's pixels come
from ``blended_rows`` (the engine's blending of exactly the windows of the level's whole-raster grid
that touch it), so live tiles are identical to a whole-raster run on that level and meet without
seams. Finished tiles are kept in a byte-bounded LRU ``TileCache`` keyed by raster, bands, model,
level and tile, so returning to a view costs only the mosaic.
"""
from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict
from collections.abc import Hashable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from ..errors import LandcoverError
from ..feedback import Feedback
from ..model.adapter import OnnxModel
from ..model.metadata import ModelMetadata
from ..outputs import AtomicOutputs
from .classify import Tiling, blended_rows
from .grid import Grid
from .resample import plan_resolution
from .source import RasterSource
from .writer import NODATA, ClassRasterWriter

ZOOMED_OUT = 2.0  # classify at the canvas resolution when a screen pixel covers more level pixels than this
TileKey = tuple[Hashable, ...]  # the source's key, the model's SHA-256, the level's scale, the tile's column and row


@dataclass(frozen=True)
class Level:
    """A classification grid: ``scale`` = its pixel size / the raster's pixel size (1: the raster's own
    grid); ``note`` says in words which resolution is used and why."""

    scale: float
    note: str


def choose_level(raster_gsd: float | None, model_gsd: float | None, screen_px: float, gsd: str | float = "auto") -> Level:
    """The level for a view whose screen pixel covers ``screen_px`` raster pixels (ground sizes in m;
    ``None`` when unknown).

    At the model's GSD (``resample.plan_resolution``: the same grid, refusals and notes as
    ``landcover classify``); when a screen pixel covers more than ``ZOOMED_OUT`` such pixels, the
    coarser power-of-two multiple of it at or below the canvas resolution, so the work follows the
    screen. Raises ``LandcoverError`` where ``plan_resolution`` refuses."""
    plan = plan_resolution(raster_gsd, model_gsd, gsd)
    base = plan.factor
    if plan.resampled:
        why = f"the model's GSD, {model_gsd:.3g} m (raster resampled)"
    elif model_gsd and raster_gsd and gsd != "off":
        why = f"the model's GSD, {model_gsd:.3g} m"
    else:
        why = "the raster's own resolution"
    if screen_px / base <= ZOOMED_OUT:
        return Level(base, f"at {why}")
    scale = base * 2 ** math.floor(math.log2(screen_px / base))
    size = f"{raster_gsd * scale:.3g} m" if raster_gsd else f"{scale:g} raster px"
    return Level(scale, f"at the canvas resolution, {size} per pixel (zoomed out; coarser than the model's)")


class TileCache:
    """Least-recently-used class tiles (uint8 arrays) bounded by ``max_bytes``; thread-safe."""

    def __init__(self, max_bytes: int):
        self.max_bytes = max_bytes
        self.bytes = 0
        self._tiles: OrderedDict[TileKey, NDArray[np.uint8]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: TileKey) -> NDArray[np.uint8] | None:
        with self._lock:
            tile = self._tiles.get(key)
            if tile is not None:
                self._tiles.move_to_end(key)
            return tile

    def put(self, key: TileKey, tile: NDArray[np.uint8]) -> None:
        with self._lock:
            old = self._tiles.pop(key, None)
            self.bytes += tile.nbytes - (old.nbytes if old is not None else 0)
            self._tiles[key] = tile
            while self.bytes > self.max_bytes and len(self._tiles) > 1:
                _, dropped = self._tiles.popitem(last=False)
                self.bytes -= dropped.nbytes

    def __len__(self) -> int:
        return len(self._tiles)

    def clear(self) -> None:
        with self._lock:
            self._tiles.clear()
            self.bytes = 0


@dataclass
class LiveView:
    """A classified view: ``classes`` ``(H, W)`` uint8 on ``grid`` (a part of the level's grid; ``NODATA``
    outside the raster and where invalid); ``computed``/``cached`` tiles; ``seconds``."""

    classes: NDArray[np.uint8]
    grid: Grid
    level: Level
    computed: int
    cached: int
    seconds: float


def missing_blocks(tiles: set[tuple[int, int]]) -> list[tuple[int, int, int, int]]:
    """Group tiles ``(tx, ty)`` into rectangles ``(tx0, ty0, tx1, ty1)`` (end-exclusive): runs along each
    tile row, merged with the rows below while they span the same columns. Each rectangle is classified
    in one pass, so windows shared by its tiles run once."""
    runs: list[tuple[int, int, int]] = []  # (ty, tx0, tx1)
    for ty in sorted({t[1] for t in tiles}):
        xs = sorted(t[0] for t in tiles if t[1] == ty)
        start = xs[0]
        for tx, following in zip(xs, [*xs[1:], None]):
            if following != tx + 1:
                runs.append((ty, start, tx + 1))
                if following is not None:
                    start = following
    blocks: list[list[int]] = []
    for ty, tx0, tx1 in runs:
        match = next((b for b in blocks if b[0] == tx0 and b[2] == tx1 and b[3] == ty), None)
        if match:
            match[3] = ty + 1
        else:
            blocks.append([tx0, ty, tx1, ty + 1])
    return [(tx0, ty0, tx1, ty1) for tx0, ty0, tx1, ty1 in blocks]


class LiveClassifier:
    """Classifies views of one raster source with one model.

    ``tile`` is the live tile size (px of a level); the model's tiling is its default. ``cache`` may be
    shared between classifiers (keys include the source's ``key`` and the model). One view is
    classified at a time (calls from several threads queue on a lock). The classifier owns ``source``
    and closes it."""

    def __init__(self, source: RasterSource, model: OnnxModel, cache: TileCache, tile: int = 128, batch_size: int = 1):
        self.source, self.model, self.cache, self.tile, self.batch_size = source, model, cache, tile, batch_size
        meta = model.meta
        self.tiling = Tiling(meta.tile_size_px, meta.overlap_px, meta.padding_px)
        self._levels: dict[float, RasterSource] = {1.0: source}
        self.lock = threading.RLock()  # one view at a time; a host may hold it to prepare the source for its view
        self._key = (*source.key, model.sha256)

    def level_source(self, scale: float) -> RasterSource:
        """The raster on a level's grid: itself at scale 1, else ``source.rescaled(scale)``."""
        if scale not in self._levels:
            self._levels[scale] = self.source.rescaled(scale)
        return self._levels[scale]

    def classify_view(self, bounds: tuple[float, float, float, float], level: Level,
                      feedback: Feedback | None = None) -> LiveView | None:
        """Classify the view ``bounds`` ``(left, bottom, right, top)`` in the raster's CRS (pixel
        coordinates when it has none) on ``level``; ``None`` when the view misses the raster.

        The result covers the live tiles the view touches. Raises ``Cancelled`` when the feedback is
        cancelled (tiles finished so far stay cached)."""
        feedback = feedback or Feedback()
        with self.lock:
            started = time.perf_counter()
            src = self.level_source(level.scale)
            xs, ys = zip(*(src.grid.to_pixel(x, y) for x in bounds[::2] for y in bounds[1::2]))
            x0, x1 = max(0, math.floor(min(xs))), min(src.width, math.ceil(max(xs)))
            y0, y1 = max(0, math.floor(min(ys))), min(src.height, math.ceil(max(ys)))
            if x0 >= x1 or y0 >= y1:
                return None
            s = self.tile
            tx0, ty0, tx1, ty1 = x0 // s, y0 // s, -(-x1 // s), -(-y1 // s)
            keys = {(tx, ty): (*self._key, level.scale, tx, ty) for ty in range(ty0, ty1) for tx in range(tx0, tx1)}
            missing = {t for t, k in keys.items() if self.cache.get(k) is None}
            blocks = missing_blocks(missing) if missing else []
            for i, block in enumerate(blocks):
                self._classify_block(src, block, level, feedback, (i / len(blocks), (i + 1) / len(blocks)))
            width, height = min(tx1 * s, src.width) - tx0 * s, min(ty1 * s, src.height) - ty0 * s
            mosaic = np.full((height, width), NODATA, np.uint8)
            for (tx, ty), key in keys.items():
                tile = self.cache.get(key)
                if tile is None:  # evicted by a cache smaller than the view: classify it again
                    self._classify_block(src, (tx, ty, tx + 1, ty + 1), level, feedback, (1.0, 1.0))
                    tile = self.cache.get(key)
                    if tile is None:  # another view sharing the cache evicted it at once
                        raise LandcoverError(f"live tile {tx}, {ty} left the tile cache before the view was assembled: "
                                             "raise the live layer's cache size")
                r, c = ty * s - ty0 * s, tx * s - tx0 * s
                mosaic[r:r + tile.shape[0], c:c + tile.shape[1]] = tile
            return LiveView(mosaic, src.grid.sub(tx0 * s, ty0 * s, width, height), level, len(missing),
                            len(keys) - len(missing), time.perf_counter() - started)

    def _classify_block(self, src: RasterSource, block: tuple[int, int, int, int], level: Level, feedback: Feedback,
                        span: tuple[float, float]) -> None:
        """Classify tiles ``block`` (tile coordinates, end-exclusive) and cache each tile row as soon as
        its pixels are final."""
        s = self.tile
        bx0, by0, bx1, by1 = block
        region = (bx0 * s, by0 * s, min(bx1 * s, src.width), min(by1 * s, src.height))
        band = np.empty((s, region[2] - region[0]), np.uint8)
        filled, ty = 0, by0
        for _, classes, _ in blended_rows(src, self.model, self.tiling, region, feedback, self.batch_size,
                                          progress_span=span):
            rows = classes.shape[0]
            done = 0
            while done < rows:
                band_rows = min(s, region[3] - ty * s)
                take = min(rows - done, band_rows - filled)
                band[filled:filled + take] = classes[done:done + take]
                filled, done = filled + take, done + take
                if filled == band_rows:
                    for tx in range(bx0, bx1):
                        c = tx * s - region[0]
                        self.cache.put((*self._key, level.scale, tx, ty), band[:filled, c:c + s].copy())
                    filled, ty = 0, ty + 1

    def close(self) -> None:
        """Close the source and its level views."""
        for source in self._levels.values():
            if source is not self.source:
                source.close()
        self.source.close()
        self._levels.clear()


def write_view(view: LiveView, meta: ModelMetadata, path: str | Path) -> Path:
    """Write ``view`` as a class GeoTIFF (colour table, category names, ``.qml`` style; see
    ``ClassRasterWriter``) at ``path``, atomically."""
    with AtomicOutputs() as outputs:
        with ClassRasterWriter(outputs, path, meta, view.grid, {"LANDCOVER_LIVE_LEVEL": view.level.note}) as writer:
            writer.write(0, 0, view.classes)
            writer.close()
        outputs.commit()
    return Path(path)
