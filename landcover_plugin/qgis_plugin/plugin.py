"""The QGIS plugin object returned by ``classFactory``: Processing provider, menu, the Landcover
toolbar, the Live dock, the model manager, the Diagnostics dialog and the dependency installer.

While a required Python package is missing the plugin still loads: the dock, *Models…* and
*Classify land cover…* show the message with its *Install dependencies…* action, Diagnostics says
what is missing, and the Processing algorithms refuse to run with the same message."""
from qgis.core import QgsApplication
from qgis.PyQt.QtCore import Qt
from qgis.PyQt.QtGui import QIcon
from qgis.PyQt.QtWidgets import QAction, QDockWidget

from .. import resources  # noqa: F401  (registers the compiled Qt resources: icons)
from . import dependencies_ui
from .base import ICON
from .provider import LandcoverProvider

MENU = "&Landcover"
LIVE_ICON = ":/plugins/landcover/icons/live.svg"
MODELS_ICON = ":/plugins/landcover/icons/models.svg"


class MissingDock(QDockWidget):
    """The dock while a required package is missing: the message and *Install dependencies…*."""

    def __init__(self, parent):
        super().__init__("Landcover", parent)
        self.setObjectName("LandcoverDock")
        self.setWidget(dependencies_ui.MissingPanel(self))

    def close_live(self):
        pass


class LandcoverPlugin:
    def __init__(self, iface):
        self.iface = iface
        self.provider = None
        self.actions = []
        self.toolbar = None
        self.dock = None
        self.live_action = None
        self.dialogs = []  # non-modal dialogs kept alive

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
            self.toolbar.addAction(action)
        return action

    def initGui(self):  # noqa: N802
        self.initProcessing()
        dependencies_ui.register_url_handler()
        # a toolbar of its own: QGIS' Raster toolbar is hidden in a new profile
        self.toolbar = self.iface.addToolBar("Landcover")
        self.toolbar.setObjectName("LandcoverToolbar")
        self._action("Classify land cover…", self.open_classify, ICON, toolbar=True)
        self.live_action = self._action("Live land cover", self.show_dock, LIVE_ICON, toolbar=True, checkable=True)
        self._action("Models…", self.manage_models, MODELS_ICON, toolbar=True)
        self._action("Diagnostics…", self.show_diagnostics)
        self._action("Install dependencies…", self.install_dependencies)
        dependencies_ui.state.changed.connect(self.dependencies_changed)

    def _missing(self, title: str) -> bool:
        """Show the missing-dependency dialog instead of ``title`` when something required is missing."""
        if dependencies_ui.ready():
            return False
        dialog = dependencies_ui.MissingDialog(self.iface.mainWindow(), title)
        self.dialogs = [d for d in self.dialogs if d.isVisible()] + [dialog]
        dialog.show()
        return True

    def open_classify(self):
        if self._missing("Classify land cover"):
            return
        import processing

        processing.execAlgorithmDialog("landcover:classify")

    def show_dock(self, visible: bool):
        if self.dock is None:
            if dependencies_ui.ready():
                from .dock import LandcoverDock

                self.dock = LandcoverDock(self.iface, self.manage_models, self.show_diagnostics)
            else:
                self.dock = MissingDock(self.iface.mainWindow())
            self.iface.addDockWidget(Qt.RightDockWidgetArea, self.dock)
            self.dock.visibilityChanged.connect(self.live_action.setChecked)
        self.dock.setVisible(visible)

    def _remove_dock(self):
        self.dock.visibilityChanged.disconnect(self.live_action.setChecked)
        self.dock.close_live()
        self.iface.removeDockWidget(self.dock)
        self.dock.deleteLater()
        self.dock = None

    def dependencies_changed(self):
        """After an install or a removal: the dock becomes the Live dock (or the message) at once."""
        if self.dock is None:
            return
        if dependencies_ui.ready() == isinstance(self.dock, MissingDock):
            visible = self.dock.isVisible()
            self._remove_dock()
            if visible:
                self.show_dock(True)

    def manage_models(self):
        if self._missing("Models"):
            return
        from .models_dialog import ModelManager

        changed = self.dock.fill_models if self.dock is not None and hasattr(self.dock, "fill_models") else None
        ModelManager(self.iface.mainWindow(), changed).exec_()

    def diagnostics_box(self):
        """The Diagnostics dialog (not shown): dependencies, versions, devices, providers, models."""
        from .diagnostics_dialog import DiagnosticsDialog

        return DiagnosticsDialog(self.iface.mainWindow())

    def show_diagnostics(self):
        self.diagnostics_box().exec_()

    def install_dependencies(self):
        dependencies_ui.open_installer(self.iface.mainWindow(), repair=dependencies_ui.ready())

    def unload(self):
        dependencies_ui.state.changed.disconnect(self.dependencies_changed)
        dependencies_ui.unregister_url_handler()
        if self.dock is not None:
            self._remove_dock()
        for action in self.actions:
            self.iface.removePluginRasterMenu(MENU, action)
        if self.toolbar is not None:
            self.iface.mainWindow().removeToolBar(self.toolbar)
            self.toolbar.deleteLater()
            self.toolbar = None
        self.actions, self.live_action = [], None
        if self.provider is not None:
            QgsApplication.processingRegistry().removeProvider(self.provider)
            self.provider = None
