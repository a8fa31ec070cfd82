"""Polygon labels burnt onto a raster's grid (training labels and chips from a GeoPackage, Shapefile,
GeoJSON…, read with OGR and rasterised with GDAL's ``RasterizeLayer``)."""
from __future__ import annotations

from typing import Callable

import numpy as np
from osgeo import gdal, ogr, osr

from .engine.grid import Grid
from .engine.reader import gdal_errors
from .errors import LandcoverError

VECTOR_SUFFIXES = (".gpkg", ".shp", ".geojson", ".json", ".fgb", ".sqlite")


def burn_polygons(grid: Grid, image_name: str, path, field: str, value_of: Callable[[str], int | None], fill: int,
                  unknown_hint: str) -> np.ndarray:
    """A uint8 ``(H, W)`` array on ``grid`` (the image ``image_name``'s): each polygon of the first layer
    of the vector file ``path`` burnt (pixel centres; later features win where polygons overlap) with
    ``value_of(field value as text)``, ``fill`` outside every polygon. Geometries are reprojected to
    the grid's CRS.

    Raises ``LandcoverError`` for an unreadable file, a missing field (the message lists the fields),
    values ``value_of`` maps to ``None`` (listed, with ``unknown_hint``), an image without CRS, or
    polygons that miss the image."""
    if not grid.crs_wkt or grid.geotransform is None:
        raise LandcoverError(f"image {image_name} has no CRS: polygons can only be burnt onto a georeferenced image")
    with gdal_errors():
        source = ogr.Open(str(path))
    if source is None:
        raise LandcoverError(f"labels {path} cannot be read as a vector file (GeoPackage, Shapefile, GeoJSON…)")
    layer = source.GetLayer(0)
    definition = layer.GetLayerDefn()
    names = [definition.GetFieldDefn(i).GetName() for i in range(definition.GetFieldCount())]
    if field not in names:
        raise LandcoverError(f"polygons {path} have no field '{field}' (fields: {', '.join(names)}): "
                             "choose one of them as the label field")
    target = osr.SpatialReference()
    target.ImportFromWkt(grid.crs_wkt)
    target.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
    srs = layer.GetSpatialRef()
    transform = None
    if srs is not None:
        srs = srs.Clone()
        srs.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
        transform = osr.CoordinateTransformation(srs, target)
    memory = ogr.GetDriverByName("Memory").CreateDataSource("")
    shapes = memory.CreateLayer("labels", target, ogr.wkbUnknown)
    shapes.CreateField(ogr.FieldDefn("burn", ogr.OFTInteger))
    unknown, burnt_values = set(), set()
    for feature in layer:
        value = feature.GetField(field)
        key = str(int(value)) if isinstance(value, float) and value.is_integer() else str(value)
        geometry = feature.GetGeometryRef()
        if geometry is None:
            continue
        burnt = value_of(key)
        if burnt is None:
            unknown.add(key)
            continue
        geometry = geometry.Clone()
        if transform is not None:
            geometry.Transform(transform)
        out = ogr.Feature(shapes.GetLayerDefn())
        out.SetField("burn", int(burnt))
        out.SetGeometry(geometry)
        shapes.CreateFeature(out)
        burnt_values.add(int(burnt))
    source = None
    if unknown:
        raise LandcoverError(f"polygons {path}: values {sorted(unknown)} of field '{field}' are not known: {unknown_hint}")
    if not burnt_values:
        raise LandcoverError(f"polygons {path} hold no polygon with a value in field '{field}'")
    raster = gdal.GetDriverByName("MEM").Create("", grid.width, grid.height, 1, gdal.GDT_Byte)
    raster.SetGeoTransform(grid.geotransform)
    raster.SetProjection(grid.crs_wkt)
    raster.GetRasterBand(1).Fill(fill)
    with gdal_errors():
        gdal.RasterizeLayer(raster, [1], shapes, options=["ATTRIBUTE=burn"])
    labels = raster.GetRasterBand(1).ReadAsArray()
    if (labels == fill).all() and fill not in burnt_values:
        raise LandcoverError(f"polygons {path} do not overlap image {image_name}: pair each image with the polygons that cover it")
    return labels
