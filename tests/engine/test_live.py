import numpy as np
import pytest
import rasterio

from landcover_plugin.engine.classify import ClassifyParams, classify
from landcover_plugin.engine.live import Level, LiveClassifier, TileCache, choose_level, missing_blocks
from landcover_plugin.engine.reader import copy_window, open_source
from landcover_plugin.engine.windows import PixelWindow
from landcover_plugin.errors import Cancelled
from landcover_plugin.feedback import Feedback
from landcover_plugin.model.adapter import OnnxModel
from tests.fixtures import dominant_image, make_model, make_raster

NATIVE = Level(1.0, "native")


def test_choose_level_uses_the_model_gsd_until_zoomed_far_out():
    assert choose_level(0.2, 0.2, 0.5).scale == 1  # zoomed in: the raster's own grid
    assert choose_level(0.21, 0.2, 1.9).scale == 1  # within 10 %: no resampling
    assert choose_level(0.1, 0.2, 1.0).scale == 2  # model GSD twice the raster's: resampled
    assert "raster resampled" in choose_level(0.1, 0.2, 1.0).note
    far = choose_level(0.2, 0.2, 11.0)  # a screen pixel covers 11 raster pixels
    assert far.scale == 8 and "canvas resolution, 1.6 m" in far.note
    assert choose_level(None, 0.2, 3.0).scale == 2  # no GSD known: powers of two of the raster's grid


def test_missing_tiles_are_grouped_into_rectangles():
    assert missing_blocks({(0, 0), (1, 0), (0, 1), (1, 1)}) == [(0, 0, 2, 2)]
    # an L after a diagonal pan: a full-width top strip and a right-hand column
    l_shape = {(x, 0) for x in range(4)} | {(3, 1), (3, 2)}
    assert missing_blocks(l_shape) == [(0, 0, 4, 1), (3, 1, 4, 3)]
    assert missing_blocks({(0, 0), (2, 0)}) == [(0, 0, 1, 1), (2, 0, 3, 1)]


def test_tile_cache_is_bounded_and_least_recently_used_goes_first():
    cache = TileCache(max_bytes=3 * 100)
    for i in range(3):
        cache.put(("t", i), np.zeros(100, np.uint8))
    cache.get(("t", 0))  # now most recently used
    cache.put(("t", 3), np.zeros(100, np.uint8))
    assert cache.bytes == 300 and len(cache) == 3
    assert cache.get(("t", 1)) is None and cache.get(("t", 0)) is not None


@pytest.fixture
def scene(tmp_path):
    """A model whose output depends on tile borders (5×5 zero-padded conv), a 230×170 raster and the
    whole-raster run's classes."""
    model = make_model(tmp_path / "k5.onnx", kernel=5)
    src = make_raster(tmp_path / "in.tif", dominant_image(230, 170))
    classify(ClassifyParams(src, tmp_path / "whole.tif", model))
    with rasterio.open(tmp_path / "whole.tif") as w:
        whole = w.read(1)
    return src, OnnxModel(model), whole


def live_of(src, model, tile=40):
    return LiveClassifier(open_source(src, model.num_bands, model.meta.input_bands), model, TileCache(1 << 20), tile=tile)


def bounds_of(src, col0, row0, col1, row1):
    with rasterio.open(src) as ds:
        left, top = ds.transform * (col0, row0)
        right, bottom = ds.transform * (col1, row1)
    return left, bottom, right, top


def test_live_views_equal_the_whole_raster_run_and_pans_reuse_tiles(scene):
    src, model, whole = scene
    live = live_of(src, model)
    try:
        first = live.classify_view(bounds_of(src, 10, 15, 95, 70), NATIVE)
        assert first.classes.shape == (80, 120)  # the 40-px tiles the view touches
        np.testing.assert_array_equal(first.classes, whole[0:80, 0:120])
        assert (first.computed, first.cached) == (6, 0)
        panned = live.classify_view(bounds_of(src, 50, 60, 169, 229), NATIVE)  # to the raster's corner
        assert panned.grid.geotransform[0] == first.grid.geotransform[0] + 40 * 0.2 and panned.cached == 2
        np.testing.assert_array_equal(panned.classes, whole[40:230, 40:170])
        back = live.classify_view(bounds_of(src, 10, 15, 95, 70), NATIVE)
        assert back.computed == 0 and back.cached == 6
        np.testing.assert_array_equal(back.classes, first.classes)
        assert live.classify_view(bounds_of(src, 500, 500, 600, 600), NATIVE) is None  # off the raster
    finally:
        live.close()


def test_a_cancelled_view_keeps_its_finished_tiles(scene):
    src, model, whole = scene
    live = live_of(src, model)
    calls = []

    class Stop(Feedback):
        def is_cancelled(self):
            calls.append(1)
            return len(calls) > 9

    with pytest.raises(Cancelled):
        live.classify_view(bounds_of(src, 0, 0, 170, 230), NATIVE, Stop())
    kept = len(live.cache)
    assert 0 < kept < 30
    view = live.classify_view(bounds_of(src, 0, 0, 170, 230), NATIVE)
    assert view.cached == kept
    np.testing.assert_array_equal(view.classes, whole)
    live.close()


def test_a_coarser_level_classifies_the_resampled_raster(scene, tmp_path):
    src, model, _ = scene
    live = live_of(src, model)
    try:
        view = live.classify_view(bounds_of(src, 0, 0, 170, 230), Level(2.0, "zoomed out"))
        level = live.level_source(2.0)
        assert (level.width, level.height) == (85, 115) and level.grid.geotransform[1] == 0.4
        copy_window(level.ds, PixelWindow(0, 0, 85, 115), tmp_path / "level.tif")
    finally:
        live.close()
    classify(ClassifyParams(tmp_path / "level.tif", tmp_path / "level_classes.tif", model.path, gsd="off"))
    with rasterio.open(tmp_path / "level_classes.tif") as c:
        np.testing.assert_array_equal(view.classes, c.read(1))
        assert view.grid.geotransform == c.transform.to_gdal()
