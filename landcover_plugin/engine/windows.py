"""Window grid over a raster, in integer pixel coordinates of the input grid.

Windows of ``tile`` px step by ``stride = tile - overlap`` px on a lattice anchored to the raster's CRS
(``Grid.lattice_origin``): inner windows start where the pixel's index counted from the CRS origin is
a multiple of the stride, so two rasters of the same pixel grid — a raster and a crop of it, or two
dates — share their inner windows, and their class maps agree away from their edges whatever their
extents. The first and last window of each row and column are placed flush with the raster edges
(they overlap their neighbour more), so every pixel is covered and no window reaches outside the
raster. A raster smaller than the tile gets one window the raster's size. Without a georeference the
lattice starts at pixel 0 (the windows step from the raster's corner).
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


def starts(length: int, tile: int, overlap: int, origin: int = 0) -> list[int]:
    """Offsets (px) of windows along one axis of ``length`` px: 0, the offsets where ``origin + offset``
    is a multiple of the stride (``origin``: the lattice index of pixel 0, see ``Grid.lattice_origin``),
    and ``length - tile``. A lattice window within ``overlap // 2`` px of an edge window is left out
    (the edge window stands for it), so inner neighbours overlap by ``overlap`` px and the edge windows
    by at least half of it; with ``origin`` 0 the inner windows step from 0 by the stride.

    Raises ``LandcoverError`` if ``tile`` < 1, ``overlap`` < 0 or ``overlap`` >= ``tile``.
    """
    if tile < 1:
        raise LandcoverError(f"tile size must be at least 1 px, got {tile}")
    if not 0 <= overlap < tile:
        raise LandcoverError(f"overlap must be in [0, tile size {tile}) px, got {overlap}: lower --overlap")
    if length <= tile:
        return [0]
    stride, last, near = tile - overlap, length - tile, overlap // 2
    inner = [p for p in range(-origin % stride, last, stride) if near < p < last - near]
    return [0, *inner, last]


def region_windows(width: int, height: int, tile: int, overlap: int, region: tuple[int, int, int, int],
                   origin: tuple[int, int] = (0, 0)) -> tuple[list[list[PixelWindow]], list[int]]:
    """The windows of the whole ``width`` × ``height`` grid (``window_rows``) that touch ``region``
    ``(x0, y0, x1, y1)``, as rows, and the start row of every window row of the whole grid from the
    first of them on (one more entry than rows: the next row's start, or ``height``). Only the offsets
    along each axis are listed, so a grid of any size (a web layer's world) costs nothing."""
    x0, y0, x1, y1 = region
    tw, th = min(tile, width), min(tile, height)
    cols = [c for c in starts(width, tile, overlap, origin[0]) if c < x1 and c + tw > x0]
    row_starts = starts(height, tile, overlap, origin[1])
    first = bisect_right(row_starts, y0 - th)  # the first window row reaching below y0
    last = bisect_left(row_starts, y1)  # window rows starting before y1
    rows = [[PixelWindow(c, r, tw, th) for c in cols] for r in row_starts[first:last]]
    return rows, [*row_starts[first:last + 1], height][:len(rows) + 1]


def window_rows(width: int, height: int, tile: int, overlap: int, origin: tuple[int, int] = (0, 0)) -> list[list[PixelWindow]]:
    """The grid as rows of windows, top to bottom, each row left to right (``origin``: lattice index
    (col, row) of pixel (0, 0), as for ``starts``)."""
    tw, th = min(tile, width), min(tile, height)
    cols = starts(width, tile, overlap, origin[0])
    return [[PixelWindow(c, r, tw, th) for c in cols] for r in starts(height, tile, overlap, origin[1])]
