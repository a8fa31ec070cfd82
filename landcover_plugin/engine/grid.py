"""Pixel grids: a size in pixels placed on the map by a GDAL geotransform in a CRS, and the ground size
of their pixels in metres.

Geotransforms are GDAL's six numbers ``(x0, a, b, y0, d, e)``: map ``x = x0 + a·col + b·row``,
``y = y0 + d·col + e·row`` for pixel corner coordinates (col, row) (GDAL raster data model).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

GeoTransform = tuple[float, float, float, float, float, float]
IDENTITY: GeoTransform = (0.0, 1.0, 0.0, 0.0, 0.0, 1.0)


@dataclass(frozen=True)
class Grid:
    """``width`` × ``height`` px; ``geotransform`` ``None`` when not georeferenced (pixel coordinates);
    ``crs_wkt`` ``None`` when the CRS is unknown."""

    width: int
    height: int
    geotransform: GeoTransform | None = None
    crs_wkt: str | None = None

    @property
    def georeferenced(self) -> bool:
        return self.geotransform is not None

    def lattice_origin(self) -> tuple[int, int]:
        """Index (col, row) of pixel (0, 0) on the CRS's pixel lattice: the map origin's x and y in
        pixel widths and heights (``x0 / a``, ``y0 / e``, rounded); (0, 0) when not georeferenced or
        rotated. Two grids with the same pixel size and a whole-pixel offset differ by that offset."""
        if self.geotransform is None:
            return 0, 0
        x0, a, b, y0, d, e = self.geotransform
        if b or d or not a or not e:
            return 0, 0
        return math.floor(x0 / a + 0.5 + 1e-6), math.floor(y0 / e + 0.5 + 1e-6)

    def to_map(self, col: float, row: float) -> tuple[float, float]:
        """Map coordinates of pixel position (col, row) (pixel coordinates when not georeferenced)."""
        x0, a, b, y0, d, e = self.geotransform or IDENTITY
        return x0 + a * col + b * row, y0 + d * col + e * row

    def to_pixel(self, x: float, y: float) -> tuple[float, float]:
        """Pixel position (col, row) of map coordinates (x, y)."""
        x0, a, b, y0, d, e = self.geotransform or IDENTITY
        det = a * e - b * d
        dx, dy = x - x0, y - y0
        return (e * dx - b * dy) / det, (a * dy - d * dx) / det

    def scaled(self, factor: float) -> Grid:
        """The grid whose pixels are ``factor`` times this one's (same origin, rotation and CRS),
        covering it: ``ceil(width / factor)`` × ``ceil(height / factor)`` px."""
        gt = None
        if self.geotransform is not None:
            x0, a, b, y0, d, e = self.geotransform
            gt = (x0, a * factor, b * factor, y0, d * factor, e * factor)
        return Grid(max(1, math.ceil(self.width / factor - 1e-9)), max(1, math.ceil(self.height / factor - 1e-9)),
                    gt, self.crs_wkt)

    def sub(self, col: int, row: int, width: int, height: int) -> Grid:
        """The part of the grid starting at pixel (col, row), ``width`` × ``height`` px."""
        gt = None
        if self.geotransform is not None:
            x, y = self.to_map(col, row)
            _, a, b, _, d, e = self.geotransform
            gt = (x, a, b, y, d, e)
        return Grid(width, height, gt, self.crs_wkt)

    def bounds(self) -> tuple[float, float, float, float]:
        """(xmin, ymin, xmax, ymax) of the grid's corners in map units."""
        xs, ys = zip(*(self.to_map(c, r) for c in (0, self.width) for r in (0, self.height)))
        return min(xs), min(ys), max(xs), max(ys)


WGS84_A, WGS84_INV_F = 6378137.0, 298.257223563


def _radii(lat: float, a: float, inv_f: float) -> tuple[float, float]:
    """Meridional (M) and prime-vertical (N) radii of curvature in m at geodetic latitude ``lat`` (rad)."""
    f = 1 / inv_f if inv_f else 0.0
    e2 = f * (2 - f)
    w = 1 - e2 * math.sin(lat) ** 2
    return a * (1 - e2) / w ** 1.5, a / math.sqrt(w)


def ground_pixel_size(grid: Grid) -> tuple[float, float] | None:
    """Ground length in metres of one pixel step along the grid's columns and rows, at the grid's
    centre; ``None`` when the grid is not georeferenced or has no CRS.

    Projected and geographic CRSs alike: the centre pixel's two edges are taken to the CRS's
    geographic coordinates and measured on its ellipsoid with the local radii of curvature (M along
    the meridian, N·cos φ along the parallel), so degrees, US/international feet, Web Mercator (where
    a map metre is about cos φ ground metres) and rotated geotransforms all come out in ground metres.
    A CRS that is neither geographic nor projected (engineering) is measured in its linear unit."""
    if grid.geotransform is None or not grid.crs_wkt:
        return None
    from osgeo import osr

    srs = osr.SpatialReference()
    if srs.ImportFromWkt(grid.crs_wkt) != 0:
        return None
    srs.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
    _, a, b, _, d, e = grid.geotransform
    cx, cy = grid.width / 2, grid.height / 2
    corners = [grid.to_map(cx, cy), grid.to_map(cx + 1, cy), grid.to_map(cx, cy + 1)]
    if srs.IsGeographic() or srs.IsProjected():
        geog = srs.CloneGeogCS()
        geog.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
        if srs.IsProjected():
            to_geog = osr.CoordinateTransformation(srs, geog)
            corners = [to_geog.TransformPoint(x, y)[:2] for x, y in corners]
        rad = geog.GetAngularUnits()  # radians per angular unit
        lat = corners[0][1] * rad
        m, n = _radii(lat, geog.GetSemiMajor() or WGS84_A, geog.GetInvFlattening())

        def metres(p: tuple[float, float], q: tuple[float, float]) -> float:
            dlon = (q[0] - p[0]) * rad
            dlat = (q[1] - p[1]) * rad
            return math.hypot(m * dlat, n * math.cos(lat) * dlon)

        return metres(corners[0], corners[1]), metres(corners[0], corners[2])
    unit = srs.GetLinearUnits() or 1.0
    return math.hypot(a, d) * unit, math.hypot(b, e) * unit


def gsd_m(grid: Grid) -> tuple[float | None, float | None]:
    """(GSD in m: the geometric mean of the two ground pixel sizes, pixel area in m²); (None, None)
    when unknown."""
    size = ground_pixel_size(grid)
    if size is None:
        return None, None
    return math.sqrt(size[0] * size[1]), size[0] * size[1]
