"""Processing algorithm ``landcover:change``: land-cover change between two dates (engine:
``landcover_plugin.change``); the change layer arrives styled with a "from → to" legend, and the
figures are outputs for the model builder."""
from pathlib import Path

from qgis.core import (
    QgsProcessingOutputNumber,
    QgsProcessingParameterBoolean,
    QgsProcessingParameterEnum,
    QgsProcessingParameterFileDestination,
    QgsProcessingParameterNumber,
    QgsProcessingParameterRasterDestination,
    QgsProcessingParameterRasterLayer,
    QgsProcessingParameterString,
)

from .base import DEVICES, LandcoverAlgorithm
from .model_widget import model_parameter

NUMBERS = (("CHANGED_PERCENT", "Changed, % of the common area"),
           ("UNCERTAIN_PERCENT", "Left out as uncertain, % of the common area"),
           ("CHANGED_HA", "Changed area (ha; empty when not georeferenced)"),
           ("UNCERTAIN_HA", "Uncertain area (ha; empty when not georeferenced)"),
           ("COMMON_HA", "Common area (ha; empty when not georeferenced)"),
           ("CHANGED_PIXELS", "Changed pixels"),
           ("COMMON_PIXELS", "Common pixels (valid on both dates)"))


class ChangeAlgorithm(LandcoverAlgorithm):
    (BEFORE, AFTER, MODEL, AFTER_MODEL, MAP_BEFORE, MAP_AFTER, MIN_CONFIDENCE, CONFIDENCE_BEFORE, CONFIDENCE_AFTER,
     TO_CLASS_BAND, DEVICE, OUTPUT, TRANSITIONS, REPORT) = (
        "BEFORE", "AFTER", "MODEL", "AFTER_MODEL", "MAP_BEFORE", "MAP_AFTER", "MIN_CONFIDENCE", "CONFIDENCE_BEFORE",
        "CONFIDENCE_AFTER", "TO_CLASS_BAND", "DEVICE", "OUTPUT", "TRANSITIONS", "REPORT")

    NAME = "change"
    MODEL_PARAMETERS = ("MODEL", "AFTER_MODEL")  # images need onnxruntime; class rasters do not (see run_engine)
    DISPLAY_NAME = "Land-cover change between two dates"
    GROUP = "Change"
    GROUP_ID = "change"
    HELP = (
        'Compares two dates into a change raster, a transition table and a report.<br><br><b>Before</b> and '
        '<b>After</b>: class rasters written by <i>Classify land cover</i> (their class names define the classes) '
        'or images, classified first with <b>Model</b> (and <b>After model</b> for the second date, e.g. '
        '<i>dubai-grey</i> for a historical photo and <i>dubai-rgb</i> for its repeat). The two legends are '
        'matched by class name; <b>Map before/after</b> maps classes onto a common legend, e.g. '
        '<i>coniferous=woodland,deciduous=woodland</i> (<i>NAME=-</i> leaves a class out).<br>After is warped '
        "onto Before's grid (nearest) over their common extent; rasters that do not overlap are refused.<br><br>"
        '<b>Output</b> band 1: 0 unchanged; <i>from·K + to + 1</i> changed from class <i>from</i> to class '
        '<i>to</i> (0-based, legend order, K classes); <i>K² + 1</i> uncertain; nodata where either date is '
        'nodata or outside the common extent (uint8, nodata 255; uint16, nodata 65535, above 15 classes). '
        '<b>Changed to class band</b> adds band 2: k + 1 where changed to class k, 0 unchanged.<br><b>Minimum '
        "confidence</b>: change is only reported where both dates' class probability reaches it; pixels whose "
        'classes differ below it are <i>uncertain</i> and left out of the figures. Images bring their '
        'confidence from the model; for class rasters give <b>Confidence before/after</b> (from <i>Classify '
        "land cover</i>), else the filter is not applied to that date.<br><b>Transitions</b>: CSV of from, to, "
        'code, pixels, m², ha, %. <b>Report</b>: Markdown with the transition matrix, a heat-map PNG and '
        'per-class gains, losses and net change.')

    def initAlgorithm(self, config=None):  # noqa: N802
        from ..change import DEFAULT_MIN_CONFIDENCE

        self.addParameter(QgsProcessingParameterRasterLayer(self.BEFORE, "Before (class raster or image)"))
        self.addParameter(QgsProcessingParameterRasterLayer(self.AFTER, "After (class raster or image)"))
        self.addParameter(model_parameter(self.MODEL, "Model for images (name or ONNX path; empty = flair-rgb)"))
        self.addParameter(model_parameter(self.AFTER_MODEL, "Model for an After image (empty = the same)", "the same as Model"))
        self.addParameter(QgsProcessingParameterString(self.MAP_BEFORE, "Map before's classes (e.g. deciduous=woodland)",
                                                       optional=True))
        self.addParameter(QgsProcessingParameterString(self.MAP_AFTER, "Map after's classes", optional=True))
        self.addParameter(QgsProcessingParameterNumber(self.MIN_CONFIDENCE, "Minimum confidence (0 = off)",
                                                       QgsProcessingParameterNumber.Double,
                                                       defaultValue=DEFAULT_MIN_CONFIDENCE, minValue=0, maxValue=1))
        self.addParameter(QgsProcessingParameterRasterLayer(self.CONFIDENCE_BEFORE, "Confidence of a before class raster",
                                                            optional=True))
        self.addParameter(QgsProcessingParameterRasterLayer(self.CONFIDENCE_AFTER, "Confidence of an after class raster",
                                                            optional=True))
        self.addParameter(QgsProcessingParameterBoolean(self.TO_CLASS_BAND, "Add a 'changed to class' band",
                                                        defaultValue=False))
        self.addParameter(QgsProcessingParameterEnum(self.DEVICE, "Device (images)", options=DEVICES, defaultValue=0))
        self.addParameter(QgsProcessingParameterRasterDestination(self.OUTPUT, "Land-cover change"))
        self.addParameter(QgsProcessingParameterFileDestination(self.TRANSITIONS, "Transitions (CSV)", "CSV files (*.csv)",
                                                                optional=True, createByDefault=False))
        self.addParameter(QgsProcessingParameterFileDestination(self.REPORT, "Report (Markdown)", "Markdown files (*.md)",
                                                                optional=True, createByDefault=False))
        for name, label in NUMBERS:
            self.addOutput(QgsProcessingOutputNumber(name, label))

    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802
        from ..change import ChangeParams, change

        before = self.raster_file(parameters, self.BEFORE, context, "Before raster")
        after = self.raster_file(parameters, self.AFTER, context, "After raster")
        confidence = {}
        for name in (self.CONFIDENCE_BEFORE, self.CONFIDENCE_AFTER):
            confidence[name] = (self.raster_file(parameters, name, context, "confidence raster")
                                if parameters.get(name) not in (None, "") else None)
        output = self.parameterAsOutputLayer(parameters, self.OUTPUT, context)
        transitions = self.parameterAsFileOutput(parameters, self.TRANSITIONS, context) or None
        report = self.parameterAsFileOutput(parameters, self.REPORT, context) or None
        params = ChangeParams(
            before, after, output, self.model_value(parameters, self.MODEL, context),
            self.model_value(parameters, self.AFTER_MODEL, context),
            self.parameterAsString(parameters, self.MAP_BEFORE, context) or None,
            self.parameterAsString(parameters, self.MAP_AFTER, context) or None,
            self.parameterAsDouble(parameters, self.MIN_CONFIDENCE, context),
            confidence[self.CONFIDENCE_BEFORE], confidence[self.CONFIDENCE_AFTER], transitions, report,
            self.parameterAsBool(parameters, self.TO_CLASS_BAND, context), self.device(parameters, self.DEVICE, context))
        result = self.run_engine(feedback, lambda fb: change(params, fb))
        if result is None:
            return {}
        feedback.pushInfo(result.summary())
        self.style_on_load(context, output, str(Path(output).with_suffix(".qml")), "Land-cover change")
        ha = (lambda n: n * result.pixel_area_m2 / 1e4) if result.pixel_area_m2 is not None else (lambda n: None)
        outputs = {self.OUTPUT: output, "CHANGED_PERCENT": result.changed_percent,
                   "UNCERTAIN_PERCENT": result.uncertain_percent, "CHANGED_HA": ha(result.changed_pixels),
                   "UNCERTAIN_HA": ha(result.uncertain_pixels), "COMMON_HA": ha(result.common_pixels),
                   "CHANGED_PIXELS": result.changed_pixels, "COMMON_PIXELS": result.common_pixels}
        if transitions:
            outputs[self.TRANSITIONS] = transitions
        if report:
            outputs[self.REPORT] = report
        return outputs
