"""Classification at the model's resolution: which grid the model sees, and blended probabilities
resampled from that grid onto the output grid before the argmax.

A raster whose ground pixel size (GSD) differs from the model's by more than ``GSD_TOLERANCE`` is read
on a grid at the model's GSD (``RasterSource.rescaled``: GDAL's warper, average when coarsening, cubic
when refining); the tile grid, the model and the blender all work on that grid; the blended class
probabilities are then interpolated bilinearly onto the output grid (by default the input's own), and
only then is the class taken (argmax). Grids share their origin, so the mapping is a pure scaling in
pixel space.
"""
from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from ..errors import LandcoverError

GSD_TOLERANCE = 0.10  # the raster's own grid is used when its GSD is within 10 % of the model's
MAX_REFINE = 8.0  # refused: input pixels more than 8× the model's GSD (the model cannot see its features)
MAX_COARSEN = 32.0  # refused: input pixels finer than 1/32 of the model's GSD (resample the input first)
SNAP = 0.02  # a factor within 2 % of a whole number (or of its inverse) is taken as that number


def snapped(factor: float) -> float:
    """``factor`` rounded to a whole number n (or 1/n) when within ``SNAP`` of it: a projection's scale
    factor (Lambert-93's 0.9995, say) should not turn 2×2 averaging into a 1.998 resampling."""
    whole = round(factor) if factor >= 1 else 1 / round(1 / factor)
    return float(whole) if abs(factor / whole - 1) <= SNAP else factor


@dataclass(frozen=True)
class ResolutionPlan:
    """``factor``: model-grid pixel size / input pixel size (1: the input's own grid); GSDs in m
    (``None`` when unknown); ``note`` says in words what is done and why."""

    factor: float
    input_gsd_m: float | None
    model_gsd_m: float | None
    note: str

    @property
    def resampled(self) -> bool:
        return self.factor != 1.0


def parse_gsd_option(value: str | float | None, what: str = "--gsd") -> str | float:
    """``auto``, ``off`` or a positive number of metres. Raises ``LandcoverError`` otherwise."""
    if value is None or value == "":
        return "auto"
    if isinstance(value, str) and value.lower() in ("auto", "off"):
        return value.lower()
    try:
        metres = float(value)
    except (TypeError, ValueError):
        raise LandcoverError(f"{what} must be auto, off or a pixel size in metres, got {value!r}") from None
    if not metres > 0 or math.isinf(metres):
        raise LandcoverError(f"{what} must be a positive number of metres, got {value!r}")
    return metres


def plan_resolution(raster_gsd_m: float | None, model_gsd_m: float | None, option: str | float = "auto") -> ResolutionPlan:
    """The grid the model sees for a raster of ``raster_gsd_m`` (from its CRS and geotransform; ``None``
    when unknown) and a model trained at ``model_gsd_m``. ``option``: ``auto``, ``off`` (never
    resample) or the raster's true GSD in metres (for metadata that lies).

    Raises ``LandcoverError`` when the raster's pixels are more than ``MAX_REFINE`` times coarser or
    ``MAX_COARSEN`` times finer than the model's GSD (naming the override ``--gsd off``)."""
    if option == "off":
        return ResolutionPlan(1.0, raster_gsd_m, model_gsd_m, "resampling off (--gsd off): the model sees the input's own pixels")
    if model_gsd_m is None:
        return ResolutionPlan(1.0, raster_gsd_m, None, "the model states no GSD: the input's own pixels are used")
    source = "given by --gsd"
    if isinstance(option, float):
        raster_gsd_m = option
    elif raster_gsd_m is None:
        return ResolutionPlan(1.0, None, model_gsd_m, f"the input has no CRS: its pixels are assumed to be the model's "
                                                      f"GSD, {model_gsd_m:g} m (pass --gsd METRES if they are not)")
    else:
        source = "from its CRS and geotransform"
    factor = snapped(model_gsd_m / raster_gsd_m)
    if abs(factor - 1) <= GSD_TOLERANCE:
        return ResolutionPlan(1.0, raster_gsd_m, model_gsd_m,
                              f"input GSD {raster_gsd_m:.3g} m ({source}) is within {GSD_TOLERANCE:.0%} of the model's "
                              f"{model_gsd_m:g} m: its own grid is used")
    if factor < 1 / MAX_REFINE:
        raise LandcoverError(f"the input's pixels ({raster_gsd_m:.3g} m, {source}) are {1 / factor:.0f}× the model's GSD "
                             f"({model_gsd_m:g} m): the model cannot see what it was trained on at this resolution; use a "
                             "model made for it, or switch resampling off (--gsd off; in QGIS: Resampling off) to classify the pixels as "
                             "they are")
    if factor > MAX_COARSEN:
        raise LandcoverError(f"the input's pixels ({raster_gsd_m:.3g} m, {source}) are {factor:.0f}× finer than the model's "
                             f"GSD ({model_gsd_m:g} m): resample the input to about {model_gsd_m:g} m first, or switch "
                             "resampling off (--gsd off; in QGIS: Resampling off) to classify the pixels as they are")
    how = "averaged" if factor > 1 else "cubic"
    return ResolutionPlan(factor, raster_gsd_m, model_gsd_m,
                          f"resampled from {raster_gsd_m:.3g} m ({source}) to the model's {model_gsd_m:g} m "
                          f"(×{factor:.3g}, {how}); probabilities resampled back before the argmax")


class GridResampler:
    """Bilinear interpolation of probabilities streamed top-down on a *work* grid onto rows of an output
    grid with the same origin, whose pixels are ``ratio`` work pixels wide (``ratio`` < 1: finer).

    Output pixel (X, Y) samples the work grid at ``((X + 0.5)·ratio − 0.5, (Y + 0.5)·ratio − 0.5)``
    (pixel-centre alignment), clamped to the work grid's edge. Only work pixels with weight > 0 take
    part; an output pixel none of whose four neighbours has weight gets weight 0 (nodata).

    ``cols``: output columns ``[X0, X1)``; ``work_cols``: the work columns ``[x0, x1)`` the fed
    arrays cover (from ``work_span``); ``rows``: output rows ``[Y0, Y1)``; ``work_height``: rows of
    the whole work grid."""

    def __init__(self, ratio: float, cols: tuple[int, int], work_cols: tuple[int, int], rows: tuple[int, int],
                 work_height: int, work_width: int):
        self.ratio = ratio
        self.next_row, self.end_row = rows
        self.work_height = work_height
        u = np.clip((np.arange(*cols) + 0.5) * ratio - 0.5, 0, work_width - 1)
        u0 = np.floor(u).astype(np.int64)
        self.fu = (u - u0).astype(np.float32)
        self.u0 = u0 - work_cols[0]
        self.u1 = np.minimum(u0 + 1, work_width - 1) - work_cols[0]
        self.top = 0  # work row of buffer row 0
        self.probs: NDArray[np.float32] | None = None  # (K, n, wc)
        self.valid: NDArray[np.float32] | None = None  # (n, wc) float32 0/1

    def _v(self, y: int) -> tuple[int, int, float]:
        v = min(max((y + 0.5) * self.ratio - 0.5, 0.0), self.work_height - 1)
        v0 = math.floor(v)
        return v0, min(v0 + 1, self.work_height - 1), v - v0

    def feed(self, y: int, probs: NDArray[np.float32], weights: NDArray[np.float32],
             chunk: int = 64) -> Iterator[tuple[int, NDArray[np.float32], NDArray[np.float32]]]:
        """Add work rows starting at ``y`` (probabilities ``(K, n, wc)``, weights ``(n, wc)``); yields
        ``(Y, probs (K, m, X1 - X0), valid (m, X1 - X0) float32 0/1)`` for every output row that can be
        computed now, in blocks of at most ``chunk`` rows."""
        valid = (weights > 0).astype(np.float32)
        if self.probs is None or self.valid is None:  # the first rows (the two are set together)
            self.top, self.probs, self.valid = y, probs, valid
        else:
            self.probs = np.concatenate([self.probs, probs], axis=1)
            self.valid = np.concatenate([self.valid, valid], axis=0)
        bottom = self.top + self.valid.shape[0]
        while self.next_row < self.end_row:
            rows: list[tuple[int, int, float]] = []
            while self.next_row + len(rows) < self.end_row and len(rows) < chunk:
                v0, v1, fv = self._v(self.next_row + len(rows))
                if v1 >= bottom:
                    break
                rows.append((v0, v1, fv))
            if not rows:
                break
            yield self.next_row, *self._interpolate(rows, self.probs, self.valid)
            self.next_row += len(rows)
        if self.next_row < self.end_row:  # drop the work rows no later output row needs
            first = self._v(self.next_row)[0] - self.top
            if first > 0:
                self.probs, self.valid = self.probs[:, first:], self.valid[first:]
                self.top += first

    def _interpolate(self, rows: list[tuple[int, int, float]], probs: NDArray[np.float32],
                     valid_rows: NDArray[np.float32]) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
        """Output ``rows`` (``_v`` of each) from the buffered work rows ``probs`` ``(K, n, wc)`` and
        ``valid_rows`` ``(n, wc)`` (``self.probs``, ``self.valid``; buffer row 0 is work row ``top``)."""
        v0 = np.array([r[0] for r in rows]) - self.top
        v1 = np.array([r[1] for r in rows]) - self.top
        fv = np.array([r[2] for r in rows], np.float32)[:, None]  # (m, 1)
        # In place, one gather per neighbour: these arrays are K output rows wide and this runs on every pixel.
        upper, lower = probs[:, v0], probs[:, v1]  # (K, m, wc) copies
        if valid_rows[v0].all() and valid_rows[v1].all():  # the usual case: a plain bilinear interpolation
            lower -= upper
            lower *= fv
            upper += lower  # the vertical pass
            out = np.take(upper, self.u0, axis=2)
            right = np.take(upper, self.u1, axis=2)
            right -= out
            right *= self.fu
            out += right
            return out, np.ones(out.shape[1:], np.float32)
        # weighted by validity: interpolate p·valid and valid, then divide
        w0, w1 = valid_rows[v0] * (1 - fv), valid_rows[v1] * fv  # (m, wc)
        upper *= w0
        lower *= w1
        upper += lower
        vw = w0 + w1
        fu, gu = self.fu, 1 - self.fu
        out = np.take(upper, self.u0, axis=2)
        out *= gu
        right = np.take(upper, self.u1, axis=2)
        right *= fu
        out += right
        weight = vw[:, self.u0] * gu + vw[:, self.u1] * fu
        valid = weight > 1e-6
        np.divide(out, weight, out=out, where=valid)
        return out, valid.astype(np.float32)


def work_span(out_range: tuple[int, int], ratio: float, work_length: int) -> tuple[int, int]:
    """Work pixels ``[a, b)`` that output pixels ``[X0, X1)`` sample (see ``GridResampler``)."""
    first = max((out_range[0] + 0.5) * ratio - 0.5, 0.0)
    last = min(max((out_range[1] - 0.5) * ratio - 0.5, 0.0), work_length - 1)
    return math.floor(first), min(math.floor(last) + 2, work_length)
