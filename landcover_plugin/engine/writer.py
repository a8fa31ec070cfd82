"""Output rasters: a tiled, compressed uint8 class GeoTIFF with nodata, a colour table, category
names and a QGIS ``.qml`` style; optionally a float32 confidence GeoTIFF.

Files are written under temporary names beside the target and renamed only by ``commit()``;
``abort()`` (or leaving the ``with`` block on an exception) deletes them, so a failed or cancelled run
leaves no partial output.
"""
from __future__ import annotations

import os
import warnings
from pathlib import Path
from xml.sax.saxutils import quoteattr

import numpy as np
import rasterio
from rasterio.errors import NotGeoreferencedWarning
from rasterio.windows import Window as RioWindow

from ..model.metadata import ModelMetadata

NODATA = 255
CONFIDENCE_NODATA = -1.0
GTIFF = {"driver": "GTiff", "tiled": True, "blockxsize": 256, "blockysize": 256, "compress": "deflate",
         "BIGTIFF": "IF_SAFER"}


def _rgb(color: str) -> tuple[int, int, int]:
    return tuple(int(color[i:i + 2], 16) for i in (1, 3, 5))


def qml_style(meta: ModelMetadata) -> str:
    """A QGIS style (paletted/unique-values renderer) whose legend lists the classes in colour."""
    entries = "\n".join(
        f'        <paletteEntry value="{v}" color="{c}" alpha="255" label={quoteattr(n)}/>'
        for v, c, n in zip(meta.class_values, meta.class_colors, meta.class_names))
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
{entries}
      </colorPalette>
      <colorramp type="randomcolors" name="[source]"/>
    </rasterrenderer>
    <brightnesscontrast brightness="0" contrast="0" gamma="1"/>
    <huesaturation saturation="0" colorizeOn="0" colorizeRed="255" colorizeGreen="128" colorizeBlue="128" colorizeStrength="100" grayscaleMode="0"/>
    <rasterresampler maxOversampling="2"/>
    <resamplingStage>resamplingFilter</resamplingStage>
  </pipe>
  <blendMode>0</blendMode>
</qgis>
"""


def finish_class_raster(tmp: Path, path: Path, meta: ModelMetadata) -> None:
    """Give the closed class raster ``tmp`` its category names (GTiff keeps them in the PAM sidecar
    ``.aux.xml``, written when the dataset closes) and a ``.qml`` style, then rename them to ``path``
    (the raster last, so its presence means the set is complete)."""
    from osgeo import gdal

    names = [""] * (max(meta.class_values) + 1)
    for v, n in zip(meta.class_values, meta.class_names):
        names[v] = n
    ds = gdal.OpenEx(str(tmp), gdal.OF_RASTER | gdal.OF_UPDATE)
    band = ds.GetRasterBand(1)
    band.SetCategoryNames(names)
    del band
    ds.FlushCache()
    del ds
    qml = path.with_suffix(".qml")
    qml_tmp = tmp_name(qml)
    qml_tmp.write_text(qml_style(meta))
    aux_tmp = Path(f"{tmp}.aux.xml")
    if aux_tmp.exists():
        os.replace(aux_tmp, f"{path}.aux.xml")
    os.replace(qml_tmp, qml)
    os.replace(tmp, path)


def tmp_name(path: Path) -> Path:
    return path.with_name(f".{path.stem}.part{os.getpid()}{path.suffix}")


class ClassRasterWriter:
    """Write a class raster (and optional confidence raster) row block by row block.

    ``profile``: rasterio ``crs``, ``transform`` (either may be ``None``), ``width``, ``height``.
    ``tags``: GeoTIFF metadata items. Use as a context manager, write with ``write()``, then ``commit()``.
    """

    def __init__(self, path: str | Path, meta: ModelMetadata, profile: dict, tags: dict[str, str],
                 confidence: str | Path | None = None):
        self.path = Path(path)
        self.meta = meta
        self.conf_path = Path(confidence) if confidence else None
        self.tmp = tmp_name(self.path)
        self.conf_tmp = tmp_name(self.conf_path) if self.conf_path else None
        base = {k: v for k, v in profile.items() if v is not None}
        with warnings.catch_warnings():  # a non-georeferenced input was already reported
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            self.dst = rasterio.open(self.tmp, "w", count=1, dtype="uint8", nodata=NODATA, **base, **GTIFF)
        self.dst.update_tags(**tags)
        self.dst.set_band_description(1, "land cover class")
        self.dst.write_colormap(1, self._colormap())
        self.conf = None
        if self.conf_path:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", NotGeoreferencedWarning)
                self.conf = rasterio.open(self.conf_tmp, "w", count=1, dtype="float32", nodata=CONFIDENCE_NODATA,
                                          predictor=3, **base, **GTIFF)
            self.conf.update_tags(**tags)
            self.conf.set_band_description(1, "maximum class probability (0-1)")

    def _colormap(self) -> dict[int, tuple[int, int, int, int]]:
        cmap = {v: (0, 0, 0, 0) for v in range(256)}
        for v, c in zip(self.meta.class_values, self.meta.class_colors):
            cmap[v] = (*_rgb(c), 255)
        return cmap

    def write(self, row: int, classes: np.ndarray, confidence: np.ndarray | None = None) -> None:
        """Write rows starting at ``row``: classes ``(n, W)`` uint8, confidence ``(n, W)`` float32."""
        window = RioWindow(0, row, classes.shape[1], classes.shape[0])
        self.dst.write(classes, 1, window=window)
        if self.conf is not None and confidence is not None:
            self.conf.write(confidence, 1, window=window)

    def commit(self) -> None:
        """Close, add category names and the ``.qml`` style, and rename everything into place."""
        self.dst.close()
        if self.conf is not None:
            self.conf.close()
            os.replace(self.conf_tmp, self.conf_path)
        finish_class_raster(self.tmp, self.path, self.meta)

    def abort(self) -> None:
        """Close and delete every temporary file."""
        for ds in (self.dst, self.conf):
            if ds is not None and not ds.closed:
                ds.close()
        for tmp in (self.tmp, self.conf_tmp, Path(f"{self.tmp}.aux.xml")):
            if tmp is not None:
                Path(tmp).unlink(missing_ok=True)

    def __enter__(self) -> "ClassRasterWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None:
            self.abort()
