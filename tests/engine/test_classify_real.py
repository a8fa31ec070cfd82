"""The bundled model on real imagery: tile-size and extent invariance, 4-band and non-georeferenced inputs."""
import shutil
import subprocess

import numpy as np
import pytest
import rasterio

from landcover_plugin.engine.classify import ClassifyParams, classify
from tests.fixtures import REPO, crop

LANDCOVER = REPO / ".venv" / "bin" / "landcover"


def test_tile_size_and_overlap_barely_change_the_map(tmp_path, shared):
    """Seam-free blending: two tilings (512 px / 128 px overlap and 384 px / 128 px) of a real 0.2 m
    FLAIR scene (a 1024 px validation crop of zone Z3, suburbs) agree on >= 99 % of pixels."""
    scene = crop(shared / "flair" / "zones" / "Z3_image.vrt", tmp_path / "z3.tif", 6656, 1024, 1024)
    a = classify(ClassifyParams(scene, tmp_path / "a.tif", tile_size_px=512, overlap_px=128, device="cpu"))
    b = classify(ClassifyParams(scene, tmp_path / "b.tif", tile_size_px=384, overlap_px=128, device="cpu"))
    with rasterio.open(a.output) as fa, rasterio.open(b.output) as fb:
        ca, cb = fa.read(1), fb.read(1)
    valid = ca != 255
    assert valid.all()
    agreement = (ca[valid] == cb[valid]).mean()
    print(f"tile-invariance agreement: {agreement:.4%}")
    assert agreement >= 0.99


@pytest.mark.skipif(not LANDCOVER.exists() or not shutil.which("gdal_translate"),
                    reason="needs the console script (`make setup`) and GDAL's gdal_translate")
def test_a_crop_of_a_scene_gets_the_same_classes_away_from_its_new_edges(tmp_path, shared):
    """Re-running over another extent: a 2048 px FLAIR scene (zone Z3) and a copy cut 173 px in from the
    left and 211 px from the top with ``gdal_translate -srcwin``, both classified by ``landcover
    classify`` with the defaults (1024 px windows, 256 px overlap), give the same classes more than one
    window inside the cut: the windows sit on the map's pixel lattice, not on each raster's corner (with
    windows stepping from the corner about 80 of those 0.69 M pixels differed, and 1.1 % of the pixels from
    128 px to one window inside the cut instead of 0.55 %)."""
    scene = crop(shared / "flair" / "zones" / "Z3_image.vrt", tmp_path / "scene.tif", 6144, 0, 2048)
    cut = tmp_path / "cut.tif"
    subprocess.run(["gdal_translate", "-q", "-srcwin", "173", "211", str(2048 - 173), str(2048 - 211), str(scene),
                    str(cut)], check=True)
    maps = []
    for raster in (scene, cut):
        out = tmp_path / f"{raster.stem}_classes.tif"
        proc = subprocess.run([str(LANDCOVER), "classify", str(raster), str(out)], capture_output=True, text=True)
        assert proc.returncode == 0, proc.stderr
        with rasterio.open(out) as dst:
            maps.append(dst.read(1))
    whole, part = maps[0][211:, 173:], maps[1]
    assert whole.shape == part.shape
    differ_inside = int((whole[1024:, 1024:] != part[1024:, 1024:]).sum())
    near_edges = (whole[128:1024, 128:] == part[128:1024, 128:]).mean()
    print(f"pixels that differ more than one window inside the cut: {differ_inside}; "
          f"agreement 128-1024 px from it: {near_edges:.4f}")
    assert differ_inside == 0  # the same windows, so the same classes
    assert near_edges > 0.99


@pytest.mark.skipif(not LANDCOVER.exists(), reason="the console script is installed by `make setup`")
def test_cli_on_4_band_naip_uses_the_models_band_order(tmp_path, shared):
    naip = shared / "scenes" / "naip_m_4709963_se_14_1_20200831_5m.tif"
    out = tmp_path / "naip.tif"
    refused = subprocess.run([str(LANDCOVER), "classify", str(naip), str(out)], capture_output=True, text=True)
    assert refused.returncode == 2 and "25× the model's GSD (0.2 m)" in refused.stderr and "--gsd off" in refused.stderr
    assert not out.exists()
    proc = subprocess.run([str(LANDCOVER), "classify", str(naip), str(out), "--gsd", "off"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    text = proc.stdout + proc.stderr
    assert "bands 1,2,3 (first 3; colour interpretation does not name the model's bands)" in text
    assert "resampling off (--gsd off)" in text
    with rasterio.open(naip) as src, rasterio.open(out) as dst:
        assert (dst.crs, dst.transform, dst.shape) == (src.crs, src.transform, src.shape)
        valid = src.dataset_mask() > 0
        classes = dst.read(1)
    np.testing.assert_array_equal(classes != 255, valid)


@pytest.mark.skipif(not LANDCOVER.exists(), reason="the console script is installed by `make setup`")
def test_cli_on_non_georeferenced_jpeg(tmp_path, shared):
    jpeg = shared / "dubai" / "tile_1" / "images" / "image_part_001.jpg"
    out = tmp_path / "dubai.tif"
    proc = subprocess.run([str(LANDCOVER), "classify", str(jpeg), str(out)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert "is not georeferenced" in proc.stdout + proc.stderr
    with rasterio.open(out) as dst:
        assert dst.crs is None and dst.shape == (644, 797)
        assert (dst.read(1) != 255).all()


@pytest.mark.parametrize("name", ["RGBA.byte.tif", "drone_fotomap_small.tif"])
def test_alpha_zero_of_real_rgba_rasters_becomes_nodata(tmp_path, shared, name):
    src_path = shared / "scenes" / name  # Landsat at 300 m: a model without GSD; the drone (0.02 m): resampled
    model = "dubai-rgb" if name == "RGBA.byte.tif" else None
    result = classify(ClassifyParams(src_path, tmp_path / "d.tif", model, device="cpu"))
    with rasterio.open(src_path) as src, rasterio.open(result.output) as dst:
        alpha = src.read(4)
        classes = dst.read(1)
    np.testing.assert_array_equal(classes == 255, alpha == 0)
