import numpy as np
import pytest
from osgeo import ogr

from landcover_plugin.engine.classify import ClassifyParams, classify
from landcover_plugin.errors import LandcoverError
from landcover_plugin.vectorize import VectorizeParams, vectorize
from tests.fixtures import make_raster


def blocks():
    """Three 20×20 px blocks (red, green, blue dominant) and one 2×2 px blue speck inside the red block."""
    data = np.full((3, 20, 60), 40, np.uint8)
    for k in range(3):
        data[k, :, 20 * k:20 * (k + 1)] = 200
    data[:, 5:7, 5:7] = 40
    data[2, 5:7, 5:7] = 200
    return data


@pytest.mark.parametrize("sieve,expected", [(0, 4), (8, 3)])
def test_polygons_with_names_areas_and_sieve(tmp_path, model_path, sieve, expected):
    src = make_raster(tmp_path / "in.tif", blocks(), res=1.0)
    classes = classify(ClassifyParams(src, tmp_path / "c.tif", model_path)).output
    result = vectorize(VectorizeParams(classes, tmp_path / "v.gpkg", sieve_px=sieve))
    assert result.polygons == expected
    ds = ogr.Open(str(tmp_path / "v.gpkg"))
    rows = sorted((f["class_name"], round(f["area_m2"])) for f in ds.GetLayer(0))
    ds = None
    if sieve:
        assert rows == [("blue thing", 400), ("green thing", 400), ("red thing", 400)]
    else:
        assert ("blue thing", 4) in rows and ("red thing", 396) in rows
    assert 'value="2" label="blue thing"' in (tmp_path / "v.qml").read_text()


def test_bad_input(tmp_path, model_path):
    plain = make_raster(tmp_path / "plain.tif", blocks())
    with pytest.raises(LandcoverError, match="has no valid LANDCOVER_CLASSES"):
        vectorize(VectorizeParams(plain, tmp_path / "v.gpkg"))
    with pytest.raises(LandcoverError, match=r"must end in .gpkg"):
        vectorize(VectorizeParams(plain, tmp_path / "v.shp"))
    geo = make_raster(tmp_path / "geo.tif", blocks(), crs="EPSG:4326", res=0.00001, origin=(3.0, 43.5))
    classes = classify(ClassifyParams(geo, tmp_path / "g.tif", model_path)).output
    with pytest.raises(LandcoverError, match="geographic CRS"):
        vectorize(VectorizeParams(classes, tmp_path / "g.gpkg"))
    assert not list(tmp_path.glob("*.gpkg"))
