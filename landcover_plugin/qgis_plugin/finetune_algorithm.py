"""Processing algorithm ``landcover:finetune`` (engine: ``landcover_plugin.train.finetune``): adapt a model to
the user's imagery from a few labelled areas; runs in the background like any Processing algorithm, with
progress, the time left and Cancel."""
from __future__ import annotations

from pathlib import Path

from qgis.core import (
    QgsProcessing,
    QgsProcessingException,
    QgsProcessingOutputNumber,
    QgsProcessingOutputString,
    QgsProcessingParameterFileDestination,
    QgsProcessingParameterMapLayer,
    QgsProcessingParameterNumber,
    QgsProcessingParameterRasterLayer,
    QgsProcessingParameterString,
    QgsProcessingUtils,
    QgsRasterLayer,
    QgsVectorFileWriter,
    QgsVectorLayer,
)

from .base import LandcoverAlgorithm
from .model_widget import model_parameter


def training_missing(exc: ImportError) -> QgsProcessingException:
    """The one-line message for a training package QGIS' Python lacks."""
    from .dependencies_ui import extras_command

    return QgsProcessingException(f"fine-tuning needs the Python package '{exc.name}' in QGIS' Python: install the "
                                  f"training extras (PyTorch: about 1 GB) with QGIS' Python: {extras_command('training')}, "
                                  "then restart QGIS")


def vector_file(layer: QgsVectorLayer, context, feedback) -> str:
    """A file the engine reads (it takes a file's first layer) holding ``layer``'s polygons: the layer's own
    file when it is that file's only or first layer without a filter, else a temporary GeoPackage copy."""
    from osgeo import ogr

    source = layer.source()
    path, _, rest = source.partition("|")
    if layer.providerType() == "ogr" and Path(path).is_file() and not layer.subsetString():
        name = dict(p.split("=", 1) for p in rest.split("|") if "=" in p).get("layername")
        ds = ogr.Open(path)
        first = ds.GetLayer(0).GetName() if ds is not None and ds.GetLayerCount() else None
        ds = None
        if name is None or name == first:
            return path
    target = str(Path(QgsProcessingUtils.tempFolder()) / f"labels_{layer.id()}.gpkg")
    options = QgsVectorFileWriter.SaveVectorOptions()
    options.driverName = "GPKG"
    error = QgsVectorFileWriter.writeAsVectorFormatV2(layer, target, context.transformContext(), options)
    if error[0] != QgsVectorFileWriter.NoError:
        raise QgsProcessingException(f"could not copy the label layer {layer.name()} to {target}: {error[1]}")
    feedback.pushInfo(f"Labels copied from the layer {layer.name()} to {target}")
    return target


class FinetuneAlgorithm(LandcoverAlgorithm):
    INPUT, LABELS, MODEL, LABEL_FIELD, MINUTES, STEPS, SEED, HOLDOUT, OUTPUT = (
        "INPUT", "LABELS", "MODEL", "LABEL_FIELD", "MINUTES", "STEPS", "SEED", "HOLDOUT", "OUTPUT")

    NAME = "finetune"
    REQUIRES = ("onnxruntime",)
    MODEL_PARAMETERS = ("MODEL",)
    DISPLAY_NAME = "Adapt a model to your imagery (fine-tune)"
    GROUP = "Training"
    GROUP_ID = "training"
    HELP = (
        "Trains an existing model (bundled, added, or an ONNX file written by Landcover) on a few labelled areas "
        "of an image, so it works better on imagery like it, in minutes.<br><br><b>Labels</b>: polygons (any CRS) "
        "whose <b>Label field</b> holds class names or values of the model's classes, or a label raster of class "
        "values (0, 255 and nodata: unlabelled). Everything unlabelled is ignored. The decoder and the encoder's "
        "last stages train; on unlabelled pixels the adapted model is kept close to the original (distillation), "
        "so classes you did not draw are not forgotten.<br><b>Minutes</b> (default 3) or <b>Steps</b> (reproducible) "
        "set the budget. When a class has at least 5 separate areas, 20 % of them (<b>Held back</b>) are kept out "
        "of training and scored with the original and the adapted model.<br>The adapted model (ONNX, with a "
        "model card beside it) keeps the original's classes, colours and metadata; use it like any model "
        "(add it in the model manager or give its path). Needs PyTorch in QGIS' Python (training extras).")

    def initAlgorithm(self, config=None):  # noqa: N802
        self.addParameter(QgsProcessingParameterRasterLayer(self.INPUT, "Image"))
        self.addParameter(QgsProcessingParameterMapLayer(self.LABELS, "Labels (polygons or a label raster)",
                                                         types=[QgsProcessing.TypeVectorPolygon, QgsProcessing.TypeRaster]))
        self.addParameter(model_parameter(self.MODEL, "Model to adapt (name or ONNX path; empty = flair-rgb)"))
        self.addParameter(QgsProcessingParameterString(self.LABEL_FIELD, "Label field of the polygons (class names or values)",
                                                       defaultValue="class", optional=True))
        self.addParameter(QgsProcessingParameterNumber(self.MINUTES, "Minutes of training (empty = 3)",
                                                       QgsProcessingParameterNumber.Double, optional=True, minValue=0.05))
        self.addParameter(QgsProcessingParameterNumber(self.STEPS, "or steps (reproducible; empty = the minutes)",
                                                       QgsProcessingParameterNumber.Integer, optional=True, minValue=1))
        self.addParameter(QgsProcessingParameterNumber(self.SEED, "Random seed", QgsProcessingParameterNumber.Integer,
                                                       defaultValue=0))
        self.addParameter(QgsProcessingParameterNumber(self.HOLDOUT, "Held back (share of the labelled areas, for the "
                                                       "accuracy report; 0 = none)", QgsProcessingParameterNumber.Double,
                                                       defaultValue=0.2, minValue=0, maxValue=0.9))
        self.addParameter(QgsProcessingParameterFileDestination(self.OUTPUT, "Adapted model (ONNX)", "ONNX models (*.onnx)"))
        self.addOutput(QgsProcessingOutputNumber("STEPS_RUN", "Steps trained"))
        self.addOutput(QgsProcessingOutputNumber("HELD_OUT_BEFORE", "Accuracy of the original on the held-back labels"))
        self.addOutput(QgsProcessingOutputNumber("HELD_OUT_AFTER", "Accuracy of the adapted model on the held-back labels"))
        self.addOutput(QgsProcessingOutputString("REPORT", "Report"))

    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802
        try:
            from ..train.finetune import FinetuneParams, finetune
        except ImportError as exc:
            raise training_missing(exc) from None
        image = self.raster_file(parameters, self.INPUT, context, "image")
        layer = self.parameterAsLayer(parameters, self.LABELS, context)
        if layer is None:
            raise QgsProcessingException("the labels could not be loaded: check the LABELS parameter")
        if isinstance(layer, QgsRasterLayer):
            labels = self.raster_file(parameters, self.LABELS, context, "label raster")
        else:
            labels = vector_file(layer, context, feedback)
        minutes = parameters.get(self.MINUTES)
        output = self.parameterAsFileOutput(parameters, self.OUTPUT, context)
        params = FinetuneParams(
            image, labels, output, self.model_value(parameters, self.MODEL, context),
            self.parameterAsString(parameters, self.LABEL_FIELD, context).strip() or None,
            self.parameterAsDouble(parameters, self.MINUTES, context) if minutes not in (None, "") else None,
            self.optional_int(parameters, self.STEPS, context), self.parameterAsInt(parameters, self.SEED, context),
            self.parameterAsDouble(parameters, self.HOLDOUT, context), command="landcover:finetune")
        result = self.run_engine(feedback, lambda fb: finetune(params, fb))
        if result is None:
            return {}
        report = result.summary()
        feedback.pushInfo(report)
        held = result.heldout
        return {self.OUTPUT: result.output, "STEPS_RUN": result.steps, "REPORT": report,
                "HELD_OUT_BEFORE": held.before["overall_accuracy"] if held else None,
                "HELD_OUT_AFTER": held.after["overall_accuracy"] if held else None}
