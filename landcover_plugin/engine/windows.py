"""Window grid over a raster, in integer pixel coordinates of the input grid.

Windows of ``tile`` px step by ``stride = tile - overlap`` px; the last window of each row and column
is placed flush with the raster edge (it overlaps its neighbour more), so every pixel is covered and
no window reaches outside the raster. A raster smaller than the tile gets one window the raster's size.
"""
from __future__ import annotations

from bisect import bisect_left, bisect_right
from dataclasses import dataclass

from ..errors import LandcoverError


@dataclass(frozen=True)
class PixelWindow:
    """A window of a raster's pixel grid: column and row offset of its upper-left pixel, width and
    height (all px)."""

    col: int
    row: int
    width: int
    height: int


def starts(length: int, tile: int, overlap: int) -> list[int]:
    """Offsets (px) of windows along one axis of ``length`` px; the last is ``length - tile``.

    Raises ``LandcoverError`` if ``tile`` < 1, ``overlap`` < 0 or ``overlap`` >= ``tile``.
    """
    if tile < 1:
        raise LandcoverError(f"tile size must be at least 1 px, got {tile}")
    if not 0 <= overlap < tile:
        raise LandcoverError(f"overlap must be in [0, tile size {tile}) px, got {overlap}: lower --overlap")
    if length <= tile:
        return [0]
    stride = tile - overlap
    offsets = list(range(0, length - tile, stride))
    offsets.append(length - tile)
    return offsets


def region_windows(width: int, height: int, tile: int, overlap: int,
                   region: tuple[int, int, int, int]) -> tuple[list[list[PixelWindow]], list[int]]:
    """The windows of the whole ``width`` × ``height`` grid (``window_rows``) that touch ``region``
    ``(x0, y0, x1, y1)``, as rows, and the start row of every window row of the whole grid from the
    first of them on (one more entry than rows: the next row's start, or ``height``). Only the offsets
    along each axis are listed, so a grid of any size (a web layer's world) costs nothing."""
    x0, y0, x1, y1 = region
    tw, th = min(tile, width), min(tile, height)
    cols = [c for c in starts(width, tile, overlap) if c < x1 and c + tw > x0]
    row_starts = starts(height, tile, overlap)
    first = bisect_right(row_starts, y0 - th)  # the first window row reaching below y0
    last = bisect_left(row_starts, y1)  # window rows starting before y1
    rows = [[PixelWindow(c, r, tw, th) for c in cols] for r in row_starts[first:last]]
    return rows, [*row_starts[first:last + 1], height][:len(rows) + 1]


def window_rows(width: int, height: int, tile: int, overlap: int) -> list[list[PixelWindow]]:
    """The grid as rows of windows, top to bottom, each row left to right."""
    tw, th = min(tile, width), min(tile, height)
    cols = starts(width, tile, overlap)
    return [[PixelWindow(c, r, tw, th) for c in cols] for r in starts(height, tile, overlap)]
