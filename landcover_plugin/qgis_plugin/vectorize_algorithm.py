"""Processing algorithm ``landcover:vectorize`` (engine: ``landcover_plugin.vectorize``)."""
from pathlib import Path

from qgis.core import (
    QgsProcessingOutputNumber,
    QgsProcessingParameterNumber,
    QgsProcessingParameterRasterLayer,
    QgsProcessingParameterVectorDestination,
)

from .base import LandcoverAlgorithm


class VectorizeAlgorithm(LandcoverAlgorithm):
    CLASSES, SIEVE, MIN_AREA, OUTPUT = "CLASSES", "SIEVE", "MIN_AREA", "OUTPUT"

    NAME = "vectorize"
    DISPLAY_NAME = "Vectorize land cover"
    GROUP = "Classification"
    GROUP_ID = "classification"
    HELP = (
        'Turns a class raster from <i>Classify land cover</i> into polygons (GDAL Polygonize) with the '
        "attributes class_value, class_name and area_m2, styled in the classes' colours. <b>Sieve</b> "
        'first merges regions smaller than that many pixels into their largest neighbour; <b>Minimum '
        'area</b> then drops smaller polygons. Output: a GeoPackage.')

    def initAlgorithm(self, config=None):
        self.addParameter(QgsProcessingParameterRasterLayer(self.CLASSES, "Class raster"))
        self.addParameter(QgsProcessingParameterNumber(self.SIEVE, "Sieve (px; 0 = off)",
                                                       QgsProcessingParameterNumber.Integer, defaultValue=0, minValue=0))
        self.addParameter(QgsProcessingParameterNumber(self.MIN_AREA, "Minimum area (m²)",
                                                       QgsProcessingParameterNumber.Double, defaultValue=0, minValue=0))
        self.addParameter(QgsProcessingParameterVectorDestination(self.OUTPUT, "Land-cover polygons"))
        self.addOutput(QgsProcessingOutputNumber("POLYGONS", "Polygons"))

    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802
        from ..vectorize import VectorizeParams, vectorize

        classes = self.raster_file(parameters, self.CLASSES, context, "class raster")
        output = self.parameterAsOutputLayer(parameters, self.OUTPUT, context)
        if not output.lower().endswith(".gpkg"):
            output = str(Path(output).with_suffix(".gpkg"))
        params = VectorizeParams(classes, output, self.parameterAsInt(parameters, self.SIEVE, context),
                                 self.parameterAsDouble(parameters, self.MIN_AREA, context))
        result = self.run_engine(feedback, lambda _fb: vectorize(params))
        if result is None:
            return {}
        feedback.pushInfo(result.summary())
        self.style_on_load(context, output, str(Path(output).with_suffix(".qml")))
        return {self.OUTPUT: output, "POLYGONS": result.polygons}
