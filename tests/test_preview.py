import numpy as np
from PIL import Image

from landcover_plugin.engine.classify import ClassifyParams, classify
from landcover_plugin.preview import read_rgb, render
from tests.fixtures import dominant_image, make_raster


def test_preview_shows_input_and_class_map(tmp_path, model_path):
    src = make_raster(tmp_path / "in.tif", dominant_image(300, 400))
    result = classify(ClassifyParams(src, tmp_path / "classes.tif", model_path))
    png = render(src, result.output, tmp_path / "p.png")
    image = np.asarray(Image.open(png).convert("RGB"))
    assert image.shape[0] > 400 and image.shape[1] > 1000
    pure = lambda rgb: ((image == rgb).all(axis=2)).sum()  # noqa: E731
    assert pure((0, 255, 0)) > 1000 and pure((0, 0, 255)) > 1000  # class colours drawn unblended


def test_read_rgb_stretches_16_bit(tmp_path):
    src = make_raster(tmp_path / "u16.tif", dominant_image(50, 60, scale=200, dtype=np.uint16))
    rgb = read_rgb(src)
    assert rgb.shape == (50, 60, 3) and rgb.min() == 0 and rgb.max() == 1
