"""The adapt-the-model loop in the real QGIS desktop, driven as a user would (desktop_finetune.py): the dock,
uncertain areas, Correct… (class picker, polygons and brush strokes drawn with the mouse on the canvas),
Improve model in the background with the UI responsive, the live layer switching to the adapted model,
the model manager and Save as…, a cancelled round. Over a crop of FLAIR zone Z4 (0.2 m, Hérault) with
dubai-rgb (trained on satellite imagery of Dubai); screenshots go to docs/ with LANDCOVER_DOCS_SHOTS=1."""
import json
import os
import shutil
import subprocess
import sysconfig
from pathlib import Path

import numpy as np
import pytest
from osgeo import gdal

from tests.fixtures import REPO
from tests.qgis_plugin.test_desktop import QGIS, XVFB_RUN, fresh_profile, model_server

HERE = Path(__file__).resolve().parent
DUBAI = {1: 1, 2: 2, 4: 2, 12: 2, 3: 3, 5: 5, 6: 4, 7: 4, 8: 4, 9: 4, 10: 4, 11: 4}  # FLAIR codes → dubai-rgb's values
NAMES = {1: "building", 2: "land (unpaved)", 3: "road", 4: "vegetation", 5: "water"}
CROP = (768, 6144, 1024, 1024)  # col, row, width, height of Z4: building, land, road and vegetation, no water


def uniform_boxes(ref, value, size, count, rng, cols, taken, height=None):
    """Pixel boxes (row, col, h, w) where ``ref`` is ``value`` throughout, in columns ``cols``, not overlapping."""
    height = height or size
    ys, xs = np.nonzero(ref[:ref.shape[0] - height, cols[0]:cols[1] - size] == value)
    found = []
    for i in rng.permutation(len(ys))[:20000]:
        r, c = int(ys[i]), int(xs[i]) + cols[0]
        near = taken[max(0, r - 4):r + height + 4, max(0, c - 4):c + size + 4]
        if (ref[r:r + height, c:c + size] == value).all() and not near.any():
            taken[r:r + height, c:c + size] = True
            found.append((r, c, height, size))
            if len(found) == count:
                break
    return found


def areas_to_draw(ref, gt):
    """Corrections a user could draw in the left half: squares of 40 px (8 m) as polygons, and strokes along
    uniform 40 × 120 px bands as brush strokes, in map coordinates."""
    rng = np.random.default_rng(0)
    taken = np.zeros(ref.shape, bool)
    to_map = lambda r, c: (gt[0] + c * gt[1], gt[3] + r * gt[5])  # noqa: E731
    areas = []
    for value, name in NAMES.items():
        for r, c, h, w in uniform_boxes(ref, value, 40, 4, rng, (0, ref.shape[1] // 2), taken):
            ring = [to_map(r, c), to_map(r, c + w), to_map(r + h, c + w), to_map(r + h, c), to_map(r, c)]
            areas.append({"class": name, "mode": "polygon", "ring": ring})
    for value in (3, 4):
        for r, c, h, w in uniform_boxes(ref, value, 120, 1, rng, (0, ref.shape[1] // 2), taken, height=40):
            areas.append({"class": NAMES[value], "mode": "brush",
                          "points": [to_map(r + h / 2, c + 10 + i * (w - 20) / 8) for i in range(9)]})
    return areas


@pytest.mark.slow
@pytest.mark.skipif(QGIS is None or XVFB_RUN is None, reason="qgis or xvfb-run not found: make setup")
def test_the_adapt_the_model_loop_in_the_desktop(package, shared, tmp_path):
    pytest.importorskip("torch")
    raster = tmp_path / "z4_crop.tif"  # QGIS writes .aux.xml beside what it opens: a copy
    gdal.Translate(str(raster), str(shared / "flair/zones/Z4_image.vrt"), srcWin=list(CROP))
    mask = gdal.Translate("", str(shared / "flair/zones/Z4_mask.vrt"), srcWin=list(CROP), format="MEM")
    lut = np.full(256, 255, np.uint8)
    for code, value in DUBAI.items():
        lut[code] = value
    ref = lut[mask.GetRasterBand(1).ReadAsArray()]
    gt = mask.GetGeoTransform()
    reference = tmp_path / "reference.tif"
    out = gdal.GetDriverByName("GTiff").Create(str(reference), ref.shape[1], ref.shape[0], 1, gdal.GDT_Byte)
    out.SetGeoTransform(gt)
    out.SetProjection(mask.GetProjection())
    out.GetRasterBand(1).WriteArray(ref)
    out = mask = None
    areas = areas_to_draw(ref, gt)
    shots = REPO / "docs" if os.environ.get("LANDCOVER_DOCS_SHOTS") else tmp_path / "shots"
    shots.mkdir(exist_ok=True)
    profiles = fresh_profile(package, tmp_path / "qgis")
    env = dict(os.environ)
    env.pop("QGIS_PLUGINPATH", None)
    env.update(QT_QPA_PLATFORM="xcb", XDG_RUNTIME_DIR=str(tmp_path), PYTHONPATH=sysconfig.get_paths()["purelib"],
               LANDCOVER_REPORT=str(tmp_path / "report.json"), LANDCOVER_FAULTS=str(tmp_path / "faults.log"),
               LANDCOVER_SHOTS=str(shots), LANDCOVER_RASTER=str(raster), LANDCOVER_MODEL="dubai-rgb",
               LANDCOVER_AREAS=json.dumps(areas), LANDCOVER_MINUTES=os.environ.get("LANDCOVER_FINETUNE_MINUTES", "0.5"),
               LANDCOVER_REFERENCE=str(reference), LANDCOVER_WORK=str(tmp_path), LANDCOVER_TESTS=str(HERE))
    with model_server(Path(package).parent / "models") as url:
        env["LANDCOVER_MODELS_URL"] = url
        proc = subprocess.run([XVFB_RUN, "-a", "-s", "-screen 0 1600x1000x24", QGIS, "--profiles-path", str(profiles),
                               "--nologo", "--noversioncheck", "--code", str(HERE / "desktop_finetune.py")],
                              env=env, capture_output=True, text=True, timeout=900, cwd=tmp_path)
    report = json.loads((tmp_path / "report.json").read_text()) if (tmp_path / "report.json").exists() else {}
    faults = (tmp_path / "faults.log").read_text() if (tmp_path / "faults.log").exists() else ""
    assert report.get("alive"), (report.get("error"), report.get("views"), faults, proc.stderr[-2000:])
    assert report["plugin_loaded_at_startup"] and report["source_valid"]
    assert report["picker_classes"] == list(NAMES.values())  # the model's legend
    drawn = report["corrections"]
    assert drawn["features"] == len(areas) and drawn["classes"] == sorted({a["class"] for a in areas})
    assert "areas drawn" in drawn["counts_label"] and drawn["source"].endswith(".gpkg")
    assert report["improve_button_while_running"] == "Cancel" and "left" in report["progress_format"]
    assert report["after_model"] == "dubai-rgb-adapted-1"
    assert "Training pixels per class" in report["report_text"] and "Now using dubai-rgb-adapted-1" in report["report_text"]
    after = report["after"]
    assert "dubai-rgb-adapted-1" in after["status"] and after["changed_share"] > 0.01  # the live layer changed
    assert "of the view has a confidence below" in report["uncertain_before"]
    assert "dubai-rgb-adapted-1" in report["uncertain_after"]
    # the UI thread was never blocked for long while the model trained in the background
    ui = report["ui_while_training"]
    assert ui["ticks"] > 100 and ui["max_ms"] < 1000, ui
    assert report["manager_lists_adapted"] and report["saved_as"] == {"name": "my-town", "in_settings": True,
                                                                        "scratch_entry_gone": True, "file": True}
    assert "Cancelled" in report["cancelled"]["status"] and report["cancelled"]["files_unchanged"]
    assert not [m for m in report["messages"] if "Python" in m], report["messages"]
    for name in ("finetune_uncertain.png", "finetune_correct.png", "finetune_training.png", "finetune_improved.png",
                 "finetune_models.png"):
        assert (shots / name).stat().st_size > 5000, name
    (tmp_path / "desktop_report.json").write_text(json.dumps(report, indent=1))
    if os.environ.get("LANDCOVER_DOCS_SHOTS"):
        shutil.copy(tmp_path / "report.json", REPO / "docs" / "runs" / "finetune_desktop.json")
