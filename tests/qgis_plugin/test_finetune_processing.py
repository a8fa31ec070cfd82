"""landcover:finetune through qgis_process: the adapted model it writes is one landcover:classify runs; a bad
input is one line in QGIS' log and no file."""
import json

import numpy as np
import pytest
from osgeo import gdal

from tests.fixtures import box_in, make_raster, write_polygons
from tests.qgis_plugin.conftest import run_qgis_process

pytest.importorskip("torch")

X0, Y0 = 700000, 6600000


@pytest.fixture
def scene(tmp_path):
    img = np.zeros((3, 192, 192), np.uint8)
    img[:, :, :96] = np.array([30, 60, 140])[:, None, None]
    img[:, :, 96:] = np.array([60, 140, 50])[:, None, None]
    image = make_raster(tmp_path / "image.tif", img)
    features = [(box_in("EPSG:2154", X0 + 2 + 4 * i, Y0 - 30, X0 + 5 + 4 * i, Y0 - 20), "water") for i in range(4)]
    features += [(box_in("EPSG:2154", X0 + 22 + 4 * i, Y0 - 30, X0 + 25 + 4 * i, Y0 - 20), "vegetation") for i in range(4)]
    labels = write_polygons(tmp_path / "corrections.gpkg", 2154, features, field="class", kind=4)
    return image, labels


@pytest.mark.slow  # a whole fine-tuning run through qgis_process
def test_finetune_writes_a_model_that_classify_runs(qgis_env, tmp_path, scene):
    image, labels = scene
    model = tmp_path / "adapted.onnx"
    proc = run_qgis_process(qgis_env, "run", "landcover:finetune", "--json", "--", f"INPUT={image}", f"LABELS={labels}",
                            "MODEL=dubai-rgb", "STEPS=2", "HOLDOUT=0", f"OUTPUT={model}")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    results = json.loads(proc.stdout)["results"]
    assert results["OUTPUT"] == str(model) and results["STEPS_RUN"] == 2 and "Training pixels per class" in results["REPORT"]
    assert model.exists() and model.with_suffix(".md").exists()
    out = tmp_path / "classes.tif"
    proc = run_qgis_process(qgis_env, "run", "landcover:classify", "--", f"INPUT={image}", f"MODEL={model}", f"OUTPUT={out}")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    ds = gdal.Open(str(out))
    classes = ds.GetRasterBand(1).ReadAsArray()
    ds = None
    assert set(np.unique(classes)) <= {1, 2, 3, 4, 5}


def test_finetune_refuses_labels_off_the_image_in_one_line(qgis_env, tmp_path, scene):
    image, _ = scene
    far = write_polygons(tmp_path / "far.gpkg", 2154, [(box_in("EPSG:2154", 0, 0, 50, 50), "water")], field="class", kind=4)
    model = tmp_path / "never.onnx"
    proc = run_qgis_process(qgis_env, "run", "landcover:finetune", "--", f"INPUT={image}", f"LABELS={far}",
                            "MODEL=dubai-rgb", "STEPS=1", f"OUTPUT={model}")
    assert proc.returncode != 0
    assert "lie outside the image" in proc.stdout + proc.stderr and "Traceback" not in proc.stdout + proc.stderr
    assert not model.exists()
