"""The packaged plugin in the real QGIS desktop under Xvfb: Live mode over a FLAIR zone, the UI's
responsiveness while it runs, screenshots, and a clean unload (driven by desktop_live.py)."""
import contextlib
import functools
import http.server
import json
import os
import shutil
import subprocess
import sysconfig
import threading
import zipfile
from pathlib import Path

import pytest
from osgeo import gdal

from tests.fixtures import REPO, make_model

HERE = Path(__file__).resolve().parent
QGIS = shutil.which("qgis")
XVFB_RUN = shutil.which("xvfb-run")


def run_desktop(plugin_path, shots, work, scene, sample, timeout=600, **extra):
    """Run desktop_live.py in QGIS under Xvfb with a fresh profile; returns (report, process). ``extra``:
    more LANDCOVER_* variables (WEB, EXTENT, UNITS_PER_PX for a web layer)."""
    extra_model = make_model(work / "extra-model.onnx")
    bad = work / "not-a-model.onnx"
    bad.write_bytes(b"this is not ONNX")
    env = dict(os.environ)
    env.update(QT_QPA_PLATFORM="xcb", QGIS_PLUGINPATH=str(plugin_path), XDG_RUNTIME_DIR=str(work),
               PYTHONPATH=sysconfig.get_paths()["purelib"], LANDCOVER_SCENE=str(scene), LANDCOVER_SAMPLE=str(sample),
               LANDCOVER_SHOTS=str(shots), LANDCOVER_REPORT=str(work / "report.json"),
               LANDCOVER_EXTRA_MODEL=str(extra_model), LANDCOVER_BAD_MODEL=str(bad),
               **{f"LANDCOVER_{k.upper()}": str(v) for k, v in extra.items()})
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
    # live mode never took 100 ms of the UI thread's CPU at once (the tick gap, which a loaded machine's
    # scheduling inflates, is reported by bench/live_view.py)
    assert report["ui_slot_calls"] > 10 and report["ui_max_slot_cpu_ms"] < 100, report["ui_max_slot_cpu_ms"]
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
    assert report["before_unload"]["toolbar"] == ["Classify land cover…", "Live land cover", "Models…"]  # a toolbar of its own
    assert report["unloaded"] is True
    assert report["after_unload"] == {"provider": False, "menu": [], "toolbar": [], "dock": 0}
    assert report["messages"] == []  # no warning or error logged by QGIS or the plugin
    for name in ("live_before_pan.png", "live_after_pan.png", "live_dock.png", "diagnostics.png",
                 "model_manager.png", "toolbox_classify.png", "vectorized.png"):
        assert (shots / name).stat().st_size > 5000, name


def fresh_profile(package, root: Path) -> Path:
    """A QGIS profiles folder whose default profile has the zip's plugin installed and enabled, as
    *Install from ZIP* leaves it."""
    plugins = root / "profiles" / "default" / "python" / "plugins"
    plugins.mkdir(parents=True)
    with zipfile.ZipFile(package) as z:
        z.extractall(plugins)
    ini = root / "profiles" / "default" / "QGIS" / "QGIS3.ini"
    ini.parent.mkdir(parents=True)
    ini.write_text("[PythonPlugins]\nlandcover_plugin=true\n")
    return root


@contextlib.contextmanager
def model_server(folder: Path):
    """``make package``'s dist/models served on 127.0.0.1, as MODELS_URL would serve them: the models that
    are not in the zip are fetched from it on first use."""
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(folder))
    handler.log_message = lambda *a: None
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/"
    finally:
        httpd.shutdown()


def run_user_path(package, work: Path, timeout=420, **case) -> tuple[dict, str]:
    """Run desktop_user_path.py in QGIS under Xvfb over a fresh profile; returns (report, QGIS' output)."""
    profiles = fresh_profile(package, work / "qgis")
    env = dict(os.environ)
    env.pop("QGIS_PLUGINPATH", None)
    env.update(QT_QPA_PLATFORM="xcb", XDG_RUNTIME_DIR=str(work), PYTHONPATH=sysconfig.get_paths()["purelib"],
               LANDCOVER_REPORT=str(work / "report.json"), LANDCOVER_FAULTS=str(work / "faults.log"),
               LANDCOVER_SHOT=str(work / "live.png"), LANDCOVER_TESTS=str(HERE),
               **{f"LANDCOVER_{k.upper()}": str(v) for k, v in case.items()})
    with model_server(Path(package).parent / "models") as url:
        env["LANDCOVER_MODELS_URL"] = url
        proc = subprocess.run([XVFB_RUN, "-a", "-s", "-screen 0 1600x1000x24", QGIS, "--profiles-path", str(profiles),
                               "--nologo", "--noversioncheck", "--code", str(HERE / "desktop_user_path.py")],
                              env=env, capture_output=True, text=True, timeout=timeout, cwd=work)
    output = f"exit {proc.returncode}\n{(work / 'faults.log').read_text() if (work / 'faults.log').exists() else ''}" \
             f"\n{proc.stderr[-2000:]}"
    report = json.loads((work / "report.json").read_text()) if (work / "report.json").exists() else {}
    return report, output


def assert_user_path(report, output):
    assert report.get("alive"), (report.get("error"), report.get("steps"), output)
    assert "Fatal Python error" not in output, output
    assert report["plugin_loaded_at_startup"] and report["source_valid"] and report["dock_visible"]
    assert [v["view"] for v in report["views"]][:5] == ["first view", "pan east", "pan south", "zoom out", "zoom in"]
    assert report["after_live_off"]["live_layers"] == 0 and report["after_live_off"]["status"] == "Live: off"
    live = report["live_layer"]
    assert live["valid"] and live["renderer"] == "paletted" and live["classes"] >= 2
    assert live["legend_nodes"] >= live["classes"] and live["expanded"]  # a node per class (+ the band's title)
    assert not live["in_source_list"]  # the live layer is never offered as a source
    gone = report["after_source_removed"]
    assert gone["live_layers"] == 0 and not gone["live_checked"] and "source layer was removed" in gone["status"]
    assert not [m for m in report["messages"] if "Python" in m]  # no Python error
    if "service_down_status" not in report:
        assert report["messages"] == []  # and no warning from Landcover either


@pytest.mark.skipif(QGIS is None or XVFB_RUN is None, reason="qgis or xvfb-run not found: make setup")
@pytest.mark.parametrize("case", ["flair", "drone", "landsat"])
def test_live_mode_on_the_user_path(case, package, shared, tmp_path):
    """The zip in a fresh profile, the dock from the Raster menu, Live ticked in the dock: pans, zooms,
    Live off and on, the source layer removed while a view runs; QGIS stays up and the live layer has
    its legend. Over a copy of real rasters: a FLAIR zone crop, the RGBA drone ortho, the Landsat scene."""
    from osgeo import gdal

    raster = tmp_path / f"{case}.tif"  # QGIS writes .aux.xml beside what it opens: a copy
    if case == "flair":
        gdal.Translate(str(raster), str(shared / "flair/zones/Z3_image.vrt"), srcWin=[0, 0, 2048, 1536])
        model, fraction = "flair-rgb", 0.3
    elif case == "drone":
        shutil.copy(shared / "scenes/drone_fotomap_small.tif", raster)
        model, fraction = "flair-rgb", 0.8
    else:
        shutil.copy(shared / "scenes/RGBA.byte.tif", raster)
        model, fraction = "dubai-rgb", 0.5  # not in the zip: fetched when Live starts
    report, output = run_user_path(package, tmp_path, raster=raster, model=model, fraction=fraction)
    assert_user_path(report, output)
    if model == "dubai-rgb":
        fetched = list((tmp_path / "qgis/profiles/default/landcover/models").rglob("dubai-rgb.onnx"))
        assert fetched and fetched[0].read_bytes() == (REPO / "models/dubai-rgb.onnx").read_bytes()


@pytest.mark.skipif(QGIS is None or XVFB_RUN is None, reason="qgis or xvfb-run not found: make setup")
def test_live_mode_over_an_xyz_layer_cancels_a_held_view(package, shared, tmp_path):
    """An XYZ basemap served over HTTP on 127.0.0.1: the same user path, and a view the server holds until
    the next pan arrives, deterministically: that pan cancels it and its own view is what shows."""
    from tests.fixtures import crop
    from tests.web import TileServer, xyz_tiles, xyz_uri

    ortho = crop(shared / "flair/zones/Z3_image.vrt", tmp_path / "ortho.tif", 2048, 512, 1536)
    mercator = xyz_tiles(ortho, tmp_path / "tiles")
    ds = gdal.Open(str(mercator))
    x0, dx, _, y1, _, dy = ds.GetGeoTransform()
    extent = f"{x0},{y1 + ds.RasterYSize * dy},{x0 + ds.RasterXSize * dx},{y1}"
    ds = None
    with TileServer(tmp_path / "tiles") as server:
        report, output = run_user_path(package, tmp_path / "run", uri=xyz_uri(server.url), provider="wms",
                                       model="flair-rgb", fraction=0.3, extent=extent, gate=server.gate)
    assert_user_path(report, output)
    assert "rendered RGB" in report["views"][0]["status"]  # the dock says how the web layer's pixels are used
    assert "pan during a held view" in [v["view"] for v in report["views"]]
    assert report["shown_view_contains_last_pan_centre"]  # the held view was cancelled, the newest one shows


@pytest.mark.skipif(QGIS is None or XVFB_RUN is None, reason="qgis or xvfb-run not found: make setup")
def test_live_mode_over_a_wms_layer_survives_the_service_going_away(package, shared, tmp_path):
    """A WMS served by QGIS Server on 127.0.0.1: the user path; the server stops during a view (the dock
    shows the error) and comes back (the next view shows)."""
    from tests.fixtures import crop
    from tests.web import MAPSERVER, MapServer

    if MAPSERVER is None:
        pytest.skip("qgis_mapserver not found (qgis-server-bin, qgis-server-wms): make setup")
    ortho = crop(shared / "flair/zones/Z3_image.vrt", tmp_path / "ortho.tif", 4096, 512, 1536)
    (tmp_path / "server").mkdir(mode=0o700)
    with MapServer(ortho, tmp_path / "server") as server:
        ds = gdal.Open(str(ortho))
        x0, dx, _, y1, _, dy = ds.GetGeoTransform()
        extent = f"{x0},{y1 + ds.RasterYSize * dy},{x0 + ds.RasterXSize * dx},{y1}"
        ds = None
        report, output = run_user_path(package, tmp_path / "run", uri=server.uri, provider="wms", model="flair-rgb",
                                       fraction=0.3, extent=extent, down=server.down)
    assert_user_path(report, output)
    assert "could not deliver" in report["service_down_status"] and "try again" in report["service_down_status"]
    assert "Last view" in report["service_back_status"]
