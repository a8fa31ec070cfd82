"""Polygon labels burnt onto a raster's grid (training labels and chips from a GeoPackage,
Shapefile, GeoJSON…, read with GDAL/OGR and rasterised with rasterio)."""
from __future__ import annotations

import json
from typing import Callable

import numpy as np

from .errors import LandcoverError

VECTOR_SUFFIXES = (".gpkg", ".shp", ".geojson", ".json", ".fgb", ".sqlite")


def burn_polygons(img, path, field: str, value_of: Callable[[str], int | None], fill: int,
                  unknown_hint: str) -> np.ndarray:
    """A uint8 ``(H, W)`` array on the open raster ``img``'s grid: each polygon of the first layer of the
    vector file ``path`` burnt (pixel centres; later features win where polygons overlap) with
    ``value_of(field value as text)``, ``fill`` outside every polygon. Geometries are reprojected to
    the image's CRS.

    Raises ``LandcoverError`` for an unreadable file, a missing field (the message lists the fields),
    values ``value_of`` maps to ``None`` (listed, with ``unknown_hint``), an image without CRS, or
    polygons that miss the image."""
    from osgeo import ogr
    from rasterio.features import rasterize
    from rasterio.warp import transform_geom

    if img.crs is None:
        raise LandcoverError(f"image {img.name} has no CRS: polygons can only be burnt onto a georeferenced image")
    source = ogr.Open(str(path))
    if source is None:
        raise LandcoverError(f"labels {path} cannot be read as a vector file (GeoPackage, Shapefile, GeoJSON…)")
    layer = source.GetLayer(0)
    definition = layer.GetLayerDefn()
    names = [definition.GetFieldDefn(i).GetName() for i in range(definition.GetFieldCount())]
    if field not in names:
        raise LandcoverError(f"polygons {path} have no field '{field}' (fields: {', '.join(names)}): "
                             "choose one of them as the label field")
    srs = layer.GetSpatialRef()
    crs = srs.ExportToWkt() if srs is not None else None
    shapes, unknown = [], set()
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
        shape = json.loads(geometry.ExportToJson())
        shapes.append((transform_geom(crs, img.crs, shape) if crs else shape, burnt))
    source = None
    if unknown:
        raise LandcoverError(f"polygons {path}: values {sorted(unknown)} of field '{field}' are not known: {unknown_hint}")
    if not shapes:
        raise LandcoverError(f"polygons {path} hold no polygon with a value in field '{field}'")
    burnt = rasterize(shapes, out_shape=(img.height, img.width), transform=img.transform, fill=fill, dtype="uint8")
    if (burnt == fill).all() and not any(v == fill for _, v in shapes):
        raise LandcoverError(f"polygons {path} do not overlap image {img.name}: pair each image with the polygons that cover it")
    return burnt
