import csv

import numpy as np
import pytest
import rasterio
from rasterio.crs import CRS
from rasterio.transform import from_origin
from rasterio.warp import transform_bounds

from landcover_plugin.chips import ChipParams, export_chips
from landcover_plugin.cli import main
from landcover_plugin.errors import LandcoverError
from tests.fixtures import dominant_image, make_raster


@pytest.fixture
def scene(tmp_path):
    image = make_raster(tmp_path / "image.tif", dominant_image(100, 120), res=1.0)
    label = np.ones((100, 120), np.uint8)
    label[:, 60:] = 2
    label[:50, :40] = 0  # unlabelled corner
    path = tmp_path / "label.tif"
    with rasterio.open(path, "w", driver="GTiff", width=120, height=100, count=1, dtype="uint8",
                       crs=CRS.from_string("EPSG:2154"), transform=from_origin(700000, 6600000, 1.0, 1.0)) as dst:
        dst.write(label, 1)
    return image, path


def test_chips_keep_grid_skip_unlabelled_and_count_classes(tmp_path, scene):
    result = export_chips(ChipParams(*scene, tmp_path / "chips", size_px=50, stride_px=40, max_ignore=0.5))
    out = tmp_path / "chips"
    with open(out / "manifest.csv") as fh:
        rows = list(csv.DictReader(fh))
    # grid: cols 0,40,70 × rows 0,40,50 = 9 chips; the one at (0,0) is 100 % unlabelled
    assert (result.chips, result.skipped, result.output) == (8, 1, out)
    first = rows[0]
    assert (first["col"], first["row"]) == ("40", "0")
    assert int(first["count_0"]) + int(first["count_1"]) + int(first["count_2"]) == 2500
    with rasterio.open(out / "images" / first["chip"]) as c, rasterio.open(scene[0]) as src:
        assert c.transform == src.window_transform(rasterio.windows.Window(40, 0, 50, 50)) and c.count == 3
        np.testing.assert_array_equal(c.read(), src.read(window=rasterio.windows.Window(40, 0, 50, 50)))
    with rasterio.open(out / "labels" / first["chip"]) as lab:
        assert lab.read(1)[0, 0] == 1 and lab.read(1)[0, 25] == 2  # image columns 40..59 are class 1, 60.. class 2


def test_label_on_another_crs_is_warped_onto_the_image_grid(tmp_path):
    image = make_raster(tmp_path / "image.tif", dominant_image(60, 60), res=1.0)
    with rasterio.open(image) as src:
        left, bottom, right, top = transform_bounds(src.crs, "EPSG:4326", *src.bounds)
    lab_path = tmp_path / "wgs84.tif"
    with rasterio.open(lab_path, "w", driver="GTiff", width=200, height=200, count=1, dtype="uint8", crs="EPSG:4326",
                       transform=from_origin(left - 0.001, top + 0.001, (right - left + 0.002) / 200,
                                             (top - bottom + 0.002) / 200)) as dst:
        dst.write(np.full((200, 200), 7, np.uint8), 1)
    export_chips(ChipParams(image, lab_path, tmp_path / "c", size_px=30))
    with rasterio.open(tmp_path / "c" / "labels" / "chip_000000.tif") as lab:
        assert (lab.read(1) == 7).all() and lab.crs == CRS.from_string("EPSG:2154")


def test_bad_input_leaves_nothing(tmp_path, scene, capsys):
    assert main(["chips", str(scene[0]), str(scene[1]), str(tmp_path / "x"), "--max-ignore", "0", "--ignore", "0,1,2"]) == 2
    assert "no chip kept" in capsys.readouterr().err
    assert not (tmp_path / "x").exists() and not (tmp_path / ".x.part").exists()
    (tmp_path / "exists").mkdir()
    with pytest.raises(LandcoverError, match="already exists"):
        export_chips(ChipParams(*scene, tmp_path / "exists"))
    with pytest.raises(LandcoverError, match="not found"):
        export_chips(ChipParams(tmp_path / "nope.tif", scene[1], tmp_path / "y"))


def test_chips_from_polygons_with_integer_codes(tmp_path, scene, capsys):
    from tests.fixtures import box_in, write_polygons

    image, _ = scene  # 120×100 px at 1 m from (700000, 6600000)
    gpkg = write_polygons(tmp_path / "p.gpkg", 4326, [(box_in("EPSG:4326", 700000, 6599900, 700060, 6600000), 3),
                                                     (box_in("EPSG:4326", 700060, 6599950, 700120, 6600000), 4)])
    assert main(["chips", str(image), str(gpkg), str(tmp_path / "c"), "--size", "50", "--label-field", "code"]) == 0
    with open(tmp_path / "c" / "manifest.csv") as fh:
        rows = {(r["col"], r["row"]): r for r in csv.DictReader(fh)}
    # chips of 50 px at cols 0, 50, 70 and rows 0, 50; outside every polygon is 255 and counts as ignore, so
    # the lower right chips (80 % and 100 % outside) are skipped
    assert set(rows) == {("0", "0"), ("50", "0"), ("70", "0"), ("0", "50")}
    assert rows[("0", "0")]["count_3"] == "2500" and rows[("70", "0")]["count_4"] == "2500"
    assert (rows[("50", "0")]["count_3"], rows[("50", "0")]["count_4"]) == ("500", "2000")
    assert main(["chips", str(image), str(gpkg), str(tmp_path / "d")]) == 2
    assert "give the field that holds their codes (--label-field)" in capsys.readouterr().err
    assert not (tmp_path / "d").exists()
