"""Processing algorithm ``landcover:classify``: translates parameters for the engine and reports
progress, messages and cancel through the feedback object; the output arrives styled."""
from pathlib import Path

from qgis.core import (QgsProcessingException, QgsProcessingParameterBoolean, QgsProcessingParameterEnum,
                       QgsProcessingParameterFile, QgsProcessingParameterFileDestination,
                       QgsProcessingParameterNumber, QgsProcessingParameterRasterDestination,
                       QgsProcessingParameterRasterLayer)

from .base import LandcoverAlgorithm

DEVICES = ["auto", "cpu", "cuda"]


class ClassifyAlgorithm(LandcoverAlgorithm):
    INPUT, MODEL, TILE_SIZE, OVERLAP, BATCH_SIZE, DEVICE, TTA, OUTPUT, CONFIDENCE, CLASS_AREAS = (
        "INPUT", "MODEL", "TILE_SIZE", "OVERLAP", "BATCH_SIZE", "DEVICE", "TTA", "OUTPUT", "CONFIDENCE", "CLASS_AREAS")

    NAME = "classify"
    DISPLAY_NAME = "Classify land cover"
    GROUP = "Classification"
    GROUP_ID = "classification"
    HELP = (
        'Classifies a raster layer into land-cover classes with an ONNX segmentation model and writes a '
        "class GeoTIFF on the input's grid (CRS, geotransform and size), with a colour table, class names"
        ' and a legend style.<br><br>The raster is read in tiles that overlap; the probabilities of '
        'overlapping tiles are blended with a smooth (Hann) weight so no seams appear. Pixels that are '
        "nodata or alpha 0 are written as nodata (255). Memory stays bounded whatever the raster's "
        'size.<br><br><b>Model</b>: an ONNX file with Landcover (or Deepness) metadata; default: the '
        'bundled <i>flair-rgb</i> model (0.2 m RGB aerial imagery, 13 FLAIR classes, IGN FLAIR '
        "#1).<br><b>Tile size / overlap</b>: px; leave empty for the model's defaults.<br><b>Batch "
        'size</b>: tiles per inference call.<br><b>Device</b>: auto uses CUDA when onnxruntime offers it;'
        ' the log says which execution provider ran.<br><b>Test-time augmentation</b>: averages the '
        "probabilities over the tile's flips and 90° rotations (8× slower).<br><b>Confidence</b>: "
        'optional raster of the maximum class probability (0–1).')

    def initAlgorithm(self, config=None):
        from ..model.registry import DEFAULT_MODEL, bundled_models

        default_model = str(bundled_models().get(DEFAULT_MODEL, ""))
        self.addParameter(QgsProcessingParameterRasterLayer(self.INPUT, "Input raster"))
        self.addParameter(QgsProcessingParameterFile(self.MODEL, "Model (ONNX; empty = bundled flair-rgb)", extension="onnx",
                                                     defaultValue=default_model or None, optional=True))
        tile = QgsProcessingParameterNumber(self.TILE_SIZE, "Tile size (px; empty = model default)",
                                            QgsProcessingParameterNumber.Integer, optional=True, minValue=16)
        overlap = QgsProcessingParameterNumber(self.OVERLAP, "Overlap (px; empty = model default)",
                                               QgsProcessingParameterNumber.Integer, optional=True, minValue=0)
        self.addParameter(tile)
        self.addParameter(overlap)
        self.addParameter(QgsProcessingParameterNumber(self.BATCH_SIZE, "Batch size (tiles per inference)",
                                                       QgsProcessingParameterNumber.Integer, defaultValue=4, minValue=1))
        self.addParameter(QgsProcessingParameterEnum(self.DEVICE, "Device", options=DEVICES, defaultValue=0))
        self.addParameter(QgsProcessingParameterBoolean(self.TTA, "Test-time augmentation (8× slower)",
                                                        defaultValue=False))
        self.addParameter(QgsProcessingParameterRasterDestination(self.OUTPUT, "Land cover"))
        self.addParameter(QgsProcessingParameterRasterDestination(self.CONFIDENCE, "Confidence (maximum class probability)",
                                                                  optional=True, createByDefault=False))
        self.addParameter(QgsProcessingParameterFileDestination(self.CLASS_AREAS, "Class areas (CSV)", "CSV files (*.csv)",
                                                                optional=True, createByDefault=False))

    def _optional_int(self, parameters, name, context):
        value = parameters.get(name)
        if value is None or value == "":
            return None
        return self.parameterAsInt(parameters, name, context)

    def processAlgorithm(self, parameters, context, feedback):
        try:
            from ..engine.classify import ClassifyParams, classify
            from ..errors import LandcoverError
        except ImportError as exc:
            raise QgsProcessingException(f"Landcover needs the Python package '{exc.name}' in QGIS' Python: "
                                         "install it with pip (see the README)") from None
        layer = self.parameterAsRasterLayer(parameters, self.INPUT, context)
        if layer is None:
            raise QgsProcessingException("the input raster layer could not be loaded: check the INPUT path")
        source = layer.source()
        if layer.providerType() != "gdal" or not Path(source).exists():
            raise QgsProcessingException(f"the input layer must be a raster file GDAL reads (got {layer.providerType()}: {source})")
        output = self.parameterAsOutputLayer(parameters, self.OUTPUT, context)
        confidence = self.parameterAsOutputLayer(parameters, self.CONFIDENCE, context) or None
        params = ClassifyParams(
            input=source, output=output, model=self.parameterAsFile(parameters, self.MODEL, context) or None,
            tile_size=self._optional_int(parameters, self.TILE_SIZE, context),
            overlap=self._optional_int(parameters, self.OVERLAP, context),
            batch_size=self.parameterAsInt(parameters, self.BATCH_SIZE, context),
            device=DEVICES[self.parameterAsEnum(parameters, self.DEVICE, context)], confidence=confidence,
            tta=self.parameterAsBool(parameters, self.TTA, context))
        try:
            result = classify(params, progress=lambda f: feedback.setProgress(100.0 * f),
                              cancelled=feedback.isCanceled, info=feedback.pushInfo)
        except LandcoverError as exc:
            if feedback.isCanceled():
                return {}
            raise QgsProcessingException(str(exc)) from None
        from ..cli import summary_text

        feedback.pushInfo(summary_text(result))
        self.style_on_load(context, output, str(Path(output).with_suffix(".qml")), f"Land cover ({result.model_name})")
        outputs = {self.OUTPUT: output}
        if confidence:
            outputs[self.CONFIDENCE] = confidence
        areas = self.parameterAsFileOutput(parameters, self.CLASS_AREAS, context)
        if areas:
            result.write_class_areas(areas)
            outputs[self.CLASS_AREAS] = areas
        return outputs
