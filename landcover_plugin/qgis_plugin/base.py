"""What every Landcover Processing algorithm shares: identity, icon, help, the host side of the engine
contract (a ``Feedback`` that forwards to QGIS, one way to report errors and cancel), the shared
parameters' parsing, and styling of outputs that QGIS loads when the algorithm finishes."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from qgis.core import QgsProcessingAlgorithm, QgsProcessingException, QgsProcessingFeedback, QgsProcessingLayerPostProcessorInterface
from qgis.PyQt.QtGui import QIcon

from ..errors import Cancelled, LandcoverError
from ..feedback import Feedback

ICON = ":/plugins/landcover/icons/landcover.svg"
DEVICES = ["auto", "cpu", "cuda"]


class ProcessingFeedback(Feedback):
    """The engine's ``Feedback`` on a ``QgsProcessingFeedback``: progress bar, Cancel, the log."""

    def __init__(self, feedback: QgsProcessingFeedback):
        self.feedback = feedback

    def progress(self, fraction: float) -> None:
        self.feedback.setProgress(100.0 * fraction)

    def is_cancelled(self) -> bool:
        return self.feedback.isCanceled()

    def info(self, message: str) -> None:
        self.feedback.pushInfo(message)

    def warning(self, message: str) -> None:
        self.feedback.pushWarning(f"Warning: {message}")


class LegendStyler(QgsProcessingLayerPostProcessorInterface):
    """Applies a ``.qml`` style to an output layer when QGIS loads it."""

    def __init__(self, qml: str):
        super().__init__()
        self.qml = qml

    def postProcessLayer(self, layer, context, feedback):  # noqa: N802 (QGIS' name)
        message, ok = layer.loadNamedStyle(self.qml)
        if not ok:
            feedback.reportError(f"could not apply the style {self.qml}: {message}")
        layer.triggerRepaint()


class LandcoverAlgorithm(QgsProcessingAlgorithm):
    """Subclasses set NAME, DISPLAY_NAME, GROUP, GROUP_ID and HELP and implement initAlgorithm and
    processAlgorithm; they call the engine through ``run_engine``."""

    NAME = DISPLAY_NAME = GROUP = GROUP_ID = HELP = ""

    def __init__(self):
        super().__init__()
        self._stylers: list[LegendStyler] = []  # post-processors must outlive processAlgorithm

    def createInstance(self):  # noqa: N802
        return type(self)()

    def name(self):
        return self.NAME

    def displayName(self):  # noqa: N802
        return self.DISPLAY_NAME

    def group(self):
        return self.GROUP

    def groupId(self):  # noqa: N802
        return self.GROUP_ID

    def icon(self):
        return QIcon(ICON)

    def shortHelpString(self):  # noqa: N802
        return self.HELP

    def optional_int(self, parameters: dict, name: str, context) -> int | None:
        """An optional integer parameter: ``None`` when empty."""
        value = parameters.get(name)
        return None if value is None or value == "" else self.parameterAsInt(parameters, name, context)

    def device(self, parameters: dict, name: str, context) -> str:
        return DEVICES[self.parameterAsEnum(parameters, name, context)]

    def raster_file(self, parameters: dict, name: str, context, what: str) -> str:
        """The path of a raster-layer parameter that must be a file GDAL reads. Raises
        ``QgsProcessingException`` naming ``what`` otherwise."""
        layer = self.parameterAsRasterLayer(parameters, name, context)
        if layer is None:
            raise QgsProcessingException(f"the {what} could not be loaded: check the {name} parameter")
        source = layer.source()
        if layer.providerType() != "gdal" or not Path(source).exists():
            raise QgsProcessingException(f"the {what} must be a raster file GDAL reads (got a {layer.providerType()} "
                                         f"layer: {source}): save it as a GeoTIFF first")
        return source

    @staticmethod
    def run_engine(feedback: QgsProcessingFeedback, work: Callable[[Feedback], Any]) -> Any:
        """Run ``work(engine_feedback)``: a ``LandcoverError`` (or a file error, or running out of memory)
        becomes a ``QgsProcessingException`` (one line in the log, the algorithm fails); a cancel returns
        ``None`` after saying that nothing was written (every algorithm then returns no outputs)."""
        try:
            return work(ProcessingFeedback(feedback))
        except Cancelled:
            feedback.pushInfo("Cancelled: nothing was written.")
            return None
        except LandcoverError as exc:
            raise QgsProcessingException(" ".join(str(exc).split())) from None
        except MemoryError:
            raise QgsProcessingException("out of memory: lower the tile size or the batch size, or close other "
                                         "programs") from None
        except OSError as exc:  # a file error the engine did not name itself
            from ..outputs import os_error_text

            raise QgsProcessingException(os_error_text(exc)) from None

    def style_on_load(self, context, output: str, qml: str, name: str | None = None) -> None:
        """Style ``output`` with ``qml`` (and rename it) if QGIS is to load it on completion."""
        if context.willLoadLayerOnCompletion(output):
            styler = LegendStyler(qml)
            self._stylers.append(styler)
            details = context.layerToLoadOnCompletionDetails(output)
            if name:
                details.name = name
            details.setPostProcessor(styler)
