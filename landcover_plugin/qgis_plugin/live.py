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
from typing import TYPE_CHECKING

from qgis.core import QgsApplication, QgsCoordinateTransform, QgsMessageLog, QgsProject, QgsRasterLayer, QgsRectangle, QgsTask
from qgis.PyQt.QtCore import QObject, QTimer, pyqtSignal

from ..engine.grid import Grid
from ..engine.live import LiveClassifier, LiveView, TileCache, choose_level, write_view
from ..errors import Cancelled
from ..feedback import Feedback
from .provider_source import LayerInfo, ProviderSource, is_file_layer, layer_grid

if TYPE_CHECKING:
    from ..model.adapter import OnnxModel

DEBOUNCE_MS = 120  # wait for the map to settle before classifying
LAYER_NAME = "Landcover live"
REGRID = 0.10  # a web layer's grid is rebuilt when the view's ground scale differs from it by more than this


class TaskFeedback(Feedback):
    """The engine's feedback on a ``QgsTask``: progress and its cancel flag."""

    def __init__(self, task: QgsTask):
        self.task = task

    def progress(self, fraction: float) -> None:
        self.task.setProgress(100 * fraction)

    def is_cancelled(self) -> bool:
        return self.task.isCanceled()


class LiveTask(QgsTask):
    """Classifies one view in the background; when ``run`` ends, ``view`` is set (``None`` off the
    raster) or ``error`` holds the message. ``provider`` is a clone of the layer's data provider made in
    the main thread for this task (layers read through QGIS only)."""

    def __init__(self, session: LiveSession, bounds: tuple[float, float, float, float], screen_units: float,
                 path: Path, provider=None):
        super().__init__("Landcover live view", QgsTask.CanCancel | QgsTask.CancelWithoutPrompt)  # never holds up quitting QGIS
        self.session, self.bounds, self.screen_units, self.path, self.provider = session, bounds, screen_units, path, provider
        self.view: LiveView | None = None
        self.error: str | None = None
        self.note = ""
        self.reading = None  # the source this task reads while it holds the classifier's lock

    def run(self):
        try:
            live = self.session.classifier(self.bounds)
            with live.lock:  # this view's turn: read through this task's provider clone
                if self.provider is not None:
                    live.source.bind(self.provider)
                self.reading = live.source
                if self.isCanceled():
                    return False
                bounds = self.bounds
                if live.source.georeferenced:
                    screen_px = self.screen_units / abs(live.source.grid.geotransform[1])
                else:  # QGIS shows a raster without geotransform with rows going down from y = 0 to -height
                    screen_px, bounds = self.screen_units, (bounds[0], -bounds[3], bounds[2], -bounds[1])
                level = choose_level(live.source.gsd_m, live.model.meta.gsd_m, screen_px, self.session.gsd_option)
                self.view = live.classify_view(bounds, level, TaskFeedback(self))
                self.reading = None
            if self.view is not None:
                write_view(self.view, live.model.meta, self.path)
            if self.session.file is None:
                self.note = f" Reads the {live.source.band_note}."
            return True
        except Cancelled:
            return False
        except Exception as exc:  # noqa: BLE001 — reported in the dock and the log, never raised into QGIS' task thread
            self.error = str(exc) or type(exc).__name__
            return False

    def cancel(self):
        """Cancel the view; a read waiting on a web service is aborted too."""
        super().cancel()
        reading = self.reading
        if reading is not None and hasattr(reading, "cancel_reads"):
            reading.cancel_reads()

    def finished(self, ok):
        self.session.task_finished(self, ok)


def _pixel_width(grid: Grid) -> float:
    """Map units per pixel along x of a layer's grid (``layer_grid`` always georeferences it)."""
    if grid.geotransform is None:
        raise RuntimeError("a live layer grid without a geotransform")
    return grid.geotransform[1]


class LiveSession:
    """The layer and model being classified live (the model and classifier are made on a worker
    thread at first use), the folder of written views, and the tasks still running; closed once its
    last task ends."""

    def __init__(self, layer: QgsRasterLayer, model_path: Path, device: str, cache: TileCache):
        self.info = LayerInfo.of(layer)
        self.file = layer.source() if is_file_layer(layer) else None
        self.first_provider = None if self.file else layer.dataProvider().clone()  # to build the source; tasks bind theirs
        self.model_path, self.device, self.cache = model_path, device, cache
        self.gsd_option = "auto"
        self.folder = Path(tempfile.mkdtemp(prefix="landcover-live-"))
        self.controller: LiveController | None = None
        self.tasks: set[LiveTask] = set()  # Python must hold running tasks, or their run() is lost
        self._live: LiveClassifier | None = None
        self._model: OnnxModel | None = None
        self._lock = threading.Lock()

    def classifier(self, bounds: tuple[float, float, float, float]) -> LiveClassifier:
        """The classifier for a view (made on first use; for a layer read through QGIS, rebuilt when the
        view's ground scale has moved away from its grid's). The caller binds its provider clone while
        it holds the classifier's lock."""
        from ..engine.reader import open_source
        from ..model.adapter import OnnxModel

        with self._lock:
            if self._model is None:
                self._model = OnnxModel(self.model_path, self.device)
            meta = self._model.meta
            if self.file is not None:
                if self._live is None:
                    self._live = LiveClassifier(open_source(self.file, self._model.num_bands, meta.input_bands),
                                                self._model, self.cache)
                return self._live
            centre = ((bounds[0] + bounds[2]) / 2, (bounds[1] + bounds[3]) / 2)
            gsd = meta.gsd_m or (bounds[2] - bounds[0]) / 1000  # a model without GSD: about the first view's resolution
            if self._live is not None:
                probe = layer_grid(self.info, self.info.extent, gsd, centre, max_pixels=None)
                if abs(_pixel_width(probe) / _pixel_width(self._live.source.grid) - 1) > REGRID:
                    with self._live.lock:
                        self._live.close()
                    self._live = None
            if self._live is None:
                grid = layer_grid(self.info, self.info.extent, gsd, centre, max_pixels=None)
                needed = len(meta.input_bands) if meta.input_bands else self._model.num_bands
                self._live = LiveClassifier(ProviderSource(self.info, grid, needed, meta.input_bands, self.first_provider,
                                                           gsd_m=gsd), self._model, self.cache)
            return self._live

    @property
    def model(self):
        return self._model

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
        self.session: LiveSession | None = None
        self.source_layer: QgsRasterLayer | None = None
        self.model_path: str | None = None
        self.device: str | None = None
        self.layer: QgsRasterLayer | None = None
        self.task: LiveTask | None = None
        self.changed_at: float | None = None
        self.count = 0  # views requested
        self.superseded = 0  # views whose running task a newer view cancelled
        self.last_seconds: float | None = None
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
        self.session = LiveSession(layer, Path(model_path), device, self.cache)
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
            for task in list(self.session.tasks):
                task.cancel()
            QTimer.singleShot(0, self._source_gone)

    def _source_gone(self):
        self.stop("Live: off — the source layer was removed from the project")
        self.switched_off.emit()

    def view_changed(self):
        if self.changed_at is None:
            self.changed_at = time.perf_counter()
        self.timer.start(DEBOUNCE_MS)

    def refresh(self) -> None:
        """Cancel stale work and classify the current view in a new background task."""
        if self.session is None or self.source_layer is None:  # not active, or the source layer is gone
            return
        if self.task is not None:
            self.task.cancel()
            self.superseded += 1
        layer = self.source_layer
        to_layer = QgsCoordinateTransform(self.canvas.mapSettings().destinationCrs(), layer.crs(), QgsProject.instance())
        extent: QgsRectangle = to_layer.transformBoundingBox(self.canvas.extent())
        screen_units = extent.width() / max(self.canvas.width(), 1)  # layer CRS units per screen pixel
        provider = None if self.session.file else layer.dataProvider().clone()
        self.count += 1
        self.task = LiveTask(self.session, (extent.xMinimum(), extent.yMinimum(), extent.xMaximum(), extent.yMaximum()),
                             screen_units, self.session.folder / f"view{self.count}.tif", provider)
        self.task.progressChanged.connect(lambda p: self.progress.emit(int(p)))
        self.session.tasks.add(self.task)
        QgsApplication.taskManager().addTask(self.task)

    def task_finished(self, task: LiveTask, ok: bool):
        if task is not self.task or self.session is None:
            return  # stale: a newer view was requested meanwhile (or live mode is off)
        self.task = None
        if task.error:
            self.status.emit(f"Live: error — {task.error}")
            QgsMessageLog.logMessage(f"Live classification failed: {task.error}", "Landcover")
            return
        if not ok:
            return
        view = task.view
        if self.changed_at is None:  # view_changed() sets it before any view's task starts
            raise RuntimeError("a live view finished with no view change pending")
        seconds = time.perf_counter() - self.changed_at
        self.changed_at = None
        if view is None:
            self.status.emit("Live: the view does not show the raster")
            return
        self.show(task.path)
        self.last_seconds = seconds
        model = self.session.model
        self.status.emit(
            f"Live: {model.meta.name or model.path.stem} on {model.provider}, {view.level.note}.{task.note}\n"
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
        session = self.session
        if session is None:  # not active
            return
        self.timer.stop()
        self.canvas.extentsChanged.disconnect(self.view_changed)
        QgsProject.instance().layersWillBeRemoved.disconnect(self.layers_removed)
        self.session = self.task = self.changed_at = None
        session.controller = None
        if self.layer is not None:
            self.live_layer_changed.emit(None)
            QgsProject.instance().removeMapLayer(self.layer.id())
            self.layer = None
        for task in list(session.tasks):
            task.cancel()  # each stops at its next batch; the last to finish closes the session
        if not session.tasks:
            session.close()
        self.source_layer = self.model_path = self.device = None
        self.status.emit(message)
