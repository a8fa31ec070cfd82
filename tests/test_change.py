"""landcover change: coding, legend matching, alignment, confidence filter, outputs and one-line errors,
on small hand-made rasters (fast); the real-imagery tests are in test_change_real.py."""
import csv
import json
from pathlib import Path

import numpy as np
import pytest
from osgeo import gdal, osr

from landcover_plugin.change import (
    DEFAULT_MIN_CONFIDENCE,
    ChangeParams,
    change,
    coding,
    common_legend,
    parse_class_mapping,
)
from landcover_plugin.cli import build_parser, main
from landcover_plugin.errors import Cancelled, LandcoverError
from landcover_plugin.feedback import Feedback
from tests.fixtures import dominant_image, make_raster

CLASSES = {1: "built", 2: "water", 5: "trees"}
COLORS = {1: (200, 0, 0), 2: (0, 0, 200), 5: (0, 150, 0)}


def classes_raster(path, data, classes=None, res=1.0, origin=(700000.0, 6600000.0), epsg=2154, nodata=255,
                   colors=True, georef=True):
    """A Landcover-like class raster: uint8, LANDCOVER_CLASSES tag, colour table, nodata 255."""
    data = np.asarray(data, np.uint8)
    ds = gdal.GetDriverByName("GTiff").Create(str(path), data.shape[1], data.shape[0], 1, gdal.GDT_Byte)
    if georef:
        ds.SetGeoTransform((origin[0], res, 0, origin[1], 0, -res))
        srs = osr.SpatialReference()
        srs.ImportFromEPSG(epsg)
        ds.SetProjection(srs.ExportToWkt())
    ds.SetMetadataItem("LANDCOVER_CLASSES", json.dumps({str(k): v for k, v in (classes or CLASSES).items()}))
    band = ds.GetRasterBand(1)
    band.SetNoDataValue(nodata)
    if colors:
        table = gdal.ColorTable()
        for v, c in COLORS.items():
            table.SetColorEntry(v, (*c, 255))
        band.SetColorTable(table)
    band.WriteArray(data)
    ds = None
    return Path(path)


def confidence_raster(path, data, res=1.0, origin=(700000.0, 6600000.0), georef=True):
    data = np.asarray(data, np.float32)
    ds = gdal.GetDriverByName("GTiff").Create(str(path), data.shape[1], data.shape[0], 1, gdal.GDT_Float32)
    if georef:
        ds.SetGeoTransform((origin[0], res, 0, origin[1], 0, -res))
        srs = osr.SpatialReference()
        srs.ImportFromEPSG(2154)
        ds.SetProjection(srs.ExportToWkt())
    ds.GetRasterBand(1).SetNoDataValue(-1)
    ds.GetRasterBand(1).WriteArray(data)
    ds = None
    return Path(path)


def read(path, band=1):
    ds = gdal.Open(str(path))
    return ds.GetRasterBand(band).ReadAsArray()


BEFORE = [[1, 1, 2, 2, 5],
          [1, 1, 2, 2, 5],
          [5, 5, 5, 255, 5]]
AFTER = [[1, 5, 2, 2, 5],
         [2, 1, 2, 5, 1],
         [5, 5, 255, 1, 5]]


@pytest.fixture
def pair(tmp_path):
    return classes_raster(tmp_path / "before.tif", BEFORE), classes_raster(tmp_path / "after.tif", AFTER)


def test_codes_matrix_csv_style_and_metadata_by_hand(pair, tmp_path):
    out, table, report = tmp_path / "change.tif", tmp_path / "t.csv", tmp_path / "r.md"
    result = change(ChangeParams(*pair, out, transitions=table, report=report))
    k = 3  # built 0, water 1, trees 2 (BEFORE's value order)
    assert result.classes == ["built", "water", "trees"] and result.k == k
    code = read(out)
    expected = np.array([[0, 0 * k + 2 + 1, 0, 0, 0],
                         [0 * k + 1 + 1, 0, 0, 1 * k + 2 + 1, 2 * k + 0 + 1],
                         [0, 0, 255, 255, 0]])
    np.testing.assert_array_equal(code, expected)
    assert result.matrix == [[2, 1, 1], [0, 3, 1], [1, 0, 4]]
    assert (result.common_pixels, result.changed_pixels, result.uncertain_pixels) == (13, 4, 0)
    assert result.changed_percent == pytest.approx(400 / 13)
    ds = gdal.Open(str(out))
    band = ds.GetRasterBand(1)
    assert ds.RasterCount == 1 and band.DataType == gdal.GDT_Byte and band.GetNoDataValue() == 255
    assert ds.GetGeoTransform() == gdal.Open(str(pair[0])).GetGeoTransform()
    meta = ds.GetMetadata()
    assert json.loads(meta["LANDCOVER_CHANGE_CLASSES"]) == ["built", "water", "trees"]
    assert "from*K + to + 1" in meta["LANDCOVER_CHANGE_CODING"] and meta["LANDCOVER_CHANGE_K"] == "3"
    band.GetMetadata()
    names = band.GetCategoryNames()
    assert names[0] == "unchanged" and names[3] == "built → trees" and names[10] == "uncertain"
    del band, ds
    qml = out.with_suffix(".qml").read_text()
    labels = [line.split('label="')[1].split('"')[0] for line in qml.splitlines() if "paletteEntry" in line]
    assert sorted(labels) == sorted(["built → water", "built → trees", "water → trees", "trees → built"])
    assert "uncertain" not in qml  # only what is present
    rows = list(csv.DictReader(table.open()))
    assert rows[0].keys() == {"from", "to", "code", "pixels", "m2", "ha", "percent"}
    changed = {(r["from"], r["to"]): r for r in rows if r["code"] != "0"}
    assert changed[("water", "trees")]["code"] == "6" and changed[("water", "trees")]["m2"] == "1.00"
    assert float(changed[("water", "trees")]["percent"]) == pytest.approx(100 / 13, abs=1e-4)
    assert sum(int(r["pixels"]) for r in rows) == 13
    text = report.read_text()
    assert "| **built** | 0.0002 | 0.0001 | 0.0001 |" in text  # ha; 1 m² pixels
    assert "| trees | 0.0005 | 0.0006 | +0.0002 | −0.0001 | +0.0001 | +20.0 % |" in text
    assert report.with_suffix(".png").read_bytes()[:4] == b"\x89PNG"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["after.tif", "before.tif", "change.qml", "change.tif",
                                                         "change.tif.aux.xml", "r.md", "r.png", "t.csv"]


def test_gains_losses_net(pair, tmp_path):
    result = change(ChangeParams(*pair, tmp_path / "c.tif"))
    # rows BEFORE (built, water, trees) = 4, 4, 5; columns AFTER = 3, 4, 6
    assert result.class_changes() == [("built", 4, 3, 1, 2, -1), ("water", 4, 4, 1, 1, 0), ("trees", 5, 6, 2, 1, 1)]


def test_confidence_filter_marks_uncertain_and_keeps_agreement(pair, tmp_path):
    cb = np.full((3, 5), 0.9)
    ca = np.full((3, 5), 0.9)
    ca[0, 1] = 0.3  # built → trees, after unsure: uncertain
    cb[1, 0] = 0.5  # built → water, before unsure: uncertain
    cb[0, 0] = ca[0, 0] = 0.1  # built on both dates, unsure: still unchanged
    out = tmp_path / "c.tif"
    result = change(ChangeParams(*pair, out, confidence_before=confidence_raster(tmp_path / "cb.tif", cb),
                                 confidence_after=confidence_raster(tmp_path / "ca.tif", ca), to_class_band=True))
    k, uncertain = 3, coding(3)[2]
    assert uncertain == 10
    code = read(out)
    assert code[0, 1] == uncertain and code[1, 0] == uncertain and code[0, 0] == 0 and code[1, 3] == 1 * k + 2 + 1
    assert (result.changed_pixels, result.uncertain_pixels, result.common_pixels) == (2, 2, 13)
    assert result.matrix == [[2, 0, 0], [0, 3, 1], [1, 0, 4]]
    to = read(out, 2)  # band 2: k + 1 where changed to class k, 0 unchanged, K + 1 uncertain
    np.testing.assert_array_equal(to, [[0, 4, 0, 0, 0], [4, 0, 0, 3, 1], [0, 0, 255, 255, 0]])
    assert "left out as uncertain" in result.summary() and "15.38 %" in result.summary()
    assert all(d.confidence for d in result.dates)
    # the default filter is applied only where a date has confidence; the result says so
    half = change(ChangeParams(*pair, tmp_path / "half.tif", confidence_after=tmp_path / "ca.tif"))
    assert half.dates[0].confidence is None and "min-confidence not applied" in half.summary()
    assert any("BEFORE has no confidence raster" in w for w in half.warnings)
    assert half.uncertain_pixels == 1  # (0, 1): after unsure


def test_equal_class_sets_by_name_and_value_order(tmp_path):
    before = classes_raster(tmp_path / "b.tif", [[1, 2]], {1: "Built", 2: "Water"})
    after = classes_raster(tmp_path / "a.tif", [[7, 8]], {7: "water", 8: " built "})  # other values and case
    result = change(ChangeParams(before, after, tmp_path / "c.tif"))
    assert result.classes == ["Built", "Water"] and result.matrix == [[0, 1], [1, 0]]
    np.testing.assert_array_equal(read(tmp_path / "c.tif"), [[2, 3]])


def test_different_class_sets_need_a_mapping(tmp_path):
    before = classes_raster(tmp_path / "b.tif", [[6, 7, 10]], {6: "coniferous", 7: "deciduous", 10: "herbaceous"})
    after = classes_raster(tmp_path / "a.tif", [[1, 1, 2]], {1: "woodland", 2: "grass", 3: "sea"})
    out = tmp_path / "c.tif"
    with pytest.raises(LandcoverError) as err:
        change(ChangeParams(before, after, out))
    message = str(err.value)
    assert "\n" not in message and "only BEFORE has 'coniferous', 'deciduous', 'herbaceous'" in message
    assert "only AFTER has 'grass', 'sea', 'woodland'" in message and "--map-before/--map-after" in message
    assert not out.exists()
    result = change(ChangeParams(before, after, out, map_before="coniferous=woodland, 7=woodland, herbaceous=grass",
                                 map_after="sea=-"))
    assert result.classes == ["woodland", "grass"] and result.matrix == [[2, 0], [0, 1]]
    with pytest.raises(LandcoverError, match=r"--map-after names 'lake', which is not a class of AFTER"):
        change(ChangeParams(before, after, tmp_path / "d.tif", map_before="coniferous=woodland,7=woodland,herbaceous=grass",
                            map_after="lake=-"))


def test_mapping_syntax_and_left_out_class_is_nodata(tmp_path):
    assert parse_class_mapping("Coniferous = woodland ; 7=woodland") == {"coniferous": "woodland", "7": "woodland"}
    with pytest.raises(LandcoverError, match="must look like CLASS=COMMON"):
        parse_class_mapping("coniferous:woodland")
    legend = common_legend({1: ("a", "#ff0000"), 2: ("b", "#00ff00")}, {1: ("a", "#000000"), 2: ("b", "#000000")},
                           {"b": "-"}, {"b": "-"})
    assert legend.names == ["a"] and legend.lut_before[2] == 255 and legend.colors == ["#ff0000"]
    before = classes_raster(tmp_path / "b.tif", [[1, 2, 5]])
    after = classes_raster(tmp_path / "a.tif", [[1, 1, 5]])
    result = change(ChangeParams(before, after, tmp_path / "c.tif", map_before="water=-", map_after="2=-"))
    np.testing.assert_array_equal(read(tmp_path / "c.tif"), [[0, 255, 0]])
    assert result.common_pixels == 2 and result.classes == ["built", "trees"]


def test_common_extent_nodata_outside_and_pixel_size_warning(tmp_path):
    before = classes_raster(tmp_path / "b.tif", np.full((10, 10), 1))
    # AFTER: 3 m pixels, starting 4 m right and 3 m down of BEFORE's corner: covers columns 4..9, rows 3..9
    after = classes_raster(tmp_path / "a.tif", np.full((4, 4), 5), res=3.0, origin=(700004.0, 6599997.0))
    out = tmp_path / "c.tif"
    result = change(ChangeParams(before, after, out, report=tmp_path / "r.md"))
    ds = gdal.Open(str(out))
    assert (ds.RasterXSize, ds.RasterYSize) == (6, 7)
    assert ds.GetGeoTransform() == (700004.0, 1.0, 0.0, 6599997.0, 0.0, -1.0)
    assert (read(out) == 0 * 3 + 2 + 1).all()  # built (0) → trees (2)
    assert any("pixel sizes differ by more than 2×" in w for w in result.warnings)
    assert "Common extent: 6×7 px of BEFORE's 10×10 px grid (from column 4, row 3)" in result.summary()
    assert "pixel sizes differ" in (tmp_path / "r.md").read_text()
    # AFTER's nodata and outside AFTER's footprint (another CRS: a tilted footprint) are nodata
    after_nodata = classes_raster(tmp_path / "an.tif", [[5, 255], [5, 5]], res=5.0)
    change(ChangeParams(before, after_nodata, tmp_path / "n.tif"))
    code = read(tmp_path / "n.tif")
    assert (code[:5, 5:] == 255).all() and (code[:5, :5] == 3).all() and (code[5:] == 3).all()


def test_after_in_another_crs_is_warped_with_nearest(tmp_path):
    before = classes_raster(tmp_path / "b.tif", np.full((20, 20), 2), res=10.0)
    src = gdal.Open(str(before))
    warped = gdal.Warp(str(tmp_path / "a.tif"), src, dstSRS="EPSG:4326", resampleAlg="near")
    warped.SetMetadataItem("LANDCOVER_CLASSES", json.dumps({str(k): v for k, v in CLASSES.items()}))
    warped = src = None
    result = change(ChangeParams(before, tmp_path / "a.tif", tmp_path / "c.tif"))
    code = read(tmp_path / "c.tif")
    assert set(np.unique(code)) <= {0, 255} and (code == 0).mean() > 0.9  # unchanged where both are valid
    assert result.changed_pixels == 0


def test_no_overlap_and_rasters_that_are_not_class_rasters_fail_in_one_line(tmp_path):
    before = classes_raster(tmp_path / "b.tif", np.full((4, 4), 1))
    far = classes_raster(tmp_path / "far.tif", np.full((4, 4), 1), origin=(800000.0, 6600000.0))
    paletted = classes_raster(tmp_path / "pal.tif", np.full((4, 4), 1))
    ds = gdal.Open(str(paletted), gdal.GA_Update)
    ds.SetMetadata({})
    ds = None
    dem = make_raster(tmp_path / "dem.tif", np.random.default_rng(0).random((1, 4, 4)).astype(np.float32))
    cases = [(far, "do not overlap"), (paletted, "is a class raster without Landcover's LANDCOVER_CLASSES metadata"),
             (dem, "is neither a Landcover class raster (no LANDCOVER_CLASSES metadata) nor an image the model flair-rgb "
                   "reads (the input has 1 image band(s) but the model needs 3")]
    before_files = set(tmp_path.iterdir())
    for after, message in cases:
        with pytest.raises(LandcoverError) as err:
            change(ChangeParams(before, after, tmp_path / "out.tif", transitions=tmp_path / "t.csv", report=tmp_path / "r.md"))
        assert message in str(err.value) and "\n" not in str(err.value)
    assert set(tmp_path.iterdir()) == before_files  # no output, no temporary


def test_option_errors(pair, tmp_path):
    for params, message in [
        (ChangeParams(*pair, tmp_path / "c.png"), "must end in .tif or .tiff"),
        (ChangeParams(*pair, tmp_path / "c.tif", min_confidence=1.5), "--min-confidence must be a probability"),
        (ChangeParams(*pair, tmp_path / "c.tif", report=tmp_path / "c.md", transitions=tmp_path / "c.csv"), None),
        (ChangeParams(*pair, tmp_path / "c.tif", confidence_before=tmp_path / "none.tif"), "BEFORE confidence raster not found"),
        (ChangeParams(*pair, pair[0]), "is an input"),
        (ChangeParams(pair[0], tmp_path / "missing.tif", tmp_path / "c.tif"), "AFTER raster not found"),
        (ChangeParams(*pair, tmp_path / "c.tif", transitions=tmp_path / "c.qml"), "must end in .csv"),
        (ChangeParams(*pair, tmp_path / "c.tif", report=tmp_path / "c.md", transitions=None), None),
    ]:
        if message is None:
            change(params)  # fine: distinct names
            continue
        with pytest.raises(LandcoverError, match=message):
            change(params)
    wrong = confidence_raster(tmp_path / "wrong.tif", np.ones((2, 2)))
    with pytest.raises(LandcoverError, match="is not on the grid of BEFORE's class raster"):
        change(ChangeParams(*pair, tmp_path / "w.tif", confidence_before=wrong))


def test_sixteen_classes_need_uint16(tmp_path):
    classes = {v: f"class {v}" for v in range(16)}
    before = classes_raster(tmp_path / "b.tif", [[15, 0, 3]], classes, colors=False)
    after = classes_raster(tmp_path / "a.tif", [[0, 15, 255]], classes, colors=False)
    assert coding(15) == ("Byte", 255, 226) and coding(16) == ("UInt16", 65535, 257)
    result = change(ChangeParams(before, after, tmp_path / "c.tif"))
    ds = gdal.Open(str(tmp_path / "c.tif"))
    assert ds.GetRasterBand(1).DataType == gdal.GDT_UInt16 and ds.GetRasterBand(1).GetNoDataValue() == 65535
    np.testing.assert_array_equal(read(tmp_path / "c.tif"), [[15 * 16 + 0 + 1, 0 * 16 + 15 + 1, 65535]])
    assert result.data_type == "UInt16" and 'value="241"' in (tmp_path / "c.qml").read_text()


def test_not_georeferenced_same_size_is_pixel_for_pixel_else_refused(tmp_path):
    before = classes_raster(tmp_path / "b.tif", [[1, 2]], georef=False)
    after = classes_raster(tmp_path / "a.tif", [[1, 5]], georef=False)
    result = change(ChangeParams(before, after, tmp_path / "c.tif", transitions=tmp_path / "t.csv"))
    assert "Neither date is georeferenced" in result.summary() and result.pixel_area_m2 is None
    assert "1 px" in result.summary() and gdal.Open(str(tmp_path / "c.tif")).GetProjection() == ""
    assert list(csv.reader((tmp_path / "t.csv").open()))[2] == ["water", "trees", "6", "1", "", "", "50.0000"]
    other = classes_raster(tmp_path / "o.tif", [[1, 2, 2]], georef=False)
    with pytest.raises(LandcoverError, match="without georeferencing .* must have the same size"):
        change(ChangeParams(before, other, tmp_path / "d.tif"))


def two_images(tmp_path):
    """Two RGB images for the synthetic 'dominant band' model: AFTER has a 40×40 block changed."""
    data = dominant_image(150, 170)
    before = make_raster(tmp_path / "before_img.tif", data)
    changed = data.copy()
    changed[:, 50:90, 60:100] = changed[:, 50:90, 60:100][[1, 2, 0]]  # red → blue …: the class changes
    after = make_raster(tmp_path / "after_img.tif", changed)
    return before, after


def test_images_are_classified_in_a_temporary_folder_that_goes_away(tmp_path, model_path):
    before, after = two_images(tmp_path)
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    result = change(ChangeParams(before, after, out_dir / "c.tif", model=model_path, min_confidence=0))
    code = read(out_dir / "c.tif")
    assert (code[50:90, 60:100] != 0).all() and (code[:50] == 0).all() and (code[90:] == 0).all()
    assert [d.kind for d in result.dates] == ["image", "image"] and result.dates[0].model == "dominant-band"
    assert result.changed_pixels == 1600 and result.dates[0].confidence == "model"
    assert sorted(p.name for p in out_dir.iterdir()) == ["c.qml", "c.tif", "c.tif.aux.xml"]
    # one of each: a class raster BEFORE, an image AFTER
    classes = classes_raster(tmp_path / "cls.tif", np.zeros((150, 170)), {0: "red thing", 1: "green thing", 2: "blue thing"},
                             res=0.2, georef=True)
    mixed = change(ChangeParams(classes, after, out_dir / "m.tif", model=model_path))
    assert [d.kind for d in mixed.dates] == ["class raster", "image"]


def test_cancel_leaves_nothing(tmp_path, model_path):
    before, after = two_images(tmp_path)
    out_dir = tmp_path / "out"
    out_dir.mkdir()

    class CancelLater(Feedback):
        def __init__(self):
            self.calls = 0

        def is_cancelled(self):
            self.calls += 1
            return self.calls > 3

    with pytest.raises(Cancelled):
        change(ChangeParams(before, after, out_dir / "c.tif", model=model_path, report=out_dir / "r.md"), CancelLater())
    assert list(out_dir.iterdir()) == []


def test_confidence_option_for_an_image_is_refused(tmp_path, model_path):
    before, after = two_images(tmp_path)
    conf = confidence_raster(tmp_path / "conf.tif", np.ones((150, 170)))
    with pytest.raises(LandcoverError, match="--confidence-before is for a class raster"):
        change(ChangeParams(before, after, tmp_path / "c.tif", model=model_path, confidence_before=conf))


def test_cli(pair, tmp_path, capsys):
    out = tmp_path / "c.tif"
    assert main(["change", str(pair[0]), str(pair[1]), str(out), "--transitions", str(tmp_path / "t.csv"),
                 "--report", str(tmp_path / "r.md"), "--to-class-band", "-q"]) == 0
    assert out.exists() and gdal.Open(str(out)).RasterCount == 2 and (tmp_path / "r.png").exists()
    assert main(["change", str(pair[0]), str(pair[1]), str(tmp_path / "d.tif")]) == 0
    text = capsys.readouterr().out
    assert "Changed 4.0 m² = 30.77 % of the common area" in text and "trees → built (code 7)" in text
    far = classes_raster(tmp_path / "far.tif", np.full((4, 4), 1), origin=(900000.0, 6600000.0))
    assert main(["change", str(pair[0]), str(far), str(tmp_path / "e.tif")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("landcover: error: BEFORE") and "do not overlap" in err and "\n" not in err
    assert not (tmp_path / "e.tif").exists()


def test_cli_help_states_the_default_threshold():
    sub = next(a for a in build_parser()._actions if a.dest == "command").choices["change"]
    text = next(a.help for a in sub._actions if a.dest == "min_confidence")
    assert f"default {DEFAULT_MIN_CONFIDENCE:g}," in text


def test_an_image_larger_than_the_common_extent_is_classified_over_it_plus_one_tile(tmp_path, model_path):
    data = dominant_image(300, 320)
    before = make_raster(tmp_path / "big.tif", data)
    # AFTER: the same ground, 60×70 px from column 200, row 180 of BEFORE (0.2 m pixels)
    after = make_raster(tmp_path / "small.tif", data[:, 180:240, 200:270], origin=(700000 + 200 * 0.2, 6600000 - 180 * 0.2))
    messages = []

    class Log(Feedback):
        def info(self, message):
            messages.append(message)

    result = change(ChangeParams(before, after, tmp_path / "c.tif", model=model_path, min_confidence=0), Log())
    assert (result.width, result.height) == (70, 60) and result.changed_pixels == 0 and result.common_pixels == 4200
    # the synthetic model's tile is 64 px: BEFORE is read from column 136, row 116 to its right and bottom edges
    assert "BEFORE: classifying the common extent plus one tile: 184×184 px of 320×300" in messages
    assert not any(m.startswith("AFTER: classifying the common extent") for m in messages)
