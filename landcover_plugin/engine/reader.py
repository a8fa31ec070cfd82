"""Rasters read with GDAL's own Python bindings (every QGIS has them): open with errors a user can act
on, ``GdalSource`` (the file implementation of ``RasterSource``), resampling to another pixel size
with GDAL's warper, and reading a raster on another raster's grid.

Validity of a window combines GDAL's mask bands (alpha band, per-dataset mask, or the bands' nodata:
a pixel is valid where any of the used bands is valid) and NaN in float bands.
"""
from __future__ import annotations

import math
import threading
from collections.abc import Hashable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray
from osgeo import gdal, osr

from ..errors import LandcoverError
from .grid import Grid
from .source import RasterSource, choose_bands, to_luma
from .windows import PixelWindow

GMF_ALL_VALID, GMF_PER_DATASET = 0x01, 0x02
_COLORS = {gdal.GCI_RedBand: "red", gdal.GCI_GreenBand: "green", gdal.GCI_BlueBand: "blue",
           gdal.GCI_AlphaBand: "alpha", gdal.GCI_GrayIndex: "gray", gdal.GCI_PaletteIndex: "palette"}


_recorders = threading.local()


class _FirstFailure:
    """A GDAL error handler that prints nothing and keeps the first failure's message: the cause (e.g.
    "No space left on device"), where GDAL's last message is often a consequence."""

    def __init__(self) -> None:
        self.message: str | None = None

    def __call__(self, err_class: int, err_no: int, message: str) -> None:
        if err_class >= gdal.CE_Failure and self.message is None:
            self.message = message


@contextmanager
def gdal_errors() -> Iterator[None]:
    """GDAL messages are kept quiet (no "ERROR 1:" lines on stderr); callers check results and report
    ``last_error()`` themselves (the first failure inside the block). The handler stack and the last
    error are per thread."""
    recorder = _FirstFailure()
    stack = getattr(_recorders, "stack", None)
    if stack is None:
        stack = _recorders.stack = []
    stack.append(recorder)
    gdal.PushErrorHandler(recorder)
    gdal.ErrorReset()
    try:
        yield
    finally:
        gdal.PopErrorHandler()
        stack.pop()


# GDAL's block cache defaults to 5 % of RAM and fills as a large raster is read; the engine streams. A strip's row of
# windows needs at most about 25 MB of decoded blocks (9,000 px × 640 rows × 3 bands) and the writer a few MB of
# blocks being filled, so 48 MB keeps every overlap read from the cache.
GDAL_CACHE_MB = 48


@contextmanager
def gdal_cache(megabytes: int = GDAL_CACHE_MB) -> Iterator[None]:
    """Limit GDAL's block cache while classifying outside QGIS (the CLI and Dask tasks), so the
    process's memory stays flat with raster size; restored afterwards."""
    before = gdal.GetCacheMax()
    gdal.SetCacheMax(megabytes * 2 ** 20)
    try:
        yield
    finally:
        gdal.SetCacheMax(before)


def last_error(default: str = "no reason given") -> str:
    """GDAL's reason for the failure at hand, one line: the first failure inside the innermost
    ``gdal_errors()`` block of this thread, else GDAL's last message."""
    stack = getattr(_recorders, "stack", None)
    first = stack[-1].message if stack else None
    return ((first or gdal.GetLastErrorMsg() or default).strip().splitlines() or [default])[0][:300]


def open_raster(path: str | Path, what: str = "input", update: bool = False) -> gdal.Dataset:
    """``gdal.OpenEx(path)`` as a raster, with the errors a user can act on.

    Raises ``LandcoverError`` for a missing file or one GDAL cannot read as a raster."""
    path = Path(path)
    if not path.exists():
        raise LandcoverError(f"{what} raster not found: {path}")
    flags = gdal.OF_RASTER | (gdal.OF_UPDATE if update else gdal.OF_READONLY)
    with gdal_errors():
        try:
            ds = gdal.OpenEx(str(path), flags)
        except RuntimeError:  # GDAL's exceptions switched on by some other code in this process (QGIS plugins)
            ds = None
        if ds is None or ds.RasterCount == 0:
            raise LandcoverError(f"{what} {path} is not a raster GDAL can read ({last_error('no raster band')}): "
                                 "give a GeoTIFF, VRT, JPEG, PNG or other GDAL raster")
    return ds


def grid_of(ds: gdal.Dataset) -> Grid:
    """The dataset's grid; not georeferenced when it has neither a CRS nor a geotransform."""
    gt = ds.GetGeoTransform(can_return_null=True)
    wkt = ds.GetProjection() or None
    return Grid(ds.RasterXSize, ds.RasterYSize, tuple(gt) if gt is not None else None, wkt)


def color_names(ds: gdal.Dataset) -> list[str]:
    """Each band's colour interpretation in lower case (``red``, ``alpha``, ``gray``, ``undefined``…)."""
    return [_COLORS.get(ds.GetRasterBand(i + 1).GetColorInterpretation(), "undefined") for i in range(ds.RasterCount)]


def image_bands(ds: gdal.Dataset) -> tuple[int, ...]:
    """1-based indexes of the bands that are not alpha."""
    return tuple(i + 1 for i, c in enumerate(color_names(ds)) if c != "alpha") or (1,)


@contextmanager
def _strict_decoding() -> Iterator[None]:
    """In this thread, make libjpeg's warnings errors: a truncated or damaged JPEG otherwise decodes "successfully"
    with grey where the data is missing, a silently wrong map."""
    before = gdal.GetThreadLocalConfigOption("GDAL_ERROR_ON_LIBJPEG_WARNING", None)
    gdal.SetThreadLocalConfigOption("GDAL_ERROR_ON_LIBJPEG_WARNING", "TRUE")
    try:
        yield
    finally:
        gdal.SetThreadLocalConfigOption("GDAL_ERROR_ON_LIBJPEG_WARNING", before)


def read_window(ds: gdal.Dataset | gdal.Band, bands: tuple[int, ...], w: PixelWindow, name: str) -> NDArray[Any]:
    """Values ``(C, h, w)`` of ``bands`` of a dataset (or of a single band: ``bands`` ignored) in window
    ``w``. Raises ``LandcoverError`` naming the file, the window and what GDAL said when the read fails
    (a damaged tile, a truncated file, a moved source)."""
    data: NDArray[Any] | None  # GDAL's ReadAsArray: the band's data type; None when the read fails
    with gdal_errors(), _strict_decoding():
        try:
            if isinstance(ds, gdal.Band):
                data = ds.ReadAsArray(w.col, w.row, w.width, w.height)
            else:
                data = ds.ReadAsArray(w.col, w.row, w.width, w.height, band_list=list(bands))
        except RuntimeError as exc:  # GDAL's exceptions switched on elsewhere in the process
            data, reason = None, str(exc).strip().splitlines()[0][:300] if str(exc).strip() else None
        else:
            reason = None
        if data is None:
            raise LandcoverError(f"cannot read window {w.width}×{w.height} px at column {w.col}, row {w.row} of {name} "
                                 f"({reason or last_error()}): the file is damaged or a file it refers to is missing; repair or "
                                 "re-create it (gdal_translate), or pass --on-read-error nodata to leave a hole there")
    return data[None] if data.ndim == 2 else data


class GdalSource(RasterSource):
    """A raster file (or a warped view of one) read with GDAL; see ``RasterSource``.

    One dataset handle: ``read`` may be called from any one thread at a time (the engine reads from
    its single reader thread). ``owner`` keeps datasets a warped view depends on alive."""

    def __init__(self, ds: gdal.Dataset, name: str, bands: tuple[int, ...], band_note: str, luma: bool = False,
                 grid: Grid | None = None, key: tuple[Hashable, ...] = (), owner: GdalSource | None = None):
        self.ds, self.name, self.bands, self.band_note, self.luma = ds, name, tuple(bands), band_note, luma
        self.grid = grid or grid_of(ds)
        self.key = key or (name, self.bands, self.grid.width, self.grid.height)
        self.owner = owner
        self.pixel_space: gdal.Dataset | None = None  # the pixel-space view a warped VRT reads through
        flags = [ds.GetRasterBand(b).GetMaskFlags() for b in self.bands]
        self.all_valid = all(f == GMF_ALL_VALID for f in flags)
        self._per_dataset = all(f & GMF_PER_DATASET for f in flags)
        self._float = gdal.GetDataTypeName(ds.GetRasterBand(self.bands[0]).DataType).startswith(("Float", "CFloat"))
        self._lock = threading.Lock()
        self._measure()

    def read(self, window: PixelWindow) -> tuple[NDArray[Any], NDArray[np.bool_]]:
        with self._lock:
            data = read_window(self.ds, self.bands, window, self.name)
            valid = self._masks(window)
        if self._float:
            valid &= np.isfinite(data).all(axis=0)
        if self.luma:
            data = to_luma(data)
        return data, valid

    def validity(self, window: PixelWindow) -> NDArray[np.bool_]:
        if self._float:
            return self.read(window)[1]
        with self._lock:
            return self._masks(window)

    def _masks(self, window: PixelWindow) -> NDArray[np.bool_]:
        """GDAL's masks of the used bands combined (valid where any is valid); all true without masks."""
        if self.all_valid:
            return np.ones((window.height, window.width), bool)
        valid = np.zeros((window.height, window.width), bool)
        for b in self.bands[:1] if self._per_dataset else self.bands:
            valid |= read_window(self.ds.GetRasterBand(b).GetMaskBand(), (1,), window, self.name)[0] > 0
        return valid

    def rescaled(self, factor: float) -> GdalSource:
        """A warped VRT of this raster on ``grid.scaled(factor)`` (GDAL's warper: average when coarser,
        cubic when finer; an alpha band marks where source pixels were valid). The warp runs in pixel
        space, so rotated geotransforms are kept."""
        grid = self.grid.scaled(factor)
        pixel_space = gdal.Translate("", self.ds, format="VRT")
        pixel_space.SetGeoTransform((0.0, 1.0, 0.0, 0.0, 0.0, -1.0))
        pixel_space.SetProjection("")
        with gdal_errors():
            vrt = gdal.Warp("", pixel_space, options=gdal.WarpOptions(
                format="VRT", width=grid.width, height=grid.height,
                outputBounds=(0.0, -grid.height * factor, grid.width * factor, 0.0),
                resampleAlg="average" if factor > 1 else "cubic", dstAlpha=True, multithread=False))
            if vrt is None:
                raise LandcoverError(f"GDAL could not resample {self.name} ({last_error()})")
        vrt.SetGeoTransform(grid.geotransform or (0.0, factor, 0.0, 0.0, 0.0, factor))
        if grid.crs_wkt:
            vrt.SetProjection(grid.crs_wkt)
        source = GdalSource(vrt, self.name, self.bands, self.band_note, self.luma, grid,
                            (*self.key, "x", round(factor, 9)), owner=self)
        source.pixel_space = pixel_space  # the warped VRT reads through it
        return source

    def close(self) -> None:
        self.ds = None
        self.pixel_space = None


def open_source(path: str | Path, needed: int, names: tuple[str, ...] | None,
                bands: tuple[int, ...] | None = None) -> GdalSource:
    """Open the raster file ``path`` for a model of ``needed`` bands named ``names`` (``bands``, 1-based,
    overrides the choice; see ``source.choose_bands``).

    Raises ``LandcoverError`` for a missing file, a file GDAL cannot read as a raster, band indexes
    out of range, or too few bands."""
    path = Path(path)
    ds = open_raster(path)
    chosen, note, luma = choose_bands(color_names(ds), needed, names, bands)
    for b in chosen:
        kind = gdal.GetDataTypeName(ds.GetRasterBand(b).DataType)
        if gdal.DataTypeIsComplex(ds.GetRasterBand(b).DataType):
            raise LandcoverError(f"band {b} of {path} holds complex numbers ({kind}): Landcover classifies real-valued "
                                 "bands; convert them first (e.g. the amplitude: gdal_calc.py --calc 'abs(A)')")
    return GdalSource(ds, str(path), chosen, note, luma, key=(str(path.resolve()), chosen))


def transform_bounds(bounds: tuple[float, float, float, float], src_wkt: str, dst_wkt: str) -> tuple[float, float, float, float]:
    """``bounds`` (xmin, ymin, xmax, ymax) in ``src_wkt`` → a box around them in ``dst_wkt``."""
    src, dst = osr.SpatialReference(), osr.SpatialReference()
    src.ImportFromWkt(src_wkt)
    dst.ImportFromWkt(dst_wkt)
    for srs in (src, dst):
        srs.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
    box: tuple[float, float, float, float] = osr.CoordinateTransformation(src, dst).TransformBounds(*bounds, 21)
    return box


def on_grid(ds: gdal.Dataset, like: Grid, name: str, like_name: str, what: str = "label") -> gdal.Dataset:
    """``ds`` as seen on the grid ``like``: itself when size and geotransform match, else a nearest-
    neighbour warped VRT (classes and labels must not be blended).

    Raises ``LandcoverError`` when the grids differ and either raster has no CRS, when ``like`` is
    rotated, or when ``ds`` does not overlap ``like``."""
    grid = grid_of(ds)
    same_gt = (grid.geotransform is None and like.geotransform is None) or (
        grid.geotransform is not None and like.geotransform is not None
        and all(math.isclose(p, q, rel_tol=1e-9, abs_tol=1e-9) for p, q in zip(grid.geotransform, like.geotransform)))
    if (grid.width, grid.height) == (like.width, like.height) and same_gt:
        return ds
    if not grid.crs_wkt or not like.crs_wkt or grid.geotransform is None or like.geotransform is None:
        raise LandcoverError(f"the {what} raster {name} ({grid.width}×{grid.height}) is not on the grid of {like_name} "
                             f"({like.width}×{like.height}) and one of them has no CRS: give rasters of the same size and "
                             "geotransform")
    if like.geotransform[2] or like.geotransform[4]:
        raise LandcoverError(f"{like_name} has a rotated geotransform: give the {what} raster on exactly its grid")
    left, bottom, right, top = transform_bounds(grid.bounds(), grid.crs_wkt, like.crs_wkt)
    xmin, ymin, xmax, ymax = like.bounds()
    if left >= xmax or right <= xmin or bottom >= ymax or top <= ymin:
        raise LandcoverError(f"the {what} raster {name} does not overlap {like_name}: pair each image with the {what} "
                             "raster that covers it")
    with gdal_errors():
        vrt = gdal.Warp("", ds, options=gdal.WarpOptions(
            format="VRT", dstSRS=like.crs_wkt, outputBounds=(xmin, ymin, xmax, ymax), width=like.width,
            height=like.height, resampleAlg="near"))
        if vrt is None:
            raise LandcoverError(f"GDAL could not put {name} on the grid of {like_name} ({last_error()})")
    return vrt


def copy_window(ds: gdal.Dataset, w: PixelWindow, path: str | Path) -> Path:
    """Write window ``w`` of ``ds`` to the GeoTIFF ``path``: all bands, data type, nodata and colour
    interpretation, georeferenced as the window when ``ds`` is."""
    with gdal_errors():
        out = gdal.Translate(str(path), ds, options=gdal.TranslateOptions(format="GTiff", srcWin=[w.col, w.row, w.width, w.height]))
        if out is None:
            raise LandcoverError(f"cannot write {path} ({last_error()})")
        out = None
    return Path(path)
