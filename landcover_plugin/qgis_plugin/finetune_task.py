"""The adapt-the-model loop in the Landcover dock: *Correct…* (class picker and drawing tools, ``correct.py``),
*Improve model* (``landcover finetune`` in a ``QgsTask``: progress, time left, Cancel; the UI stays
responsive), the live layer switched to the adapted model when done, and the least-confident areas of
the view highlighted so users see where a correction helps most.

Every *Improve model* starts again from the model the loop began with (the original), on all the
corrections drawn so far, so rounds do not drift; the adapted model is written into the profile
(``landcover/adapted/``), added to the model manager (where *Save as…* keeps it under a name of your
choice) and chosen in the dock.
"""
from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path

from qgis.core import (
    Qgis,
    QgsApplication,
    QgsCoordinateTransform,
    QgsMessageLog,
    QgsProject,
    QgsRasterLayer,
    QgsTask,
    QgsVectorLayer,
)
from qgis.PyQt.QtCore import QObject, Qt, QTimer, pyqtSignal
from qgis.PyQt.QtWidgets import (
    QCheckBox,
    QDoubleSpinBox,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
)

from ..errors import Cancelled, LandcoverError
from ..feedback import Feedback
from . import correct, settings
from .provider_source import is_file_layer

UNCERTAIN_LAYER = "Landcover uncertain areas"
UNCERTAIN_BELOW = 0.6  # maximum class probability under which a pixel is highlighted
MAX_VIEW_PX = 4096 * 4096  # the uncertain areas are computed for views up to this many pixels
UNCERTAIN_DEBOUNCE_MS = 1000
SIEVE_PX = 32  # uncertain specks smaller than this are not outlined


def adapted_folder() -> Path:
    folder = Path(QgsApplication.qgisSettingsDirPath()) / "landcover" / "adapted"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


class Relay(QObject):
    """Messages from a task's thread to the UI thread (queued signal)."""

    message = pyqtSignal(str)


class FinetuneTask(QgsTask):
    """``train.finetune`` in a process of its own (``train.finetune_worker``, run by QGIS' Python): importing
    PyTorch and training never hold the interpreter lock QGIS' interface needs, and the memory is returned
    when it ends. Progress and notes come back as JSON lines; Cancel terminates the process (which then
    writes nothing). ``result`` or ``error`` when it ends."""

    def __init__(self, params, done):
        super().__init__("Landcover: improving the model", QgsTask.CanCancel)
        self.params, self.done = params, done
        self.relay = Relay()
        self.result = None
        self.error = None

    def run(self):
        try:
            return self._run()
        except Exception as exc:  # noqa: BLE001 — reported in the dock and the log, never raised into QGIS' task thread
            self.error = f"{type(exc).__name__}: {exc}"
            return False

    def _run(self) -> bool:
        import json
        import os
        import queue
        import subprocess
        import sys
        import threading
        from dataclasses import asdict

        from ..dependencies import likely_python
        from ..train.finetune import FinetuneResult

        folder = Path(tempfile.mkdtemp(prefix="landcover-finetune-"))
        try:
            params = {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(self.params).items()}
            (folder / "params.json").write_text(json.dumps(params))
            env = dict(os.environ)
            env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p and os.path.isdir(p))
            with open(folder / "stderr.txt", "w") as err:
                proc = subprocess.Popen([likely_python(), "-m", "landcover_plugin.train.finetune_worker",
                                         str(folder / "params.json")], stdout=subprocess.PIPE, stderr=err, text=True, env=env,
                                        cwd=folder, stdin=subprocess.DEVNULL,
                                        creationflags=getattr(subprocess, "CREATE_NO_WINDOW", 0))
                assert proc.stdout is not None
                lines: queue.Queue = queue.Queue()
                stdout = proc.stdout

                def pump() -> None:  # the worker's JSON lines, then None at its end
                    for line in stdout:
                        lines.put(line)
                    lines.put(None)
                threading.Thread(target=pump, daemon=True).start()
                outcome: dict = {}
                while True:
                    if self.isCanceled() and proc.poll() is None:
                        proc.terminate()
                    try:
                        line = lines.get(timeout=0.2)
                    except queue.Empty:
                        continue
                    if line is None:
                        break
                    try:
                        item = json.loads(line)
                    except ValueError:
                        continue
                    if "progress" in item:
                        self.setProgress(100 * item["progress"])
                    elif "info" in item or "warning" in item:
                        self.relay.message.emit(item.get("info") or f"Warning: {item['warning']}")
                    else:
                        outcome = item
                code = proc.wait()
                proc.stdout.close()
            if "result" in outcome:
                self.result = FinetuneResult.from_dict(outcome["result"])
                return True
            if outcome.get("cancelled") or self.isCanceled():
                return False
            if outcome.get("missing"):
                from .dependencies_ui import extras_command

                self.error = (f"improving the model needs the Python package '{outcome['missing']}' in QGIS' Python: install "
                              f"the training extras with QGIS' Python: {extras_command('training')}, then restart QGIS")
            else:
                tail = (folder / "stderr.txt").read_text(errors="replace").strip().splitlines()[-1:]
                self.error = outcome.get("error") or f"the training process stopped (exit {code}): {' '.join(tail)}"
            return False
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    def finished(self, ok):
        self.done(self, ok)


class _TaskFeedback(Feedback):
    def __init__(self, task: QgsTask):
        self.task = task

    def is_cancelled(self) -> bool:
        return self.task.isCanceled()


class UncertaintyTask(QgsTask):
    """Classifies the part of a raster file under the view with its confidence and writes the areas whose
    confidence is below ``UNCERTAIN_BELOW`` as polygons (specks under ``SIEVE_PX`` merged away) to a
    GeoPackage; ``path`` and ``share`` (of the view's valid pixels) when done."""

    def __init__(self, source: str, bounds: tuple[float, float, float, float], model: str, folder: Path, done):
        super().__init__("Landcover: uncertain areas", QgsTask.CanCancel)
        self.source, self.bounds, self.model, self.folder, self.done = source, bounds, model, folder, done
        self.path: Path | None = None
        self.share = None
        self.error = None
        self.note = ""

    def run(self):
        try:
            self.path, self.share, self.note = uncertain_areas(self.source, self.bounds, self.model, self.folder,
                                                               _TaskFeedback(self))
            return True
        except Cancelled:
            return False
        except Exception as exc:  # noqa: BLE001 — reported in the dock
            self.error = str(exc) or type(exc).__name__
            return False

    def finished(self, ok):
        self.done(self, ok)


def uncertain_areas(source: str, bounds, model: str, folder: Path, feedback: Feedback):
    """(GeoPackage of the uncertain areas, their share, a note) for the window of ``source`` under ``bounds``
    (the layer's CRS); ``(None, None, note)`` when the view shows no raster or too many pixels."""
    import numpy as np
    from osgeo import gdal, ogr, osr

    from ..engine.classify import ClassifyParams, classify

    ds = gdal.Open(source)
    x0, dx, _, y0, _, dy = ds.GetGeoTransform()
    xmin, ymin, xmax, ymax = bounds
    c0, c1 = sorted(((xmin - x0) / dx, (xmax - x0) / dx))
    r0, r1 = sorted(((ymax - y0) / dy, (ymin - y0) / dy))
    c0, r0 = max(0, int(c0)), max(0, int(r0))
    c1, r1 = min(ds.RasterXSize, int(c1) + 1), min(ds.RasterYSize, int(r1) + 1)
    if c1 <= c0 or r1 <= r0:
        return None, None, "the view does not show the raster"
    if (c1 - c0) * (r1 - r0) > MAX_VIEW_PX:
        return None, None, "zoom in to see them (the view holds too many pixels)"
    stamp = f"{time.time_ns()}"
    window = folder / f"view{stamp}.vrt"
    gdal.Translate(str(window), ds, format="VRT", srcWin=[c0, r0, c1 - c0, r1 - r0])
    ds = None
    classes, confidence = folder / f"classes{stamp}.tif", folder / f"confidence{stamp}.tif"
    classify(ClassifyParams(input=str(window), output=str(classes), model=model, confidence=str(confidence), batch_size=2),
             feedback)
    conf = gdal.Open(str(confidence))
    values = conf.GetRasterBand(1).ReadAsArray()
    valid = values >= 0
    low = (values < UNCERTAIN_BELOW) & valid
    mem = gdal.GetDriverByName("MEM").Create("", low.shape[1], low.shape[0], 1, gdal.GDT_Byte)
    mem.SetGeoTransform(conf.GetGeoTransform())
    mem.SetProjection(conf.GetProjection())
    band = mem.GetRasterBand(1)
    band.WriteArray(low.astype(np.uint8))
    gdal.SieveFilter(band, None, band, SIEVE_PX, 8)
    path = folder / f"uncertain{stamp}.gpkg"
    out = ogr.GetDriverByName("GPKG").CreateDataSource(str(path))
    srs = osr.SpatialReference()
    srs.ImportFromWkt(conf.GetProjection())
    layer = out.CreateLayer("uncertain", srs, ogr.wkbPolygon)
    layer.CreateField(ogr.FieldDefn("uncertain", ogr.OFTInteger))
    gdal.Polygonize(band, band, layer, 0)
    layer = out = band = mem = conf = None
    return path, float(low.sum() / max(1, valid.sum())), ""


def uncertain_renderer():
    """White hatching with a dark outline: visible over any legend's colours, and the classes stay visible."""
    from qgis.core import QgsFillSymbol, QgsLinePatternFillSymbolLayer, QgsSingleSymbolRenderer

    symbol = QgsFillSymbol.createSimple({"color": "0,0,0,0", "outline_color": "30,30,30,230", "outline_width": "0.35"})
    hatch = QgsLinePatternFillSymbolLayer.create({"angle": "45", "distance": "1.4", "line_width": "0.35",
                                                  "color": "255,255,255,235"})
    symbol.appendSymbolLayer(hatch)
    return QgsSingleSymbolRenderer(symbol)


class ImprovePanel(QGroupBox):
    """The dock's *Adapt the model to this imagery* box. ``dock`` is the ``LandcoverDock`` (its layer and
    model boxes, ``model_path()`` and ``fill_models()``)."""

    improved = pyqtSignal(str)  # the adapted model's name, once the dock uses it

    def __init__(self, iface, dock):
        super().__init__("Adapt the model to this imagery")
        self.setObjectName("improve_panel")
        self.iface, self.dock, self.canvas = iface, dock, iface.mapCanvas()
        self.dialog = None
        self.layer = None
        self.task = None
        self.uncertain_task = None
        self.uncertain_layer = None
        self.uncertain_layer_id = ""
        self.started_at = None
        self.training_at: tuple[float, float] | None = None
        self.bases: dict[str, str] = {}  # adapted model file → the original it was adapted from
        self.folder = Path(tempfile.mkdtemp(prefix="landcover-uncertain-"))
        self.correct_button = QPushButton("Correct…")
        self.correct_button.setObjectName("correct")
        self.correct_button.setToolTip("Pick a class from the model's legend and draw where the map is wrong")
        self.correct_button.clicked.connect(self.open_correct)
        self.improve_button = QPushButton("Improve model")
        self.improve_button.setObjectName("improve")
        self.improve_button.setToolTip("Fine-tune the model on your corrections in the background, then use it")
        self.improve_button.clicked.connect(self.improve_or_cancel)
        self.minutes = QDoubleSpinBox()
        self.minutes.setObjectName("minutes")
        self.minutes.setRange(0.1, 60)
        self.minutes.setDecimals(1)
        self.minutes.setSingleStep(0.5)
        self.minutes.setSuffix(" min")
        self.minutes.setValue(3.0)
        self.minutes.setToolTip("Training time: a few minutes on a laptop's CPU")
        row = QHBoxLayout()
        row.addWidget(self.correct_button)
        row.addWidget(self.improve_button)
        row.addWidget(self.minutes)
        self.uncertain_box = QCheckBox(f"Highlight uncertain areas (confidence below {UNCERTAIN_BELOW:g})")
        self.uncertain_box.setObjectName("uncertain")
        self.uncertain_box.setToolTip("Where the model is least sure of the view, a correction helps most")
        self.uncertain_box.toggled.connect(self.toggle_uncertain)
        self.uncertain_note = QLabel()
        self.uncertain_note.setObjectName("uncertain_status")
        self.uncertain_note.setWordWrap(True)
        self.uncertain_note.setVisible(False)
        self.bar = QProgressBar()
        self.bar.setObjectName("improve_progress")
        self.bar.setRange(0, 100)
        self.bar.setVisible(False)
        self.report = QLabel("Draw corrections with Correct…, then Improve model.")
        self.report.setObjectName("improve_status")
        self.report.setWordWrap(True)
        self.report.setTextInteractionFlags(Qt.TextSelectableByMouse)
        layout = QVBoxLayout(self)
        layout.addLayout(row)
        layout.addWidget(self.uncertain_box)
        layout.addWidget(self.uncertain_note)
        layout.addWidget(self.bar)
        layout.addWidget(self.report)
        self.timer = QTimer(self)
        self.timer.setSingleShot(True)
        self.timer.timeout.connect(self.refresh_uncertain)

    # ------------------------------------------------------------------------------ the source and model
    def source_layer(self):
        layer = self.dock.layer_box.currentLayer()
        if layer is None or not isinstance(layer, QgsRasterLayer):
            raise LandcoverError("choose a raster layer in the dock first")
        if not is_file_layer(layer):
            raise LandcoverError("corrections and Improve model need a raster file: save the layer as a GeoTIFF "
                                 "(Export → Save As…) and use that")
        return layer

    def model(self):
        """(path, metadata) of the dock's model (fetched first when listed only); the metadata is read
        without opening the network, so the UI thread does not wait on onnxruntime."""
        from ..model import onnx_proto
        from ..model.metadata import parse_metadata

        path = self.dock.model_path()
        if not path:
            raise LandcoverError("choose a model in the dock first")
        try:
            return path, parse_metadata(onnx_proto.file_metadata_props(path))
        except (OSError, ValueError) as exc:
            raise LandcoverError(f"cannot read the model {path}: {exc}") from None

    def say(self, text: str):
        self.report.setText(text)

    # ---------------------------------------------------------------------------------------- Correct…
    def open_correct(self):
        try:
            raster = self.source_layer()
            path, meta = self.model()
        except LandcoverError as exc:
            self.say(str(exc))
            return
        self.layer = correct.corrections_layer(raster, meta.class_names, meta.class_colors)
        if self.dialog is not None:
            self.dialog.release_tools()
            self.dialog.deleteLater()
        self.dialog = correct.CorrectDialog(self.iface, self.layer, meta.class_names, meta.class_colors, self.iface.mainWindow())
        self.dialog.changed.connect(self.corrections_changed)
        self.dialog.show()
        self.corrections_changed()

    def corrections_changed(self):
        if self.task is None and self.layer is not None:
            n = self.layer.featureCount()
            self.say(f"{n} correction{'s' if n != 1 else ''} drawn in the layer '{correct.LAYER_NAME}' (edit it with QGIS' "
                     "tools too). Improve model trains on all of them.")

    # ---------------------------------------------------------------------------------- Improve model
    def improve_or_cancel(self):
        if self.task is not None:
            self.task.cancel()
            self.say("Cancelling…")
            return
        try:
            self.improve()
        except LandcoverError as exc:
            self.say(str(exc))

    def improve(self):
        from ..model.registry import bundled_models
        from ..train.finetune import FinetuneParams

        raster = self.source_layer()
        current, meta = self.model()
        layer = self.layer
        if layer is None:
            path = correct.corrections_path(raster.source())
            if path.exists():
                layer = self.layer = correct.corrections_layer(raster, meta.class_names, meta.class_colors)
        if layer is None or layer.featureCount() == 0:
            raise LandcoverError("draw some corrections first (Correct…)")
        if layer.isEditable() and layer.isModified() and not layer.commitChanges(False):
            raise LandcoverError(f"the corrections could not be saved: {'; '.join(layer.commitErrors())}")
        base = self.bases.get(str(Path(current).resolve()), current)
        base_name = next((n for n, p in bundled_models().items() if str(p) == str(base)), Path(base).stem)
        n = 1 + max([int(p.stem.rsplit("-", 1)[1]) for p in adapted_folder().glob(f"{base_name}-adapted-*.onnx")
                     if p.stem.rsplit("-", 1)[1].isdigit()] or [0])
        output = adapted_folder() / f"{base_name}-adapted-{n}.onnx"
        params = FinetuneParams(raster.source(), layer.source().split("|")[0], output, base,
                                minutes=self.minutes.value(), command="QGIS: Landcover dock, Improve model")
        self.task = FinetuneTask(params, self.task_done)
        self.task.relay.message.connect(self.say)
        self.task.progressChanged.connect(self.progress)
        self.task.base = base
        self.started_at, self.training_at = time.perf_counter(), None
        self.bar.setValue(0)
        self.bar.setVisible(True)
        self.improve_button.setText("Cancel")
        self.correct_button.setEnabled(False)
        self.say(f"Improving {base_name} on {layer.featureCount()} corrections ({self.minutes.value():g} min)…")
        QgsApplication.taskManager().addTask(self.task)

    def progress(self, value: float):
        """The bar, and the time left from the pace since training began (3 %: model and data ready)."""
        self.bar.setValue(int(value))
        now = time.perf_counter()
        if value >= 3 and self.training_at is None:
            self.training_at = (now, value)
        elif self.training_at is not None and value > self.training_at[1] + 2:
            t0, p0 = self.training_at
            left = (now - t0) / (value - p0) * (100 - value)
            self.bar.setFormat(f"%p% · {int(left // 60)}:{int(left % 60):02d} left")

    def task_done(self, task: FinetuneTask, ok: bool):
        self.task = None
        self.bar.setVisible(False)
        self.bar.setFormat("%p%")
        self.improve_button.setText("Improve model")
        self.correct_button.setEnabled(True)
        if task.error:
            self.say(f"Not improved: {task.error}")
            QgsMessageLog.logMessage(f"Improve model failed: {task.error}", "Landcover", Qgis.Warning)
            return
        if not ok or task.result is None:
            self.say("Cancelled: no model written.")
            return
        result = task.result
        output = Path(result.output)
        added = settings.added_models()
        added[output.stem] = str(output)
        settings.set_added_models(added)
        self.bases[str(output.resolve())] = task.base
        self.dock.fill_models()
        index = self.dock.model_box.findText(output.stem)
        if index >= 0:
            self.dock.model_box.setCurrentIndex(index)  # the live layer restarts with it
        details = "\n".join(result.summary().splitlines()[1:])  # without the file's path
        self.say(f"Now using {output.stem} (Models… → Save as… keeps it under a name).\n{details}")
        QgsMessageLog.logMessage(result.summary(), "Landcover", Qgis.Info)
        self.improved.emit(output.stem)
        if self.uncertain_box.isChecked():
            self.refresh_uncertain()

    # ---------------------------------------------------------------------------- uncertain areas
    def toggle_uncertain(self, on: bool):
        self.uncertain_note.setVisible(on)
        self.uncertain_note.setText("Finding the uncertain areas of the view…" if on else "")
        if on:
            self.canvas.extentsChanged.connect(self.view_changed)
            self.refresh_uncertain()
        else:
            self.canvas.extentsChanged.disconnect(self.view_changed)
            self.timer.stop()
            if self.uncertain_task is not None:
                self.uncertain_task.cancel()
            self.remove_uncertain_layer()

    def view_changed(self):
        self.timer.start(UNCERTAIN_DEBOUNCE_MS)

    def refresh_uncertain(self):
        if not self.uncertain_box.isChecked():
            return
        try:
            raster = self.source_layer()
            path, _ = self.model()
        except LandcoverError as exc:
            self.uncertain_note.setText(str(exc))
            return
        if self.uncertain_task is not None:
            self.uncertain_task.cancel()
        to_layer = QgsCoordinateTransform(self.canvas.mapSettings().destinationCrs(), raster.crs(), QgsProject.instance())
        e = to_layer.transformBoundingBox(self.canvas.extent())
        self.uncertain_task = UncertaintyTask(raster.source(), (e.xMinimum(), e.yMinimum(), e.xMaximum(), e.yMaximum()),
                                              str(path), self.folder, self.uncertain_done)
        QgsApplication.taskManager().addTask(self.uncertain_task)

    def uncertain_done(self, task: UncertaintyTask, ok: bool):
        if task is not self.uncertain_task:
            return
        self.uncertain_task = None
        if not self.uncertain_box.isChecked():
            return
        if task.error or task.note:
            self.uncertain_note.setText(f"Uncertain areas: {task.error or task.note}")
            return
        if not ok or task.path is None:
            return
        project = QgsProject.instance()
        if self.uncertain_layer is not None and project.mapLayer(self.uncertain_layer_id) is None:
            self.uncertain_layer = None  # the user removed it
        source = f"{task.path}|layername=uncertain"
        if self.uncertain_layer is None:
            self.uncertain_layer = QgsVectorLayer(source, UNCERTAIN_LAYER, "ogr")
            self.uncertain_layer.setRenderer(uncertain_renderer())
            project.addMapLayer(self.uncertain_layer, False)
            root = project.layerTreeRoot()
            corrections = next((n for n in root.findLayers() if n.name() == correct.LAYER_NAME), None)
            root.insertLayer(root.children().index(corrections) + 1 if corrections in root.children() else 0,
                             self.uncertain_layer)
            self.uncertain_layer_id = self.uncertain_layer.id()
        else:
            self.uncertain_layer.setDataSource(source, UNCERTAIN_LAYER, "ogr")
            self.uncertain_layer.setRenderer(uncertain_renderer())
        self.uncertain_layer.triggerRepaint()
        for old in self.folder.glob("*"):
            if task.path.stem.replace("uncertain", "") not in old.name:
                try:
                    old.unlink()
                except OSError:
                    pass
        model = Path(task.model).stem
        self.uncertain_note.setText(f"{task.share:.0%} of the view has a confidence below {UNCERTAIN_BELOW:g} with {model} "
                                    "(hatched): corrections there help the model most.")

    def remove_uncertain_layer(self):
        if self.uncertain_layer is not None and QgsProject.instance().mapLayer(self.uncertain_layer_id) is not None:
            QgsProject.instance().removeMapLayer(self.uncertain_layer_id)
        self.uncertain_layer = None

    def close(self):
        """Cancel the work, close the picker, remove the uncertain-areas layer (on unload)."""
        if self.task is not None:
            self.task.cancel()
        if self.uncertain_box.isChecked():
            self.uncertain_box.setChecked(False)
        if self.dialog is not None:
            self.dialog.release_tools()
            self.dialog.close()
            self.dialog.deleteLater()
            self.dialog = None
        shutil.rmtree(self.folder, ignore_errors=True)
