"""The Landcover dock: choose a raster layer and a model, switch Live on, and see what runs where."""
from __future__ import annotations

from qgis.core import QgsMapLayerProxyModel
from qgis.gui import QgsMapLayerComboBox, QgsOpacityWidget
from qgis.PyQt.QtCore import Qt, QTimer
from qgis.PyQt.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDockWidget,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from ..errors import LandcoverError
from . import settings
from .finetune_task import ImprovePanel
from .live import LiveController

DEVICES = ["auto", "cpu", "cuda"]


class LandcoverDock(QDockWidget):
    """Live classification controls. ``manage_models`` and ``show_diagnostics`` are the plugin's
    callbacks for the two buttons."""

    def __init__(self, iface, manage_models, show_diagnostics):
        super().__init__("Landcover", iface.mainWindow())
        self.setObjectName("LandcoverDock")
        self.controller = LiveController(iface, settings.get("live/cache_mb"))
        body = QWidget()
        form = QFormLayout()
        self.layer_box = QgsMapLayerComboBox()
        self.layer_box.setFilters(QgsMapLayerProxyModel.RasterLayer)
        # the live layer is an output, never a source (the list holds layer pointers: cleared before it goes)
        self.controller.live_layer_changed.connect(lambda layer: self.layer_box.setExceptedLayerList([layer] if layer else []))
        form.addRow("Raster layer", self.layer_box)
        self.model_box = QComboBox()
        self.model_box.setObjectName("model")
        models_button = QPushButton("Models…")
        models_button.clicked.connect(manage_models)
        row = QHBoxLayout()
        row.addWidget(self.model_box, 1)
        row.addWidget(models_button)
        form.addRow("Model", row)
        self.device_box = QComboBox()
        self.device_box.addItems(DEVICES)
        self.device_box.setCurrentText(settings.get("live/device"))
        form.addRow("Device", self.device_box)
        self.cache_box = QSpinBox()
        self.cache_box.setRange(16, 8192)
        self.cache_box.setSuffix(" MB")
        self.cache_box.setValue(settings.get("live/cache_mb"))
        self.cache_box.setToolTip("Memory for finished live tiles; takes effect when Live is next switched on")
        form.addRow("Tile cache", self.cache_box)
        self.opacity = QgsOpacityWidget()
        self.opacity.setOpacity(settings.get("live/opacity"))
        self.controller.set_opacity(self.opacity.opacity())
        self.opacity.opacityChanged.connect(self.set_opacity)
        form.addRow("Opacity", self.opacity)
        self.live_box = QCheckBox("Live: classify the visible extent as the map moves")
        self.live_box.setObjectName("live")
        self.status = QLabel("Live: off")
        self.status.setObjectName("status")
        self.status.setWordWrap(True)
        self.status.setTextInteractionFlags(Qt.TextSelectableByMouse)
        self.bar = QProgressBar()
        self.bar.setRange(0, 100)
        diagnostics = QPushButton("Diagnostics…")
        diagnostics.clicked.connect(show_diagnostics)
        layout = QVBoxLayout(body)
        layout.addLayout(form)
        layout.addWidget(self.live_box)
        layout.addWidget(self.bar)
        layout.addWidget(self.status)
        self.improve = ImprovePanel(iface, self)  # corrections, Improve model, uncertain areas (finetune_task.py)
        layout.addWidget(self.improve)
        layout.addWidget(diagnostics)
        layout.addStretch(1)
        self.setWidget(body)
        self.fill_models()
        self.live_box.toggled.connect(self.switch)
        self.controller.status.connect(self.status.setText)
        self.controller.switched_off.connect(lambda: self.live_box.setChecked(False))
        self.controller.progress.connect(self.bar.setValue)
        # The layer list changes its indexes whenever a layer is added or removed (the live layer too):
        # react to the chosen layer, not to its index.
        self.layer_box.layerChanged.connect(self.restart)
        for box in (self.model_box, self.device_box):
            box.currentIndexChanged.connect(self.restart)

    def fill_models(self):
        """List bundled and added models, keeping the current (or saved) choice; bundled models the
        package lists but does not hold come last, fetched when Live starts with one (empty data)."""
        from ..model.remote import remote_models

        current = self.model_box.currentText() or settings.get("live/model")
        self.model_box.blockSignals(True)
        self.model_box.clear()
        models = settings.all_models()
        for name, path in models.items():
            self.model_box.addItem(name, str(path))
        for name, model in remote_models().items():
            if name not in models:
                self.model_box.addItem(name, "")
                self.model_box.setItemData(self.model_box.count() - 1, f"Downloaded when first used ({model.size / 1e6:.0f} MB)",
                                           Qt.ToolTipRole)
        index = self.model_box.findText(current)
        self.model_box.setCurrentIndex(max(index, 0))
        self.model_box.blockSignals(False)

    def model_path(self) -> str | None:
        """The chosen model's file, fetched first when the package lists it without holding it. Raises
        ``LandcoverError`` when that fails."""
        path = self.model_box.currentData()
        if path != "":
            return path
        from qgis.PyQt.QtWidgets import QApplication

        from ..model.remote import fetch, remote_models

        model = remote_models()[self.model_box.currentText()]
        self.status.setText(f"Live: downloading {model.name} ({model.size / 1e6:.1f} MB)…")

        def step(fraction: float):
            self.bar.setValue(int(100 * fraction))
            QApplication.processEvents()

        path = str(fetch(model, step))
        self.fill_models()
        return path

    def switch(self, on: bool):
        if not on:
            self.controller.stop()
            return
        layer = self.layer_box.currentLayer()
        if layer is None or self.model_box.currentData() is None:
            self.status.setText("Live: choose a raster layer and a model first")
            self.live_box.setChecked(False)
            return
        try:
            model_path = self.model_path()
        except LandcoverError as exc:
            self.status.setText(f"Live: {exc}")
            self.live_box.setChecked(False)
            return
        settings.put("live/model", self.model_box.currentText())
        settings.put("live/device", self.device_box.currentText())
        settings.put("live/cache_mb", self.cache_box.value())
        self.bar.setValue(0)
        self.controller.start(layer, model_path, self.device_box.currentText())

    def set_opacity(self, opacity: float):
        settings.put("live/opacity", opacity)
        self.controller.set_opacity(opacity)

    def restart(self, *_):
        """Start again with the dock's current choices, from the event loop: the signal that asks for it
        may come from inside QgsProject while it adds or removes a layer, and restarting removes the
        live layer."""
        if self.live_box.isChecked():
            QTimer.singleShot(0, self._restart_now)

    def _restart_now(self):
        if not self.live_box.isChecked() or (self.controller.active and self.controller.source_layer is None):
            return  # off, or switching itself off (its source layer was removed)
        if (self.controller.active and self.controller.source_layer is self.layer_box.currentLayer()
                and self.controller.model_path == self.model_box.currentData()
                and self.controller.device == self.device_box.currentText()):
            return  # nothing the classification depends on changed
        self.switch(True)

    def close_live(self):
        """Switch Live off and remove everything it and the Improve box added (on plugin unload)."""
        self.live_box.setChecked(False)
        self.controller.stop()
        self.improve.close()
