"""The MODEL parameter of the Landcover algorithms: a string (a model's name, or an ONNX file's path;
empty = the default model), shown in QGIS' dialogs as an editable list of the bundled and added
models' names with a browse button. The value stays a name or a path, so History, batch files and
saved models hold ``flair-rgb``, never a folder inside someone's profile."""
from __future__ import annotations

from qgis.core import QgsProcessingParameterString
from qgis.PyQt.QtWidgets import QComboBox, QFileDialog, QHBoxLayout, QToolButton, QWidget

try:  # the Processing plugin's GUI wrappers (absent in a bare QGIS application: the plain string field is used)
    from processing.gui.wrappers import DIALOG_MODELER, WidgetWrapper
except Exception:  # noqa: BLE001
    WidgetWrapper = None


def model_names() -> list[str]:
    """Names a user can pick: the default model first, the bundled ones (also those fetched on first
    use), then the added ones."""
    from ..model.registry import DEFAULT_MODEL
    from ..model.remote import remote_models
    from .settings import all_models

    models = all_models()
    names = list(models) + [name for name in remote_models() if name not in models]
    return sorted(names, key=lambda n: (n != DEFAULT_MODEL, n.endswith(" (added)"), n))


def model_parameter(name: str, description: str, placeholder: str = "flair-rgb (default)") -> QgsProcessingParameterString:
    """An optional string parameter with the model widget in QGIS' dialogs (``placeholder``: what empty means)."""
    param = QgsProcessingParameterString(name, description, optional=True)
    if WidgetWrapper is not None:
        param.setMetadata({"widget_wrapper": {"class": f"{__name__}.ModelWidgetWrapper", "placeholder": placeholder}})
    return param


if WidgetWrapper is not None:

    class ModelWidgetWrapper(WidgetWrapper):
        """Editable combo box of model names (typing a name or a path works) and a "…" button for an
        ONNX file."""

        def createWidget(self, placeholder: str = "flair-rgb (default)"):  # noqa: N802 (QGIS' name)
            widget = QWidget()
            widget.setObjectName("landcover_model_widget")
            self.combo = QComboBox()
            self.combo.setObjectName("landcover_model")
            self.combo.setEditable(True)
            self.combo.addItem("")  # empty = the default model
            self.combo.addItems(model_names())
            self.combo.lineEdit().setPlaceholderText(placeholder)
            self.combo.setToolTip("A bundled or added model's name (see Raster → Landcover → Models…), or an ONNX file")
            self.combo.currentTextChanged.connect(lambda _: self.widgetValueHasChanged.emit(self))
            layout = QHBoxLayout(widget)
            layout.setContentsMargins(0, 0, 0, 0)
            layout.addWidget(self.combo, 1)
            if self.dialogType != DIALOG_MODELER:
                browse = QToolButton()
                browse.setText("…")
                browse.setToolTip("Choose an ONNX file")
                browse.clicked.connect(self.browse)
                layout.addWidget(browse)
            return widget

        def browse(self):
            path, _ = QFileDialog.getOpenFileName(self.widget, "Choose an ONNX model", "", "ONNX models (*.onnx)")
            if path:
                self.combo.setEditText(path)

        def setValue(self, value):  # noqa: N802
            self.combo.setEditText("" if value is None else str(value))

        def value(self):
            return self.combo.currentText().strip()
