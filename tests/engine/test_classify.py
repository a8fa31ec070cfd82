import json

import numpy as np
import pytest
import rasterio
from rasterio.enums import ColorInterp

from landcover_plugin.engine.classify import ClassifyParams, classify
from landcover_plugin.errors import Cancelled, LandcoverError
from landcover_plugin.feedback import Feedback
from tests.fixtures import dominant_image, expected_classes, make_model, make_raster


def run(tmp_path, data, model, name="in.tif", **kw):
    raster_kw = {k: kw.pop(k) for k in ("crs", "nodata", "colorinterp", "driver", "res") if k in kw}
    src = make_raster(tmp_path / name, data, **raster_kw)
    out = tmp_path / "out.tif"
    result = classify(ClassifyParams(src, out, model, **kw))
    return src, out, result


def test_output_matches_the_model_and_keeps_the_grid(tmp_path, model_path):
    data = dominant_image()
    src, out, result = run(tmp_path, data, model_path, confidence=tmp_path / "conf.tif")
    with rasterio.open(src) as s, rasterio.open(out) as o:
        assert (o.width, o.height, o.crs, o.transform) == (s.width, s.height, s.crs, s.transform)
        assert o.dtypes == ("uint8",) and o.nodata == 255
        assert o.block_shapes == [(256, 256)] and o.compression.name == "deflate"
        np.testing.assert_array_equal(o.read(1), expected_classes(data))
        assert o.colormap(1)[1][:3] == (0, 255, 0)
        tags = o.tags()
        assert tags["LANDCOVER_PROVIDER"] == "CPUExecutionProvider"
        assert json.loads(tags["LANDCOVER_CLASSES"])["2"] == "blue thing"
        assert len(tags["LANDCOVER_MODEL_SHA256"]) == 64
    with rasterio.open(tmp_path / "conf.tif") as c:
        conf = c.read(1)
    logits = 10 * data.astype(np.float64) / 255
    softmax = np.exp(logits - logits.max(0)) / np.exp(logits - logits.max(0)).sum(0)
    np.testing.assert_allclose(conf, softmax.max(0), rtol=1e-5)
    assert (tmp_path / "out.qml").exists()
    assert result.valid_pixels == data.shape[1] * data.shape[2]
    assert sum(result.class_pixels.values()) == result.valid_pixels
    assert result.pixel_area_m2 == pytest.approx(0.04, rel=0.005)  # ground area: Lambert-93's scale factor there
    assert sorted(p.name for p in tmp_path.iterdir()) == ["conf.tif", "dominant.onnx", "in.tif", "out.qml", "out.tif", "out.tif.aux.xml"]


def test_alpha_zero_and_nodata_pixels_are_written_as_nodata(tmp_path, model_path):
    data = dominant_image()
    alpha = np.full((1, *data.shape[1:]), 255, np.uint8)
    alpha[0, :40, :50] = 0
    rgba = np.concatenate([data, alpha])
    ci = [ColorInterp.red, ColorInterp.green, ColorInterp.blue, ColorInterp.alpha]
    _, out, result = run(tmp_path, rgba, model_path, colorinterp=ci)
    with rasterio.open(out) as o:
        classes = o.read(1)
    assert (classes[:40, :50] == 255).all()
    assert (classes[40:, :] != 255).all()
    assert result.valid_pixels == classes.size - 40 * 50

    nod = data.copy()
    nod[:, 100:, 100:] = 0
    _, out, _ = run(tmp_path, nod, model_path, name="nod.tif", nodata=0)
    with rasterio.open(out) as o:
        classes = o.read(1)
    assert (classes[100:, 100:] == 255).all() and (classes[:100] != 255).all()


def test_uint16_and_float_inputs_are_scaled_by_the_models_value_range(tmp_path):
    model = make_model(tmp_path / "m16.onnx", props={"value_range": "[0, 65535]"})
    data = dominant_image(scale=257, dtype=np.uint16)
    _, out, _ = run(tmp_path, data, model)
    with rasterio.open(out) as o:
        np.testing.assert_array_equal(o.read(1), expected_classes(data))
    model = make_model(tmp_path / "mf.onnx", props={"value_range": "[0, 1]"})
    data = dominant_image(scale=1 / 255, dtype=np.float32)
    data[:, :5, :5] = np.nan
    _, out, _ = run(tmp_path, data, model, name="f.tif")
    with rasterio.open(out) as o:
        classes = o.read(1)
    assert (classes[:5, :5] == 255).all()
    np.testing.assert_array_equal(classes[5:], expected_classes(data)[5:])


def test_bands_are_picked_by_colour_interpretation_and_can_be_overridden(tmp_path, model_path):
    rgb = dominant_image()
    nir = np.full((1, *rgb.shape[1:]), 250, np.uint8)
    bgrn = np.concatenate([rgb[::-1], nir])  # stored as B, G, R, NIR
    ci = [ColorInterp.blue, ColorInterp.green, ColorInterp.red, ColorInterp.undefined]
    _, out, result = run(tmp_path, bgrn, model_path, colorinterp=ci)
    assert result.band_note.startswith("bands 3,2,1")
    with rasterio.open(out) as o:
        np.testing.assert_array_equal(o.read(1), expected_classes(rgb))
    _, out, result = run(tmp_path, bgrn, model_path, name="b.tif", colorinterp=ci, bands=(1, 2, 3))
    with rasterio.open(out) as o:
        np.testing.assert_array_equal(o.read(1), expected_classes(bgrn[:3]))


def test_raster_smaller_than_a_tile_and_odd_sizes(tmp_path, model_path):
    for shape in [(3, 1, 1), (3, 5, 7), (3, 65, 129)]:
        data = dominant_image(*shape[1:])
        _, out, _ = run(tmp_path, data, model_path, name=f"s{shape[1]}.tif")
        with rasterio.open(out) as o:
            np.testing.assert_array_equal(o.read(1), expected_classes(data))


def test_non_georeferenced_png_gives_output_without_crs_and_a_warning(tmp_path, model_path):
    data = dominant_image()
    _, out, result = run(tmp_path, data, model_path, name="photo.png", crs=None, driver="PNG")
    assert any("not georeferenced" in w for w in result.warnings)
    assert result.pixel_area_m2 is None
    with rasterio.open(out) as o:
        assert o.crs is None
        np.testing.assert_array_equal(o.read(1), expected_classes(data))


def test_a_gsd_far_coarser_than_the_models_is_refused_unless_resampling_is_off(tmp_path, model_path):
    with pytest.raises(LandcoverError, match=r"are 25× the model's GSD.*--gsd off"):
        run(tmp_path, dominant_image(), model_path, res=5.0)
    assert not (tmp_path / "out.tif").exists()
    data = dominant_image()
    _, out, result = run(tmp_path, data, model_path, name="off.tif", res=5.0, gsd="off")
    assert "resampling off" in result.resolution.note
    with rasterio.open(out) as o:
        np.testing.assert_array_equal(o.read(1), expected_classes(data))


def test_cancel_leaves_no_output(tmp_path, model_path):
    src = make_raster(tmp_path / "in.tif", dominant_image(300, 300))
    out = tmp_path / "out.tif"
    calls = []

    class Stop(Feedback):
        def is_cancelled(self):
            calls.append(1)
            return len(calls) > 2

    with pytest.raises(Cancelled):
        classify(ClassifyParams(src, out, model_path, batch_size=1), Stop())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dominant.onnx", "in.tif"]


def test_memory_is_bounded_by_width_not_height(tmp_path, model_path, monkeypatch):
    from landcover_plugin.engine import classify as mod

    sizes = []
    real = mod.RowAccumulator

    class Spy(real):
        def __init__(self, *a, **kw):
            super().__init__(*a, **kw)
            sizes.append(self.sums.shape)

    monkeypatch.setattr(mod, "RowAccumulator", Spy)
    run(tmp_path, dominant_image(600, 80), model_path)
    assert sizes == [(3, 64, 80)]  # one tile-high band of rows, not the raster's 600 rows


def test_bad_arguments(tmp_path, model_path):
    src = make_raster(tmp_path / "in.tif", dominant_image())
    with pytest.raises(LandcoverError, match="overlap"):
        classify(ClassifyParams(src, tmp_path / "o.tif", model_path, tile_size_px=32, overlap_px=32))
    with pytest.raises(LandcoverError, match="batch size"):
        classify(ClassifyParams(src, tmp_path / "o.tif", model_path, batch_size=0))
    with pytest.raises(LandcoverError, match="must end in .tif"):
        classify(ClassifyParams(src, tmp_path / "o.png", model_path))
    with pytest.raises(LandcoverError, match="band"):
        classify(ClassifyParams(src, tmp_path / "o.tif", model_path, bands=(1, 2, 9)))
    assert not (tmp_path / "o.tif").exists()


def test_a_deepness_model_runs_unchanged(tmp_path):
    """Only the keys the Deepness plugin writes: no schema_version, bands or colours."""
    deepness = {"model_type": json.dumps("Segmentor"), "class_names": json.dumps({0: "r", 1: "g", 2: "b"}),
                "resolution": json.dumps(20), "tiles_size": json.dumps(64), "tiles_overlap": json.dumps(25)}
    model = make_model(tmp_path / "deepness.onnx", props=deepness,
                       drop=("schema_version", "name", "input_bands", "class_colors", "value_range", "gsd",
                             "tile_size", "overlap", "output"))
    data = dominant_image()
    _, out, result = run(tmp_path, data, model)
    with rasterio.open(out) as o:
        np.testing.assert_array_equal(o.read(1), expected_classes(data))
        assert o.tags()["LANDCOVER_TILE_SIZE"] == "64" and o.tags()["LANDCOVER_OVERLAP"] == "16"
    assert result.class_pixels.keys() == {"r", "g", "b"}


def test_row_range_parts_are_identical_to_the_whole_run(tmp_path):
    """A model whose output depends on tile borders (5×5 zero-padded conv): the blended confidence of
    parts classified separately equals the whole-raster run exactly."""
    model = make_model(tmp_path / "k5.onnx", kernel=5)
    src = make_raster(tmp_path / "in.tif", dominant_image(230, 150))
    whole = classify(ClassifyParams(src, tmp_path / "whole.tif", model, confidence=tmp_path / "whole_c.tif"))
    parts = []
    for y0, y1 in [(0, 37), (37, 150), (150, 230)]:
        r = classify(ClassifyParams(src, tmp_path / f"p{y0}.tif", model, confidence=tmp_path / f"p{y0}_c.tif",
                                    row_range=(y0, y1)))
        with rasterio.open(r.output) as p, rasterio.open(tmp_path / f"p{y0}_c.tif") as c:
            assert p.transform.f == 6600000 - 0.2 * y0
            parts.append((p.read(1), c.read(1)))
    with rasterio.open(whole.output) as w, rasterio.open(tmp_path / "whole_c.tif") as c:
        np.testing.assert_array_equal(np.concatenate([p for p, _ in parts]), w.read(1))
        np.testing.assert_array_equal(np.concatenate([c for _, c in parts]), c.read(1))
        assert len(np.unique(c.read(1))) > 1000  # the conv mixes neighbours: blending really matters
    with pytest.raises(LandcoverError, match="row range"):
        classify(ClassifyParams(src, tmp_path / "bad.tif", model, row_range=(10, 999)))


def test_copy_window_keeps_bands_nodata_and_window_georeferencing(tmp_path):
    from rasterio.windows import Window

    from landcover_plugin.engine.reader import copy_window, open_raster
    from landcover_plugin.engine.windows import PixelWindow

    data = dominant_image(40, 50)
    src = make_raster(tmp_path / "in.tif", data, nodata=0)
    out = copy_window(open_raster(src), PixelWindow(10, 5, 20, 30), tmp_path / "w.tif")
    with rasterio.open(src) as s:
        expected_transform = s.window_transform(Window(10, 5, 20, 30))
    with rasterio.open(out) as o:
        assert (o.count, o.width, o.height, o.nodata) == (3, 20, 30, 0) and o.transform == expected_transform
        np.testing.assert_array_equal(o.read(), data[:, 5:35, 10:30])
    plain = make_raster(tmp_path / "p.png", data, crs=None, driver="PNG")
    with rasterio.open(copy_window(open_raster(plain), PixelWindow(0, 0, 8, 8), tmp_path / "p.tif")) as o:
        assert o.crs is None
