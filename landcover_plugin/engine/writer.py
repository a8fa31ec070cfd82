"""Output rasters, written with GDAL: a tiled, compressed uint8 class GeoTIFF with nodata, a colour
table, category names and a QGIS ``.qml`` style; optionally a float32 confidence GeoTIFF.

Everything is written under temporary names (``outputs.AtomicOutputs``) and renamed by the caller's
``commit()``: a failed, cancelled or killed run leaves no partial output.
"""
from __future__ import annotations

import json
from pathlib import Path
from types import TracebackType
from xml.sax.saxutils import quoteattr

import numpy as np
from numpy.typing import NDArray
from osgeo import gdal

from ..errors import LandcoverError
from ..model.metadata import ModelMetadata
from ..outputs import AtomicOutputs
from .grid import Grid
from .reader import gdal_errors, last_error

NODATA = 255
CONFIDENCE_NODATA = -1.0
GTIFF = ["TILED=YES", "BLOCKXSIZE=256", "BLOCKYSIZE=256", "COMPRESS=DEFLATE", "BIGTIFF=IF_SAFER"]


CLASSES_TAG = "LANDCOVER_CLASSES"


def classes_tag(meta: ModelMetadata) -> str:
    """The ``LANDCOVER_CLASSES`` metadata item: JSON ``{"value": "name", ...}``."""
    return json.dumps(dict(zip(map(str, meta.class_values), meta.class_names)))


def read_classes_tag(ds: gdal.Dataset, name: str, use: str = "use a class raster written by landcover classify") -> dict[int, str]:
    """Class value → name from a class raster's ``LANDCOVER_CLASSES`` item. Raises ``LandcoverError``
    naming ``name`` when it is missing or not such a JSON object."""
    tag = ds.GetMetadataItem(CLASSES_TAG)
    try:
        classes = {int(k): str(v) for k, v in json.loads(tag).items()} if tag else None
    except (ValueError, AttributeError):
        classes = None
    if not classes:
        raise LandcoverError(f"{name} has no valid {CLASSES_TAG} metadata, so it is not a Landcover class raster: {use}")
    return classes


def _rgb(color: str) -> tuple[int, int, int]:
    return int(color[1:3], 16), int(color[3:5], 16), int(color[5:7], 16)


def qml_style(meta: ModelMetadata) -> str:
    """A QGIS style (paletted/unique-values renderer) whose legend lists the classes in colour."""
    return paletted_qml(list(zip(meta.class_values, meta.class_colors, meta.class_names)))


def paletted_qml(entries: list[tuple[int, str, str]]) -> str:
    """A QGIS paletted style for band 1 with ``entries`` (value, ``#rrggbb``, label); values not listed
    are transparent."""
    lines = "\n".join(f'        <paletteEntry value="{v}" color="{c}" alpha="255" label={quoteattr(n)}/>'
                      for v, c, n in entries)
    return f"""<!DOCTYPE qgis PUBLIC 'http://mrcc.com/qgis.dtd' 'SYSTEM'>
<qgis version="3.22.0" styleCategories="Symbology">
  <pipe>
    <rasterrenderer type="paletted" band="1" opacity="1" alphaBand="-1" nodataColor="">
      <rasterTransparency/>
      <minMaxOrigin>
        <limits>None</limits>
        <extent>WholeRaster</extent>
        <statAccuracy>Estimated</statAccuracy>
        <cumulativeCutLower>0.02</cumulativeCutLower>
        <cumulativeCutUpper>0.98</cumulativeCutUpper>
        <stdDevFactor>2</stdDevFactor>
      </minMaxOrigin>
      <colorPalette>
{lines}
      </colorPalette>
      <colorramp type="randomcolors" name="[source]"/>
    </rasterrenderer>
    <brightnesscontrast brightness="0" contrast="0" gamma="1"/>
    <huesaturation saturation="0" colorizeOn="0" colorizeRed="255" colorizeGreen="128" colorizeBlue="128" \
colorizeStrength="100" grayscaleMode="0"/>
    <rasterresampler maxOversampling="2"/>
    <resamplingStage>resamplingFilter</resamplingStage>
  </pipe>
  <blendMode>0</blendMode>
</qgis>
"""


def color_table(meta: ModelMetadata) -> gdal.ColorTable:
    """Class colours at their values; every other value transparent."""
    table = gdal.ColorTable()
    for v in range(256):
        table.SetColorEntry(v, (0, 0, 0, 0))
    for v, c in zip(meta.class_values, meta.class_colors):
        table.SetColorEntry(v, (*_rgb(c), 255))
    return table


def category_names(meta: ModelMetadata) -> list[str]:
    names = [""] * (max(meta.class_values) + 1)
    for v, n in zip(meta.class_values, meta.class_names):
        names[v] = n
    return names


def create_gtiff(path: Path, grid: Grid, data_type: int, options: list[str], what: str) -> gdal.Dataset:
    """A new one-band GeoTIFF on ``grid``. Raises ``LandcoverError`` naming ``what`` when GDAL cannot
    create it."""
    with gdal_errors():
        ds = gdal.GetDriverByName("GTiff").Create(str(path), grid.width, grid.height, 1, data_type, options=options)
        if ds is None:
            raise LandcoverError(f"cannot create the {what} ({last_error()}): check the folder's free space and permissions")
    if grid.geotransform is not None:
        ds.SetGeoTransform(grid.geotransform)
    if grid.crs_wkt:
        ds.SetProjection(grid.crs_wkt)
    return ds


def _disk_error(what: str, target: Path) -> LandcoverError:
    return LandcoverError(f"writing the {what} {target} failed ({last_error()}): the disk may be full — free some "
                          "space or write elsewhere; nothing was left behind")


def finish_class_raster(outputs: AtomicOutputs, tmp: Path, target: Path, meta: ModelMetadata) -> None:
    """Give the closed class raster ``tmp`` (to become ``target``) its category names (GTiff keeps them
    in the PAM sidecar ``.aux.xml``) and write its ``.qml`` style under a temporary name of ``outputs``."""
    with gdal_errors():
        ds = gdal.OpenEx(str(tmp), gdal.OF_RASTER | gdal.OF_UPDATE)
        if ds is None:
            raise LandcoverError(f"cannot reopen {tmp} ({last_error()})")
        ds.GetRasterBand(1).SetCategoryNames(category_names(meta))
        ds = None
    outputs.add(target.with_suffix(".qml")).write_text(qml_style(meta))


class ClassRasterWriter:
    """Writes a class raster (and an optional confidence raster) block by block under temporary names
    of ``outputs``; ``close()`` finishes them (optional sieve, category names, ``.qml``). The caller
    commits ``outputs``.

    ``grid``: the output's size, geotransform and CRS. ``tags``: GeoTIFF metadata items."""

    def __init__(self, outputs: AtomicOutputs, path: str | Path, meta: ModelMetadata, grid: Grid,
                 tags: dict[str, str], confidence: str | Path | None = None):
        self.outputs, self.path, self.meta = outputs, Path(path), meta
        self.tmp = outputs.add(self.path)
        self.dst = create_gtiff(self.tmp, grid, gdal.GDT_Byte, GTIFF, "class raster")
        self.dst.SetMetadata(tags)
        band = self.dst.GetRasterBand(1)
        band.SetNoDataValue(NODATA)
        band.SetDescription("land cover class")
        band.SetColorTable(color_table(meta))
        band.SetColorInterpretation(gdal.GCI_PaletteIndex)
        self.conf_path = Path(confidence) if confidence else None
        self.conf = None
        if self.conf_path:
            self.conf = create_gtiff(outputs.add(self.conf_path), grid, gdal.GDT_Float32, [*GTIFF, "PREDICTOR=3"],
                                "confidence raster")
            self.conf.SetMetadata(tags)
            self.conf.GetRasterBand(1).SetNoDataValue(CONFIDENCE_NODATA)
            self.conf.GetRasterBand(1).SetDescription("maximum class probability (0-1)")

    def write(self, row: int, col: int, classes: NDArray[np.uint8], confidence: NDArray[np.float32] | None = None) -> None:
        """Write classes ``(n, w)`` uint8 (and confidence ``(n, w)`` float32) at pixel (col, row)."""
        with gdal_errors():
            if self.dst.GetRasterBand(1).WriteArray(classes, col, row) != 0:
                raise _disk_error("class raster", self.path)
            if self.conf is not None and self.conf_path is not None and confidence is not None:  # conf_path: set with conf
                if self.conf.GetRasterBand(1).WriteArray(confidence, col, row) != 0:
                    raise _disk_error("confidence raster", self.conf_path)

    def close(self, small_segment_px: int = 0, extra_tags: dict[str, str] | None = None) -> None:
        """Flush, sieve regions smaller than ``small_segment_px`` px into their largest neighbour (GDAL
        ``SieveFilter``, 4-connected; 0: none), add category names and the ``.qml`` style."""
        with gdal_errors():
            band = self.dst.GetRasterBand(1)
            if extra_tags:
                self.dst.SetMetadata({**self.dst.GetMetadata(), **extra_tags})
            if small_segment_px > 1:
                band.FlushCache()
                if gdal.SieveFilter(band, band.GetMaskBand(), band, small_segment_px, 4) != 0:
                    raise _disk_error("class raster", self.path)
            band.SetCategoryNames(category_names(self.meta))
            self.dst.FlushCache()
            failed = gdal.GetLastErrorType() >= gdal.CE_Failure
            band = None
            self.dst = None
            if failed:
                raise _disk_error("class raster", self.path)
            if self.conf is not None and self.conf_path is not None:
                self.conf.FlushCache()
                failed = gdal.GetLastErrorType() >= gdal.CE_Failure
                self.conf = None
                if failed:
                    raise _disk_error("confidence raster", self.conf_path)
        self.outputs.add(self.path.with_suffix(".qml")).write_text(qml_style(self.meta))

    def discard(self) -> None:
        """Drop the open datasets without finishing them (the caller's ``outputs`` deletes the files)."""
        self.dst = self.conf = None

    def __enter__(self) -> ClassRasterWriter:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        if exc_type is not None:
            self.discard()
