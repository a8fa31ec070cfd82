"""Class raster → polygons (GDAL's ``Polygonize``), optionally sieved first (``SieveFilter``: regions
smaller than ``sieve`` px merge into their largest neighbour), with ``class_value``, ``class_name``
and ``area_m2`` attributes (CRS units², i.e. m² for metre CRSs; px² without a CRS; geographic CRSs are
refused), written to a GeoPackage with a ``.qml`` style (categorized renderer in the
classes' colours). Nodata pixels give no polygons. Written under a temporary name, renamed when done.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from xml.sax.saxutils import quoteattr

from .errors import LandcoverError


@dataclass
class VectorizeParams:
    """``sieve``: minimum region size in px (0: none); ``min_area``: drop polygons below this many m²."""

    classes: str | Path
    output: str | Path
    sieve: int = 0
    min_area: float = 0.0


def vector_qml(values, names, colors) -> str:
    """A QGIS style: categorized fill renderer on ``class_value`` in the classes' colours."""
    cats = "\n".join(f'      <category render="true" symbol="{i}" value="{v}" label={quoteattr(n)}/>'
                     for i, (v, n) in enumerate(zip(values, names)))
    symbols = "\n".join(
        f'      <symbol type="fill" name="{i}" alpha="1"><layer class="SimpleFill">'
        f'<prop k="color" v="{int(c[1:3], 16)},{int(c[3:5], 16)},{int(c[5:7], 16)},255"/>'
        f'<prop k="outline_color" v="60,60,60,255"/><prop k="outline_width" v="0.1"/>'
        f'<prop k="style" v="solid"/></layer></symbol>' for i, c in enumerate(colors))
    return f"""<!DOCTYPE qgis PUBLIC 'http://mrcc.com/qgis.dtd' 'SYSTEM'>
<qgis version="3.22.0" styleCategories="Symbology">
  <renderer-v2 type="categorizedSymbol" attr="class_value" forceraster="0" symbollevels="0" enableorderby="0">
    <categories>
{cats}
    </categories>
    <symbols>
{symbols}
    </symbols>
  </renderer-v2>
</qgis>
"""


def vectorize(params: VectorizeParams) -> dict:
    """Polygonize ``params.classes`` into ``params.output`` (.gpkg). Returns {"polygons": n, "output": path}.

    Raises ``LandcoverError`` for a missing input, an input without Landcover class metadata, or an
    output that is not a .gpkg in a writable folder."""
    from osgeo import gdal, ogr, osr

    src_path, output = Path(params.classes), Path(params.output)
    if not src_path.exists():
        raise LandcoverError(f"class raster not found: {src_path}")
    if output.suffix.lower() != ".gpkg":
        raise LandcoverError(f"output {output} must be a GeoPackage (.gpkg)")
    if not output.resolve().parent.is_dir():
        raise LandcoverError(f"folder {output.resolve().parent} does not exist: create it first")
    src = gdal.Open(str(src_path))
    if src is None:
        raise LandcoverError(f"{src_path} is not a raster GDAL can read")
    tag = src.GetMetadataItem("LANDCOVER_CLASSES")
    if not tag:
        raise LandcoverError(f"{src_path} has no LANDCOVER_CLASSES metadata: vectorize a raster written by landcover classify")
    classes = {int(k): v for k, v in json.loads(tag).items()}
    band = src.GetRasterBand(1)
    ct = band.GetColorTable()
    colors = ["#%02x%02x%02x" % ct.GetColorEntry(v)[:3] if ct else "#888888" for v in classes]
    srs = osr.SpatialReference(wkt=src.GetProjection()) if src.GetProjection() else None
    if srs is not None and srs.IsGeographic():
        raise LandcoverError(f"{src_path} is in a geographic CRS, so areas would be in degrees²: reproject it to a "
                             "projected CRS first")
    mem = gdal.GetDriverByName("MEM").CreateCopy("", src)
    mem_band = mem.GetRasterBand(1)
    mask = mem_band.GetMaskBand()
    if params.sieve > 1:
        gdal.SieveFilter(mem_band, mask, mem_band, params.sieve, 4)
    tmp = output.with_name(f".{output.stem}.part{os.getpid()}.gpkg")
    ds = ogr.GetDriverByName("GPKG").CreateDataSource(str(tmp))
    layer = ds.CreateLayer("land_cover", srs=srs, geom_type=ogr.wkbPolygon)
    layer.CreateField(ogr.FieldDefn("class_value", ogr.OFTInteger))
    try:
        if gdal.Polygonize(mem_band, mask, layer, 0) != 0:
            raise LandcoverError(f"GDAL could not polygonize {src_path}: {gdal.GetLastErrorMsg()}")
        layer.CreateField(ogr.FieldDefn("class_name", ogr.OFTString))
        layer.CreateField(ogr.FieldDefn("area_m2", ogr.OFTReal))
        ds.StartTransaction()
        count = 0
        for feature in list(layer):
            area = feature.GetGeometryRef().GetArea()
            if area < params.min_area or feature["class_value"] not in classes:
                layer.DeleteFeature(feature.GetFID())
                continue
            feature["class_name"] = classes[feature["class_value"]]
            feature["area_m2"] = area
            layer.SetFeature(feature)
            count += 1
        ds.CommitTransaction()
        del layer
        ds = None
        output.with_suffix(".qml").write_text(vector_qml(list(classes), list(classes.values()), colors))
        os.replace(tmp, output)
    except BaseException:
        ds = None
        tmp.unlink(missing_ok=True)
        raise
    return {"polygons": count, "output": str(output)}
