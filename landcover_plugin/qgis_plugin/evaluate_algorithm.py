"""Processing algorithm ``landcover:evaluate``: a class raster against reference labels (engine:
``landcover_plugin.evaluate``)."""
from qgis.core import (
    QgsProcessingOutputNumber,
    QgsProcessingParameterFileDestination,
    QgsProcessingParameterRasterLayer,
    QgsProcessingParameterString,
)

from .base import LandcoverAlgorithm


class EvaluateAlgorithm(LandcoverAlgorithm):
    PREDICTION, REFERENCE, MAP, IGNORE, JSON, REPORT = "PREDICTION", "REFERENCE", "MAP", "IGNORE", "JSON", "REPORT"

    NAME = "evaluate"
    DISPLAY_NAME = "Evaluate land cover against reference labels"
    GROUP = "Accuracy"
    GROUP_ID = "accuracy"
    HELP = (
        'Scores a class raster (from Classify land cover) against a reference label raster: confusion '
        "matrix, overall accuracy, Cohen's kappa, per-class precision, recall, F1 and IoU, and mIoU over "
        "the classes present in the reference.<br><br>The reference is warped onto the prediction's grid "
        '(nearest) when the grids differ. <b>Map</b> reference codes onto class values, e.g. '
        '<i>13-19:13</i>; <b>Ignore</b> codes that are not scored, e.g. <i>0</i>. A reference value that '
        'is neither is an error.<br>Outputs: JSON with every number, and an optional Markdown report with'
        ' a confusion-matrix PNG.')

    def initAlgorithm(self, config=None):
        self.addParameter(QgsProcessingParameterRasterLayer(self.PREDICTION, "Class raster"))
        self.addParameter(QgsProcessingParameterRasterLayer(self.REFERENCE, "Reference labels"))
        self.addParameter(QgsProcessingParameterString(self.MAP, "Map reference codes (e.g. 13-19:13)", optional=True))
        self.addParameter(QgsProcessingParameterString(self.IGNORE, "Ignore reference codes (e.g. 0,255)", optional=True))
        self.addParameter(QgsProcessingParameterFileDestination(self.JSON, "Scores (JSON)", "JSON files (*.json)"))
        self.addParameter(QgsProcessingParameterFileDestination(self.REPORT, "Report (Markdown)", "Markdown files (*.md)",
                                                                optional=True, createByDefault=False))
        for name, label in (("OVERALL_ACCURACY", "Overall accuracy"), ("KAPPA", "Cohen's kappa"), ("MIOU", "mIoU")):
            self.addOutput(QgsProcessingOutputNumber(name, label))

    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802
        from ..codes import parse_codes, parse_mapping
        from ..evaluate import EvaluateParams, evaluate, write_report

        pred = self.raster_file(parameters, self.PREDICTION, context, "class raster")
        ref = self.raster_file(parameters, self.REFERENCE, context, "reference labels")
        json_path = self.parameterAsFileOutput(parameters, self.JSON, context)
        report = self.parameterAsFileOutput(parameters, self.REPORT, context) or None

        def work(_feedback):
            from ..outputs import check_output_path

            check_output_path(json_path, "JSON output", (".json",), (pred, ref))
            if report:
                check_output_path(report, "report", (".md",), (pred, ref))
            result = evaluate(EvaluateParams(pred, ref, parse_mapping(self.parameterAsString(parameters, self.MAP, context)),
                                             parse_codes(self.parameterAsString(parameters, self.IGNORE, context))))
            write_report(result, json_path, report)
            return result

        result = self.run_engine(feedback, work)
        if result is None:
            return {}
        feedback.pushInfo(result.summary())
        outputs = {self.JSON: json_path, "OVERALL_ACCURACY": result.overall_accuracy, "KAPPA": result.kappa,
                   "MIOU": result.miou}
        if report:
            outputs[self.REPORT] = report
        return outputs
