"""Run inside the QGIS desktop (``qgis --code docs/screenshot_qgis.py``, see ``make screenshots``):
open an input raster and its class raster (styled by its .qml), show the input in a second map view
beside the main canvas, and save a screenshot of the whole QGIS window, then quit.

Environment: LANDCOVER_INPUT, LANDCOVER_CLASSES, LANDCOVER_SCREENSHOT (PNG path).
"""
import os

from qgis.core import QgsApplication, QgsMapThemeCollection, QgsProject, QgsRasterLayer
from qgis.PyQt.QtCore import Qt, QTimer
from qgis.PyQt.QtWidgets import QDockWidget
from qgis.utils import iface

source = QgsRasterLayer(os.environ["LANDCOVER_INPUT"], "input (RGB 0.2 m)")
classes = QgsRasterLayer(os.environ["LANDCOVER_CLASSES"], "land cover (flair-rgb)")
classes.loadNamedStyle(os.environ["LANDCOVER_CLASSES"][:-4] + ".qml")
QgsProject.instance().addMapLayer(source)
QgsProject.instance().addMapLayer(classes)
# A map theme with only the input visible drives the second view (views otherwise follow the layer tree).
project = QgsProject.instance()
node = project.layerTreeRoot().findLayer(classes.id())
node.setItemVisibilityChecked(False)
themes = project.mapThemeCollection()
themes.insert("input", QgsMapThemeCollection.createThemeFromCurrentState(project.layerTreeRoot(), iface.layerTreeView().layerTreeModel()))
node.setItemVisibilityChecked(True)
window = iface.mainWindow()
window.resize(1600, 1000)
window.showMaximized()
canvas = iface.mapCanvas()
canvas.setExtent(classes.extent())
view = iface.createNewMapCanvas("Input")
view.setTheme("input")
view.setDestinationCrs(source.crs())
view.setExtent(source.extent())
for dock in window.findChildren(QDockWidget):
    if dock.windowTitle() == "Browser":
        dock.hide()
    if dock.windowTitle() == "Input":
        window.addDockWidget(Qt.RightDockWidgetArea, dock)
        dock.setFloating(False)
        window.resizeDocks([dock], [int(window.width() * 0.36)], Qt.Horizontal)
iface.layerTreeView().expandAll()


def shoot():
    canvas.refreshAllLayers()
    view.refresh()
    QTimer.singleShot(4000, save)


def save():
    window.grab().save(os.environ["LANDCOVER_SCREENSHOT"])
    QgsApplication.exit(0)


QTimer.singleShot(3000, shoot)
