"""The adapt-the-model loop as a user goes round it, inside the real QGIS desktop (``qgis --code`` under Xvfb;
see test_desktop_finetune.py). The plugin was installed from the ``make package`` zip into a fresh profile.

Opens LANDCOVER_RASTER, opens the dock from *Raster → Landcover → Live land cover*, picks the layer and
LANDCOVER_MODEL, ticks *Live* and *Highlight uncertain areas*; clicks *Correct…*, picks classes in the
picker and draws the areas of LANDCOVER_AREAS (JSON: class, mode "polygon" or "brush", map coordinates)
with mouse events on the canvas, as a hand would; sets the minutes (LANDCOVER_MINUTES) and clicks
*Improve model*; while it trains, a 10 ms timer measures the UI's responsiveness; waits for the dock to
switch to the adapted model and the live layer to show a new view; checks the model manager and *Save
as…*; then starts another round and cancels it. Screenshots (LANDCOVER_SHOTS) and a JSON report
(LANDCOVER_REPORT, written after every step).
"""
import faulthandler
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import qgis.utils
from osgeo import gdal
from qgis.core import Qgis, QgsApplication, QgsPointXY, QgsProject, QgsRectangle
from qgis.gui import QgsMapLayerComboBox
from qgis.PyQt.QtCore import QEvent, QPoint, Qt, QTimer
from qgis.PyQt.QtGui import QMouseEvent
from qgis.PyQt.QtWidgets import (
    QApplication,
    QCheckBox,
    QComboBox,
    QDialog,
    QDockWidget,
    QDoubleSpinBox,
    QLabel,
    QListWidget,
    QProgressBar,
    QPushButton,
    QRadioButton,
)
from qgis.utils import iface

sys.path.insert(0, os.environ["LANDCOVER_TESTS"])  # qgis --code gives a script no __file__
from desktop_steps import Wait, quit_qgis, run  # noqa: E402

REPORT = Path(os.environ["LANDCOVER_REPORT"])
SHOTS = Path(os.environ["LANDCOVER_SHOTS"])
faults = open(os.environ["LANDCOVER_FAULTS"], "w")  # noqa: SIM115 (open for the life of QGIS)
faulthandler.enable(file=faults)
report = {"steps": [], "messages": [], "views": []}
canvas = iface.mapCanvas()


def save():
    REPORT.write_text(json.dumps(report, indent=1))


def logged(message, tag, level):
    if level >= Qgis.Warning and tag in ("Python error", "Landcover", "Python warning"):
        report["messages"].append(f"[{tag}] {message}")


QgsApplication.messageLog().messageReceived.connect(logged)


def screen(name):
    QApplication.primaryScreen().grabWindow(0).save(str(SHOTS / name))


def dock():
    return iface.mainWindow().findChild(QDockWidget, "LandcoverDock")


def child(kind, name):
    return dock().findChild(kind, name)


def status():
    return child(QLabel, "status").text().replace("\n", " ")


def improve_status():
    return child(QLabel, "improve_status").text()


def uncertain_status():
    return child(QLabel, "uncertain_status").text()


def live_source():
    layers = QgsProject.instance().mapLayersByName("Landcover live")
    return layers[0].source() if layers else None


def menu_action(text):
    for action in iface.rasterMenu().actions():
        if action.menu() is not None and "Landcover" in action.text():
            for sub in action.menu().actions():
                if sub.text() == text:
                    return sub
    raise RuntimeError(f"no '{text}' in Raster → Landcover")


def to_screen(x, y) -> QPoint:
    p = canvas.getCoordinateTransform().transform(QgsPointXY(x, y))
    return QPoint(int(round(p.x())), int(round(p.y())))


def mouse(kind, pos, button=Qt.LeftButton, buttons=Qt.LeftButton):
    event = QMouseEvent(kind, pos, canvas.viewport().mapToGlobal(pos), button, buttons, Qt.NoModifier)
    QApplication.sendEvent(canvas.viewport(), event)


def draw_polygon(ring):
    for x, y in ring[:-1]:
        pos = to_screen(x, y)
        mouse(QEvent.MouseMove, pos, Qt.NoButton, Qt.NoButton)
        mouse(QEvent.MouseButtonPress, pos)
        mouse(QEvent.MouseButtonRelease, pos, Qt.LeftButton, Qt.NoButton)
    pos = to_screen(*ring[0])
    mouse(QEvent.MouseButtonPress, pos, Qt.RightButton, Qt.RightButton)
    mouse(QEvent.MouseButtonRelease, pos, Qt.RightButton, Qt.NoButton)


def draw_stroke(points):
    mouse(QEvent.MouseButtonPress, to_screen(*points[0]))
    for x, y in points[1:]:
        mouse(QEvent.MouseMove, to_screen(x, y), Qt.NoButton, Qt.LeftButton)
    mouse(QEvent.MouseButtonRelease, to_screen(*points[-1]), Qt.LeftButton, Qt.NoButton)


def view_array(path):
    ds = gdal.Open(path)
    data, gt = ds.GetRasterBand(1).ReadAsArray(), ds.GetGeoTransform()
    ds = None
    return data, gt


def accuracy(path):
    """The live view's agreement with the reference (LANDCOVER_REFERENCE, class values; 255 unscored)."""
    if not os.environ.get("LANDCOVER_REFERENCE"):
        return None
    data, gt = view_array(path)
    ref = gdal.Warp("", os.environ["LANDCOVER_REFERENCE"], format="MEM", outputBounds=(
        gt[0], gt[3] + gt[5] * data.shape[0], gt[0] + gt[1] * data.shape[1], gt[3]), width=data.shape[1],
        height=data.shape[0], resampleAlg="near")
    r = ref.GetRasterBand(1).ReadAsArray()
    ref = None
    keep = (r != 255) & (data != 255)
    return round(float((r[keep] == data[keep]).mean()), 4) if keep.any() else None


class Ticks:
    """A 10 ms timer: the longest gap between its ticks is how long the UI thread was busy."""

    def __init__(self):
        self.timer = QTimer()
        self.timer.timeout.connect(self.tick)
        self.last, self.gaps = None, []

    def start(self):
        self.started = self.last = time.perf_counter()
        self.gaps, self.worst_at = [], None
        self.timer.start(10)

    def tick(self):
        now = time.perf_counter()
        self.gaps.append(now - self.last)
        if self.gaps[-1] == max(self.gaps):
            self.worst_at = round(now - self.started, 1)
        self.last = now

    def stop(self):
        self.timer.stop()
        gaps = sorted(self.gaps)
        return {"ticks": len(gaps), "max_ms": round(1000 * gaps[-1], 1) if gaps else None, "max_at_s": self.worst_at,
                "p99_ms": round(1000 * gaps[int(0.99 * (len(gaps) - 1))], 1) if gaps else None}


def steps():
    report["plugin_loaded_at_startup"] = "landcover_plugin" in qgis.utils.plugins
    iface.mainWindow().showMaximized()
    iface.mainWindow().setGeometry(0, 0, 1600, 1000)  # no window manager under Xvfb: size it as a maximised window
    yield 500
    layer = iface.addRasterLayer(os.environ["LANDCOVER_RASTER"], "zz orthophoto")
    report["source_valid"] = bool(layer and layer.isValid())
    menu_action("Live land cover").trigger()
    yield 800
    e = layer.extent()
    canvas.setExtent(QgsRectangle(e.xMinimum(), e.yMinimum(), e.xMaximum(), e.yMaximum()))
    canvas.refresh()
    yield 300
    dock().findChild(QgsMapLayerComboBox).setLayer(layer)
    model_box = child(QComboBox, "model")
    model_box.setCurrentIndex(model_box.findText(os.environ["LANDCOVER_MODEL"]))
    child(QCheckBox, "live").click()
    yield Wait(lambda: live_source() is not None, "first view")
    yield 500
    first = live_source()
    before, _ = view_array(first)  # live mode deletes earlier views' files
    report["before"] = {"model": model_box.currentText(), "accuracy": accuracy(first), "status": status()}
    # where a correction helps most
    child(QCheckBox, "uncertain").click()
    yield Wait(lambda: QgsProject.instance().mapLayersByName("Landcover uncertain areas"), "uncertain areas")
    yield 800
    yield Wait(lambda: "of the view has a confidence below" in uncertain_status(), "uncertain share")
    report["uncertain_before"] = uncertain_status()
    screen("finetune_uncertain.png")
    # Correct…: the class picker and the drawing tools
    child(QPushButton, "correct").click()
    yield 800
    picker = iface.mainWindow().findChild(QDialog, "LandcoverCorrect")
    classes = picker.findChild(QListWidget, "classes")
    report["picker_classes"] = [classes.item(i).text() for i in range(classes.count())]
    for area in json.loads(os.environ["LANDCOVER_AREAS"]):
        classes.setCurrentRow(report["picker_classes"].index(area["class"]))
        picker.findChild(QRadioButton, area["mode"]).setChecked(True)
        QApplication.processEvents()
        if area["mode"] == "polygon":
            draw_polygon(area["ring"])
        else:
            draw_stroke(area["points"])
        yield 150
    corrections = QgsProject.instance().mapLayersByName("Landcover corrections")[0]
    report["corrections"] = {"features": corrections.featureCount(), "classes": sorted({f["class"] for f in corrections.getFeatures()}),
                             "source": corrections.source(), "counts_label": picker.findChild(QLabel, "counts").text()}
    yield 500
    screen("finetune_correct.png")
    # Improve model: a background task with progress; the UI stays responsive
    child(QDoubleSpinBox, "minutes").setValue(float(os.environ["LANDCOVER_MINUTES"]))
    ticks = Ticks()
    ticks.start()
    started = time.perf_counter()
    child(QPushButton, "improve").click()
    report["improve_button_while_running"] = child(QPushButton, "improve").text()
    yield Wait(lambda: child(QProgressBar, "improve_progress").value() >= 40, "training under way")
    screen("finetune_training.png")
    report["progress_format"] = child(QProgressBar, "improve_progress").text()
    yield Wait(lambda: model_box.currentText().startswith(f"{os.environ['LANDCOVER_MODEL']}-adapted"), "improved", 600)
    report["improve_seconds"] = round(time.perf_counter() - started, 1)
    report["ui_while_training"] = ticks.stop()
    report["after_model"] = model_box.currentText()
    report["report_text"] = improve_status()
    yield Wait(lambda: live_source() not in (None, first) and "adapted" in status(), "live view with the adapted model")
    yield 500
    second = live_source()
    after, _ = view_array(second)
    same = before.shape == after.shape
    report["after"] = {"accuracy": accuracy(second), "status": status(),
                       "changed_share": round(float((before != after).mean()), 4) if same else None}
    yield Wait(lambda: uncertain_status() != report["uncertain_before"], "uncertain areas after")
    report["uncertain_after"] = uncertain_status()
    yield 800
    screen("finetune_improved.png")
    # the model manager lists it; Save as… keeps it under a name
    from landcover_plugin.qgis_plugin import settings
    from landcover_plugin.qgis_plugin.models_dialog import ModelManager

    manager = ModelManager(iface.mainWindow())
    listed = [manager.list.item(i).text() for i in range(manager.list.count())]
    report["manager_lists_adapted"] = report["after_model"] in listed
    saved = manager.save_as(report["after_model"], str(Path(os.environ["LANDCOVER_WORK"]) / "my-town.onnx"))
    manager.fill(saved)
    manager.show()
    yield 600
    manager.grab().save(str(SHOTS / "finetune_models.png"))
    report["saved_as"] = {"name": saved, "in_settings": saved in settings.added_models(),
                          "scratch_entry_gone": report["after_model"] not in settings.added_models(),
                          "file": Path(settings.added_models()[saved]).exists()}
    manager.close()
    # another round, cancelled: nothing written
    adapted = sorted(p.name for p in (Path(QgsApplication.qgisSettingsDirPath()) / "landcover" / "adapted").glob("*.onnx"))
    child(QDoubleSpinBox, "minutes").setValue(5.0)
    child(QPushButton, "improve").click()
    yield Wait(lambda: child(QProgressBar, "improve_progress").value() >= 5, "second round started")
    child(QPushButton, "improve").click()  # now "Cancel"
    yield Wait(lambda: "Cancelled" in improve_status(), "cancelled")
    report["cancelled"] = {"status": improve_status(), "files_unchanged": adapted == sorted(
        p.name for p in (Path(QgsApplication.qgisSettingsDirPath()) / "landcover" / "adapted").glob("*.onnx"))}
    picker.close()
    report["alive"] = True


def waited(wait, seconds):
    report["views"].append({"step": wait.name, "seconds": round(seconds, 1)})


def stuck(wait):
    return f"nothing after '{wait.name}'; dock: {status()} | {improve_status()}"


def finish():
    save()
    quit_qgis()


QTimer.singleShot(1500, lambda: run(steps(), report, finish, each=save, waited=waited, stuck=stuck))
np.seterr(all="ignore")
