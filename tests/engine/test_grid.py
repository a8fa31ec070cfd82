"""Ground pixel size from CRS and geotransform, against values computed by hand on the WGS84 ellipsoid."""
import math

import pytest
from osgeo import osr

from landcover_plugin.engine.grid import Grid, ground_pixel_size, gsd_m

A, F = 6378137.0, 1 / 298.257223563
E2 = F * (2 - F)


def wkt(epsg: int) -> str:
    srs = osr.SpatialReference()
    srs.ImportFromEPSG(epsg)
    return srs.ExportToWkt()


def radii(lat_deg: float) -> tuple[float, float]:
    """Meridional and prime-vertical radii of curvature (m) of WGS84 at a latitude."""
    s2 = math.sin(math.radians(lat_deg)) ** 2
    return A * (1 - E2) / (1 - E2 * s2) ** 1.5, A / math.sqrt(1 - E2 * s2)


def test_geographic_degrees_are_metres_at_the_rasters_latitude():
    # 1e-5° pixels centred on 45° N: east-west N·cos φ·Δλ, north-south M·Δφ (Δ in radians)
    grid = Grid(100, 100, (3.0 - 50e-5, 1e-5, 0.0, 45.0 + 50e-5, 0.0, -1e-5), wkt(4326))
    dx, dy = ground_pixel_size(grid)
    m, n = radii(45.0)
    d = math.radians(1e-5)
    assert dx == pytest.approx(n * math.cos(math.radians(45.0)) * d, rel=1e-4)  # 0.788 m
    assert dy == pytest.approx(m * d, rel=1e-4)  # 1.111 m
    gsd, area = gsd_m(grid)
    assert gsd == pytest.approx(math.sqrt(dx * dy)) and area == pytest.approx(dx * dy)


@pytest.mark.parametrize("lat", [0.0, 43.6, 60.0])
def test_a_web_mercator_metre_is_about_cos_latitude_ground_metres(lat):
    # Web Mercator: x = a·λ, so a map metre east-west is N·cos φ / a ground metres (cos φ on the sphere)
    y = A * math.log(math.tan(math.pi / 4 + math.radians(lat) / 2))
    grid = Grid(10, 10, (0.0, 1.0, 0.0, y + 5, 0.0, -1.0), wkt(3857))
    dx, dy = ground_pixel_size(grid)
    expected = radii(lat)[1] * math.cos(math.radians(lat)) / A
    assert dx == pytest.approx(expected, rel=1e-4)
    assert dy == pytest.approx(dx, rel=0.01)  # conformal: the same in both directions (to the ellipsoid's flattening)
    assert abs(dx - math.cos(math.radians(lat))) < 0.003 * max(1, lat / 10)


def test_us_survey_feet_and_rotated_geotransforms():
    # NAD83 / Maryland (ftUS), EPSG:2248: a 1 ft pixel is 0.3048006 m (to the projection's scale factor)
    feet = Grid(10, 10, (1_300_000.0, 1.0, 0.0, 500_000.0, 0.0, -1.0), wkt(2248))
    dx, dy = ground_pixel_size(feet)
    assert dx == pytest.approx(1200 / 3937, rel=2e-4) and dy == pytest.approx(1200 / 3937, rel=2e-4)
    # a 0.5 m grid rotated by 30° in UTM: still 0.5 m pixels (to UTM's scale factor near its central meridian)
    c, s = math.cos(math.radians(30)), math.sin(math.radians(30))
    rotated = Grid(10, 10, (500_000.0, 0.5 * c, -0.5 * s, 5_000_000.0, -0.5 * s, -0.5 * c), wkt(32633))
    dx, dy = ground_pixel_size(rotated)
    assert dx == pytest.approx(0.5 / 0.9996, rel=1e-4) and dy == pytest.approx(0.5 / 0.9996, rel=1e-4)


def test_no_crs_or_no_geotransform_is_unknown():
    assert ground_pixel_size(Grid(5, 5)) is None
    assert ground_pixel_size(Grid(5, 5, (0.0, 1.0, 0.0, 0.0, 0.0, -1.0), None)) is None
    assert gsd_m(Grid(5, 5)) == (None, None)


def test_scaled_and_sub_grids_keep_origin_and_rotation():
    grid = Grid(101, 51, (10.0, 0.2, 0.05, 20.0, 0.05, -0.2), wkt(32633))
    coarse = grid.scaled(2.0)
    assert (coarse.width, coarse.height) == (51, 26) and coarse.geotransform == (10.0, 0.4, 0.1, 20.0, 0.1, -0.4)
    assert grid.to_pixel(*grid.to_map(7.5, 3.25)) == pytest.approx((7.5, 3.25))
    part = grid.sub(10, 5, 20, 8)
    assert part.to_map(0, 0) == pytest.approx(grid.to_map(10, 5)) and (part.width, part.height) == (20, 8)


def test_lattice_origin_counts_pixels_from_the_crs_origin():
    grid = Grid(100, 80, (600020.2, 0.2, 0.0, 4800011.4, 0.0, -0.2))
    assert grid.lattice_origin() == (3_000_101, -24_000_057)
    assert grid.sub(173, 211, 10, 10).lattice_origin() == (3_000_101 + 173, -24_000_057 + 211)
    assert Grid(100, 80).lattice_origin() == (0, 0)
    assert Grid(100, 80, (10.0, 0.2, 0.01, 20.0, 0.01, -0.2)).lattice_origin() == (0, 0)  # rotated: no lattice
