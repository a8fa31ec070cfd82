"""Run inside the QGIS desktop (``qgis --code docs/screenshot_change.py``): the AFTER image with the
styled change layer of ``landcover change`` above it (unchanged pixels transparent, the legend listing
the transitions present) in the main canvas, the BEFORE image in a second map view, and a screenshot
of the whole QGIS window; then quit.

Environment: LANDCOVER_BEFORE, LANDCOVER_AFTER, LANDCOVER_CHANGE (the change GeoTIFF, its .qml
beside it), LANDCOVER_SCREENSHOT (PNG path). Open copies of rasters (QGIS writes .aux.xml beside them).
"""
import os

from qgis.core import QgsApplication, QgsMapThemeCollection, QgsProject, QgsRasterLayer, QgsRectangle
from qgis.PyQt.QtCore import Qt, QTimer
from qgis.PyQt.QtWidgets import QDockWidget
from qgis.utils import iface

project = QgsProject.instance()
before = QgsRasterLayer(os.environ["LANDCOVER_BEFORE"], "BEFORE (image)")
after = QgsRasterLayer(os.environ["LANDCOVER_AFTER"], "AFTER (image)")
change = QgsRasterLayer(os.environ["LANDCOVER_CHANGE"], "Land-cover change")
message, ok = change.loadNamedStyle(os.environ["LANDCOVER_CHANGE"][:-4] + ".qml")
assert ok, message
change.renderer().setOpacity(0.55)  # the AFTER image shows through the changes
for layer in (before, after, change):
    project.addMapLayer(layer)
root = project.layerTreeRoot()
# the second view shows BEFORE only (a map theme); the main canvas AFTER under the change layer
for layer in (after, change):
    root.findLayer(layer.id()).setItemVisibilityChecked(False)
project.mapThemeCollection().insert("before", QgsMapThemeCollection.createThemeFromCurrentState(
    root, iface.layerTreeView().layerTreeModel()))
for layer in (after, change):
    root.findLayer(layer.id()).setItemVisibilityChecked(True)
root.findLayer(before.id()).setItemVisibilityChecked(False)
window = iface.mainWindow()
window.resize(1600, 1000)
window.showMaximized()
canvas = iface.mapCanvas()
full = change.extent()  # the central two thirds: the pasted block and its surroundings
dx, dy = full.width() / 6, full.height() / 6
centre = QgsRectangle(full.xMinimum() + dx, full.yMinimum() + dy, full.xMaximum() - dx, full.yMaximum() - dy)
view = iface.createNewMapCanvas("BEFORE")
view.setTheme("before")
view.setDestinationCrs(before.crs())
for dock in window.findChildren(QDockWidget):
    if dock.windowTitle() == "Browser":
        dock.hide()
    if dock.windowTitle() == "BEFORE":
        window.addDockWidget(Qt.RightDockWidgetArea, dock)
        dock.setFloating(False)
        window.resizeDocks([dock], [int(window.width() * 0.32)], Qt.Horizontal)
iface.layerTreeView().expandAll()


def shoot():
    canvas.setExtent(centre)
    view.setExtent(centre)
    canvas.refreshAllLayers()
    view.refresh()
    QTimer.singleShot(4000, save)


def save():
    window.grab().save(os.environ["LANDCOVER_SCREENSHOT"])
    QgsApplication.exit(0)


QTimer.singleShot(3000, shoot)
