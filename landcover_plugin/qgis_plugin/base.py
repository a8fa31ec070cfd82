"""What every Landcover Processing algorithm shares: identity, icon, help, and styling of outputs
that QGIS loads when the algorithm finishes."""
from qgis.core import QgsProcessingAlgorithm, QgsProcessingLayerPostProcessorInterface
from qgis.PyQt.QtGui import QIcon

ICON = ":/plugins/landcover/icons/landcover.svg"


class LegendStyler(QgsProcessingLayerPostProcessorInterface):
    """Applies a ``.qml`` style to an output layer when QGIS loads it."""

    def __init__(self, qml: str):
        super().__init__()
        self.qml = qml

    def postProcessLayer(self, layer, context, feedback):
        message, ok = layer.loadNamedStyle(self.qml)
        if not ok:
            feedback.reportError(f"could not apply the style {self.qml}: {message}")
        layer.triggerRepaint()


class LandcoverAlgorithm(QgsProcessingAlgorithm):
    """Subclasses set NAME, DISPLAY_NAME, GROUP, GROUP_ID and HELP and implement initAlgorithm and
    processAlgorithm."""

    NAME = DISPLAY_NAME = GROUP = GROUP_ID = HELP = ""

    def __init__(self):
        super().__init__()
        self._stylers = []  # post-processors must outlive processAlgorithm

    def createInstance(self):
        return type(self)()

    def name(self):
        return self.NAME

    def displayName(self):
        return self.DISPLAY_NAME

    def group(self):
        return self.GROUP

    def groupId(self):
        return self.GROUP_ID

    def icon(self):
        return QIcon(ICON)

    def shortHelpString(self):
        return self.HELP

    def style_on_load(self, context, output: str, qml: str, name: str | None = None) -> None:
        """Style ``output`` with ``qml`` (and rename it) if QGIS is to load it on completion."""
        if context.willLoadLayerOnCompletion(output):
            styler = LegendStyler(qml)
            self._stylers.append(styler)
            details = context.layerToLoadOnCompletionDetails(output)
            if name:
                details.name = name
            details.setPostProcessor(styler)
