"""landcover change on real imagery (../shared/data): no change between two shifted tilings of the same
FLAIR scene, a real change pasted into a FLAIR scene, and a greyscale vs RGB Dubai image with two
models on one legend. bench/change_threshold.py measures the same over more crops (README)."""
import numpy as np
import pytest
from osgeo import gdal

from landcover_plugin.change import DEFAULT_MIN_CONFIDENCE, ChangeParams, change
from landcover_plugin.cli import main
from landcover_plugin.engine.classify import ClassifyParams, classify
from landcover_plugin.errors import LandcoverError
from tests.fixtures import crop

pytestmark = pytest.mark.shared_data


def test_no_change_between_two_shifted_tilings_of_the_same_scene(shared, tmp_path):
    """Zone Z1 (brushwood and deciduous woods, the zone where a tile shift flips most pixels) and the
    same zone cropped 37 px right and 53 px down: the edges and their windows move, the ground does not.
    (The inner windows stay on the map's pixel lattice, so the two maps now differ on about 5 % of the
    common area, mostly within one window of the copy's cut edges; 5.5 % when every window moved.)"""
    zone = shared / "flair" / "zones" / "Z1_image.vrt"
    before = crop(zone, tmp_path / "before.tif", 1024, 256, 1536)
    after = crop(zone, tmp_path / "after.tif", 1024 + 37, 256 + 53, 1536)
    out = tmp_path / "change.tif"
    result = change(ChangeParams(before, after, out, report=tmp_path / "report.md"))
    print(result.summary())
    assert result.min_confidence == DEFAULT_MIN_CONFIDENCE
    assert (result.width, result.height) == (1536 - 37, 1536 - 53) and result.common_pixels == 1499 * 1483
    assert result.changed_percent <= 1.0
    # why the filter: without it every pixel whose two maps differ would be reported as change
    assert result.changed_percent + result.uncertain_percent > 4.0
    assert f"left out as uncertain (classes differ, confidence < {DEFAULT_MIN_CONFIDENCE:g}" in result.summary()


def test_real_change_pasted_into_a_scene_is_found_and_nothing_else(shared, tmp_path):
    """Zone Z6 (vineyards and farmland) with a 512 px block of zone Z2's woodland pasted in."""
    before = crop(shared / "flair" / "zones" / "Z6_image.vrt", tmp_path / "before.tif", 1024, 256, 1536)
    after = tmp_path / "after.tif"
    dst = gdal.GetDriverByName("GTiff").CreateCopy(str(after), gdal.Open(str(before)))
    wood = gdal.Open(str(shared / "flair" / "zones" / "Z2_image.vrt")).ReadAsArray(512, 1024, 512, 512)
    for b in range(3):
        dst.GetRasterBand(b + 1).WriteArray(wood[b], 512, 512)
    dst = None
    out = tmp_path / "change.tif"
    result = change(ChangeParams(before, after, out, transitions=tmp_path / "t.csv", to_class_band=True))
    print(result.summary())
    ds = gdal.Open(str(out))
    code, to = ds.ReadAsArray()
    block = np.zeros(code.shape, bool)
    block[512:1024, 512:1024] = True
    uncertain = result.k ** 2 + 1
    changed = (code > 0) & (code < uncertain)
    differ = changed | (code == uncertain)  # where the two single-date maps differ
    detection = changed[block].sum() / differ[block].sum()
    elsewhere = changed[~block].mean()
    print(f"block: maps differ on {differ[block].mean():.1%}, detected {detection:.1%}; change elsewhere {elsewhere:.2%}")
    assert differ[block].mean() > 0.9
    assert detection >= 0.80
    assert elsewhere <= 0.02
    top = max(result.transitions(changed_only=True), key=lambda t: t[3])
    assert top[1] == "deciduous"  # the woodland
    assert (to[changed] == result.classes.index("deciduous") + 1).mean() > 0.5


def test_greyscale_and_rgb_of_the_same_dubai_image_on_one_legend(shared, tmp_path):
    """A held-out Dubai image (tile 3) as 1-band luma, classified with dubai-grey (a class raster with its
    confidence), against the colour JPEG classified with dubai-rgb: not georeferenced, same size, so
    pixel for pixel; the legends match by name. The same scene: all change is the models disagreeing."""
    jpg = shared / "dubai" / "tile_3" / "images" / "image_part_005.jpg"
    rgb = gdal.Open(str(jpg)).ReadAsArray().astype(np.float64)
    luma = np.clip(np.round(0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2]), 0, 255).astype(np.uint8)
    grey = tmp_path / "grey.tif"
    ds = gdal.GetDriverByName("GTiff").Create(str(grey), luma.shape[1], luma.shape[0], 1, gdal.GDT_Byte)
    ds.GetRasterBand(1).WriteArray(luma)
    ds = None
    classes, conf = tmp_path / "grey_classes.tif", tmp_path / "grey_conf.tif"
    classify(ClassifyParams(grey, classes, "dubai-grey", confidence=conf))
    result = change(ChangeParams(classes, jpg, tmp_path / "change.tif", after_model="dubai-rgb", confidence_before=conf,
                                 report=tmp_path / "r.md"))
    print(result.summary())
    assert result.classes == ["building", "land (unpaved)", "road", "vegetation", "water"]
    assert [d.kind for d in result.dates] == ["class raster", "image"] and result.dates[1].model == "dubai-rgb"
    assert result.pixel_area_m2 is None and "Neither date is georeferenced" in result.summary()
    assert (result.width, result.height) == (682, 658) and result.common_pixels == 682 * 658
    assert result.changed_percent < 5.0
    # two legends merged by an explicit mapping: paved = building + road
    merged = change(ChangeParams(classes, jpg, tmp_path / "merged.tif", after_model="dubai-rgb", confidence_before=conf,
                                 map_before="building=paved,road=paved", map_after="1=paved,3=paved"))
    print(merged.summary())
    assert merged.classes == ["paved", "land (unpaved)", "vegetation", "water"]
    assert merged.changed_pixels <= result.changed_pixels


def test_bad_real_inputs_fail_in_one_line_without_output(shared, tmp_path, capsys):
    tiles = shared / "flair" / "tiles"
    cases = [(tiles / "Z1_r00_c00_image.tif", tiles / "Z6_r00_c00_image.tif", "do not overlap"),
             (tiles / "Z1_r00_c00_image.tif", tiles / "Z1_r00_c00_mask.tif",
              "is neither a Landcover class raster (no LANDCOVER_CLASSES metadata) nor an image the model flair-rgb reads")]
    for before, after, message in cases:
        out = tmp_path / "change.tif"
        assert main(["change", str(before), str(after), str(out), "--report", str(tmp_path / "r.md")]) == 2
        err = capsys.readouterr().err.strip()
        assert message in err and "\n" not in err
        assert list(tmp_path.iterdir()) == []
    with pytest.raises(LandcoverError, match="the two dates have different classes"):
        change(ChangeParams(tiles / "Z1_r00_c00_image.tif", tiles / "Z1_r00_c00_image.tif", tmp_path / "c.tif",
                            after_model="dubai-rgb"))
