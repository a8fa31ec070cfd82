"""The engine's one source interface: a raster as a pixel grid the engine reads windows of.

Three implementations feed the same pipeline (window grid → model adapter → blender → writer):
``reader.GdalSource`` (a file GDAL reads, or that file resampled to the model's GSD by GDAL's warper,
``GdalSource.rescaled``) and, in the QGIS host, ``qgis_plugin.provider_source.ProviderSource`` (any layer
QGIS shows, web services included, read through its raster data provider).
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Hashable
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..errors import LandcoverError
from .grid import Grid, gsd_m
from .windows import PixelWindow

LUMA = (0.299, 0.587, 0.114)  # ITU-R BT.601 weights of red, green, blue
GREY_NAMES = ("gray", "grey", "panchromatic")


class RasterSource(ABC):
    """Windows of a raster on ``grid``, with the bands the model needs.

    Attributes: ``grid`` (size, geotransform, CRS), ``name`` (for messages), ``key`` (identifies the
    raster and bands, e.g. for caches), ``bands`` (1-based band indexes read, in the model's order),
    ``band_note`` (how they were chosen, for the log), ``all_valid`` (no nodata, alpha or mask: every
    pixel is valid, so ``read`` need not read a mask), ``gsd_m`` and ``pixel_area_m2`` (ground pixel
    size in m and area in m², ``None`` when unknown).
    """

    grid: Grid
    name: str
    key: tuple[Hashable, ...]
    bands: tuple[int, ...]
    band_note: str
    all_valid: bool = False
    gsd_m: float | None = None
    pixel_area_m2: float | None = None

    def _measure(self) -> None:
        """Set ``gsd_m`` and ``pixel_area_m2`` from the grid (``grid.gsd_m``)."""
        self.gsd_m, self.pixel_area_m2 = gsd_m(self.grid)

    @property
    def width(self) -> int:
        return self.grid.width

    @property
    def height(self) -> int:
        return self.grid.height

    @property
    def georeferenced(self) -> bool:
        return self.grid.georeferenced

    @abstractmethod
    def read(self, window: PixelWindow) -> tuple[NDArray[Any], NDArray[np.bool_]]:
        """Raw values ``(C, h, w)`` in the raster's data type and validity ``(h, w)`` bool of ``window``.

        Raises ``LandcoverError`` naming the raster and the window when it cannot be read."""

    def notes(self) -> list[str]:
        """What the user should know about what was read (e.g. a web service's missing imagery); read
        once the work is done."""
        return []

    def validity(self, window: PixelWindow) -> NDArray[np.bool_]:
        """Validity ``(h, w)`` bool of ``window`` (what ``read`` returns second)."""
        return self.read(window)[1]

    @abstractmethod
    def rescaled(self, factor: float) -> RasterSource:
        """The raster on ``grid.scaled(factor)`` (pixels ``factor`` times larger: averaged when
        ``factor`` > 1, interpolated when < 1; validity resampled too, so nodata never bleeds into
        valid pixels). Close it after use; it does not close this source."""

    def close(self) -> None:  # noqa: B027 (optional: sources holding nothing need not override it)
        """Release what the source holds (datasets, provider clones)."""

    def __enter__(self) -> RasterSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def to_luma(rgb: NDArray[Any]) -> NDArray[Any]:
    """Red, green, blue ``(3, ...)`` → luma ``(1, ...)`` (ITU-R BT.601 weights), rounded, same dtype."""
    luma = np.tensordot(np.asarray(LUMA, np.float32), rgb[:3].astype(np.float32), axes=1)
    return (np.round(luma) if rgb.dtype.kind in "iu" else luma)[None].astype(rgb.dtype)


def choose_bands(colorinterp: list[str], needed: int, names: tuple[str, ...] | None,
                 requested: tuple[int, ...] | None = None) -> tuple[tuple[int, ...], str, bool]:
    """1-based bands for a model of ``needed`` bands named ``names`` (colour interpretations, lower
    case: red, green, blue, alpha, gray, …); returns (bands, note, luma).

    ``requested`` bands are used as given. Otherwise bands whose colour interpretation matches every
    name are taken in the model's order; a 1-band grey model on a raster with red, green and blue bands
    (and no grey one) gets those three, to be read as luma (``luma`` True); otherwise the first
    ``needed`` non-alpha bands. Raises ``LandcoverError`` for requested bands that do not exist or do
    not match the model, and when fewer bands exist than needed."""
    count = len(colorinterp)
    if requested:
        bad = [b for b in requested if not 1 <= b <= count]
        if bad:
            raise LandcoverError(f"band(s) {bad} do not exist: the input has bands 1..{count}")
        if len(requested) != needed:
            raise LandcoverError(f"{len(requested)} band(s) given but the model needs {needed}: pass {needed} bands to --bands")
        return tuple(requested), f"bands {','.join(map(str, requested))} (as requested)", False
    rgb = ("red", "green", "blue")
    if (needed == 1 and names and names[0] in GREY_NAMES and names[0] not in colorinterp
            and all(c in colorinterp for c in rgb)):
        bands = tuple(colorinterp.index(c) + 1 for c in rgb)
        return bands, f"luma of bands {','.join(map(str, bands))} (red, green, blue → {names[0]}, ITU-R BT.601 weights)", True
    usable = [i + 1 for i, ci in enumerate(colorinterp) if ci != "alpha"]
    if len(usable) < needed:
        wanted = f" ({', '.join(names)})" if names else ""
        raise LandcoverError(f"the input has {len(usable)} image band(s) but the model needs {needed}{wanted}: "
                             "use a raster with those bands or a model made for this band count")
    if names and all(n in colorinterp for n in names):
        bands = tuple(colorinterp.index(n) + 1 for n in names)
        return bands, f"bands {','.join(map(str, bands))} ({', '.join(names)}, by colour interpretation)", False
    bands = tuple(usable[:needed])
    why = "colour interpretation does not name the model's bands" if names else "the model names no bands"
    return bands, f"bands {','.join(map(str, bands))} (first {needed}; {why})", False
