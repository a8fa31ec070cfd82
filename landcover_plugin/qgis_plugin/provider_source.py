"""Any raster layer QGIS shows, as an engine ``RasterSource``: windows read with
``QgsRasterDataProvider.block()`` over their extent at the grid's size.

Layers without a pixel grid of their own (XYZ, WMS/WMTS and other web services) are read on a grid at
the model's GSD in the layer's CRS (one pixel lattice whatever the extent: ``layer_grid``), over an
extent (the visible one in live mode, EXTENT in Processing); such services deliver rendered RGB(A)
(QGIS' ``ARGB32``), which is mapped to the model's red, green and blue bands (alpha 0: nodata).
Layers with data bands (WCS, PostGIS raster, virtual rasters) keep their bands, chosen by colour
interpretation as for files.

Providers are not thread-safe: a ``ProviderSource`` reads through one provider clone made in the main
thread (``bind`` swaps in a fresh clone for another worker thread); the engine reads from one thread
at a time.
"""
from __future__ import annotations

import math
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from qgis.core import Qgis, QgsNetworkAccessManager, QgsRasterBlockFeedback, QgsRasterLayer, QgsRectangle
from qgis.PyQt.QtCore import Qt
from qgis.PyQt.QtNetwork import QNetworkReply, QNetworkRequest

from ..engine.grid import Grid, ground_pixel_size
from ..engine.source import RasterSource, choose_bands, to_luma
from ..engine.windows import PixelWindow
from ..errors import Cancelled, LandcoverError
from ..feedback import Feedback

MAX_PIXELS = 500_000_000  # a web layer is refused beyond this many pixels at the model's GSD: give a smaller extent
_RENDERED = (Qgis.ARGB32, Qgis.ARGB32_Premultiplied)
_COLORS = {3: "red", 4: "green", 5: "blue", 6: "alpha", 1: "gray", 2: "palette"}  # QgsRaster.ColorInterpretation
_DTYPES = {Qgis.Byte: np.uint8, Qgis.UInt16: np.uint16, Qgis.Int16: np.int16, Qgis.UInt32: np.uint32,
           Qgis.Int32: np.int32, Qgis.Float32: np.float32, Qgis.Float64: np.float64}


def is_file_layer(layer: QgsRasterLayer) -> bool:
    """A raster file GDAL reads directly (the engine then reads it itself)."""
    return layer.providerType() == "gdal" and Path(layer.source()).is_file()


@dataclass(frozen=True)
class LayerInfo:
    """What a source needs to know of a layer, taken in the main thread (worker threads never touch
    the layer itself, which the user may remove at any time)."""

    name: str
    provider_type: str
    uri: str
    crs_wkt: str
    extent: tuple[float, float, float, float]

    @classmethod
    def of(cls, layer: QgsRasterLayer) -> LayerInfo:
        e = layer.extent()
        crs = layer.crs()
        return cls(layer.name(), layer.providerType(), layer.source(), crs.toWkt() if crs.isValid() else "",
                   (e.xMinimum(), e.yMinimum(), e.xMaximum(), e.yMaximum()))


def lattice_unit(unit: float) -> float:
    """``unit`` (map units per pixel, > 0) rounded to 3 significant digits (at most 0.5 % off): nearby
    extents, whose centres give slightly different units, then share one pixel size."""
    return float(f"{unit:.3g}")


def layer_grid(info: LayerInfo, extent: tuple[float, float, float, float], gsd_m: float,
               centre: tuple[float, float] | None = None, max_pixels: int | None = MAX_PIXELS) -> Grid:
    """A north-up grid in the layer's CRS covering ``extent`` (xmin, ymin, xmax, ymax) whose pixels are
    about ``gsd_m`` ground metres at ``centre`` (default: the extent's centre; a Web Mercator metre is
    about cos φ ground metres), the pixel size rounded by ``lattice_unit`` and the corner moved out to a
    whole multiple of it: every grid made at one pixel size lies on one lattice from the CRS's origin,
    so two overlapping extents get the same pixels, windows (``Grid.lattice_origin``) and classes, as
    files cut from one raster do. Raises ``LandcoverError`` for a layer without CRS, an empty extent,
    or more than ``max_pixels``."""
    if not info.crs_wkt:
        raise LandcoverError(f"layer '{info.name}' has no CRS: set its CRS in the layer properties first")
    xmin, ymin, xmax, ymax = extent
    if not all(map(math.isfinite, extent)) or xmax <= xmin or ymax <= ymin:
        raise LandcoverError(f"layer '{info.name}' has no usable extent: give an extent to classify")
    cx, cy = centre or ((xmin + xmax) / 2, (ymin + ymax) / 2)
    metres = ground_pixel_size(Grid(1, 1, (cx, 1.0, 0.0, cy, 0.0, -1.0), info.crs_wkt))
    unit = lattice_unit(gsd_m / math.sqrt(metres[0] * metres[1]) if metres else gsd_m)
    xmin = math.floor(xmin / unit + 1e-6) * unit
    ymax = math.ceil(ymax / unit - 1e-6) * unit
    width, height = max(1, math.ceil((xmax - xmin) / unit - 1e-6)), max(1, math.ceil((ymax - ymin) / unit - 1e-6))
    if max_pixels and width * height > max_pixels:
        raise LandcoverError(f"layer '{info.name}' over the extent {xmin:.6g}, {ymin:.6g} – {xmax:.6g}, {ymax:.6g} is "
                             f"{width:,}×{height:,} px at {gsd_m:g} m "
                             f"({width * height / 1e9:.1f} gigapixels, more than the {max_pixels / 1e9:g} allowed for "
                             "layers read through QGIS): give a smaller extent")
    return Grid(width, height, (xmin, unit, 0.0, ymax, 0.0, -unit), info.crs_wkt)


class ProviderSource(RasterSource):
    """A QGIS raster layer read through a clone of its data provider; see the module docstring."""

    def __init__(self, info: LayerInfo, grid: Grid, needed: int, names: tuple[str, ...] | None, provider=None,
                 holder: dict | None = None, gsd_m: float | None = None):
        self.grid, self.name = grid, f"layer '{info.name}' ({info.provider_type})"
        self._holder = holder if holder is not None else {"provider": provider, "read": 0, "blank": 0, "active": set()}
        self._lock = threading.Lock()
        provider = self._holder["provider"]
        self.rendered = provider.dataType(1) in _RENDERED
        self._info, self._needed, self._names = info, needed, names
        if self.rendered:
            colors = ["red", "green", "blue"]
            self.bands, note, self.luma = choose_bands(colors, needed, names)
            self.band_note = (f"rendered RGB from {info.provider_type} ({note}; alpha 0 is nodata)"
                              if not self.luma else f"rendered RGB as grey ({note})")
            self.all_valid = False
        else:
            colors = [_COLORS.get(int(provider.colorInterpretation(b)), "undefined")
                      for b in range(1, provider.bandCount() + 1)]
            self.bands, self.band_note, self.luma = choose_bands(colors, needed, names)
            self.all_valid = not any(provider.sourceHasNoDataValue(b) for b in self.bands)
        self.key = ("qgis", info.provider_type, info.uri, grid.geotransform, grid.crs_wkt, self.bands)
        self._measure()
        if gsd_m is not None:  # a grid built at this GSD where it is used (a world grid's centre is elsewhere)
            self.gsd_m, self.pixel_area_m2 = gsd_m, gsd_m * gsd_m

    def bind(self, provider) -> None:
        """Read through ``provider`` (a clone made in the main thread) from now on, here and in every
        ``rescaled`` view of this source."""
        self._holder["provider"] = provider

    def cancel_reads(self) -> None:
        """Abort the requests of the reads under way (from any thread): a web service that is slow or
        hangs does not hold a cancelled view; those reads raise ``Cancelled``."""
        for feedback in list(self._holder["active"]):
            feedback.cancel()

    def _extent(self, w: PixelWindow) -> QgsRectangle:
        x0, y0 = self.grid.to_map(w.col, w.row)
        x1, y1 = self.grid.to_map(w.col + w.width, w.row + w.height)
        return QgsRectangle(min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1))

    def _block(self, band: int, w: PixelWindow) -> np.ndarray:
        """One band of window ``w`` as delivered by the provider. A web provider answers a failed request
        with transparent pixels and no error, so the requests this thread makes are watched (this
        thread's ``QgsNetworkAccessManager``, direct connection): any failure other than a missing tile
        (404, the service's coverage ends there) raises ``LandcoverError``."""
        provider = self._holder["provider"]
        feedback = QgsRasterBlockFeedback()
        failed: list[str] = []
        active: set = self._holder["active"]

        def finished(reply) -> None:  # QgsNetworkReplyContent
            if reply.error() not in (QNetworkReply.NoError, QNetworkReply.ContentNotFoundError,
                                     QNetworkReply.OperationCanceledError):
                status = reply.attribute(QNetworkRequest.HttpStatusCodeAttribute)
                failed.append(f"{reply.errorString()}" + (f" (HTTP {status})" if status else ""))

        network = QgsNetworkAccessManager.instance()
        network.finished.connect(finished, Qt.DirectConnection)
        active.add(feedback)
        try:
            block = provider.block(band, self._extent(w), w.width, w.height, feedback)
        finally:
            active.discard(feedback)
            network.finished.disconnect(finished)
        if feedback.isCanceled():
            raise Cancelled("the view was cancelled while its imagery was being fetched")
        errors = [*feedback.errors(), *failed]
        if block is None or not block.isValid() or errors:
            reason = errors[0] if errors else "no data returned"
            raise LandcoverError(f"{self.name} could not deliver {w.width}×{w.height} px at column {w.col}, row {w.row} "
                                 f"({reason.strip()[:200]}): check the service or the connection and try again")
        dtype = _DTYPES.get(block.dataType())
        if block.dataType() in _RENDERED:
            dtype = np.uint32
        if dtype is None:
            raise LandcoverError(f"{self.name} delivers {block.dataType()} pixels, which Landcover cannot read")
        return np.frombuffer(bytes(block.data()), dtype=dtype).reshape(w.height, w.width)

    def read(self, window: PixelWindow) -> tuple[np.ndarray, np.ndarray]:
        with self._lock:
            if self.rendered:
                argb = self._block(1, window)
                alpha = (argb >> 24).astype(np.uint8)
                rgb = np.stack([(argb >> s) & 255 for s in (16, 8, 0)]).astype(np.float32)
                partial = (alpha > 0) & (alpha < 255)  # premultiplied: undo it where it matters
                if partial.any():
                    rgb[:, partial] = np.clip(rgb[:, partial] * 255.0 / alpha[partial], 0, 255)
                data = np.round(rgb).astype(np.uint8)
                valid = alpha > 0
                self._holder["read"] += valid.size
                self._holder["blank"] += int(valid.size - np.count_nonzero(valid))
            else:
                provider = self._holder["provider"]
                planes = [self._block(b, window) for b in self.bands]
                data = np.stack(planes)
                valid = np.ones(data.shape[1:], bool)
                if not self.all_valid:
                    valid[:] = False
                    for b, plane in zip(self.bands, planes):
                        nodata = provider.sourceNoDataValue(b) if provider.sourceHasNoDataValue(b) else None
                        valid |= plane != nodata if nodata is not None else True
                if data.dtype.kind == "f":
                    valid &= np.isfinite(data).all(axis=0)
        if self.luma:
            data = to_luma(data)
        return data, valid

    def notes(self) -> list[str]:
        read, blank = self._holder["read"], self._holder["blank"]
        if not blank:
            return []
        return [f"{blank / read:.1%} of the area read came back transparent from {self.name} (outside the service's "
                "coverage or tiles it does not have): those pixels are nodata"]

    def rescaled(self, factor: float) -> ProviderSource:
        """The layer on ``grid.scaled(factor)``: the provider renders or resamples it at that size."""
        return ProviderSource(self._info, self.grid.scaled(factor), self._needed, self._names, holder=self._holder,
                              gsd_m=self.gsd_m * factor if self.gsd_m else None)

    def close(self) -> None:
        self._holder["provider"] = None


def native_grid(layer: QgsRasterLayer, info: LayerInfo) -> Grid | None:
    """The pixel grid of a layer whose provider has one (data bands of a known size), else ``None``."""
    provider = layer.dataProvider()
    if provider is None or provider.dataType(1) in _RENDERED or not provider.capabilities() & provider.Size:
        return None
    if provider.xSize() < 1 or provider.ySize() < 1 or not info.crs_wkt:
        return None
    xmin, ymin, xmax, ymax = info.extent
    return Grid(provider.xSize(), provider.ySize(), (xmin, (xmax - xmin) / provider.xSize(), 0.0, ymax, 0.0,
                                                     -(ymax - ymin) / provider.ySize()), info.crs_wkt)


def layer_input(layer: QgsRasterLayer, model: str | None, extent: QgsRectangle | None, feedback: Feedback,
                gsd_m: float | None = None) -> str | ProviderSource:
    """What ``ClassifyParams.input`` gets for ``layer``: its path when it is a raster file (an EXTENT
    is then not used), else a ``ProviderSource``: on the provider's own pixel grid when it has one,
    else on a grid at the model's GSD (or ``gsd_m``) over ``extent`` (default: the layer's). Call in
    the main thread (it clones the provider).

    Raises ``LandcoverError`` when the model states no GSD and none is given, or for the grid (see
    ``layer_grid``)."""
    if is_file_layer(layer):
        if extent is not None:
            feedback.warning("EXTENT is used for web and other non-file layers only; the whole raster file is classified")
        return layer.source()
    from ..model.adapter import read_metadata
    from ..model.registry import resolve_model

    meta = read_metadata(resolve_model(model))
    info = LayerInfo.of(layer)
    needed = len(meta.input_bands) if meta.input_bands else 3
    grid = native_grid(layer, info)
    built_at = None  # the GSD of a grid made for the layer (a native grid's is measured)
    if grid is None:
        gsd = built_at = gsd_m or meta.gsd_m
        if gsd is None:
            raise LandcoverError(f"layer '{layer.name()}' has no pixel grid of its own and the model states no GSD: "
                                 "give the pixel size to classify at (Input GSD)")
        area = (extent.xMinimum(), extent.yMinimum(), extent.xMaximum(), extent.yMaximum()) \
            if extent is not None and not extent.isEmpty() else info.extent
        grid = layer_grid(info, area, gsd)
        where = f"a {grid.width}×{grid.height} px grid at {gsd:g} m in the layer's CRS"
    else:
        where = f"its own {grid.width}×{grid.height} px grid"
    source = ProviderSource(info, grid, needed, meta.input_bands, layer.dataProvider().clone(),
                            gsd_m=built_at)
    feedback.info(f"{source.name} read through QGIS on {where}; {source.band_note}")
    return source
