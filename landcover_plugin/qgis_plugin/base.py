"""What every Landcover Processing algorithm shares: identity, icon, help, the host side of the engine
contract (a ``Feedback`` that forwards to QGIS, one way to report errors and cancel), the shared
parameters' parsing, and styling of outputs that QGIS loads when the algorithm finishes."""
from __future__ import annotations

import functools
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


def missing_package_message(exc: ImportError) -> str | None:
    """The one-line message for an import of a package Landcover uses that QGIS' Python lacks (None for
    any other import error)."""
    from .. import dependencies as deps
    from . import dependencies_ui

    name = (exc.name or "").split(".")[0]
    package = next((p for p in deps.PACKAGES if p.module.split(".")[0] == name), None)
    if package is None:
        return None
    if package.group in ("required", "host"):
        return dependencies_ui.missing_text(dependencies_ui.report(refresh=True))
    return (f"this needs the Python package '{package.dist}' ({package.purpose}) in QGIS' Python: install the "
            f"{package.group} extras with QGIS' Python: {dependencies_ui.extras_command(package.group)}, then restart QGIS")


def fetch_listed_model(value: str, feedback: Feedback) -> None:
    """Fetch ``value`` when it names a model the package lists but does not hold (``model.remote``)."""
    from ..model.registry import bundled_models
    from ..model.remote import fetch, fetched, remote_models

    listed = remote_models().get(value)
    if listed is not None and value not in bundled_models() and fetched(listed) is None:
        fetch(listed, feedback.progress, feedback.info)


class LandcoverAlgorithm(QgsProcessingAlgorithm):
    """Subclasses set NAME, DISPLAY_NAME, GROUP, GROUP_ID and HELP and implement initAlgorithm and
    processAlgorithm; they call the engine through ``run_engine``. REQUIRES names the Python packages
    they need beyond QGIS' own: while one is missing the algorithm does not run and says so in one
    line (``canExecute`` for QGIS' dialogs, with the installer's link; ``prepareAlgorithm`` for
    everything else: batch, model builder, ``processing.run``, qgis_process). A subclass that
    overrides ``prepareAlgorithm`` calls ``require_dependencies()`` first."""

    NAME = DISPLAY_NAME = GROUP = GROUP_ID = HELP = ""
    REQUIRES: tuple[str, ...] = ()
    MODEL_PARAMETERS: tuple[str, ...] = ()  # parameters that name a model (see ``check_ready``)

    def __init__(self) -> None:
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

    def dependency_problem(self) -> str | None:
        """The missing-dependency message when a package in REQUIRES (or QGIS' numpy or GDAL bindings)
        is not usable, else None."""
        if not self.REQUIRES:
            return None
        from . import dependencies_ui

        report = dependencies_ui.report()
        found = [report.get(name) for name in self.REQUIRES]
        if report.ready and all(f is None or f.problem is None for f in found):
            return None
        return dependencies_ui.missing_text(report)

    def canExecute(self):  # noqa: N802 (QGIS' name): the Toolbox shows the message, with the installer's link
        if self.dependency_problem() is None:
            return True, ""
        from . import dependencies_ui

        return False, dependencies_ui.missing_html(link=True)

    def require_dependencies(self) -> None:
        """Raise ``QgsProcessingException`` with the missing-dependency message (one line, no traceback)."""
        problem = self.dependency_problem()
        if problem is not None:
            raise QgsProcessingException(problem)

    def check_ready(self, parameters: dict, context, feedback) -> None:
        """Before a run: the dependencies (``require_dependencies``), then the models the parameters name
        that the package lists but does not hold, fetched now with progress in the log (History keeps
        the name). Raises ``QgsProcessingException``."""
        self.require_dependencies()
        for name in self.MODEL_PARAMETERS:
            value = self.parameterAsString(parameters, name, context).strip() if name in parameters else ""
            if value:
                self.run_engine(feedback, functools.partial(fetch_listed_model, value))

    def prepareAlgorithm(self, parameters, context, feedback):  # noqa: N802
        self.check_ready(parameters, context, feedback)
        return True

    def model_value(self, parameters: dict, name: str, context) -> str | None:
        """A model parameter's value for the engine: a bundled model's name or a file path as given; the
        name of a model added in the model manager becomes its file. ``None`` when empty (the default)."""
        value = self.parameterAsString(parameters, name, context).strip()
        if not value:
            return None
        from ..model.registry import bundled_models
        from .settings import all_models

        models = all_models()
        return str(models[value]) if value in models and value not in bundled_models() else value

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
        becomes a ``QgsProcessingException`` (one line in the log, the algorithm fails); so does a Python
        package the work needs and QGIS' Python lacks (the missing-dependency message, never a
        traceback); a cancel returns ``None`` after saying that nothing was written (every algorithm then
        returns no outputs)."""
        try:
            return work(ProcessingFeedback(feedback))
        except Cancelled:
            feedback.pushInfo("Cancelled: nothing was written.")
            return None
        except LandcoverError as exc:
            raise QgsProcessingException(" ".join(str(exc).split())) from None
        except ImportError as exc:
            message = missing_package_message(exc)
            if message is None:
                raise
            raise QgsProcessingException(message) from None
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
