"""Live land cover the way a user meets it, inside the real QGIS desktop (``qgis --code`` under Xvfb; see
test_desktop.py). The plugin was installed from the ``make package`` zip into a fresh profile and
enabled there, so QGIS loaded it at start-up as it does for a user.

Opens the raster LANDCOVER_RASTER (or the layer URI LANDCOVER_URI with provider LANDCOVER_PROVIDER),
opens the dock with *Raster → Landcover → Live land cover*, picks the layer and LANDCOVER_MODEL in the
dock's widgets and ticks *Live*; then pans and zooms, waiting for each result, switches Live off and on,
and removes the source layer while a view runs. When LANDCOVER_GATE names a file, the web layer's
server holds every tile request while that file exists: a view is then held deterministically until
the next pan arrives, which must cancel it. Writes a JSON report (LANDCOVER_REPORT) after every step,
so a crash leaves the report of what had happened; faulthandler writes to LANDCOVER_FAULTS.
"""
import faulthandler
import json
import os
import sys
from pathlib import Path

import qgis.utils
from qgis.core import Qgis, QgsApplication, QgsProject, QgsRectangle
from qgis.gui import QgsMapLayerComboBox
from qgis.PyQt.QtCore import QTimer
from qgis.PyQt.QtWidgets import QCheckBox, QComboBox, QDockWidget, QLabel
from qgis.utils import iface

sys.path.insert(0, os.environ["LANDCOVER_TESTS"])  # qgis --code gives a script no __file__
from desktop_steps import Wait, quit_qgis, run  # noqa: E402

REPORT = Path(os.environ["LANDCOVER_REPORT"])
faults = open(os.environ["LANDCOVER_FAULTS"], "w")  # noqa: SIM115 (open for the life of QGIS)
faulthandler.enable(file=faults)
report = {"steps": [], "messages": [], "views": []}
GATE = Path(os.environ["LANDCOVER_GATE"]) if os.environ.get("LANDCOVER_GATE") else None
DOWN = Path(os.environ["LANDCOVER_DOWN"]) if os.environ.get("LANDCOVER_DOWN") else None


def save():
    REPORT.write_text(json.dumps(report, indent=1))


def logged(message, tag, level):
    if level >= Qgis.Warning and tag in ("Python error", "Landcover", "Python warning"):
        report["messages"].append(f"[{tag}] {message}")


QgsApplication.messageLog().messageReceived.connect(logged)
canvas = iface.mapCanvas()
state = {}


def live_layers():
    return QgsProject.instance().mapLayersByName("Landcover live")


def live_source():
    layers = live_layers()
    return layers[0].source() if layers else None


def dock_widgets():
    dock = iface.mainWindow().findChild(QDockWidget, "LandcoverDock")
    return (dock, dock.findChild(QgsMapLayerComboBox), dock.findChild(QComboBox, "model"),
            dock.findChild(QCheckBox, "live"), dock.findChild(QLabel, "status"))


def status_text():
    return dock_widgets()[4].text().replace("\n", " ")


def menu_action(text):
    for action in iface.rasterMenu().actions():
        if action.menu() is not None and "Landcover" in action.text():
            for sub in action.menu().actions():
                if sub.text() == text:
                    return sub
    raise RuntimeError(f"no '{text}' in Raster → Landcover: {[a.text() for a in iface.rasterMenu().actions()]}")


def view_around(layer, fraction, centre=None):
    """A canvas extent over ``fraction`` of the width of ``extent`` (the layer's, or LANDCOVER_EXTENT)."""
    if os.environ.get("LANDCOVER_EXTENT"):
        e = QgsRectangle(*map(float, os.environ["LANDCOVER_EXTENT"].split(",")))
    else:
        e = layer.extent()
    cx, cy = centre or (e.center().x(), e.center().y())
    w = e.width() * fraction / 2
    h = w * canvas.height() / max(canvas.width(), 1)
    return QgsRectangle(cx - w, cy - h, cx + w, cy + h)


def nudge(fraction):
    """Pan east by ``fraction`` of the canvas width."""
    e = canvas.extent()
    d = e.width() * fraction
    canvas.setExtent(QgsRectangle(e.xMinimum() + d, e.yMinimum(), e.xMaximum() + d, e.yMaximum()))
    canvas.refresh()


def new_view(before):
    """Wait condition: the live layer shows a file other than ``before`` (a finished view)."""
    return lambda: live_source() not in (None, before)


def steps():
    report["plugin_loaded_at_startup"] = "landcover_plugin" in qgis.utils.plugins
    save()
    iface.mainWindow().showMaximized()
    yield 500
    if os.environ.get("LANDCOVER_URI"):
        layer = iface.addRasterLayer(os.environ["LANDCOVER_URI"], "web basemap", os.environ["LANDCOVER_PROVIDER"])
    else:
        layer = iface.addRasterLayer(os.environ["LANDCOVER_RASTER"], "zz source")  # sorts after "Landcover live"
    report["source_valid"] = bool(layer and layer.isValid())
    menu_action("Live land cover").trigger()
    yield 800
    dock, layer_box, model_box, live_box, status = dock_widgets()
    report["dock_visible"] = dock.isVisible()
    canvas.setExtent(view_around(layer, float(os.environ.get("LANDCOVER_FRACTION", "0.3"))))  # the dock is in place
    canvas.refresh()
    yield 300
    layer_box.setLayer(layer)
    model_box.setCurrentIndex(model_box.findText(os.environ["LANDCOVER_MODEL"]))
    live_box.click()
    report["steps"].append("live on")
    yield Wait(new_view(None), "first view")
    # pans and zooms, each waited for
    for name, change in (("pan east", lambda e: (e.width() * 0.35, 0)), ("pan south", lambda e: (0, -e.height() * 0.3)),
                         ("zoom out", None), ("zoom in", "in")):
        before = live_source()
        e = canvas.extent()
        if change is None:
            canvas.zoomByFactor(2.0)
        elif change == "in":
            canvas.zoomByFactor(0.5)
        else:
            dx, dy = change(e)
            canvas.setExtent(QgsRectangle(e.xMinimum() + dx, e.yMinimum() + dy, e.xMaximum() + dx, e.yMaximum() + dy))
        canvas.refresh()
        yield Wait(new_view(before), name)
    if GATE is not None:
        # a view held by the server until the next pan arrives: the pan must cancel it
        GATE.write_text("hold")
        before = live_source()
        e = canvas.extent()
        canvas.setExtent(QgsRectangle(e.xMinimum() - e.width() * 0.4, e.yMinimum(), e.xMaximum() - e.width() * 0.4,
                                      e.yMaximum()))
        canvas.refresh()
        yield 2500  # the view's task is now waiting for tiles
        report["held_view_status"] = status_text()
        e = canvas.extent()
        target = QgsRectangle(e.xMinimum(), e.yMinimum() + e.height() * 0.3, e.xMaximum(), e.yMaximum() + e.height() * 0.3)
        canvas.setExtent(target)
        canvas.refresh()
        yield 600  # the newer view is scheduled and has cancelled the held one
        GATE.unlink()
        yield Wait(new_view(before), "pan during a held view")
        shown = live_layers()[0].extent()
        report["shown_view_contains_last_pan_centre"] = shown.contains(target.center())
        report["views_superseded_status"] = status_text()
    if DOWN is not None:
        # the service goes away during a view: the dock says so; once it is back, the next view works
        DOWN.write_text("stop the service")
        yield 2000
        nudge(-1.0)  # west, into imagery no view has fetched yet
        yield Wait(lambda: "error" in status_text(), "view while the service is down")
        report["service_down_status"] = status_text()
        DOWN.unlink()
        before = live_source()
        nudge(0.1)
        yield Wait(new_view(before), "view once the service is back", retry=lambda: nudge(0.02))
        report["service_back_status"] = status_text()
    # Live off, then on again
    live_box.click()
    yield 1500
    report["after_live_off"] = {"live_layers": len(live_layers()), "status": status_text()}
    live_box.click()
    yield Wait(new_view(None), "live on again")
    live = live_layers()[0]
    node = QgsProject.instance().layerTreeRoot().findLayer(live.id())
    model = iface.layerTreeView().layerTreeModel()
    report["live_layer"] = {"valid": live.isValid(), "renderer": live.renderer().type(),
                            "classes": len(live.renderer().classes()), "legend_nodes": len(model.layerLegendNodes(node)),
                            "expanded": node.isExpanded(), "in_source_list": layer_box.findText("Landcover live") >= 0}
    iface.mainWindow().grab().save(os.environ["LANDCOVER_SHOT"])
    # the source layer removed while a view runs
    if GATE is not None:
        GATE.write_text("hold")
    e = canvas.extent()
    canvas.setExtent(QgsRectangle(e.xMinimum() + e.width() * 0.3, e.yMinimum(), e.xMaximum() + e.width() * 0.3, e.yMaximum()))
    canvas.refresh()
    yield 400 if GATE is None else 2500
    QgsProject.instance().removeMapLayer(layer.id())
    report["steps"].append("source removed")
    yield 3000
    if GATE is not None:
        GATE.unlink()
    yield 1000
    report["after_source_removed"] = {"live_layers": len(live_layers()), "status": status_text(),
                                      "live_checked": live_box.isChecked()}
    report["alive"] = True


def waited(wait, seconds):
    report["views"].append({"view": wait.name, "seconds": round(seconds, 2), "status": status_text()})


def stuck(wait):
    return f"no result for '{wait.name}' within {wait.seconds} s; dock: {status_text()}"


def finish():
    save()
    quit_qgis()


QTimer.singleShot(1500, lambda: run(steps(), report, finish, each=save, waited=waited, stuck=stuck))
