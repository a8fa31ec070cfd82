"""Corrections drawn on the canvas: a class picker (the model's legend), a polygon tool and a brush, and the
scratch GeoPackage layer *Landcover corrections* they go into.

The layer is an ordinary GeoPackage in the QGIS profile (one per source raster), in the raster's CRS,
with one text field ``class`` holding the class name, styled with the model's colours: users can edit,
move, delete or add areas with QGIS' own editing tools as well, and the file is what
``landcover finetune`` trains on.
"""
from __future__ import annotations

import hashlib
from pathlib import Path

from qgis.core import (
    QgsApplication,
    QgsCategorizedSymbolRenderer,
    QgsCoordinateTransform,
    QgsFeature,
    QgsFillSymbol,
    QgsGeometry,
    QgsPointXY,
    QgsProject,
    QgsRendererCategory,
    QgsVectorLayer,
    QgsWkbTypes,
)
from qgis.gui import QgsMapTool, QgsRubberBand
from qgis.PyQt.QtCore import Qt, pyqtSignal
from qgis.PyQt.QtGui import QColor, QIcon, QPixmap
from qgis.PyQt.QtWidgets import (
    QButtonGroup,
    QDialog,
    QDialogButtonBox,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QRadioButton,
    QSpinBox,
    QVBoxLayout,
)

LAYER_NAME = "Landcover corrections"
FIELD = "class"
FILL_ALPHA = 110


def corrections_folder() -> Path:
    folder = Path(QgsApplication.qgisSettingsDirPath()) / "landcover" / "corrections"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def corrections_path(raster_source: str) -> Path:
    """The corrections GeoPackage of a source raster: ``NAME_HASH.gpkg`` in the profile."""
    digest = hashlib.sha1(raster_source.encode()).hexdigest()[:8]
    stem = Path(raster_source.split("|")[0]).stem or "layer"
    return corrections_folder() / f"{stem}_{digest}.gpkg"


def create_gpkg(path: Path, crs_wkt: str) -> None:
    """An empty polygon GeoPackage with the text field ``class`` (OGR, so it exists before QGIS opens it)."""
    from osgeo import ogr, osr

    srs = osr.SpatialReference()
    if crs_wkt:
        srs.ImportFromWkt(crs_wkt)
    ds = ogr.GetDriverByName("GPKG").CreateDataSource(str(path))
    layer = ds.CreateLayer("corrections", srs if crs_wkt else None, ogr.wkbMultiPolygon)
    layer.CreateField(ogr.FieldDefn(FIELD, ogr.OFTString))
    ds = None


def style(layer: QgsVectorLayer, names, colors) -> None:
    """Categories by class name in the model's colours (translucent fill, solid outline)."""
    categories = []
    for name, color in zip(names, colors):
        fill = QColor(color)
        fill.setAlpha(FILL_ALPHA)
        symbol = QgsFillSymbol.createSimple({"color": fill.name(QColor.HexArgb), "outline_color": QColor(color).name(),
                                             "outline_width": "0.6"})
        categories.append(QgsRendererCategory(name, symbol, name))
    layer.setRenderer(QgsCategorizedSymbolRenderer(FIELD, categories))
    layer.triggerRepaint()


def corrections_layer(raster, names, colors) -> QgsVectorLayer:
    """The corrections layer of ``raster`` (a ``QgsRasterLayer``): the one in the project, or its GeoPackage
    (created when missing) added on top of the layer tree; styled with the model's classes."""
    path = corrections_path(raster.source())
    project = QgsProject.instance()
    for layer in project.mapLayersByName(LAYER_NAME):
        if Path(layer.source().split("|")[0]) == path:
            style(layer, names, colors)
            return layer
    if not path.exists():
        create_gpkg(path, raster.crs().toWkt())
    layer = QgsVectorLayer(str(path), LAYER_NAME, "ogr")
    project.addMapLayer(layer, False)
    project.layerTreeRoot().insertLayer(0, layer)  # on top: above the live layer, where the user draws
    style(layer, names, colors)
    return layer


def add_area(layer: QgsVectorLayer, geometry: QgsGeometry, class_name: str, canvas_crs) -> bool:
    """Add ``geometry`` (canvas CRS) as an area of ``class_name``: into the edit buffer when the user is
    editing the layer, else straight into the file. Returns whether it was added."""
    geometry = QgsGeometry(geometry)
    if canvas_crs != layer.crs():
        geometry.transform(QgsCoordinateTransform(canvas_crs, layer.crs(), QgsProject.instance()))
    if geometry.isEmpty() or not geometry.isGeosValid():
        geometry = geometry.makeValid()
    geometry.convertToMultiType()
    feature = QgsFeature(layer.fields())
    feature.setAttribute(FIELD, class_name)
    feature.setGeometry(geometry)
    if layer.isEditable():
        ok = layer.addFeature(feature)
    else:
        ok, _ = layer.dataProvider().addFeatures([feature])
        layer.updateExtents()
    layer.triggerRepaint()
    return bool(ok)


class DrawingTool(QgsMapTool):
    """A map tool that draws an area as a rubber band in the picked class's colour and emits it."""

    drawn = pyqtSignal(object)  # QgsGeometry in the canvas CRS

    def __init__(self, canvas):
        super().__init__(canvas)
        self.band = QgsRubberBand(canvas, QgsWkbTypes.PolygonGeometry)
        self.points: list[QgsPointXY] = []
        self.setCursor(Qt.CrossCursor)

    def set_color(self, color: str):
        fill = QColor(color)
        fill.setAlpha(90)
        self.band.setFillColor(fill)
        self.band.setStrokeColor(QColor(color))

    def reset(self):
        self.points = []
        self.band.reset(QgsWkbTypes.PolygonGeometry)

    def deactivate(self):
        self.reset()
        super().deactivate()


class PolygonTool(DrawingTool):
    """Click the corners; right-click (or double-click) closes the polygon; Esc drops it."""

    def __init__(self, canvas):
        super().__init__(canvas)
        self.band.setStrokeColor(QColor(255, 0, 255))
        self.band.setWidth(2)

    def canvasPressEvent(self, event):  # noqa: N802 (QGIS' name)
        if event.button() == Qt.RightButton:
            self.finish()
            return
        self.points.append(event.mapPoint())
        self._show()

    def canvasMoveEvent(self, event):  # noqa: N802
        if self.points:
            self._show(event.mapPoint())

    def canvasDoubleClickEvent(self, event):  # noqa: N802
        self.finish()

    def keyPressEvent(self, event):  # noqa: N802
        if event.key() == Qt.Key_Escape:
            self.reset()

    def _show(self, floating: QgsPointXY | None = None):
        points = self.points + ([floating] if floating is not None else [])
        self.band.setToGeometry(QgsGeometry.fromPolygonXY([points]) if len(points) >= 3 else
                                QgsGeometry.fromPolylineXY(points), None)

    def finish(self):
        points = []
        for p in self.points:  # a double-click also pressed: drop repeated corners
            if not points or p.distance(points[-1]) > 0:
                points.append(p)
        if len(points) >= 3:
            self.drawn.emit(QgsGeometry.fromPolygonXY([points]))
        self.reset()


class BrushTool(DrawingTool):
    """Drag to paint a stroke ``size`` screen pixels wide; it becomes the stroke's buffer polygon."""

    def __init__(self, canvas, size: int = 24):
        super().__init__(canvas)
        self.size = size

    def radius(self) -> float:
        return self.size / 2 * self.canvas().mapUnitsPerPixel()

    def stroke(self) -> QgsGeometry:
        line = (QgsGeometry.fromPointXY(self.points[0]) if len(self.points) == 1 else
                QgsGeometry.fromPolylineXY(self.points))
        return line.buffer(self.radius(), 6)

    def canvasPressEvent(self, event):  # noqa: N802
        if event.button() == Qt.LeftButton:
            self.points = [event.mapPoint()]
            self.band.setToGeometry(self.stroke(), None)

    def canvasMoveEvent(self, event):  # noqa: N802
        if self.points:
            self.points.append(event.mapPoint())
            self.band.setToGeometry(self.stroke(), None)

    def canvasReleaseEvent(self, event):  # noqa: N802
        if self.points:
            self.points.append(event.mapPoint())
            self.drawn.emit(self.stroke())
        self.reset()


def swatch(color: str) -> QIcon:
    pixmap = QPixmap(16, 16)
    pixmap.fill(QColor(color))
    return QIcon(pixmap)


class CorrectDialog(QDialog):
    """The class picker and drawing tools. Areas drawn go into ``layer``; ``changed`` is emitted after each."""

    changed = pyqtSignal()

    def __init__(self, iface, layer: QgsVectorLayer, names, colors, parent=None):
        super().__init__(parent or iface.mainWindow())
        self.setObjectName("LandcoverCorrect")
        self.setWindowTitle("Correct the land cover")
        self.setWindowFlags(self.windowFlags() | Qt.Tool)
        self.iface, self.canvas, self.layer = iface, iface.mapCanvas(), layer
        self.names, self.colors = list(names), list(colors)
        self.previous_tool = self.canvas.mapTool()
        self.polygon, self.brush = PolygonTool(self.canvas), BrushTool(self.canvas)
        for tool in (self.polygon, self.brush):
            tool.drawn.connect(self.add)
        self.classes = QListWidget()
        self.classes.setObjectName("classes")
        for name, color in zip(self.names, self.colors):
            QListWidgetItem(swatch(color), name, self.classes)
        self.classes.currentRowChanged.connect(self.class_changed)
        self.polygon_button = QRadioButton("Polygon: click the corners, right-click to close")
        self.polygon_button.setObjectName("polygon")
        self.brush_button = QRadioButton("Brush: drag over the area")
        self.brush_button.setObjectName("brush")
        group = QButtonGroup(self)
        group.addButton(self.polygon_button)
        group.addButton(self.brush_button)
        self.polygon_button.setChecked(True)
        self.brush_size = QSpinBox()
        self.brush_size.setObjectName("brush_size")
        self.brush_size.setRange(4, 200)
        self.brush_size.setValue(24)
        self.brush_size.setSuffix(" px")
        self.brush_size.valueChanged.connect(lambda v: setattr(self.brush, "size", v))
        group.buttonToggled.connect(lambda *_: self.activate())
        brush_row = QHBoxLayout()
        brush_row.addWidget(self.brush_button, 1)
        brush_row.addWidget(self.brush_size)
        self.counts = QLabel()
        self.counts.setObjectName("counts")
        self.counts.setWordWrap(True)
        undo = QPushButton("Undo last")
        undo.clicked.connect(self.undo)
        buttons = QDialogButtonBox(QDialogButtonBox.Close)
        buttons.addButton(undo, QDialogButtonBox.ActionRole)
        buttons.rejected.connect(self.close)
        layout = QVBoxLayout(self)
        hint = QLabel("Pick the class that is really there, then draw where the map is wrong (or right but unsure):")
        hint.setWordWrap(True)
        layout.addWidget(hint)
        layout.addWidget(self.classes, 1)
        layout.addWidget(self.polygon_button)
        layout.addLayout(brush_row)
        layout.addWidget(self.counts)
        layout.addWidget(buttons)
        self.classes.setCurrentRow(0)
        self.update_counts()
        self.resize(340, 120 + 20 * len(self.names) + 150)
        window = iface.mainWindow().geometry()
        self.move(window.x() + 12, window.y() + window.height() - self.height() - 60)  # bottom left, off the canvas

    def tool(self):
        return self.brush if self.brush_button.isChecked() else self.polygon

    def activate(self):
        self.canvas.setMapTool(self.tool())

    def class_changed(self, row: int):
        for tool in (self.polygon, self.brush):
            tool.set_color(self.colors[row])
        self.activate()

    def current_class(self) -> str:
        return self.names[max(0, self.classes.currentRow())]

    def add(self, geometry: QgsGeometry):
        if add_area(self.layer, geometry, self.current_class(), self.canvas.mapSettings().destinationCrs()):
            self.update_counts()
            self.changed.emit()

    def undo(self):
        ids = sorted(f.id() for f in self.layer.getFeatures())
        if not ids:
            return
        if self.layer.isEditable():
            self.layer.deleteFeature(ids[-1])
        else:
            self.layer.dataProvider().deleteFeatures([ids[-1]])
        self.layer.triggerRepaint()
        self.update_counts()
        self.changed.emit()

    def update_counts(self):
        counts: dict[str, int] = {}
        for feature in self.layer.getFeatures():
            counts[str(feature[FIELD])] = counts.get(str(feature[FIELD]), 0) + 1
        total = sum(counts.values())
        self.counts.setText(f"{total} area{'s' if total != 1 else ''} drawn" + (": " + ", ".join(
            f"{n} {c}" for n, c in counts.items()) if counts else " — draw at least a few per class you correct"))

    def showEvent(self, event):  # noqa: N802
        current = self.canvas.mapTool()
        if current not in (self.polygon, self.brush):
            self.previous_tool = current
        self.activate()
        super().showEvent(event)

    def closeEvent(self, event):  # noqa: N802
        self.release_tools()
        super().closeEvent(event)

    def release_tools(self):
        if self.canvas.mapTool() in (self.polygon, self.brush):
            if self.previous_tool is not None:
                self.canvas.setMapTool(self.previous_tool)
            else:
                self.canvas.unsetMapTool(self.canvas.mapTool())
