"""Blending of overlapping tiles' class probabilities.

Each tile's probabilities are multiplied by a smooth window weight and summed, together with the
weights, over the raster; a pixel's class is the argmax of the sum once every tile covering it has
been added. The weight along each axis is a Hann window (sin² taper; as in overlap-add synthesis,
Harris 1978) over the tile's reliable core, zero inside the model's ``padding``, and flat (1) on the
side of a tile that touches the raster edge, so edge pixels are fully weighted. Invalid pixels
(nodata, alpha 0) get weight 0 and end up with no weight at all: they are written as nodata.
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np
from numpy.typing import NDArray

from .windows import PixelWindow


def axis_weights(start: int, size: int, length: int, padding: int = 0) -> NDArray[np.float32]:
    """Weights ``(size,)`` float32 along one axis for a tile at ``start`` of a raster ``length`` px long."""
    return _taper(start == 0, start + size >= length, size, padding)


def _taper(at_start: bool, at_end: bool, size: int, padding: int) -> NDArray[np.float32]:
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


def tile_weights(w: PixelWindow, width: int, height: int, padding: int = 0) -> NDArray[np.float32]:
    """2-D weights ``(h, w)`` float32 for window ``w`` of a ``width`` × ``height`` raster.

    Windows of the same size touching the same raster edges share one cached, read-only array."""
    return _tile_weights(w.row == 0, w.row + w.height >= height, w.height,
                         w.col == 0, w.col + w.width >= width, w.width, padding)


@lru_cache(maxsize=16)
def _tile_weights(top: bool, bottom: bool, rows: int, left: bool, right: bool, cols: int, padding: int) -> NDArray[np.float32]:
    weights = np.outer(_taper(top, bottom, rows, padding), _taper(left, right, cols, padding))
    weights.flags.writeable = False
    return weights


class RowAccumulator:
    """Weighted probability sums for a band of raster rows, released top-down as rows become final.

    Holds ``(K, rows, width)`` float32 for at most ``max_rows`` rows (the tile height), so memory does
    not grow with the raster's height. ``width`` columns start at raster column ``left`` (a region of
    the raster; 0: the whole width). Windows are added row by row, left to right (``window_rows``
    order; windows may be skipped). A window's pixels that no earlier window touched are assigned,
    not added, so the buffer is never cleared: only rows and columns that skipped windows leave
    untouched are zeroed.
    """

    def __init__(self, width: int, num_classes: int, max_rows: int, top: int = 0, left: int = 0):
        self.top, self.left = top, left
        self.sums = np.empty((num_classes, max_rows, width), np.float32)  # never read before written
        self.weights = np.empty((max_rows, width), np.float32)
        self.filled = 0  # rows [0, filled) hold sums over the whole width
        self.row: tuple[int, int] | None = None  # raster rows (start, end) of the window row being added
        self.cols = 0  # columns [0, cols) of that row's rows below ``filled`` hold sums
        self.scratch = np.empty(0, np.float32)  # one plane of probs × weight, reused

    def _zero(self, r0: int, r1: int, c0: int, c1: int) -> None:
        if r1 > r0 and c1 > c0:
            self.sums[:, r0:r1, c0:c1] = 0
            self.weights[r0:r1, c0:c1] = 0

    def _fill_rows(self, end: int, from_col: int = 0) -> None:
        """Rows up to ``end`` hold sums: zero rows ``[filled, end)`` from column ``from_col`` (what no
        window wrote there; the columns before it were written by the current window row)."""
        self._zero(self.filled, end, from_col, self.weights.shape[1])
        self.filled = max(self.filled, end)

    def _close_row(self) -> None:
        """The window row being added is complete: zero what its (skipped) windows left untouched."""
        if self.row is not None:
            self._fill_rows(self.row[1] - self.top, self.cols)
            self.row = None

    def _accumulate(self, rows: slice, cols: slice, probs: NDArray[np.float32], weight: NDArray[np.float32]) -> None:
        """``sums[:, rows, cols] += probs * weight`` plane by plane through a cache-sized scratch."""
        if weight.size == 0:
            return
        if self.scratch.size < weight.size:
            self.scratch = np.empty(weight.size, np.float32)
        scaled = self.scratch[:weight.size].reshape(weight.shape)
        for k in range(len(self.sums)):
            self.sums[k, rows, cols] += np.multiply(probs[k], weight, out=scaled)
        self.weights[rows, cols] += weight

    def add(self, w: PixelWindow, probs: NDArray[np.float32], weight: NDArray[np.float32]) -> None:
        """Add probabilities ``(K, h, w)`` times ``weight`` ``(h, w)`` at window ``w``."""
        r0, c0 = w.row - self.top, w.col - self.left
        r1, c1 = r0 + w.height, c0 + w.width
        if self.row != (w.row, w.row + w.height):  # the first window of a new window row
            self._close_row()
            self._fill_rows(r0)  # rows no window touched
            self.row, self.cols = (w.row, w.row + w.height), 0
        f = min(max(self.filled - r0, 0), w.height)  # tile rows [0, f) fall on rows holding sums
        self._zero(r0 + f, r1, self.cols, c0)  # columns a skipped window left untouched
        split = min(max(self.cols - c0, 0), w.width)  # tile columns [0, split) of rows f.. hold sums too
        self._accumulate(slice(r0, r0 + f), slice(c0, c1), probs[:, :f], weight[:f])
        self._accumulate(slice(r0 + f, r1), slice(c0, c0 + split), probs[:, f:, :split], weight[f:, :split])
        np.multiply(probs[:, f:, split:], weight[f:, split:], out=self.sums[:, r0 + f:r1, c0 + split:c1])
        self.weights[r0 + f:r1, c0 + split:c1] = weight[f:, split:]
        self.cols = max(self.cols, c1)

    def release(self, until_row: int, values: NDArray[np.uint8], nodata: int) -> tuple[NDArray[np.uint8], NDArray[np.float32]]:
        """Finalise rows ``[top, until_row)`` (see ``finalize``), drop them and move the rows below up.

        Shifts in chunks no taller than the released band, so no copy of the buffer is made."""
        n = self._complete(until_row)
        result = finalize(self.sums[:, :n], self.weights[:n], values, nodata)
        self._drop(n)
        return result

    def release_probabilities(self, until_row: int) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
        """Rows ``[top, until_row)`` as blended probabilities ``(K, n, W)`` float32 (the weighted mean
        over the tiles covering each pixel; 0 where no tile gave weight) and their weight ``(n, W)``
        float32 (0: no valid tile covered the pixel); then drop them as ``release`` does."""
        n = self._complete(until_row)
        weights = self.weights[:n].copy()
        covered = weights > 0
        probs = np.divide(self.sums[:, :n], weights, out=np.zeros_like(self.sums[:, :n]), where=covered)
        self._drop(n)
        return probs, weights

    def _complete(self, until_row: int) -> int:
        """Close the window row being added and make rows up to ``until_row`` hold sums; their count."""
        self._close_row()
        n = until_row - self.top
        self._fill_rows(n)
        return n

    def _drop(self, n: int) -> None:
        """Forget the first ``n`` rows: move the rows below up, in chunks no taller than ``n``."""
        keep = self.filled - n
        for start in range(0, keep, max(n, 1)):  # source and destination chunks never overlap
            stop = min(start + n, keep)
            self.sums[:, start:stop] = self.sums[:, n + start:n + stop]
            self.weights[start:stop] = self.weights[n + start:n + stop]
        self.filled = keep
        self.top += n


def finalize(sums: NDArray[np.float32], weights: NDArray[np.float32], values: NDArray[np.uint8],
             nodata: int) -> tuple[NDArray[np.uint8], NDArray[np.float32]]:
    """Class raster ``(n, W)`` uint8 (``values[argmax]``, ``nodata`` where no weight) and confidence
    ``(n, W)`` float32 (the blended maximum class probability; -1 where no weight).

    The argmax is a running maximum over the K class planes in contiguous passes (about 4× faster than
    ``argmax(axis=0)`` over the strided class axis): where plane ``k`` beats the best so far the index
    becomes ``k``, which is ``max(index, k·better)`` because ``k`` exceeds every earlier index (ties go
    to the lower class index, like ``argmax``)."""
    best = sums[0].copy()
    index = np.zeros(best.shape, np.uint8)
    better = np.empty(best.shape, bool)
    step = np.empty(best.shape, np.uint8)
    for k in range(1, len(sums)):
        np.greater(sums[k], best, out=better)
        np.maximum(best, sums[k], out=best)
        np.maximum(index, np.multiply(better.view(np.uint8), k, out=step), out=index)
    uncovered = weights <= 0
    classes = values[index]
    classes[uncovered] = nodata
    confidence = np.divide(best, weights, out=best, where=~uncovered)
    confidence[uncovered] = -1.0
    return classes, confidence
