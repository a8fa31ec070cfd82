"""Classification at the model's GSD: the plan, resampled reads, probabilities resampled back before
the argmax, parts and live views equal to whole runs, nodata that never bleeds."""
import numpy as np
import pytest
import rasterio

from landcover_plugin.engine.classify import ClassifyParams, classify
from landcover_plugin.engine.live import LiveClassifier, TileCache, choose_level
from landcover_plugin.engine.reader import open_source
from landcover_plugin.engine.resample import GridResampler, plan_resolution, work_span
from landcover_plugin.errors import LandcoverError
from landcover_plugin.model.adapter import OnnxModel
from landcover_plugin.model.registry import resolve_model
from tests.fixtures import dominant_image, expected_classes, make_model, make_raster


def test_the_plan():
    assert plan_resolution(0.2, 0.2).factor == 1 and plan_resolution(0.215, 0.2).factor == 1  # within 10 %
    assert plan_resolution(0.1, 0.2).factor == 2 and "averaged" in plan_resolution(0.1, 0.2).note
    assert plan_resolution(0.4, 0.2).factor == 0.5 and "cubic" in plan_resolution(0.4, 0.2).note
    assert plan_resolution(0.4, 0.2, "off").factor == 1
    assert plan_resolution(0.4, 0.2, 0.2).factor == 1  # the input's real GSD, given because its metadata lies
    assert plan_resolution(None, 0.2).factor == 1 and "assumed" in plan_resolution(None, 0.2).note
    assert plan_resolution(5.0, None).factor == 1 and "states no GSD" in plan_resolution(5.0, None).note
    with pytest.raises(LandcoverError, match=r"1500× the model's GSD.*--gsd off"):
        plan_resolution(300.0, 0.2)
    with pytest.raises(LandcoverError, match=r"50× finer.*--gsd off"):
        plan_resolution(0.004, 0.2)


def test_bilinear_resampling_back_is_exact_on_linear_fields_and_skips_invalid_pixels():
    # work grid 10×8 with probabilities linear in x and y; output grid at half the pixel size (ratio 0.5)
    yy, xx = np.mgrid[0:8, 0:10].astype(np.float32)
    probs = np.stack([xx + 2 * yy, 100 - xx])
    weights = np.ones((8, 10), np.float32)
    weights[:, 6:] = 0  # invalid on the right
    cols, rows = (0, 20), (0, 16)
    resampler = GridResampler(0.5, cols, work_span(cols, 0.5, 10), rows, 8, 10)
    out = [block for y in (0, 3, 5) for block in resampler.feed(y, probs[:, y:y + {0: 3, 3: 2, 5: 3}[y]],
                                                                   weights[y:y + {0: 3, 3: 2, 5: 3}[y]])]
    assert [b[0] for b in out] and sum(b[1].shape[1] for b in out) == 16
    p = np.concatenate([b[1] for b in out], axis=1)
    valid = np.concatenate([b[2] for b in out])
    u = np.clip((np.arange(20) + 0.5) * 0.5 - 0.5, 0, 9)
    v = np.clip((np.arange(16) + 0.5) * 0.5 - 0.5, 0, 7)
    inner = u <= 5  # both neighbours valid
    np.testing.assert_allclose(p[0][:, inner], (u[None, inner] + 2 * v[:, None]), atol=1e-4)
    assert valid[:, u < 6].all()  # any valid neighbour: valid, from the valid ones only
    np.testing.assert_allclose(p[1][:, (u > 5) & (u < 6)], 100 - 5, atol=1e-4)  # only column 5 contributes
    assert not valid[:, u >= 6].any()


def fine_scene(tmp_path, res, nodata=None):
    """The dominant-band image with 20 px blocks at ``res`` m (the model: 0.2 m, 64 px tiles)."""
    data = np.kron(dominant_image(60, 80, seed=3)[:, ::10, ::10], np.ones((1, 20, 20))).astype(np.uint8)
    if nodata is not None:
        data[:, 30:70, 40:90] = nodata
    return make_raster(tmp_path / f"fine{res}.tif", data, res=res, nodata=nodata), data


def test_a_finer_input_is_classified_at_the_models_gsd_and_written_on_its_own_grid(tmp_path):
    model = make_model(tmp_path / "k3.onnx", kernel=3)
    src, data = fine_scene(tmp_path, 0.1)
    result = classify(ClassifyParams(src, tmp_path / "out.tif", model))
    assert result.resolution.factor == 2 and "resampled from 0.1 m" in result.resolution.note
    with rasterio.open(src) as s, rasterio.open(result.output) as o:
        assert (o.width, o.height, o.transform) == (s.width, s.height, s.transform)
        assert o.tags()["LANDCOVER_RESAMPLING_FACTOR"] == "2"  # 1.998 (Lambert-93's scale there) snapped to 2
        assert float(o.tags()["LANDCOVER_GSD_INPUT_M"]) == pytest.approx(0.1, rel=0.002)
        classes = o.read(1)
    agree = classes == expected_classes(data)
    assert agree.mean() > 0.97  # only along block edges can the half-resolution map differ
    model_grid = classify(ClassifyParams(src, tmp_path / "m.tif", model, output_resolution="model"))
    with rasterio.open(model_grid.output) as o:
        assert (o.width, o.height) == (80, 60) and o.transform.a == pytest.approx(0.2)


def test_resampling_disappears_when_the_factor_is_one(tmp_path):
    model = make_model(tmp_path / "k3.onnx", kernel=3)
    src, _ = fine_scene(tmp_path, 0.21)  # within 10 % of the model's 0.2 m
    auto = classify(ClassifyParams(src, tmp_path / "auto.tif", model, confidence=tmp_path / "auto_c.tif"))
    off = classify(ClassifyParams(src, tmp_path / "off.tif", model, confidence=tmp_path / "off_c.tif", gsd="off"))
    assert auto.resolution.factor == 1
    with rasterio.open(auto.output) as a, rasterio.open(off.output) as b:
        np.testing.assert_array_equal(a.read(1), b.read(1))
    with rasterio.open(tmp_path / "auto_c.tif") as a, rasterio.open(tmp_path / "off_c.tif") as b:
        np.testing.assert_array_equal(a.read(1), b.read(1))


def test_nodata_never_bleeds_into_valid_pixels(tmp_path):
    model = make_model(tmp_path / "m.onnx")
    src, data = fine_scene(tmp_path, 0.1, nodata=0)
    result = classify(ClassifyParams(src, tmp_path / "out.tif", model))
    with rasterio.open(result.output) as o:
        classes = o.read(1)
    invalid = (data == 0).all(axis=0)
    np.testing.assert_array_equal(classes == 255, invalid)  # every input nodata pixel, and no other
    assert (classes[~invalid] == expected_classes(data)[~invalid]).mean() > 0.97


def test_parts_of_a_resampled_run_equal_the_whole_run(tmp_path):
    model = make_model(tmp_path / "k5.onnx", kernel=5)
    src, _ = fine_scene(tmp_path, 0.1)
    whole = classify(ClassifyParams(src, tmp_path / "whole.tif", model, confidence=tmp_path / "whole_c.tif"))
    parts = []
    for y0, y1 in [(0, 37), (37, 90), (90, 120)]:
        classify(ClassifyParams(src, tmp_path / f"p{y0}.tif", model, confidence=tmp_path / f"p{y0}_c.tif",
                                row_range=(y0, y1)))
        with rasterio.open(tmp_path / f"p{y0}.tif") as p, rasterio.open(tmp_path / f"p{y0}_c.tif") as c:
            parts.append((p.read(1), c.read(1)))
    with rasterio.open(whole.output) as w, rasterio.open(tmp_path / "whole_c.tif") as c:
        np.testing.assert_array_equal(np.concatenate([p for p, _ in parts]), w.read(1))
        np.testing.assert_array_equal(np.concatenate([c for _, c in parts]), c.read(1))


def test_narrow_strips_give_the_whole_runs_pixels(tmp_path, monkeypatch):
    """Column strips (any raster wider than the blending budget allows) change nothing."""
    from landcover_plugin.engine import classify as engine

    model = make_model(tmp_path / "k5.onnx", kernel=5)
    src, _ = fine_scene(tmp_path, 0.1)
    for name, resampled in (("native", "off"), ("resampled", "auto")):
        monkeypatch.setattr(engine, "BLEND_BUDGET_MB", 1024)
        wide = classify(ClassifyParams(src, tmp_path / f"{name}_wide.tif", model, confidence=tmp_path / f"{name}_wc.tif",
                                       gsd=resampled))
        monkeypatch.setattr(engine, "strip_width", lambda *a: 37)  # several strips across 160 / 80 px
        narrow = classify(ClassifyParams(src, tmp_path / f"{name}_narrow.tif", model,
                                         confidence=tmp_path / f"{name}_nc.tif", gsd=resampled))
        monkeypatch.undo()
        with rasterio.open(wide.output) as a, rasterio.open(narrow.output) as b:
            np.testing.assert_array_equal(a.read(1), b.read(1))
        with rasterio.open(tmp_path / f"{name}_wc.tif") as a, rasterio.open(tmp_path / f"{name}_nc.tif") as b:
            np.testing.assert_array_equal(a.read(1), b.read(1))


def live_and_classified(src, model_path, tmp_path):
    """The live view of the whole raster at the model's GSD, and ``classify``'s output (input grid)."""
    with rasterio.open(classify(ClassifyParams(src, tmp_path / "out.tif", model_path)).output) as o:
        classes = o.read(1)
    model = OnnxModel(resolve_model(model_path))
    live = LiveClassifier(open_source(src, model.num_bands, model.meta.input_bands), model, TileCache(1 << 26), tile=128)
    try:
        level = choose_level(live.source.gsd_m, model.meta.gsd_m, 0.5)
        assert level.scale == 2
        with rasterio.open(src) as s:
            view = live.classify_view(s.bounds, level)
    finally:
        live.close()
    return view.classes, classes


def test_live_views_agree_with_the_classified_raster(tmp_path):
    """Synthetic 20 px blocks at 0.1 m: each live pixel (0.2 m) against the four classified input pixels
    it covers; only block edges may differ (a quarter of the pixels touch one)."""
    src, _ = fine_scene(tmp_path, 0.1)
    live, classes = live_and_classified(src, make_model(tmp_path / "k3.onnx", kernel=3), tmp_path)
    assert (np.kron(live, np.ones((2, 2), np.uint8)) == classes).mean() >= 0.95


@pytest.mark.shared_data
def test_live_and_classify_agree_on_a_real_raster_at_another_gsd(tmp_path, shared):
    """The same layer in live mode and through classify: a FLAIR crop resampled to 0.1 m (cubic) with the
    bundled model, each live pixel against the four classified input pixels it covers: >= 99 %."""
    from osgeo import gdal

    from tests.fixtures import crop

    native = crop(shared / "flair/zones/Z3_image.vrt", tmp_path / "native.tif", 6656, 1024, 512)
    fine = tmp_path / "fine.tif"
    gdal.Warp(str(fine), str(native), options=gdal.WarpOptions(xRes=0.1, yRes=0.1, resampleAlg="cubic"))
    live, classes = live_and_classified(fine, "flair-rgb", tmp_path)
    assert (np.kron(live, np.ones((2, 2), np.uint8)) == classes).mean() >= 0.99
