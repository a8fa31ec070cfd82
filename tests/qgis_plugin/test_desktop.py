"""The packaged plugin in the real QGIS desktop under Xvfb: Live mode over a FLAIR zone, the UI's
responsiveness while it runs, screenshots, and a clean unload (driven by desktop_live.py)."""
import json
import os
import shutil
import subprocess
import sysconfig
import zipfile
from pathlib import Path

import pytest

from tests.fixtures import REPO, make_model

HERE = Path(__file__).resolve().parent
QGIS = shutil.which("qgis")
XVFB_RUN = shutil.which("xvfb-run")


def run_desktop(plugin_path, shots, work, scene, sample, timeout=600):
    """Run desktop_live.py in QGIS under Xvfb with a fresh profile; returns (report, process)."""
    extra = make_model(work / "extra-model.onnx")
    bad = work / "not-a-model.onnx"
    bad.write_bytes(b"this is not ONNX")
    env = dict(os.environ)
    env.update(QT_QPA_PLATFORM="xcb", QGIS_PLUGINPATH=str(plugin_path), XDG_RUNTIME_DIR=str(work),
               PYTHONPATH=sysconfig.get_paths()["purelib"], LANDCOVER_SCENE=str(scene), LANDCOVER_SAMPLE=str(sample),
               LANDCOVER_SHOTS=str(shots), LANDCOVER_REPORT=str(work / "report.json"),
               LANDCOVER_EXTRA_MODEL=str(extra), LANDCOVER_BAD_MODEL=str(bad))
    proc = subprocess.run([XVFB_RUN, "-a", "-s", "-screen 0 1920x1200x24", QGIS, "--profiles-path", str(work / "profiles"),
                           "--nologo", "--noversioncheck", "--code", str(HERE / "desktop_live.py")],
                          env=env, capture_output=True, text=True, timeout=timeout, cwd=work)
    report_path = work / "report.json"
    assert report_path.exists(), proc.stdout[-3000:] + proc.stderr[-3000:]
    return json.loads(report_path.read_text()), proc


@pytest.mark.skipif(QGIS is None or XVFB_RUN is None, reason="qgis or xvfb-run not found: make setup")
def test_packaged_plugin_live_mode_in_the_desktop(package, shared, tmp_path):
    plugins = tmp_path / "plugins"
    with zipfile.ZipFile(package) as z:
        z.extractall(plugins)
    shots = tmp_path / "shots"
    shots.mkdir()
    report, proc = run_desktop(plugins, shots, tmp_path, shared / "flair/zones/Z3_image.vrt",
                               REPO / "landcover_plugin/sample/flair_sample.tif")
    assert "error" not in report, report.get("error")
    assert report["loaded"] is True
    assert {"landcover:classify", "landcover:vectorize", "landcover:train"} <= set(report["provider_algorithms"])
    assert report["canvas_px"] == [1366, 768]
    views = {v["view"]: v for v in report["views"]}
    assert len(views) == 4 and all(v["seconds"] > 0 for v in views.values())
    assert "from cache" in views["pan back (cached)"]["status"] and "(0 tiles classified" in views["pan back (cached)"]["status"]
    assert "at the model's GSD, 0.2 m" in views["first view"]["status"]
    assert "canvas resolution" in views["zoomed out to the whole zone"]["status"]
    assert "CPUExecutionProvider" in views["first view"]["status"]
    # the UI thread was never blocked for 100 ms while live classification ran
    assert report["ui_ticks"] > 100 and report["ui_max_gap_ms"] < 100, report["ui_max_gap_ms"]
    assert report["superseded_views"] >= 1  # panning on during a view cancelled it...
    assert abs(report["shown_view_centre_y"] - report["requested_centre_y"]) < 300  # ...and the newest view shows
    assert "Landcover live" in report["live_layer_in_legend"] and report["live_layer_classes"] == 13
    assert report["live_legend_expanded"]  # the legend stays open as views replace the layer's file
    assert report["live_layer_opacity"] == pytest.approx(0.6)  # the dock's opacity survives new views
    assert report["settings_saved"] == {"live/model": "flair-rgb", "live/device": "auto"}  # in the profile
    off = report["after_live_off"]
    assert "Landcover live" not in off["layers"] and not off["temp_folder_exists"] and off["status"] == "Live: off"
    assert report["vector_features"] > 10
    assert report["bad_model_refused"].startswith("ModelError") and "not-a-model.onnx" in report["bad_model_refused"]
    assert report["added_model"] == {"name": "extra-model", "in_dock": True, "in_diagnostics": True}
    assert report["removed_model_in_dock"] is False
    assert report["before_unload"]["provider"] and report["before_unload"]["menu"] and report["before_unload"]["dock"]
    assert report["unloaded"] is True
    assert report["after_unload"] == {"provider": False, "menu": [], "toolbar": [], "dock": 0}
    assert report["messages"] == []  # no warning or error logged by QGIS or the plugin
    for name in ("live_before_pan.png", "live_after_pan.png", "live_dock.png", "diagnostics.png",
                 "model_manager.png", "toolbox_classify.png", "vectorized.png"):
        assert (shots / name).stat().st_size > 5000, name
