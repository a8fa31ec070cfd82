"""Processing algorithm ``landcover:evaluate``: a class raster against reference labels (engine:
``landcover_plugin.evaluate``)."""
from qgis.core import (QgsProcessingException, QgsProcessingOutputNumber,
                       QgsProcessingParameterFileDestination, QgsProcessingParameterRasterLayer,
                       QgsProcessingParameterString)

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

    def processAlgorithm(self, parameters, context, feedback):
        from ..errors import LandcoverError
        from ..codes import parse_codes, parse_mapping
        from ..evaluate import EvaluateParams, evaluate, write_report

        pred = self.parameterAsRasterLayer(parameters, self.PREDICTION, context)
        ref = self.parameterAsRasterLayer(parameters, self.REFERENCE, context)
        json_path = self.parameterAsFileOutput(parameters, self.JSON, context)
        report = self.parameterAsFileOutput(parameters, self.REPORT, context) or None
        try:
            result = evaluate(EvaluateParams(pred.source(), ref.source(),
                                             parse_mapping(self.parameterAsString(parameters, self.MAP, context)),
                                             parse_codes(self.parameterAsString(parameters, self.IGNORE, context))))
            write_report(result, json_path, report)
        except LandcoverError as exc:
            raise QgsProcessingException(str(exc)) from None
        feedback.pushInfo(f"Overall accuracy {result['overall_accuracy']:.4f}, kappa {result['kappa']:.4f}, "
                          f"mIoU {result['miou']:.4f} over {sum(result['present'])} classes")
        for name, iou in zip(result["classes"], result["iou"]):
            feedback.pushInfo(f"  {name}: IoU {iou:.3f}")
        outputs = {self.JSON: json_path, "OVERALL_ACCURACY": result["overall_accuracy"], "KAPPA": result["kappa"],
                   "MIOU": result["miou"]}
        if report:
            outputs[self.REPORT] = report
        return outputs
