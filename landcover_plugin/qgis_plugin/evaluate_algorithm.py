"""Processing algorithm ``landcover:evaluate``: a class raster against reference labels (engine:
``landcover_plugin.evaluate``)."""
from qgis.core import (QgsProcessingAlgorithm, QgsProcessingException, QgsProcessingOutputNumber,
                       QgsProcessingParameterFileDestination, QgsProcessingParameterRasterLayer,
                       QgsProcessingParameterString)
from qgis.PyQt.QtGui import QIcon


class EvaluateAlgorithm(QgsProcessingAlgorithm):
    PREDICTION, REFERENCE, MAP, IGNORE, JSON, REPORT = "PREDICTION", "REFERENCE", "MAP", "IGNORE", "JSON", "REPORT"

    def createInstance(self):
        return EvaluateAlgorithm()

    def name(self):
        return "evaluate"

    def displayName(self):
        return "Evaluate land cover against reference labels"

    def group(self):
        return "Accuracy"

    def groupId(self):
        return "accuracy"

    def icon(self):
        return QIcon(":/plugins/landcover/icons/landcover.svg")

    def shortHelpString(self):
        return ("Scores a class raster (from Classify land cover) against a reference label raster: confusion matrix, "
                "overall accuracy, Cohen's kappa, per-class precision, recall, F1 and IoU, and mIoU over the classes "
                "present in the reference.<br><br>The reference is warped onto the prediction's grid (nearest) when "
                "the grids differ. <b>Map</b> reference codes onto class values, e.g. <i>13-19:13</i>; <b>Ignore</b> "
                "codes that are not scored, e.g. <i>0</i>. A reference value that is neither is an error.<br>"
                "Outputs: JSON with every number, and an optional Markdown report with a confusion-matrix PNG.")

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
        from ..evaluate import EvaluateParams, evaluate, parse_mapping, write_report

        pred = self.parameterAsRasterLayer(parameters, self.PREDICTION, context)
        ref = self.parameterAsRasterLayer(parameters, self.REFERENCE, context)
        json_path = self.parameterAsFileOutput(parameters, self.JSON, context)
        report = self.parameterAsFileOutput(parameters, self.REPORT, context) or None
        try:
            ignore_text = self.parameterAsString(parameters, self.IGNORE, context)
            ignore = tuple(int(v) for v in ignore_text.split(",") if v.strip())
            result = evaluate(EvaluateParams(pred.source(), ref.source(),
                                             parse_mapping(self.parameterAsString(parameters, self.MAP, context)), ignore))
            write_report(result, json_path, report)
        except ValueError:
            raise QgsProcessingException("Ignore must be comma-separated integer codes, e.g. 0,255") from None
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
