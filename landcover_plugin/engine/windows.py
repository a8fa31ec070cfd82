"""Window grid over a raster, in integer pixel coordinates of the input grid.

Windows of ``tile`` px step by ``stride = tile - overlap`` px; the last window of each row and column
is placed flush with the raster edge (it overlaps its neighbour more), so every pixel is covered and
no window reaches outside the raster. A raster smaller than the tile gets one window the raster's size.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..errors import LandcoverError


@dataclass(frozen=True)
class Window:
    """A window: column and row offset of its upper-left pixel, width and height (all px)."""

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


def window_rows(width: int, height: int, tile: int, overlap: int) -> list[list[Window]]:
    """The grid as rows of windows, top to bottom, each row left to right."""
    tw, th = min(tile, width), min(tile, height)
    cols = starts(width, tile, overlap)
    return [[Window(c, r, tw, th) for c in cols] for r in starts(height, tile, overlap)]
