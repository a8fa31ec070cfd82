"""A new user's first session, in the real QGIS desktop (``qgis --code`` under Xvfb, a brand-new profile,
QGIS' own Python with nothing added): *Install from ZIP* (the Plugin Manager's own code,
``installFromZipFile``), the Landcover toolbar's *Live land cover*, the dock's *Install dependencies…*,
*Install*, a raster added, Live on, then *Classify land cover…* from the toolbar and *Run* in the
Processing dialog, until the styled class layer is in the project. Every step is timed and
screenshotted (LANDCOVER_SHOTS); the report goes to LANDCOVER_REPORT after each step.

Environment: LANDCOVER_ZIP (the plugin zip), LANDCOVER_RASTER (a copy of a raster to classify)."""
import json
import os
import sys
import time
from pathlib import Path

import qgis.utils
from qgis.core import Qgis, QgsApplication, QgsProject
from qgis.PyQt.QtCore import QTimer
from qgis.PyQt.QtWidgets import QApplication, QCheckBox, QDockWidget, QLabel, QPushButton, QToolBar
from qgis.utils import iface

sys.path.insert(0, os.environ["LANDCOVER_TESTS"])  # qgis --code gives a script no __file__
from desktop_steps import Wait, quit_qgis, run  # noqa: E402

REPORT = Path(os.environ["LANDCOVER_REPORT"])
SHOTS = Path(os.environ["LANDCOVER_SHOTS"])
report = {"steps": [], "messages": []}
window = iface.mainWindow()
clock = {"t": time.perf_counter()}


def logged(message, tag, level):
    if tag in ("Python error", "Python warning") or (tag == "Landcover" and level >= Qgis.Warning):
        report["messages"].append(f"[{tag}] {message}")


QgsApplication.messageLog().messageReceived.connect(logged)


def save():
    REPORT.write_text(json.dumps(report, indent=1, default=str))


def done(step, **extra):
    now = time.perf_counter()
    report["steps"].append({"step": step, "seconds": round(now - clock["t"], 1), **extra})
    clock["t"] = now
    save()


def screen(name):
    """The whole screen: the main window with the dialogs over it."""
    QApplication.primaryScreen().grabWindow(0).save(str(SHOTS / name))


def shot(widget, name):
    widget.grab().save(str(SHOTS / name))


def toolbar_action(text):
    toolbar = window.findChild(QToolBar, "LandcoverToolbar")
    return next(a for a in toolbar.actions() if a.text() == text)


def dialog_named(name):
    return next((w for w in QApplication.topLevelWidgets() if w.objectName() == name and w.isVisible()), None)


def steps():
    window.showMaximized()
    window.setGeometry(0, 0, 1600, 1000)  # no window manager under Xvfb: fill the screen
    yield 1000
    report["plugins_at_start"] = sorted(qgis.utils.plugins)
    clock["t"] = time.perf_counter()
    import pyplugin_installer

    pyplugin_installer.instance().installFromZipFile(os.environ["LANDCOVER_ZIP"])  # Plugins → Install from ZIP
    done("Install from ZIP: plugin unpacked, loaded and enabled", loaded="landcover_plugin" in qgis.utils.plugins,
         toolbar=[a.text() for a in window.findChild(QToolBar, "LandcoverToolbar").actions()])
    yield 1000
    clock["t"] = time.perf_counter()
    toolbar_action("Live land cover").trigger()
    yield 500
    dock = window.findChild(QDockWidget, "LandcoverDock")
    done("Toolbar → Live land cover: the dock says what is missing",
         message=dock.findChild(QLabel, "missing_message").text())
    shot(window, "walkthrough_1_missing.png")
    dock.findChild(QPushButton, "install_dependencies").click()
    yield 800
    installer = dialog_named("LandcoverInstallDialog")
    screen("walkthrough_2_installer.png")
    clock["t"] = time.perf_counter()
    installer.findChild(QPushButton, "install").click()
    yield Wait(lambda: "Downloading" in installer.log.toPlainText() or not installer.running(), "pip downloading", 300)
    yield 3000
    screen("walkthrough_3_installing.png")
    yield Wait(lambda: not installer.running(), "pip done", 1200)
    done("Install dependencies… → Install: pip with QGIS' Python into the profile",
         status=installer.findChild(QLabel, "install_status").text(), log=installer.log.toPlainText())
    screen("walkthrough_4_installed.png")
    installer.close()
    yield 500
    clock["t"] = time.perf_counter()
    layer = iface.addRasterLayer(os.environ["LANDCOVER_RASTER"], "flair_sample")  # Layer → Add Raster Layer
    dock = window.findChild(QDockWidget, "LandcoverDock")
    live = dock.findChild(QCheckBox, "live")
    live.click()
    yield Wait(lambda: bool(QgsProject.instance().mapLayersByName("Landcover live")), "live layer", 300)
    yield Wait(lambda: "Last view" in dock.findChild(QLabel, "status").text(), "first live view", 300)
    done("Layer added, Live ticked in the dock: first live view", status=dock.findChild(QLabel, "status").text(),
         layer_valid=layer.isValid())
    shot(window, "walkthrough_5_live.png")
    live.click()
    yield 1500
    clock["t"] = time.perf_counter()
    QTimer.singleShot(0, toolbar_action("Classify land cover…").trigger)  # the Processing dialog (modal)
    yield 1500
    dialog = next((w for w in QApplication.topLevelWidgets() if type(w).__name__ == "AlgorithmDialog" and w.isVisible()), None)
    report["classify_dialog"] = dialog.windowTitle() if dialog else None
    screen("walkthrough_6_classify_dialog.png")
    before = set(QgsProject.instance().mapLayers())
    next(b for b in dialog.findChildren(QPushButton) if b.text().replace("&", "") == "Run").click()
    yield Wait(lambda: set(QgsProject.instance().mapLayers()) - before, "class layer", 600)
    yield 1000
    new = [QgsProject.instance().mapLayer(i) for i in set(QgsProject.instance().mapLayers()) - before]
    out = new[0]
    done("Toolbar → Classify land cover… → Run: the styled class layer is in the project", layer=out.name(),
         renderer=out.renderer().type(), classes=len(out.renderer().classes()) if out.renderer().type() == "paletted" else 0,
         source=out.source())
    screen("walkthrough_7_classify_log.png")
    dialog.close()
    yield 500
    for other in QgsProject.instance().mapLayers().values():
        if other.id() != out.id() and other.name() != "flair_sample":
            QgsProject.instance().removeMapLayer(other.id())
    iface.mapCanvas().setExtent(out.extent())
    iface.layerTreeView().expandAll()
    yield 2500
    shot(window, "walkthrough_8_classified.png")
    report["alive"] = True


def stuck(wait):
    return f"timed out after {wait.seconds} s at step {len(report['steps']) + 1} ({wait.name})"


def finish():
    save()
    quit_qgis(500, close_dialogs=True)


QTimer.singleShot(2000, lambda: run(steps(), report, finish, each=save, stuck=stuck))
