"""landcover:change through qgis_process and inside QGIS (styled layer, model builder), on real FLAIR crops."""
import csv
import json
from pathlib import Path

import pytest
from osgeo import gdal

from tests.fixtures import crop
from tests.qgis_plugin.conftest import run_python_in_qgis, run_qgis_process

IN_QGIS = Path(__file__).with_name("change_in_qgis.py")
pytestmark = pytest.mark.shared_data


@pytest.fixture
def shifted_pair(shared, tmp_path):
    """A 512 px crop of FLAIR zone Z3 and the same place cropped 37 px right, 53 px down."""
    zone = shared / "flair" / "zones" / "Z3_image.vrt"
    return (crop(zone, tmp_path / "before.tif", 2048, 1024, 512),
            crop(zone, tmp_path / "after.tif", 2048 + 37, 1024 + 53, 512))


def test_qgis_process_change_writes_raster_style_csv_and_report(qgis_env, shifted_pair, tmp_path):
    out, table, report = tmp_path / "change.tif", tmp_path / "transitions.csv", tmp_path / "report.md"
    proc = run_qgis_process(qgis_env, "run", "landcover:change", "--json", "--", f"BEFORE={shifted_pair[0]}",
                            f"AFTER={shifted_pair[1]}", f"OUTPUT={out}", f"TRANSITIONS={table}", f"REPORT={report}",
                            "TO_CLASS_BAND=true", "DEVICE=1")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    results = json.loads(proc.stdout)["results"]
    assert results["OUTPUT"] == str(out) and results["TRANSITIONS"] == str(table) and results["REPORT"] == str(report)
    assert results["COMMON_PIXELS"] == (512 - 37) * (512 - 53)
    # ground area: Lambert-93's scale factor makes these 0.2 m map pixels 0.03997 m² on the ground here
    assert results["COMMON_HA"] == pytest.approx(475 * 459 * 0.04 / 1e4, rel=1e-3)
    ds = gdal.Open(str(out))
    assert (ds.RasterXSize, ds.RasterYSize, ds.RasterCount) == (475, 459, 2)
    code = ds.GetRasterBand(1).ReadAsArray()
    changed = ((code > 0) & (code <= 13 * 13)).sum()
    assert results["CHANGED_PIXELS"] == changed and results["CHANGED_PERCENT"] == pytest.approx(100 * changed / code.size)
    assert results["CHANGED_HA"] == pytest.approx(changed * 0.04 / 1e4, rel=1e-3)
    assert ds.GetMetadataItem("LANDCOVER_CHANGE_K") == "13"
    assert out.with_suffix(".qml").exists() and report.with_suffix(".png").exists()
    assert list(csv.reader(table.open()))[0] == ["from", "to", "code", "pixels", "m2", "ha", "percent"]
    assert "## Transition matrix" in report.read_text()


def test_qgis_process_change_refuses_bad_inputs_in_one_line(qgis_env, shared, tmp_path):
    tiles = shared / "flair" / "tiles"
    out = tmp_path / "change.tif"
    proc = run_qgis_process(qgis_env, "run", "landcover:change", "--", f"BEFORE={tiles / 'Z1_r00_c00_image.tif'}",
                            f"AFTER={tiles / 'Z6_r00_c00_image.tif'}", f"OUTPUT={out}")
    assert proc.returncode != 0
    assert "do not overlap" in proc.stdout + proc.stderr and "Traceback" not in proc.stdout + proc.stderr
    assert list(tmp_path.iterdir()) == []


def test_change_layer_legend_and_model_builder(qgis_env, shifted_pair, tmp_path):
    folder = tmp_path / "out"
    folder.mkdir()
    proc = run_python_in_qgis(qgis_env, IN_QGIS, *shifted_pair, folder)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert {"CHANGED_PERCENT", "UNCERTAIN_PERCENT", "CHANGED_HA", "COMMON_HA", "CHANGED_PIXELS"} <= set(report["outputs"])
    assert report["renderer"] == "paletted" and report["layer_name"] == "Land-cover change"
    legend = report["legend"]
    assert legend and all(" → " in label for _, label in legend)  # MIN_CONFIDENCE 0: no uncertain pixels
    assert len(legend) == len({v for v, _ in legend})
    ds = gdal.Open(str(folder / "styled_change.tif"))
    band = ds.GetRasterBand(1)
    band.GetMetadata()  # GDAL 3.6's GTiff loads the PAM sidecar (.aux.xml) lazily, on a metadata call
    names = band.GetCategoryNames() or []
    for value, label in legend:
        assert names[int(value)] == label
    # the model's second child got the first one's CHANGED_PERCENT (default MIN_CONFIDENCE there)
    code = gdal.Open(report["model_output"]).ReadAsArray()
    k2 = 13 * 13
    percent = 100.0 * ((code > 0) & (code <= k2)).sum() / (code != 255).sum()
    assert report["constant_value"] == pytest.approx(percent, abs=1e-3)
