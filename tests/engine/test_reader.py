import numpy as np
from rasterio.enums import ColorInterp

from landcover_plugin.engine.reader import open_input
from landcover_plugin.engine.windows import Window
from tests.fixtures import make_raster


def test_a_grey_model_reads_rgb_rasters_as_luma(tmp_path):
    rgb = np.random.default_rng(0).integers(0, 256, (3, 20, 30), dtype=np.uint8)
    path = make_raster(tmp_path / "rgb.tif", rgb)
    src = open_input(path, 1, ("gray",))
    try:
        assert src.luma and src.bands == (1, 2, 3) and "luma of bands 1,2,3" in src.band_note
        data, valid = src.read(Window(0, 0, 30, 20))
        expected = np.round(0.299 * rgb[0].astype(float) + 0.587 * rgb[1] + 0.114 * rgb[2])
        assert data.shape == (1, 20, 30) and data.dtype == np.uint8 and valid.all()
        np.testing.assert_array_equal(data[0], expected)
    finally:
        src.close()
    grey = make_raster(tmp_path / "grey.tif", rgb[:1], colorinterp=[ColorInterp.gray])
    src = open_input(grey, 1, ("gray",))
    try:
        assert not src.luma and src.bands == (1,)  # a grey band is used as it is
    finally:
        src.close()
