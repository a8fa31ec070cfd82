"""The Processing algorithm landcover:classify through qgis_process and inside a QGIS application."""
import csv
import json
from pathlib import Path

import numpy as np
import pytest
import rasterio
from osgeo import gdal

from tests.qgis_plugin.conftest import run_python_in_qgis, run_qgis_process

IN_QGIS = Path(__file__).with_name("in_qgis.py")


def check_output(src_path, out_path):
    with rasterio.open(src_path) as src, rasterio.open(out_path) as dst:
        assert (dst.crs, dst.transform, dst.width, dst.height) == (src.crs, src.transform, src.width, src.height)
        assert dst.nodata == 255
        assert dst.colormap(1)[1][:3] == (0xdb, 0x0e, 0x9a)
        classes = dst.read(1)
        np.testing.assert_array_equal(classes == 255, src.dataset_mask() == 0)
    ds = gdal.Open(str(out_path))
    band = ds.GetRasterBand(1)
    band.GetMetadata()  # GDAL 3.6's GTiff loads the PAM sidecar (.aux.xml) lazily, on a metadata call
    names = band.GetCategoryNames()
    del band
    ds = None
    assert names[1] == "building" and names[13] == "other"
    assert Path(out_path).with_suffix(".qml").exists()


@pytest.mark.parametrize("name", ["drone_fotomap_small.tif", "RGBA.byte.tif"])
def test_qgis_process_on_rgba_scenes(qgis_env, shared, tmp_path, name):
    src = shared / "scenes" / name
    out = tmp_path / "classes.tif"
    areas = tmp_path / "areas.csv"
    # Landsat's 300 m pixels are 1500× the model's GSD: refused by default, classified as they are with RESAMPLE=1
    resample = ["RESAMPLE=1"] if name == "RGBA.byte.tif" else []
    proc = run_qgis_process(qgis_env, "run", "landcover:classify", "--", f"INPUT={src}", f"OUTPUT={out}",
                            f"CLASS_AREAS={areas}", *resample)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "CPUExecutionProvider" in proc.stdout
    check_output(src, out)
    assert areas.read_text().startswith("class,pixels,km2,percent\nbuilding,")


def test_qgis_process_json_on_the_21_mp_flair_mosaic(qgis_env, shared, tmp_path):
    src = shared / "flair" / "zones" / "Z3_image.vrt"
    out, conf = tmp_path / "z3.tif", tmp_path / "z3_conf.tif"
    proc = run_qgis_process(qgis_env, "run", "landcover:classify", "--json", "--", f"INPUT={src}", f"OUTPUT={out}",
                            f"CONFIDENCE={conf}", "DEVICE=1", "BATCH_SIZE=4")
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["results"] == {"OUTPUT": str(out), "CONFIDENCE": str(conf)}
    check_output(src, out)
    with rasterio.open(conf) as c:
        assert c.dtypes == ("float32",) and (c.width, c.height) == (8192, 2560)


def test_bad_input_is_a_processing_error_without_output(qgis_env, shared, tmp_path):
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"not onnx")
    out = tmp_path / "o.tif"
    proc = run_qgis_process(qgis_env, "run", "landcover:classify", "--",
                            f"INPUT={shared / 'scenes' / 'RGB.byte.tif'}", f"MODEL={junk}", f"OUTPUT={out}")
    assert proc.returncode != 0
    assert "not a valid ONNX model" in proc.stdout + proc.stderr
    assert list(tmp_path.iterdir()) == [junk]


def test_styling_post_processor_and_model_builder(qgis_env, shared, tmp_path):
    proc = run_python_in_qgis(qgis_env, IN_QGIS, shared / "scenes" / "drone_fotomap_small.tif", tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report["renderer"] == "paletted"
    assert report["legend"][0] == ["building", "#db0e9a"]
    assert report["provider_algorithms"] == ["landcover:change", "landcover:classify", "landcover:evaluate",
                                             "landcover:export_chips", "landcover:finetune", "landcover:train",
                                             "landcover:vectorize"]
    assert Path(report["model_output"]).exists()
    with rasterio.open(report["model_output"]) as dst:
        assert dst.count == 1 and dst.colormap(1)[13][:3] == (0, 0, 0)


def test_qgis_process_evaluate(qgis_env, tmp_path):
    from tests.test_evaluate import CLASSES, write

    pred = write(tmp_path / "pred.tif", np.array([[1, 2], [5, 5]]), tags={"LANDCOVER_CLASSES": json.dumps(CLASSES)})
    ref = write(tmp_path / "ref.tif", np.array([[1, 2], [5, 0]]))
    out = tmp_path / "scores.json"
    proc = run_qgis_process(qgis_env, "run", "landcover:evaluate", "--json", "--", f"PREDICTION={pred}",
                            f"REFERENCE={ref}", "IGNORE=0", f"JSON={out}", f"REPORT={tmp_path / 'r.md'}")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    results = json.loads(proc.stdout)["results"]
    assert results["OVERALL_ACCURACY"] == 1.0 and results["MIOU"] == 1.0
    assert json.loads(out.read_text())["scored_pixels"] == 3 and (tmp_path / "r.png").exists()
    bad = run_qgis_process(qgis_env, "run", "landcover:evaluate", "--", f"PREDICTION={pred}", f"REFERENCE={ref}",
                           f"JSON={tmp_path / 'bad.json'}")
    assert bad.returncode != 0 and "are neither prediction classes" in bad.stdout + bad.stderr


def test_qgis_process_export_chips_on_real_flair_pair(qgis_env, shared, tmp_path):
    tile = shared / "flair" / "tiles" / "Z3_r01_c11"
    out = tmp_path / "chips"
    proc = run_qgis_process(qgis_env, "run", "landcover:export_chips", "--json", "--", f"IMAGE={tile}_image.tif",
                            f"LABEL={tile}_mask.tif", "SIZE=128", "STRIDE=128", f"OUTPUT={out}")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert json.loads(proc.stdout)["results"]["CHIPS"] == 16
    assert len(list((out / "images").glob("*.tif"))) == 16 and (out / "manifest.csv").exists()


def test_qgis_process_export_chips_from_real_polygons(qgis_env, shared, tmp_path):
    """../shared/data/polygons_nb: partial hand-drawn polygons, codes 0-4 and 255 in field Quatreclasses."""
    folder = shared / "polygons_nb"
    out = tmp_path / "chips"
    proc = run_qgis_process(qgis_env, "run", "landcover:export_chips", "--json", "--",
                            f"IMAGE={folder / '23322E759967N_clipped_1m_1of2.tif'}",
                            f"POLYGONS={folder / 'BakerLake_2017_clipped.gpkg'}", "LABEL_FIELD=Quatreclasses",
                            "SIZE=64", "MAX_IGNORE=0.7", "IGNORE=255", f"OUTPUT={out}")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    chips = json.loads(proc.stdout)["results"]["CHIPS"]
    with open(out / "manifest.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert 0 < chips == len(rows) < 30 and all(float(r["labelled_fraction"]) >= 0.3 for r in rows)
    assert {"count_1", "count_2"} <= set(rows[0])  # forest and water polygons were burnt in
    neither = run_qgis_process(qgis_env, "run", "landcover:export_chips", "--", f"IMAGE={folder / '23322E759967N_clipped_1m_1of2.tif'}",
                               f"OUTPUT={tmp_path / 'none'}")
    assert neither.returncode != 0 and "either a label raster or label polygons" in neither.stdout + neither.stderr


def test_qgis_process_train_on_a_real_flair_pair(qgis_env, shared, tmp_path):
    full = json.loads((Path(__file__).resolve().parents[2] / "models" / "flair-rgb.train.json").read_text())
    tile = shared / "flair" / "tiles" / "Z3_r01_c11"
    config = tmp_path / "tiny.json"
    config.write_text(json.dumps(dict(full, pairs=[[f"{tile}_image.tif", f"{tile}_mask.tif"]], crop=128, batch_size=2,
                                      eval_every=2, val_fraction=0.25, tile_size=128, overlap=32)))
    out = tmp_path / "tiny.onnx"
    proc = run_qgis_process(qgis_env, "run", "landcover:train", "--json", "--", f"CONFIG={config}", "STEPS=2",
                            f"OUTPUT={out}")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    results = json.loads(proc.stdout)["results"]
    assert 0 <= results["VAL_MIOU"] <= 1 and out.exists() and out.with_suffix(".md").exists()
    assert (Path(results["RUN_DIR"]) / "metrics.csv").exists()


def test_qgis_process_vectorize(qgis_env, shared, tmp_path):
    classes = tmp_path / "classes.tif"
    run = run_qgis_process(qgis_env, "run", "landcover:classify", "--", f"INPUT={shared / 'scenes' / 'RGBA.byte.tif'}",
                           "MODEL=dubai-rgb", f"OUTPUT={classes}")
    assert run.returncode == 0, run.stderr
    out = tmp_path / "polygons.gpkg"
    proc = run_qgis_process(qgis_env, "run", "landcover:vectorize", "--json", "--", f"CLASSES={classes}", "SIEVE=4",
                            f"OUTPUT={out}")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert json.loads(proc.stdout)["results"]["POLYGONS"] > 0 and out.exists() and out.with_suffix(".qml").exists()


@pytest.mark.shared_data
@pytest.mark.parametrize("name", ["one_output_sigmoid_bsx512x512", "different_output_size_512_to_484",
                                  "two_outputs_softmax_bsx2x512x512", "detector"])
def test_deepness_models_in_processing_classify_or_fail_in_one_line(qgis_env, shared, tmp_path, name):
    """Deepness' test models through the Toolbox algorithm: the rank-3 one that crashed, the 512 → 484 one,
    a two-output one; a detector is refused with one line, without a traceback."""
    folder = shared / "deepness_models"
    model = folder / f"{name}.onnx"
    if name == "detector":
        from tests.fixtures import make_model

        model = make_model(tmp_path / "detector.onnx", props={"model_type": '"Detector"'})
    out = tmp_path / "o.tif"
    proc = run_qgis_process(qgis_env, "run", "landcover:classify", "--", f"INPUT={folder / 'dummy_fotomap_small.tif'}",
                            f"MODEL={model}", f"OUTPUT={out}")
    text = proc.stdout + proc.stderr
    assert "Traceback" not in text
    if name == "detector":
        assert proc.returncode != 0 and "is an object detector" in text and not out.exists()
    else:
        assert proc.returncode == 0, text
        with rasterio.open(out) as dst:
            assert set(np.unique(dst.read(1))) <= {0, 1}  # two classes, no nodata (all pixels valid)


@pytest.mark.shared_data
def test_model_manager_adds_every_deepness_model_and_refuses_others_in_one_line(qgis_env, shared, tmp_path):
    folder = tmp_path / "models"
    folder.mkdir()
    for path in (shared / "deepness_models").glob("*.onnx"):
        (folder / path.name).write_bytes(path.read_bytes())
    from tests.fixtures import make_model

    make_model(folder / "zz_detector.onnx", props={"model_type": '"Detector"'})
    proc = run_python_in_qgis(qgis_env, Path(__file__).with_name("manager_check.py"), folder)
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stdout + proc.stderr
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert len(report) == 9
    for name, result in report.items():
        if name == "zz_detector.onnx":
            assert result["verdict"].startswith("refused: ") and "is an object detector" in result["verdict"]
            assert "\n" not in result["verdict"] and result["page_error"]
        else:
            assert result == {"verdict": "added", "page_error": False}, name
