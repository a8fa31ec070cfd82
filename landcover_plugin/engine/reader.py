"""Input rasters: open, choose the model's bands, read windows with their validity mask.

Reading is windowed with rasterio; the validity mask of a window combines GDAL's dataset mask
(alpha band, or the bands' nodata values) and NaN in float bands.
"""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import rasterio
from rasterio.enums import ColorInterp, MaskFlags
from rasterio.enums import Resampling
from rasterio.errors import NotGeoreferencedWarning, RasterioIOError
from rasterio.vrt import WarpedVRT
from rasterio.warp import transform_bounds
from rasterio.windows import Window as RioWindow

from ..errors import LandcoverError
from .windows import Window

LUMA = (0.299, 0.587, 0.114)  # ITU-R BT.601 weights of red, green, blue
GREY_NAMES = ("gray", "grey", "panchromatic")


@dataclass
class InputRaster:
    """An open input raster with the bands chosen for the model.

    ``bands``: 1-based band indexes in model order; ``band_note``: how they were chosen;
    ``gsd``: pixel size in metres (``None`` when unknown); ``pixel_area``: m² (``None`` when unknown);
    ``luma``: ``bands`` are red, green, blue read as one grey band (a 1-band grey model on RGB);
    ``all_valid``: GDAL reports no nodata, alpha or mask band (every band's mask flag is
    ``all_valid``), so windows are valid without reading a mask.
    """

    path: Path
    dataset: rasterio.io.DatasetReader
    bands: tuple[int, ...]
    band_note: str
    georeferenced: bool
    gsd: float | None
    pixel_area: float | None
    luma: bool = False
    all_valid: bool = False

    @property
    def width(self) -> int:
        return self.dataset.width

    @property
    def height(self) -> int:
        return self.dataset.height

    def read(self, w: Window) -> tuple[np.ndarray, np.ndarray]:
        """Raw values ``(C, h, w)`` in the raster's dtype and validity ``(h, w)`` bool."""
        win = RioWindow(w.col, w.row, w.width, w.height)
        data = self.dataset.read(self.bands, window=win)
        if self.luma:
            data = to_luma(data)
        if self.all_valid:
            valid = np.ones(data.shape[1:], bool)
        else:
            valid = self.dataset.dataset_mask(window=win) > 0
        if data.dtype.kind == "f":
            valid &= np.isfinite(data).all(axis=0)
        return data, valid

    def close(self) -> None:
        self.dataset.close()


def _pixel_size_m(ds) -> tuple[float | None, float | None]:
    """(GSD in m, pixel area in m²) from the CRS and geotransform; (None, None) when unknown."""
    if ds.crs is None:
        return None, None
    t = ds.transform
    sx, sy = math.hypot(t.a, t.d), math.hypot(t.b, t.e)
    if ds.crs.is_projected:
        factor = ds.crs.linear_units_factor[1]
        return math.sqrt(sx * sy) * factor, abs(t.a * t.e - t.b * t.d) * factor * factor
    if ds.crs.is_geographic:
        lat = math.radians(ds.xy(ds.height / 2, ds.width / 2)[1])
        mx, my = sx * 111_320 * abs(math.cos(lat)), sy * 110_574
        return math.sqrt(mx * my), mx * my
    return None, None


def to_luma(rgb: np.ndarray) -> np.ndarray:
    """Red, green, blue ``(3, ...)`` → luma ``(1, ...)`` (ITU-R BT.601 weights), rounded, same dtype."""
    luma = np.tensordot(np.asarray(LUMA, np.float32), rgb[:3].astype(np.float32), axes=1)
    return (np.round(luma) if rgb.dtype.kind in "iu" else luma)[None].astype(rgb.dtype)


def choose_bands(colorinterp: list[str], needed: int, names: tuple[str, ...] | None) -> tuple[tuple[int, ...], str]:
    """1-based bands for a model of ``needed`` bands named ``names`` (colour interpretations).

    Bands whose colour interpretation matches every name are taken in the model's order; a 1-band
    grey model on a raster with red, green and blue bands (and no grey one) gets those three, to be
    read as luma (see ``InputRaster.luma``); otherwise the first ``needed`` non-alpha bands. Raises
    ``LandcoverError`` when fewer bands exist than needed.
    """
    rgb = ("red", "green", "blue")
    if (needed == 1 and names and names[0] in GREY_NAMES and names[0] not in colorinterp
            and all(c in colorinterp for c in rgb)):
        bands = tuple(colorinterp.index(c) + 1 for c in rgb)
        return bands, f"luma of bands {','.join(map(str, bands))} (red, green, blue → {names[0]}, ITU-R BT.601 weights)"
    usable = [i + 1 for i, ci in enumerate(colorinterp) if ci != "alpha"]
    if len(usable) < needed:
        wanted = f" ({', '.join(names)})" if names else ""
        raise LandcoverError(f"the input has {len(usable)} image band(s) but the model needs {needed}{wanted}: "
                             "use a raster with those bands or a model made for this band count")
    if names and all(n in colorinterp for n in names):
        bands = tuple(colorinterp.index(n) + 1 for n in names)
        return bands, f"bands {','.join(map(str, bands))} ({', '.join(names)}, by colour interpretation)"
    bands = tuple(usable[:needed])
    why = "colour interpretation does not name the model's bands" if names else "the model names no bands"
    return bands, f"bands {','.join(map(str, bands))} (first {needed}; {why})"


def open_raster(path: str | Path, what: str = "input"):
    """``rasterio.open(path)`` with the errors a user can act on.

    Raises ``LandcoverError`` for a missing file or a file GDAL cannot read as a raster; a
    non-georeferenced raster opens without rasterio's warning (callers report it themselves)."""
    path = Path(path)
    if not path.exists():
        raise LandcoverError(f"{what} raster not found: {path}")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        try:
            return rasterio.open(path)
        except RasterioIOError:
            raise LandcoverError(f"{what} {path} is not a raster GDAL can read: give a GeoTIFF, VRT, JPEG, PNG "
                                 "or other GDAL raster") from None


def open_input(path: str | Path, needed: int, names: tuple[str, ...] | None,
               bands: tuple[int, ...] | None = None) -> InputRaster:
    """Open ``path`` and choose ``needed`` bands (``bands`` overrides the choice, 1-based).

    Raises ``LandcoverError`` for a missing file, a file GDAL cannot read as a raster, band indexes
    out of range, or too few bands.
    """
    path = Path(path)
    ds = open_raster(path)
    try:
        colorinterp = [ci.name if isinstance(ci, ColorInterp) else str(ci) for ci in ds.colorinterp]
        if bands:
            bad = [b for b in bands if not 1 <= b <= ds.count]
            if bad:
                raise LandcoverError(f"band(s) {bad} do not exist: the input has bands 1..{ds.count}")
            if len(bands) != needed:
                raise LandcoverError(f"{len(bands)} band(s) given but the model needs {needed}: pass {needed} to --bands")
            note = f"bands {','.join(map(str, bands))} (as requested)"
        else:
            bands, note = choose_bands(colorinterp, needed, names)
        georeferenced = ds.crs is not None or not ds.transform.is_identity
        gsd, area = _pixel_size_m(ds)
        all_valid = all(flags == [MaskFlags.all_valid] for flags in ds.mask_flag_enums)
        return InputRaster(path, ds, tuple(bands), note, georeferenced, gsd, area, luma=len(bands) != needed,
                           all_valid=all_valid)
    except Exception:
        ds.close()
        raise


def copy_window(src, window, path: str | Path) -> Path:
    """Write ``window`` (a rasterio ``Window``) of the open raster ``src`` to the GeoTIFF ``path``: all
    bands, dtype, nodata and colour interpretation, georeferenced as the window when ``src`` is."""
    profile = {"driver": "GTiff", "width": int(window.width), "height": int(window.height), "count": src.count,
               "dtype": src.dtypes[0], "nodata": src.nodata}
    if src.crs is not None or not src.transform.is_identity:
        profile.update(crs=src.crs, transform=src.window_transform(window))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        with rasterio.open(path, "w", **profile) as dst:
            dst.write(src.read(window=window))
            dst.colorinterp = src.colorinterp
    return Path(path)


def on_grid(ds, like, what: str = "label"):
    """``ds`` as seen on ``like``'s grid: itself when size and geotransform match, else a nearest-
    neighbour ``WarpedVRT`` (close it after use when it is not ``ds``). Raises ``LandcoverError`` when
    the grids differ and either raster has no CRS, or when ``ds`` does not overlap ``like``."""
    if (ds.width, ds.height) == (like.width, like.height) and ds.transform.almost_equals(like.transform):
        return ds
    if ds.crs is None or like.crs is None:
        raise LandcoverError(f"the {what} raster {ds.name} ({ds.width}×{ds.height}) is not on the grid of image "
                             f"{like.name} ({like.width}×{like.height}) and one of them has no CRS: give rasters "
                             "of the same size and geotransform")
    left, bottom, right, top = transform_bounds(ds.crs, like.crs, *ds.bounds)
    b = like.bounds
    if left >= b.right or right <= b.left or bottom >= b.top or top <= b.bottom:
        raise LandcoverError(f"the {what} raster {ds.name} does not overlap image {like.name}: pair each image with "
                             f"the {what} raster that covers it")
    return WarpedVRT(ds, crs=like.crs, transform=like.transform, width=like.width, height=like.height,
                     resampling=Resampling.nearest)
