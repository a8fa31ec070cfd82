"""Live land cover: the visible extent of a raster layer is classified as the map moves.

The UI thread only schedules work and swaps the displayed file. A view change (debounced) cancels
the running ``LiveTask`` and starts a new one; the task (a ``QgsTask`` on QGIS' worker threads) runs
the engine's ``LiveClassifier`` (cached tiles, the engine's seam-free blending) and writes the view
as a small class GeoTIFF; the live layer, styled with the model's legend above the source layer,
then points at that file.
"""
from __future__ import annotations

import shutil
import tempfile
import threading
import time
from pathlib import Path

from qgis.core import (QgsApplication, QgsCoordinateTransform, QgsMessageLog, QgsProject, QgsRasterLayer,
                       QgsRectangle, QgsTask)
from qgis.PyQt.QtCore import QObject, QTimer, pyqtSignal

from ..engine.live import LiveClassifier, TileCache, choose_level, write_view
from ..errors import Cancelled
from ..model.adapter import OnnxModel

DEBOUNCE_MS = 120  # wait for the map to settle before classifying
LAYER_NAME = "Landcover live"


class LiveTask(QgsTask):
    """Classifies one view in the background; ``outcome`` is set when ``run`` ends: the written path
    (or ``None`` off the raster), ``"cancelled"`` or an error message."""

    def __init__(self, session: "LiveSession", bounds: tuple[float, float, float, float], screen_px: float,
                 path: Path):
        super().__init__("Landcover live view", QgsTask.CanCancel)
        self.session, self.bounds, self.screen_px, self.path = session, bounds, screen_px, path
        self.view = None
        self.error = None

    def run(self):
        try:
            live = self.session.classifier()
            level = choose_level(live.source.gsd, live.model.meta.gsd_m, self.screen_px)
            self.view = live.classify_view(self.bounds, level, cancelled=self.isCanceled,
                                           progress=lambda f: self.setProgress(100 * f))
            if self.view is not None:
                write_view(self.view, live.model.meta, self.path)
            return True
        except Cancelled:
            return False
        except Exception as exc:  # reported in the dock and the log, never raised into QGIS' task thread
            self.error = str(exc)
            return False

    def finished(self, ok):
        self.session.task_finished(self, ok)


class LiveSession:
    """The raster and model being classified live (the classifier is made on a worker thread at first
    use), the folder of written views, and the tasks still running; closed once its last task ends."""

    def __init__(self, source: str, model_path: Path, device: str, cache: TileCache):
        self.source, self.model_path, self.device, self.cache = source, model_path, device, cache
        self.folder = Path(tempfile.mkdtemp(prefix="landcover-live-"))
        self.controller = None
        self.tasks: set[LiveTask] = set()  # Python must hold running tasks, or their run() is lost
        self._live = None
        self._lock = threading.Lock()

    def classifier(self) -> LiveClassifier:
        with self._lock:
            if self._live is None:
                self._live = LiveClassifier(self.source, OnnxModel(self.model_path, self.device), self.cache)
            return self._live

    def task_finished(self, task, ok):
        self.tasks.discard(task)
        if self.controller is not None:
            self.controller.task_finished(task, ok)
        elif not self.tasks:
            self.close()

    def close(self):
        """Close the raster and delete the written views."""
        with self._lock:
            if self._live is not None:
                self._live.close()
                self._live = None
        shutil.rmtree(self.folder, ignore_errors=True)


class LiveController(QObject):
    """Owns live mode for one canvas: start(layer, model, device), stop(). Emits ``status`` with what
    happens (execution provider, resolution used, seconds per view, tiles computed / from cache)."""

    status = pyqtSignal(str)
    progress = pyqtSignal(int)
    live_layer_changed = pyqtSignal(object)  # the live layer before it joins the project, None once removed
    switched_off = pyqtSignal()  # live mode ended by itself (its source layer was removed)
    view_done = pyqtSignal(float)  # seconds from the view change to the class layer showing it

    def __init__(self, iface, cache_mb: int = 256):
        super().__init__()
        self.iface = iface
        self.canvas = iface.mapCanvas()
        self.cache = TileCache(cache_mb << 20)
        self.timer = QTimer(self)
        self.timer.setSingleShot(True)
        self.timer.timeout.connect(self.refresh)
        self.session = None
        self.source_layer = None
        self.model_path: str | None = None
        self.device: str | None = None
        self.layer = None
        self.task = None
        self.changed_at = None
        self.count = 0  # views requested
        self.superseded = 0  # views whose running task a newer view cancelled
        self.last_seconds = None
        self.opacity = 1.0

    def set_opacity(self, opacity: float) -> None:
        """Opacity of the live layer (0–1), kept across views."""
        self.opacity = opacity
        if self.layer is not None:
            self.layer.setOpacity(opacity)
            self.layer.triggerRepaint()

    @property
    def active(self) -> bool:
        return self.session is not None

    def start(self, layer: QgsRasterLayer, model_path: Path, device: str) -> None:
        """Classify ``layer``'s visible extent with ``model_path`` from now on."""
        self.stop()
        self.source_layer, self.model_path, self.device = layer, str(model_path), device
        self.session = LiveSession(layer.source(), Path(model_path), device, self.cache)
        self.session.controller = self
        self.canvas.extentsChanged.connect(self.view_changed)
        QgsProject.instance().layersWillBeRemoved.connect(self.layers_removed)
        self.status.emit(f"Live: loading {Path(model_path).stem}…")
        self.view_changed()

    def layers_removed(self, ids):
        """The source layer is being removed: cancel its work now, switch off from the event loop (the
        project is still removing layers; the live layer must not be removed from inside that)."""
        if self.source_layer is not None and self.source_layer.id() in ids:
            self.source_layer = None
            for task in self.session.tasks:
                task.cancel()
            QTimer.singleShot(0, self._source_gone)

    def _source_gone(self):
        self.stop("Live: off — the source layer was removed from the project")
        self.switched_off.emit()

    def view_changed(self):
        if self.changed_at is None:
            self.changed_at = time.perf_counter()
        self.timer.start(DEBOUNCE_MS)

    def refresh(self):
        """Cancel stale work and classify the current view in a new background task."""
        if not self.active or self.source_layer is None:
            return
        if self.task is not None:
            self.task.cancel()
            self.superseded += 1
        layer = self.source_layer
        to_layer = QgsCoordinateTransform(self.canvas.mapSettings().destinationCrs(), layer.crs(), QgsProject.instance())
        extent: QgsRectangle = to_layer.transformBoundingBox(self.canvas.extent())
        screen_px = extent.width() / max(self.canvas.width(), 1) / layer.rasterUnitsPerPixelX()
        self.count += 1
        self.task = LiveTask(self.session, (extent.xMinimum(), extent.yMinimum(), extent.xMaximum(), extent.yMaximum()),
                             screen_px, self.session.folder / f"view{self.count}.tif")
        self.task.progressChanged.connect(lambda p: self.progress.emit(int(p)))
        self.session.tasks.add(self.task)
        QgsApplication.taskManager().addTask(self.task)

    def task_finished(self, task: LiveTask, ok: bool):
        if task is not self.task or not self.active:
            return  # stale: a newer view was requested meanwhile
        self.task = None
        if task.error:
            self.status.emit(f"Live: error — {task.error}")
            QgsMessageLog.logMessage(f"Live classification failed: {task.error}", "Landcover")
            return
        if not ok:
            return
        view = task.view
        seconds = time.perf_counter() - self.changed_at
        self.changed_at = None
        if view is None:
            self.status.emit("Live: the view does not show the raster")
            return
        self.show(task.path)
        self.last_seconds = seconds
        live = self.session.classifier()
        self.status.emit(
            f"Live: {live.model.meta.name or live.model.path.stem} on {live.model.provider}, {view.level.note}.\n"
            f"Last view {seconds:.2f} s ({view.computed} tiles classified, {view.cached} from cache; "
            f"cache {self.cache.bytes / 2 ** 20:.0f} MB).")
        self.progress.emit(100)
        self.view_done.emit(seconds)

    def show(self, path: Path):
        """Point the live layer at ``path`` (creating it above the source layer the first time), styled
        with the model's legend at the dock's opacity."""
        project = QgsProject.instance()
        if self.layer is None:
            self.layer = QgsRasterLayer(str(path), LAYER_NAME, "gdal")
            self.live_layer_changed.emit(self.layer)
            project.addMapLayer(self.layer, False)
            root = project.layerTreeRoot()
            source = root.findLayer(self.source_layer.id()) if self.source_layer else None
            parent = source.parent() if source else root
            node = parent.insertLayer(parent.children().index(source) if source else 0, self.layer)
            expanded = True
        else:
            node = project.layerTreeRoot().findLayer(self.layer.id())
            expanded = node.isExpanded() if node else True
            self.layer.setDataSource(str(path), LAYER_NAME, "gdal")  # collapses the legend: keep its state
        self.layer.loadNamedStyle(str(path.with_suffix(".qml")))
        self.layer.setOpacity(self.opacity)
        if node:
            node.setExpanded(expanded)
        self.layer.triggerRepaint()
        for old in path.parent.glob("view*"):  # earlier views' files (the shown one is kept)
            if not old.name.startswith(f"{path.stem}."):
                try:
                    old.unlink()
                except OSError:  # still open elsewhere (Windows): removed with the folder at the end
                    pass

    def stop(self, message: str = "Live: off"):
        """Switch live mode off: cancel work, remove the live layer and its files."""
        if not self.active:
            return
        self.timer.stop()
        self.canvas.extentsChanged.disconnect(self.view_changed)
        QgsProject.instance().layersWillBeRemoved.disconnect(self.layers_removed)
        session = self.session
        self.session = self.task = self.changed_at = None
        session.controller = None
        if self.layer is not None:
            self.live_layer_changed.emit(None)
            QgsProject.instance().removeMapLayer(self.layer.id())
            self.layer = None
        for task in session.tasks:
            task.cancel()  # each stops at its next batch; the last to finish closes the session
        if not session.tasks:
            session.close()
        self.source_layer = self.model_path = self.device = None
        self.status.emit(message)
