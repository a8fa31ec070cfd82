"""Drives the real QGIS desktop (``qgis --code tests/qgis_plugin/desktop_live.py`` under Xvfb; see
test_desktop.py and ``make screenshots``) as a user would, and writes a JSON report.

Loads the Landcover plugin (from wherever QGIS_PLUGINPATH points: the test uses the unzipped
``make package`` zip in a clean profile), opens a FLAIR zone mosaic, sizes the map canvas to 1366×768,
opens the dock and switches Live on; measures the time from each view change to the finished class
layer (first view, a pan, the pan back, zoomed out) and, all the while, the UI event loop's latency
(a 10 ms timer: the longest gap between its ticks). Then takes screenshots (Live before and after the
pan, the dock, the Diagnostics dialog, the model manager, the classify dialog of the Toolbox, a
vectorized class layer), switches Live off, unloads the plugin and reports what was left behind and
every warning or error QGIS logged.

Environment: LANDCOVER_SCENE (raster), LANDCOVER_SAMPLE (small raster to classify and vectorize),
LANDCOVER_SHOTS (folder for PNGs), LANDCOVER_REPORT (JSON path).
"""
import json
import os
import time
import traceback
from pathlib import Path

import qgis.utils
from qgis.core import Qgis, QgsApplication, QgsProject, QgsRasterLayer, QgsRectangle, QgsSettings, QgsVectorLayer
from qgis.PyQt.QtCore import QTimer
from qgis.PyQt.QtWidgets import QDockWidget, QToolBar
from qgis.utils import iface

PLUGIN = "landcover_plugin"
SHOTS = Path(os.environ["LANDCOVER_SHOTS"])
REPORT = Path(os.environ["LANDCOVER_REPORT"])
report = {"views": [], "messages": [], "screenshots": []}
ticks = {"last": None, "max_gap_ms": 0.0, "count": 0, "on": False}


def logged(message, tag, level):
    if level >= Qgis.Warning:
        report["messages"].append(f"[{tag}] {message}")


QgsApplication.messageLog().messageReceived.connect(logged)


def tick():
    now = time.perf_counter()
    if ticks["on"] and ticks["last"] is not None:
        ticks["max_gap_ms"] = max(ticks["max_gap_ms"], (now - ticks["last"]) * 1000)
        ticks["count"] += 1
    ticks["last"] = now


probe = QTimer()
probe.setInterval(10)
probe.timeout.connect(tick)
slots = {"max_cpu_ms": 0.0, "calls": 0}


def timed(method):
    """Wrap a live controller method that runs on the UI thread: its CPU time (``thread_time``, which a
    busy machine's scheduling does not inflate) is what live mode costs the UI per call."""

    def wrapper(*args, **kwargs):
        started = time.thread_time()
        try:
            return method(*args, **kwargs)
        finally:
            slots["max_cpu_ms"] = max(slots["max_cpu_ms"], (time.thread_time() - started) * 1000)
            slots["calls"] += 1

    return wrapper


def shot(widget, name):
    path = SHOTS / name
    widget.grab().save(str(path))
    report["screenshots"].append(name)


def finish(code):
    probe.stop()
    REPORT.write_text(json.dumps(report, indent=1))
    QgsApplication.exit(code)


def run(steps):
    """Runs a generator of steps; it yields milliseconds to wait or "view" to wait for the next live
    result (at most 120 s)."""
    state = {}

    def step(*_):
        if "conn" in state:
            state.pop("watchdog").stop()
            controller.view_done.disconnect(state.pop("conn"))
        try:
            wait = next(steps)
        except StopIteration:
            return finish(0)
        except Exception:
            report["error"] = traceback.format_exc()
            return finish(1)
        if wait == "view":
            state["conn"] = step
            controller.view_done.connect(step)
            watchdog = QTimer()
            watchdog.setSingleShot(True)
            watchdog.timeout.connect(lambda: (report.__setitem__("error", "no live result within 120 s: "
                                                                   + plugin.dock.status.text()), finish(1)))
            watchdog.start(120_000)
            state["watchdog"] = watchdog
        else:
            QTimer.singleShot(int(wait), step)

    QTimer.singleShot(0, step)


def view_at(cx, cy, px):
    """A canvas extent centred on (cx, cy) with ``px`` map units per screen pixel."""
    w, h = canvas.width() * px / 2, canvas.height() * px / 2
    return QgsRectangle(cx - w, cy - h, cx + w, cy + h)


def steps():
    global controller, plugin
    report["loaded"] = qgis.utils.loadPlugin(PLUGIN) and qgis.utils.startPlugin(PLUGIN)
    plugin = qgis.utils.plugins[PLUGIN]
    report["provider_algorithms"] = sorted(a.id() for a in QgsApplication.processingRegistry().providerById("landcover").algorithms())
    window = iface.mainWindow()
    window.showMaximized()
    for dock in window.findChildren(QDockWidget):
        if dock.windowTitle() == "Browser":
            dock.hide()
    web = os.environ.get("LANDCOVER_WEB")  # "xyz" or "wms": LANDCOVER_SCENE is then a layer URI (provider wms)
    if web:
        scene = QgsRasterLayer(os.environ["LANDCOVER_SCENE"], f"{web.upper()} basemap (web service)", "wms")
    else:
        scene = QgsRasterLayer(os.environ["LANDCOVER_SCENE"], "FLAIR zone (RGB 0.2 m)")
    QgsProject.instance().addMapLayer(scene)
    plugin.live_action.trigger()  # the toolbar button opens the dock
    dock = plugin.dock
    controller = dock.controller
    for name in ("view_changed", "refresh", "task_finished", "show"):  # the UI-thread side of live mode
        setattr(controller, name, timed(getattr(controller, name)))
    controller.timer.timeout.disconnect()
    controller.timer.timeout.connect(controller.refresh)
    yield 1500
    # size the canvas to 1366×768 screen pixels
    window.resize(window.width() + 1366 - canvas.width(), window.height() + 768 - canvas.height())
    yield 1000
    report["canvas_px"] = [canvas.width(), canvas.height()]
    ext = scene.extent()
    if os.environ.get("LANDCOVER_EXTENT"):  # a web layer spans the world: the area its imagery covers
        ext = QgsRectangle(*map(float, os.environ["LANDCOVER_EXTENT"].split(",")))
    unit = float(os.environ.get("LANDCOVER_UNITS_PER_PX", "0.2"))  # map units per screen pixel: 0.2 ground m
    cx, cy = ext.xMinimum() + 0.3 * ext.width(), ext.center().y()
    canvas.setExtent(view_at(cx, cy, unit))
    yield 500
    dock.layer_box.setLayer(scene)
    dock.model_box.setCurrentText("flair-rgb")
    ticks["on"] = True
    probe.start()
    dock.live_box.setChecked(True)
    for name, centre, px in (("first view", (cx, cy), unit), ("pan by 40 % of the width", (cx + 0.4 * 1366 * unit, cy), unit),
                             ("pan back (cached)", (cx, cy), unit), ("zoomed out to the whole zone", None, None)):
        if centre is not None:
            canvas.setExtent(view_at(*centre, px))
        elif name.startswith("zoomed"):
            canvas.setExtent(ext)
        started = time.perf_counter()
        yield "view"
        report["views"].append({"view": name, "seconds": controller.last_seconds,
                                "status": dock.status.text(), "wall_s": time.perf_counter() - started})
        yield 300
    ticks["on"] = False
    report["ui_max_gap_ms"] = ticks["max_gap_ms"]
    report["ui_ticks"] = ticks["count"]
    report["ui_max_slot_cpu_ms"] = slots["max_cpu_ms"]
    report["ui_slot_calls"] = slots["calls"]
    report["live_layer_in_legend"] = [layer.name() for layer in QgsProject.instance().mapLayers().values()]
    live_layer = controller.layer
    report["live_layer_classes"] = len(live_layer.renderer().classes()) if live_layer else 0
    report["live_legend_expanded"] = QgsProject.instance().layerTreeRoot().findLayer(live_layer.id()).isExpanded()
    report["settings_saved"] = {key: QgsSettings().value(f"landcover/{key}") for key in ("live/model", "live/device")}
    if web:  # the web layer's views and one screenshot of live mode over it
        dock.opacity.setOpacity(0.6)
        canvas.setExtent(view_at(cx, cy, unit))
        yield "view"
        yield 3000
        shot(window, f"live_{web}.png")
        dock.live_box.setChecked(False)
        yield 2000
        QgsProject.instance().removeAllMapLayers()
        return
    # screenshots: the views are cached now, so each shows at once; the imagery shows through
    dock.opacity.setOpacity(0.6)
    canvas.setExtent(view_at(cx, cy, 0.2))
    yield "view"
    yield 2500
    report["live_layer_opacity"] = controller.layer.opacity()
    shot(window, "live_before_pan.png")
    canvas.setExtent(view_at(cx + 0.4 * 1366 * 0.2, cy, 0.2))
    yield "view"
    yield 2500
    shot(window, "live_after_pan.png")
    shot(dock, "live_dock.png")
    box = plugin.diagnostics_box()
    box.show()
    yield 500
    shot(box, "diagnostics.png")
    box.close()
    from landcover_plugin.qgis_plugin.models_dialog import ModelManager

    manager = ModelManager(window, dock.fill_models)
    try:
        manager.add_path(os.environ["LANDCOVER_BAD_MODEL"])
    except Exception as exc:  # noqa: BLE001 (the message is what the user sees)
        report["bad_model_refused"] = f"{type(exc).__name__}: {exc}"
    name = manager.add_path(os.environ["LANDCOVER_EXTRA_MODEL"])
    manager.fill(name)
    dock.fill_models()
    report["added_model"] = {"name": name, "in_dock": dock.model_box.findText(name) >= 0,
                             "in_diagnostics": name in plugin.diagnostics_box().text()}
    manager.remove()
    dock.fill_models()
    report["removed_model_in_dock"] = dock.model_box.findText(name) >= 0
    manager.show()
    manager.list.setCurrentRow(list(manager.models).index("flair-rgb"))
    yield 500
    shot(manager, "model_manager.png")
    manager.close()
    import processing

    dialog = processing.createAlgorithmDialog("landcover:classify", {"INPUT": scene.id()})
    dialog.show()
    yield 800
    shot(dialog, "toolbox_classify.png")
    dialog.close()
    # live off removes everything it added
    folder = controller.session.folder
    dock.live_box.setChecked(False)
    yield 3000  # a cancelled task finishes at its next batch, then its files go
    report["after_live_off"] = {"layers": [layer.name() for layer in QgsProject.instance().mapLayers().values()],
                                "temp_folder_exists": folder.exists(), "status": dock.status.text()}
    # a vectorized class layer
    sample = os.environ["LANDCOVER_SAMPLE"]
    classes = processing.run("landcover:classify", {"INPUT": sample, "OUTPUT": str(SHOTS / "sample_classes.tif")})["OUTPUT"]
    polygons = processing.run("landcover:vectorize", {"CLASSES": classes, "SIEVE": 16, "MIN_AREA": 0,
                                                      "OUTPUT": str(SHOTS / "sample_polygons.gpkg")})["OUTPUT"]
    vector = QgsVectorLayer(polygons, "land cover polygons (vectorized)", "ogr")
    vector.loadNamedStyle(str(Path(polygons).with_suffix(".qml")))
    sample_layer = QgsRasterLayer(sample, "sample (RGB 0.2 m)")
    QgsProject.instance().removeMapLayer(scene.id())
    QgsProject.instance().addMapLayer(sample_layer)
    QgsProject.instance().addMapLayer(vector)
    report["vector_features"] = vector.featureCount()
    canvas.setExtent(vector.extent())
    iface.layerTreeView().expandAll()
    yield 4000
    shot(window, "vectorized.png")
    QgsProject.instance().removeAllMapLayers()
    yield 200
    report["before_unload"] = added_items(window)
    report["unloaded"] = qgis.utils.unloadPlugin(PLUGIN)
    yield 500  # deleteLater() runs
    report["after_unload"] = added_items(window)


def added_items(window):
    """What the plugin adds to the desktop: its provider, raster menu, toolbar buttons and dock."""
    toolbar = window.findChild(QToolBar, "LandcoverToolbar")
    return {"provider": QgsApplication.processingRegistry().providerById("landcover") is not None,
            "menu": [a.text() for a in iface.rasterMenu().actions() if "Landcover" in a.text()],
            "toolbar": [a.text() for a in toolbar.actions()] if toolbar else [],
            "dock": len(window.findChildren(QDockWidget, "LandcoverDock"))}


canvas = iface.mapCanvas()
controller = plugin = None
run(steps())
