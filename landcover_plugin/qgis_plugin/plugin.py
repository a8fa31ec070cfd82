"""The QGIS plugin object returned by ``classFactory``."""
from qgis.core import QgsApplication
from qgis.PyQt.QtGui import QIcon
from qgis.PyQt.QtWidgets import QAction

from .. import resources  # noqa: F401  (registers the compiled Qt resources: icons)
from .base import ICON
from .provider import LandcoverProvider


class LandcoverPlugin:
    def __init__(self, iface):
        self.iface = iface
        self.provider = None
        self.action = None
        self.diagnostics_action = None

    def initProcessing(self):  # noqa: N802 (QGIS' name)
        if self.provider is not None:
            return
        self.provider = LandcoverProvider()
        QgsApplication.processingRegistry().addProvider(self.provider)

    def initGui(self):  # noqa: N802
        self.initProcessing()
        self.action = QAction(QIcon(ICON), "Classify land cover…", self.iface.mainWindow())
        self.action.triggered.connect(self.open_classify)
        self.iface.addPluginToRasterMenu("&Landcover", self.action)
        self.iface.addRasterToolBarIcon(self.action)
        self.diagnostics_action = QAction("Diagnostics…", self.iface.mainWindow())
        self.diagnostics_action.triggered.connect(self.show_diagnostics)
        self.iface.addPluginToRasterMenu("&Landcover", self.diagnostics_action)

    def open_classify(self):
        import processing

        processing.execAlgorithmDialog("landcover:classify")

    def show_diagnostics(self):
        from qgis.PyQt.QtCore import Qt
        from qgis.PyQt.QtWidgets import QMessageBox

        from ..diagnostics import diagnostics_text

        box = QMessageBox(QMessageBox.Information, "Landcover diagnostics", diagnostics_text(), QMessageBox.Close,
                          self.iface.mainWindow())
        box.setTextInteractionFlags(Qt.TextSelectableByMouse)  # copyable into bug reports
        box.exec_()

    def unload(self):
        if self.action is not None:
            self.iface.removePluginRasterMenu("&Landcover", self.action)
            self.iface.removePluginRasterMenu("&Landcover", self.diagnostics_action)
            self.iface.removeRasterToolBarIcon(self.action)
            self.action = self.diagnostics_action = None
        if self.provider is not None:
            QgsApplication.processingRegistry().removeProvider(self.provider)
            self.provider = None
