import numpy as np
import rasterio
from rasterio.enums import ColorInterp

from landcover_plugin.engine.reader import open_source
from landcover_plugin.engine.windows import PixelWindow as Window
from tests.fixtures import make_raster


def test_a_grey_model_reads_rgb_rasters_as_luma(tmp_path):
    rgb = np.random.default_rng(0).integers(0, 256, (3, 20, 30), dtype=np.uint8)
    path = make_raster(tmp_path / "rgb.tif", rgb)
    src = open_source(path, 1, ("gray",))
    try:
        assert src.luma and src.bands == (1, 2, 3) and "luma of bands 1,2,3" in src.band_note
        data, valid = src.read(Window(0, 0, 30, 20))
        expected = np.round(0.299 * rgb[0].astype(float) + 0.587 * rgb[1] + 0.114 * rgb[2])
        assert data.shape == (1, 20, 30) and data.dtype == np.uint8 and valid.all()
        np.testing.assert_array_equal(data[0], expected)
    finally:
        src.close()
    grey = make_raster(tmp_path / "grey.tif", rgb[:1], colorinterp=[ColorInterp.gray])
    src = open_source(grey, 1, ("gray",))
    try:
        assert not src.luma and src.bands == (1,)  # a grey band is used as it is
    finally:
        src.close()


def test_validity_comes_from_nodata_alpha_and_mask_bands_and_is_all_true_without_them(tmp_path):
    rgb = np.random.default_rng(1).integers(1, 256, (3, 20, 30), dtype=np.uint8)
    rgb[:, :5, :7] = 0
    alpha = np.where(np.arange(30) < 10, 0, 255).astype(np.uint8)[None, None].repeat(20, 1)
    plain = make_raster(tmp_path / "plain.tif", rgb)
    nodata = make_raster(tmp_path / "nodata.tif", rgb, nodata=0)
    rgba = make_raster(tmp_path / "rgba.tif", np.concatenate([rgb, alpha]),
                       colorinterp=[ColorInterp.red, ColorInterp.green, ColorInterp.blue, ColorInterp.alpha])
    masked = make_raster(tmp_path / "masked.tif", rgb)
    with rasterio.open(masked, "r+") as ds:
        ds.write_mask(np.where(np.arange(20)[:, None] < 15, 255, 0).astype(np.uint8).repeat(30, 1))
    expected = {plain: np.ones((20, 30), bool), nodata: (rgb != 0).any(0), rgba: alpha[0] > 0,
                masked: np.arange(20)[:, None].repeat(30, 1) < 15}
    for path, valid_expected in expected.items():
        src = open_source(path, 3, ("red", "green", "blue"))
        try:
            assert src.all_valid == (path == plain)
            _, valid = src.read(Window(0, 0, 30, 20))
            np.testing.assert_array_equal(valid, valid_expected, err_msg=str(path.name))
        finally:
            src.close()
