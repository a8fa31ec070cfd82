"""GeoDeep 0.9.13 and Deepness 0.6.5 run each bundled model file unchanged and agree with Landcover.

The raster is a real 1280 × 1280 px crop of FLAIR zone Z3 (0.2 m, the flair-rgb model's GSD; the Dubai
models run on it out of domain, which makes agreement harder). 1280 = 512 + 2 × 384 px: Deepness'
and GeoDeep's tile grids (512 px, 25 % overlap, from the metadata) then fit the raster exactly
(Deepness pads a grid that does not fit with black beyond the raster, which changes its edge tiles).
Both peers paste tile centres without blending and GeoDeep adds a 5 px median filter, so a few
percent of ambiguous pixels differ; the issue asks for at least 95 %.
"""
import json
import os
import subprocess
import sys

import numpy as np
import onnxruntime as ort
import pytest
import rasterio
from rasterio.windows import Window

from landcover_plugin.engine.classify import ClassifyParams, classify
from landcover_plugin.model.adapter import read_metadata
from landcover_plugin.model.registry import bundled_models
from tests.fixtures import REPO, SHARED

pytestmark = [pytest.mark.shared_data, pytest.mark.slow]
MODELS = ("flair-rgb", "dubai-rgb", "dubai-grey")
DEEPNESS = REPO.parent / "shared" / "peers" / "deepness" / "src"
SIZE = 1280
AGREEMENT = 0.95


@pytest.fixture(scope="module")
def raster(tmp_path_factory):
    if not SHARED.is_dir():
        pytest.skip(f"real data folder {SHARED} is absent")
    path = tmp_path_factory.mktemp("peers") / "z3_1280.tif"
    with rasterio.open(SHARED / "flair" / "zones" / "Z3_image.vrt") as src:
        data = src.read(window=Window(0, 0, SIZE, SIZE))
        profile = {"driver": "GTiff", "width": SIZE, "height": SIZE, "count": src.count, "dtype": data.dtype,
                   "crs": src.crs, "transform": src.window_transform(Window(0, 0, SIZE, SIZE)), "tiled": True}
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data)
        dst.colorinterp = [rasterio.enums.ColorInterp.red, rasterio.enums.ColorInterp.green, rasterio.enums.ColorInterp.blue]
    return path


@pytest.fixture(scope="module")
def landcover(raster):
    out = {}
    for name in MODELS:
        path = raster.with_name(f"{name}.tif")
        classify(ClassifyParams(raster, path, name, device="cpu"))
        with rasterio.open(path) as src:
            out[name] = src.read(1)
    return out


def values(name):
    return np.asarray(read_metadata(bundled_models()[name]).class_values)


@pytest.mark.parametrize("name", MODELS)
def test_geodeep_runs_the_model_unchanged_and_agrees(name, raster, landcover):
    geodeep = pytest.importorskip("geodeep")
    mask = geodeep.segment(str(raster), str(bundled_models()[name]), output_type="raw")  # class indexes
    agreement = (values(name)[mask.astype(int)] == landcover[name]).mean()
    print(f"GeoDeep {name}: {agreement:.4f}")
    assert agreement >= AGREEMENT


@pytest.mark.parametrize("name", MODELS)
def test_deepness_runs_the_model_unchanged_and_agrees(name, raster, landcover, tmp_path):
    if not DEEPNESS.is_dir():
        pytest.skip(f"Deepness source {DEEPNESS} is absent")
    for module in ("qgis.core", "cv2"):
        pytest.importorskip(module)
    out = tmp_path / "deepness.npy"
    props = ort.InferenceSession(str(bundled_models()[name]), providers=["CPUExecutionProvider"]).get_modelmeta().custom_metadata_map
    args = {"deepness": str(DEEPNESS), "raster": str(raster), "model": str(bundled_models()[name]), "out": str(out),
            "resolution_cm": 20,  # the raster's; what a Deepness user sets for it
            "overlap_pct": json.loads(props["tiles_overlap"]), "threshold": json.loads(props["seg_thresh"])}
    proc = subprocess.run([sys.executable, str(REPO / "tests" / "interop" / "deepness_run.py"), json.dumps(args)],
                          env={**os.environ, "QT_QPA_PLATFORM": "offscreen"}, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = np.load(out)  # (outputs, H, W): class index + 1
    assert result.shape == (1, SIZE, SIZE) and result.min() >= 1
    agreement = (values(name)[result[0].astype(int) - 1] == landcover[name]).mean()
    print(f"Deepness {name}: {agreement:.4f}")
    assert agreement >= AGREEMENT
