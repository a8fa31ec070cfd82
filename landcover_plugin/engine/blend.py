"""Blending of overlapping tiles' class probabilities.

Each tile's probabilities are multiplied by a smooth window weight and summed, together with the
weights, over the raster; a pixel's class is the argmax of the sum once every tile covering it has
been added. The weight along each axis is a Hann window (sin² taper; as in overlap-add synthesis,
Harris 1978) over the tile's reliable core, zero inside the model's ``padding``, and flat (1) on the
side of a tile that touches the raster edge, so edge pixels are fully weighted. Invalid pixels
(nodata, alpha 0) get weight 0 and end up with no weight at all: they are written as nodata.
"""
from __future__ import annotations

import numpy as np

from .windows import Window


def axis_weights(start: int, size: int, length: int, padding: int = 0) -> np.ndarray:
    """Weights ``(size,)`` float32 along one axis for a tile at ``start`` of a raster ``length`` px long."""
    at_start, at_end = start == 0, start + size >= length
    lo = 0 if at_start else min(padding, size // 2)
    hi = size if at_end else size - min(padding, size // 2)
    n = hi - lo
    w = np.zeros(size, np.float32)
    j = np.arange(n)
    core = np.sin(np.pi * (j + 0.5) / n) ** 2
    if at_start:
        core[: n // 2] = 1.0
    if at_end:
        core[n // 2:] = 1.0
    w[lo:hi] = core
    return w


def tile_weights(w: Window, width: int, height: int, padding: int = 0) -> np.ndarray:
    """2-D weights ``(h, w)`` float32 for window ``w`` of a ``width`` × ``height`` raster."""
    return np.outer(axis_weights(w.row, w.height, height, padding), axis_weights(w.col, w.width, width, padding))


class RowAccumulator:
    """Weighted probability sums for a band of raster rows, released top-down as rows become final.

    Holds ``(K, rows, width)`` float32 for at most ``max_rows`` rows (the tile height), so memory does
    not grow with the raster's height. ``width`` columns start at raster column ``left`` (a region of
    the raster; 0: the whole width).
    """

    def __init__(self, width: int, num_classes: int, max_rows: int, top: int = 0, left: int = 0):
        self.top, self.left = top, left
        self.sums = np.zeros((num_classes, max_rows, width), np.float32)
        self.weights = np.zeros((max_rows, width), np.float32)

    def add(self, w: Window, probs: np.ndarray, weight: np.ndarray) -> None:
        """Add probabilities ``(K, h, w)`` times ``weight`` ``(h, w)`` at window ``w``."""
        r0 = w.row - self.top
        rows = slice(r0, r0 + w.height)
        cols = slice(w.col - self.left, w.col - self.left + w.width)
        self.sums[:, rows, cols] += probs * weight
        self.weights[rows, cols] += weight

    def release(self, until_row: int, values: np.ndarray, nodata: int) -> tuple[np.ndarray, np.ndarray]:
        """Finalise rows ``[top, until_row)`` (see ``finalize``), drop them and move the rows below up.

        Works on views and shifts in chunks no taller than the released band, so no copy of the
        buffer is made."""
        n = until_row - self.top
        result = finalize(self.sums[:, :n], self.weights[:n], values, nodata)
        keep = self.weights.shape[0] - n
        for start in range(0, keep, max(n, 1)):  # source and destination chunks never overlap
            stop = min(start + n, keep)
            self.sums[:, start:stop] = self.sums[:, n + start:n + stop]
            self.weights[start:stop] = self.weights[n + start:n + stop]
        self.sums[:, keep:] = 0
        self.weights[keep:] = 0
        self.top = until_row
        return result


def finalize(sums: np.ndarray, weights: np.ndarray, values: np.ndarray, nodata: int) -> tuple[np.ndarray, np.ndarray]:
    """Class raster ``(n, W)`` uint8 (``values[argmax]``, ``nodata`` where no weight) and confidence
    ``(n, W)`` float32 (the blended maximum class probability; -1 where no weight).

    The argmax is a running maximum over the K class planes (contiguous passes; much faster than
    ``argmax(axis=0)`` over a strided axis), ties going to the lower class index like ``argmax``."""
    best = sums[0].copy()
    index = np.zeros(best.shape, np.uint8)
    for k in range(1, len(sums)):
        better = sums[k] > best
        np.copyto(best, sums[k], where=better)
        index[better] = k
    covered = weights > 0
    classes = np.where(covered, values[index], nodata).astype(np.uint8)
    with np.errstate(invalid="ignore", divide="ignore"):
        confidence = np.where(covered, best / weights, -1.0).astype(np.float32)
    return classes, confidence
