"""A stock QGIS without onnxruntime, the way a new user meets Landcover (``qgis --code`` under Xvfb; see
test_dependencies_desktop.py). The plugin was installed from the ``make package`` zip into a fresh
profile and enabled there; QGIS runs on its own Python with nothing added to its path.

Checks that the plugin loads and that the Landcover toolbar, the dock, *Models…*, *Classify land
cover…*, Diagnostics and the Processing algorithms all show the missing-dependency message, with no
Python error anywhere; that a ``landcover:`` link opens the installer. With LANDCOVER_INSTALL=1 it then
cancels one install (nothing may change), runs the installer for real from the package index, and,
without restarting QGIS, switches Live on over LANDCOVER_RASTER and classifies it with
``landcover:classify``, loading the styled result. Screenshots go to LANDCOVER_SHOTS; the JSON report
(written after every step) to LANDCOVER_REPORT; faulthandler to LANDCOVER_FAULTS.
"""
import faulthandler
import json
import os
import sys
import time
from pathlib import Path

import qgis.utils
from qgis.core import Qgis, QgsApplication, QgsProcessingContext, QgsProcessingFeedback, QgsProject, QgsRasterLayer
from qgis.PyQt.QtCore import QTimer, QUrl
from qgis.PyQt.QtGui import QDesktopServices
from qgis.PyQt.QtWidgets import QApplication, QCheckBox, QComboBox, QDialog, QDockWidget, QLabel, QPlainTextEdit, QPushButton, QToolBar
from qgis.utils import iface

sys.path.insert(0, os.environ["LANDCOVER_TESTS"])  # qgis --code gives a script no __file__
from desktop_steps import Wait, quit_qgis, run  # noqa: E402

REPORT = Path(os.environ["LANDCOVER_REPORT"])
SHOTS = Path(os.environ["LANDCOVER_SHOTS"])
INSTALL = os.environ.get("LANDCOVER_INSTALL") == "1"
faults = open(os.environ["LANDCOVER_FAULTS"], "w")  # noqa: SIM115 (open for the life of QGIS)
faulthandler.enable(file=faults)
report = {"steps": [], "messages": [], "dialogs_seen": [], "timings": {}}


def save():
    REPORT.write_text(json.dumps(report, indent=1, default=str))


def logged(message, tag, level):
    if tag in ("Python error", "Python warning") or (tag == "Landcover" and level >= Qgis.Warning):
        report["messages"].append(f"[{tag}] {message}")


QgsApplication.messageLog().messageReceived.connect(logged)
window = iface.mainWindow()


def menu_action(text):
    for action in iface.rasterMenu().actions():
        if action.menu() is not None and "Landcover" in action.text():
            for sub in action.menu().actions():
                if sub.text() == text:
                    return sub
    raise RuntimeError(f"no '{text}' in Raster → Landcover")


def screen(name):
    """The whole screen: the main window with the dialogs over it."""
    QApplication.primaryScreen().grabWindow(0).save(str(SHOTS / name))


def shot(widget, name):
    widget.grab().save(str(SHOTS / name))
    report.setdefault("screenshots", []).append(name)


def visible_dialogs():
    """Top-level dialogs on screen, by title: a Python error dialog would be among them."""
    return [w.windowTitle() for w in QApplication.topLevelWidgets() if isinstance(w, QDialog) and w.isVisible()]


def note_dialogs():
    for title in visible_dialogs():
        if title not in report["dialogs_seen"]:
            report["dialogs_seen"].append(title)


def find_dialog(object_name):
    return next((w for w in QApplication.topLevelWidgets() if w.objectName() == object_name and w.isVisible()), None)


class RecordingFeedback(QgsProcessingFeedback):
    """Keeps what an algorithm reports as errors (the Processing dialog's red lines)."""

    def __init__(self):
        super().__init__()
        self.errors = []

    def reportError(self, error, fatal=False):  # noqa: N802 (QGIS' name)
        self.errors.append(error)
        super().reportError(error, fatal)


def steps():
    report["plugin_loaded_at_startup"] = "landcover_plugin" in qgis.utils.plugins
    try:
        import onnxruntime  # noqa: F401

        report["onnxruntime_importable_at_start"] = True
    except ImportError:
        report["onnxruntime_importable_at_start"] = False
    report["python"] = sys.executable
    save()
    window.showMaximized()
    window.setGeometry(0, 0, 1600, 1000)  # no window manager under Xvfb: fill the screen
    yield 800
    from landcover_plugin.qgis_plugin import dependencies_ui

    report["private_dir"] = str(dependencies_ui.private_dir())
    report["ready_at_start"] = dependencies_ui.ready()
    toolbar = window.findChild(QToolBar, "LandcoverToolbar")
    report["toolbar"] = {"visible": bool(toolbar and toolbar.isVisible()),
                         "actions": [a.text() for a in toolbar.actions()] if toolbar else []}
    report["raster_toolbar_visible"] = iface.rasterToolBar().isVisible()
    # the dock from the menu: the message and its button
    menu_action("Live land cover").trigger()
    yield 800
    dock = window.findChild(QDockWidget, "LandcoverDock")
    label = dock.findChild(QLabel, "missing_message") if dock else None
    report["dock"] = {"visible": bool(dock and dock.isVisible()), "message": label.text() if label else None,
                      "button": bool(dock and dock.findChild(QPushButton, "install_dependencies"))}
    shot(window, "dependencies_missing.png")
    for text, key in (("Models…", "models"), ("Classify land cover…", "classify")):
        menu_action(text).trigger()
        yield 500
        note_dialogs()
        dialog = find_dialog("LandcoverMissingDialog")
        label = dialog.findChild(QLabel, "missing_message") if dialog else None
        report[key] = {"dialog": dialog.windowTitle() if dialog else None, "message": label.text() if label else None}
        if dialog:
            dialog.close()
        yield 200
    QTimer.singleShot(0, menu_action("Diagnostics…").trigger)  # exec_(): the steps go on in its event loop
    yield 1500
    note_dialogs()
    box = find_dialog("LandcoverDiagnostics")
    report["diagnostics"] = {"shown": box is not None, "text": box.text() if box else None,
                             "heading": box.findChild(QLabel, "diagnostics_heading").text() if box else None}
    if box:
        shot(box, "diagnostics_missing.png")
        screen("diagnostics_missing_window.png")
        box.reject()
    yield 300
    # Processing: the Toolbox's check and a run
    alg = QgsApplication.processingRegistry().createAlgorithmById("landcover:classify")
    ok, message = alg.canExecute()
    report["can_execute"] = {"ok": ok, "message": message}
    import processing
    from qgis.core import QgsProcessingException

    sample = os.environ["LANDCOVER_RASTER"]
    feedback = RecordingFeedback()
    try:
        processing.run("landcover:classify", {"INPUT": sample, "OUTPUT": str(SHOTS / "never.tif")}, feedback=feedback)
        report["processing_run"] = "ran"
    except QgsProcessingException as exc:
        report["processing_run"] = f"QgsProcessingException: {exc}"
    except Exception as exc:  # noqa: BLE001 (reported: a test failure)
        report["processing_run"] = f"{type(exc).__name__}: {exc}"
    report["processing_errors"] = feedback.errors
    # an algorithm that needs no onnxruntime still runs
    alg = QgsApplication.processingRegistry().createAlgorithmById("landcover:vectorize")
    report["vectorize_can_execute"] = alg.canExecute()[0]
    # the link in Processing's message opens the installer
    QDesktopServices.openUrl(QUrl("landcover:install-dependencies"))
    yield 800
    installer = find_dialog("LandcoverInstallDialog")
    report["link_opens_installer"] = installer is not None
    save()
    if not INSTALL:
        if installer:
            installer.close()
        report["alive"] = True
        return
    # Cancel: nothing may change
    installer.findChild(QPushButton, "install").click()
    log = installer.findChild(QPlainTextEdit, "install_log")
    started = time.perf_counter()
    yield Wait(lambda: "$ " in log.toPlainText() or not installer.running(), "cancel: pip started", 60)
    yield 1500
    installer.findChild(QPushButton, "cancel").click()
    yield Wait(lambda: not installer.running(), "cancel: pip stopped", 60)
    status = installer.findChild(QLabel, "install_status").text()
    report["cancel"] = {"status": status, "seconds": round(time.perf_counter() - started, 1),
                        "private_dir_exists": dependencies_ui.private_dir().exists(),
                        "ready": dependencies_ui.ready()}
    save()
    # the real install
    installer.findChild(QPushButton, "install").click()
    started = time.perf_counter()
    yield Wait(lambda: "Downloading" in log.toPlainText() or "Processing /" in log.toPlainText()
               or not installer.running(), "install: downloading", 300)
    yield 1000
    shot(installer, "dependencies_installing.png")
    screen("dependencies_installing_window.png")
    yield Wait(lambda: not installer.running(), "install: done", 900)
    seconds = time.perf_counter() - started
    status = installer.findChild(QLabel, "install_status").text()
    report["install"] = {"status": status, "seconds": round(seconds, 1), "log_tail": log.toPlainText()[-3000:],
                         "ready": dependencies_ui.ready(), "private_dir_exists": dependencies_ui.private_dir().exists(),
                         "manifest": __import__("landcover_plugin.dependencies", fromlist=["x"]).manifest(
                             dependencies_ui.private_dir())}
    report["timings"]["install_s"] = round(seconds, 1)
    shot(installer, "dependencies_installed.png")
    save()
    installer.close()
    yield 500
    import onnxruntime

    report["onnxruntime_after"] = {"version": onnxruntime.__version__, "file": onnxruntime.__file__}
    # without a restart: the dock is now the Live dock
    dock = window.findChild(QDockWidget, "LandcoverDock")
    live_box = dock.findChild(QCheckBox, "live") if dock else None
    report["dock_after_install"] = {"live_controls": live_box is not None, "visible": bool(dock and dock.isVisible())}
    layer = iface.addRasterLayer(sample, "sample")
    yield 500
    from qgis.gui import QgsMapLayerComboBox

    dock.findChild(QgsMapLayerComboBox).setLayer(layer)
    model_box = dock.findChild(QComboBox, "model")
    model_box.setCurrentIndex(model_box.findText("flair-rgb"))
    started = time.perf_counter()
    live_box.click()
    yield Wait(lambda: bool(QgsProject.instance().mapLayersByName("Landcover live")), "live: first view", 180)
    report["timings"]["live_first_view_s"] = round(time.perf_counter() - started, 1)
    yield 1500
    report["live_status"] = dock.findChild(QLabel, "status").text()
    shot(window, "dependencies_live_after_install.png")
    live_box.click()
    yield 1500
    # Processing, in the same QGIS session
    out = SHOTS / "classified.tif"
    context = QgsProcessingContext()
    started = time.perf_counter()
    result = processing.run("landcover:classify", {"INPUT": sample, "OUTPUT": str(out)}, context=context,
                            feedback=QgsProcessingFeedback())
    report["timings"]["classify_s"] = round(time.perf_counter() - started, 1)
    styled = QgsRasterLayer(result["OUTPUT"], "Land cover (flair-rgb)")
    styled.loadNamedStyle(str(out.with_suffix(".qml")))
    QgsProject.instance().addMapLayer(styled)
    report["classified"] = {"output": result["OUTPUT"], "valid": styled.isValid(), "renderer": styled.renderer().type(),
                            "classes": len(styled.renderer().classes()) if styled.renderer().type() == "paletted" else 0}
    iface.mapCanvas().setExtent(styled.extent())
    iface.layerTreeView().expandAll()
    yield 2500
    shot(window, "dependencies_classified.png")
    # the Toolbox dialog's MODEL: names to pick (the default, the others, those fetched on first use)
    dialog = processing.createAlgorithmDialog("landcover:classify", {"INPUT": layer.id()})
    dialog.resize(900, 640)
    dialog.show()
    yield 800
    combo = dialog.findChild(QComboBox, "landcover_model")
    report["model_widget"] = {"items": [combo.itemText(i) for i in range(combo.count())] if combo else None}
    if combo:
        combo.setEditText("dubai-grey")
        report["model_widget"]["picked"] = dialog.createProcessingParameters().get("MODEL")
        combo.setEditText("")
        report["model_widget"]["empty"] = dialog.createProcessingParameters().get("MODEL")
        combo.showPopup()
        yield 500
        screen("toolbox_model_picker.png")
        combo.hidePopup()
    dialog.close()
    yield 300
    report["alive"] = True


def each():
    note_dialogs()
    save()


def waited(wait, seconds):
    report["steps"].append({"step": wait.name, "seconds": round(seconds, 1)})


def finish():
    each()
    quit_qgis(500, close_dialogs=True)


QTimer.singleShot(1500, lambda: run(steps(), report, finish, each=each, waited=waited))
