"""Class raster → polygons (GDAL's ``Polygonize``), optionally sieved first (``SieveFilter``: regions
smaller than ``sieve`` px merge into their largest neighbour), with ``class_value``, ``class_name``
and ``area_m2`` attributes (CRS units², i.e. m² for metre CRSs; px² without a CRS; geographic CRSs are
refused), written to a GeoPackage with a ``.qml`` style (categorized renderer in the
classes' colours). Nodata pixels give no polygons. Written under a temporary name, renamed when done.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from xml.sax.saxutils import quoteattr

from .engine.reader import gdal_errors, last_error, open_raster
from .engine.writer import read_classes_tag
from .errors import LandcoverError
from .outputs import AtomicOutputs, check_output_path


@dataclass
class VectorizeParams:
    """``sieve_px``: minimum region size in px (0: none); ``min_area_m2``: drop polygons below this area."""

    classes: str | Path
    output: str | Path
    sieve_px: int = 0
    min_area_m2: float = 0.0


@dataclass
class VectorizeResult:
    """Polygons written and the GeoPackage."""

    polygons: int
    output: Path

    def summary(self) -> str:
        return f"Wrote {self.polygons} polygons to {self.output} (+ .qml style)"


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


def vectorize(params: VectorizeParams) -> VectorizeResult:
    """Polygonize ``params.classes`` into ``params.output`` (.gpkg) and its ``.qml``, atomically.

    Raises ``LandcoverError`` for a missing input, an input without Landcover class metadata, a
    geographic CRS, or an output that is not a .gpkg in a writable folder."""
    from osgeo import gdal, ogr, osr

    src_path = Path(params.classes)
    output = check_output_path(params.output, "output", (".gpkg",), (src_path,))
    if params.sieve_px < 0 or params.min_area_m2 < 0:
        raise LandcoverError(f"sieve and minimum area must be >= 0, got {params.sieve_px} px and {params.min_area_m2} m²")
    src = open_raster(src_path, "class raster")
    classes = read_classes_tag(src, str(src_path), "vectorize a raster written by landcover classify")
    band = src.GetRasterBand(1)
    ct = band.GetColorTable()
    colors = ["#{:02x}{:02x}{:02x}".format(*ct.GetColorEntry(v)[:3]) if ct else "#888888" for v in classes]
    srs = osr.SpatialReference(wkt=src.GetProjection()) if src.GetProjection() else None
    if srs is not None and srs.IsGeographic():
        raise LandcoverError(f"{src_path} is in a geographic CRS, so areas would be in degrees²: reproject it to a "
                             "projected CRS first")
    mem = gdal.GetDriverByName("MEM").CreateCopy("", src)
    mem_band = mem.GetRasterBand(1)
    mask = mem_band.GetMaskBand()
    if params.sieve_px > 1:
        gdal.SieveFilter(mem_band, mask, mem_band, params.sieve_px, 4)
    with AtomicOutputs() as outputs:
        tmp = outputs.add(output)
        with gdal_errors():
            ds = ogr.GetDriverByName("GPKG").CreateDataSource(str(tmp))
            if ds is None:
                raise LandcoverError(f"cannot create {output} ({last_error()})")
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
                if area < params.min_area_m2 or feature["class_value"] not in classes:
                    layer.DeleteFeature(feature.GetFID())
                    continue
                feature["class_name"] = classes[feature["class_value"]]
                feature["area_m2"] = area
                layer.SetFeature(feature)
                count += 1
            ds.CommitTransaction()
        finally:
            layer = None
            ds = None
        outputs.add(output.with_suffix(".qml")).write_text(vector_qml(list(classes), list(classes.values()), colors))
        outputs.commit()
    return VectorizeResult(count, output)
