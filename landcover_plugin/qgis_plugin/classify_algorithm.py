"""Processing algorithm ``landcover:classify``: translates parameters for the engine and reports
progress, messages and cancel through the feedback object; the output arrives styled.

A raster file is read by the engine itself; any other layer QGIS shows (XYZ, WMS/WMTS, WCS, PostGIS
raster, virtual rasters…) through its data provider (``provider_source``), on a grid at the model's
GSD over EXTENT (default: the layer's extent)."""
from pathlib import Path

from qgis.core import (
    QgsProcessingException,
    QgsProcessingParameterBoolean,
    QgsProcessingParameterEnum,
    QgsProcessingParameterExtent,
    QgsProcessingParameterFileDestination,
    QgsProcessingParameterNumber,
    QgsProcessingParameterRasterDestination,
    QgsProcessingParameterRasterLayer,
)

from .base import DEVICES, LandcoverAlgorithm
from .model_widget import model_parameter

RESAMPLING = ["auto: classify at the model's GSD", "off: classify the input's pixels as they are"]
OUTPUT_GRIDS = ["input", "model"]


class ClassifyAlgorithm(LandcoverAlgorithm):
    (INPUT, MODEL, TILE_SIZE, OVERLAP, BATCH_SIZE, DEVICE, TTA, RESAMPLE, INPUT_GSD, OUTPUT_RESOLUTION,
     OUTPUT_PIXEL_SIZE, EXTENT, OUTPUT, CONFIDENCE, CLASS_AREAS) = (
        "INPUT", "MODEL", "TILE_SIZE", "OVERLAP", "BATCH_SIZE", "DEVICE", "TTA", "RESAMPLE", "INPUT_GSD",
        "OUTPUT_RESOLUTION", "OUTPUT_PIXEL_SIZE", "EXTENT", "OUTPUT", "CONFIDENCE", "CLASS_AREAS")

    NAME = "classify"
    REQUIRES = ("onnxruntime",)
    MODEL_PARAMETERS = ("MODEL",)
    DISPLAY_NAME = "Classify land cover"
    GROUP = "Classification"
    GROUP_ID = "classification"
    HELP = (
        'Classifies a raster layer into land-cover classes with an ONNX segmentation model and writes a '
        "class GeoTIFF on the input's grid (CRS, geotransform and size), with a colour table, class names"
        ' and a legend style.<br><br>The raster is read in tiles that overlap; the probabilities of '
        'overlapping tiles are blended with a smooth (Hann) weight so no seams appear. Pixels that are '
        "nodata or alpha 0 are written as nodata (255). Memory stays bounded whatever the raster's "
        'size.<br><br><b>Input</b>: a raster file, or any layer QGIS shows (XYZ, WMS/WMTS, WCS…): such '
        "layers are read through QGIS as rendered RGB on a grid at the model's GSD over <b>Extent</b> "
        "(default: the layer's extent; refused when it would be too many pixels).<br><b>Model</b>: a "
        'bundled model\'s name (<i>flair-rgb</i>, the default: 0.2 m RGB aerial imagery, 13 FLAIR classes; '
        '<i>dubai-rgb</i>, <i>dubai-grey</i>), a model added in the model manager, or an ONNX file path.'
        "<br><b>Tile size / overlap</b>: px; leave empty for the model's defaults.<br><b>Batch "
        'size</b>: tiles per inference call (empty: 2 on the CPU, 4 on a GPU).<br><b>Device</b>: auto uses CUDA when onnxruntime offers it;'
        " the log says which execution provider ran.<br><b>Resampling</b>: auto reads the input at the "
        "model's ground pixel size (GSD) and resamples the probabilities back before the argmax; "
        "<b>Input GSD</b> overrides the pixel size the input's metadata states.<br><b>Output grid</b>: the "
        "input's (default) or the model's GSD; <b>Output pixel size</b> (m) overrides it.<br><b>Test-time "
        "augmentation</b>: averages the probabilities over the tile's flips and 90° rotations (8× slower)."
        '<br><b>Confidence</b>: optional raster of the maximum class probability (0–1).')

    def initAlgorithm(self, config=None):  # noqa: N802
        self.addParameter(QgsProcessingParameterRasterLayer(self.INPUT, "Input raster"))
        self.addParameter(model_parameter(self.MODEL, "Model (name or ONNX path; empty = flair-rgb)"))
        self.addParameter(QgsProcessingParameterNumber(self.TILE_SIZE, "Tile size (px; empty = model default)",
                                                       QgsProcessingParameterNumber.Integer, optional=True, minValue=16))
        self.addParameter(QgsProcessingParameterNumber(self.OVERLAP, "Overlap (px; empty = model default)",
                                                       QgsProcessingParameterNumber.Integer, optional=True, minValue=0))
        self.addParameter(QgsProcessingParameterNumber(self.BATCH_SIZE, "Batch size (tiles per inference; empty = 2 on the CPU, "
                                                       "4 on a GPU)", QgsProcessingParameterNumber.Integer, optional=True,
                                                       minValue=1))
        self.addParameter(QgsProcessingParameterEnum(self.DEVICE, "Device", options=DEVICES, defaultValue=0))
        self.addParameter(QgsProcessingParameterBoolean(self.TTA, "Test-time augmentation (8× slower)",
                                                        defaultValue=False))
        self.addParameter(QgsProcessingParameterEnum(self.RESAMPLE, "Resampling to the model's GSD", options=RESAMPLING,
                                                     defaultValue=0))
        self.addParameter(QgsProcessingParameterNumber(self.INPUT_GSD, "Input GSD (m; empty = from the layer's CRS)",
                                                       QgsProcessingParameterNumber.Double, optional=True, minValue=1e-6))
        self.addParameter(QgsProcessingParameterEnum(self.OUTPUT_RESOLUTION, "Output grid", options=OUTPUT_GRIDS,
                                                     defaultValue=0))
        self.addParameter(QgsProcessingParameterNumber(self.OUTPUT_PIXEL_SIZE, "Output pixel size (m; empty = the output grid's)",
                                                       QgsProcessingParameterNumber.Double, optional=True, minValue=1e-6))
        self.addParameter(QgsProcessingParameterExtent(self.EXTENT, "Extent (web and other non-file layers; empty = the layer's)",
                                                       optional=True))
        self.addParameter(QgsProcessingParameterRasterDestination(self.OUTPUT, "Land cover"))
        self.addParameter(QgsProcessingParameterRasterDestination(self.CONFIDENCE, "Confidence (maximum class probability)",
                                                                  optional=True, createByDefault=False))
        self.addParameter(QgsProcessingParameterFileDestination(self.CLASS_AREAS, "Class areas (CSV)", "CSV files (*.csv)",
                                                                optional=True, createByDefault=False))

    def prepareAlgorithm(self, parameters, context, feedback):  # noqa: N802
        """Runs in the main thread: a non-file layer's provider is cloned here for the worker thread."""
        self.check_ready(parameters, context, feedback)
        from .provider_source import layer_input

        layer = self.parameterAsRasterLayer(parameters, self.INPUT, context)
        if layer is None:
            raise QgsProcessingException("the input raster layer could not be loaded: check the INPUT parameter")
        extent = None
        if parameters.get(self.EXTENT) not in (None, ""):
            extent = self.parameterAsExtent(parameters, self.EXTENT, context, layer.crs())
        input_gsd = (self.parameterAsDouble(parameters, self.INPUT_GSD, context)
                     if parameters.get(self.INPUT_GSD) not in (None, "") else None)
        self.source = self.run_engine(feedback, lambda fb: layer_input(
            layer, self.model_value(parameters, self.MODEL, context), extent, fb, input_gsd))
        return self.source is not None

    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802
        from ..engine.classify import ClassifyParams, classify

        output = self.parameterAsOutputLayer(parameters, self.OUTPUT, context)
        confidence = self.parameterAsOutputLayer(parameters, self.CONFIDENCE, context) or None
        areas = self.parameterAsFileOutput(parameters, self.CLASS_AREAS, context) or None
        pixel_size = parameters.get(self.OUTPUT_PIXEL_SIZE)
        input_gsd = parameters.get(self.INPUT_GSD)
        resample = self.parameterAsEnum(parameters, self.RESAMPLE, context)
        params = ClassifyParams(
            input=self.source, output=output, model=self.model_value(parameters, self.MODEL, context),
            tile_size_px=self.optional_int(parameters, self.TILE_SIZE, context),
            overlap_px=self.optional_int(parameters, self.OVERLAP, context),
            batch_size=self.optional_int(parameters, self.BATCH_SIZE, context),
            device=self.device(parameters, self.DEVICE, context), confidence=confidence,
            tta=self.parameterAsBool(parameters, self.TTA, context),
            gsd="off" if resample == 1 else (self.parameterAsDouble(parameters, self.INPUT_GSD, context)
                                             if input_gsd not in (None, "") else "auto"),
            output_resolution=(self.parameterAsDouble(parameters, self.OUTPUT_PIXEL_SIZE, context)
                               if pixel_size not in (None, "") else
                               OUTPUT_GRIDS[self.parameterAsEnum(parameters, self.OUTPUT_RESOLUTION, context)]),
            areas=areas)
        try:
            result = self.run_engine(feedback, lambda fb: classify(params, fb))
        finally:
            if not isinstance(self.source, str):
                self.source.close()
        if result is None:
            return {}
        feedback.pushInfo(result.summary())
        self.style_on_load(context, output, str(Path(output).with_suffix(".qml")), f"Land cover ({result.model_name})")
        outputs = {self.OUTPUT: output}
        if confidence:
            outputs[self.CONFIDENCE] = confidence
        if areas:
            outputs[self.CLASS_AREAS] = areas
        return outputs
