"""The QGIS plugin object returned by ``classFactory``: Processing provider, menu, toolbar, the Live
dock, the model manager and the Diagnostics dialog."""
from qgis.core import QgsApplication
from qgis.PyQt.QtCore import Qt
from qgis.PyQt.QtGui import QIcon
from qgis.PyQt.QtWidgets import QAction

from .. import resources  # noqa: F401  (registers the compiled Qt resources: icons)
from .base import ICON
from .provider import LandcoverProvider

MENU = "&Landcover"
LIVE_ICON = ":/plugins/landcover/icons/live.svg"
MODELS_ICON = ":/plugins/landcover/icons/models.svg"


class LandcoverPlugin:
    def __init__(self, iface):
        self.iface = iface
        self.provider = None
        self.actions = []
        self.toolbar_actions = []
        self.dock = None
        self.live_action = None

    def initProcessing(self):  # noqa: N802 (QGIS' name)
        if self.provider is not None:
            return
        self.provider = LandcoverProvider()
        QgsApplication.processingRegistry().addProvider(self.provider)

    def _action(self, text, slot, icon=None, toolbar=False, checkable=False):
        window = self.iface.mainWindow()
        action = QAction(QIcon(icon), text, window) if icon else QAction(text, window)
        action.setCheckable(checkable)
        (action.toggled if checkable else action.triggered).connect(slot)
        self.iface.addPluginToRasterMenu(MENU, action)
        self.actions.append(action)
        if toolbar:
            self.iface.addRasterToolBarIcon(action)
            self.toolbar_actions.append(action)
        return action

    def initGui(self):  # noqa: N802
        self.initProcessing()
        self._action("Classify land cover…", self.open_classify, ICON, toolbar=True)
        self.live_action = self._action("Live land cover", self.show_dock, LIVE_ICON, toolbar=True, checkable=True)
        self._action("Models…", self.manage_models, MODELS_ICON)
        self._action("Diagnostics…", self.show_diagnostics)

    def open_classify(self):
        import processing

        processing.execAlgorithmDialog("landcover:classify")

    def show_dock(self, visible: bool):
        if self.dock is None:
            from .dock import LandcoverDock

            self.dock = LandcoverDock(self.iface, self.manage_models, self.show_diagnostics)
            self.iface.addDockWidget(Qt.RightDockWidgetArea, self.dock)
            self.dock.visibilityChanged.connect(self.live_action.setChecked)
        self.dock.setVisible(visible)

    def manage_models(self):
        from .models_dialog import ModelManager

        changed = self.dock.fill_models if self.dock is not None else None
        ModelManager(self.iface.mainWindow(), changed).exec_()

    def diagnostics_box(self):
        """The Diagnostics dialog (not shown): versions, devices, providers, bundled and added models."""
        from pathlib import Path

        from qgis.PyQt.QtWidgets import QMessageBox

        from ..diagnostics import diagnostics, diagnostics_text
        from .settings import added_models

        added = {name: Path(path) for name, path in added_models().items()}
        box = QMessageBox(QMessageBox.Information, "Landcover diagnostics", diagnostics_text(diagnostics(added)),
                          QMessageBox.Close, self.iface.mainWindow())
        box.setTextInteractionFlags(Qt.TextSelectableByMouse)  # copyable into bug reports
        return box

    def show_diagnostics(self):
        self.diagnostics_box().exec_()

    def unload(self):
        if self.dock is not None:
            self.dock.close_live()
            self.iface.removeDockWidget(self.dock)
            self.dock.deleteLater()
            self.dock = None
        for action in self.actions:
            self.iface.removePluginRasterMenu(MENU, action)
        for action in self.toolbar_actions:
            self.iface.removeRasterToolBarIcon(action)
        self.actions, self.toolbar_actions, self.live_action = [], [], None
        if self.provider is not None:
            QgsApplication.processingRegistry().removeProvider(self.provider)
            self.provider = None
