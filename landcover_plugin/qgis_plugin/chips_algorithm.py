"""Processing algorithm ``landcover:export_chips`` (engine: ``landcover_plugin.chips``)."""
from qgis.core import (
    QgsProcessing,
    QgsProcessingException,
    QgsProcessingOutputNumber,
    QgsProcessingParameterField,
    QgsProcessingParameterFolderDestination,
    QgsProcessingParameterNumber,
    QgsProcessingParameterRasterLayer,
    QgsProcessingParameterString,
    QgsProcessingParameterVectorLayer,
)

from .base import LandcoverAlgorithm


class ExportChipsAlgorithm(LandcoverAlgorithm):
    IMAGE, LABEL, POLYGONS, LABEL_FIELD, SIZE, STRIDE, MAX_IGNORE, IGNORE, OUTPUT = (
        "IMAGE", "LABEL", "POLYGONS", "LABEL_FIELD", "SIZE", "STRIDE", "MAX_IGNORE", "IGNORE", "OUTPUT")

    NAME = "export_chips"
    DISPLAY_NAME = "Export training chips"
    GROUP = "Training"
    GROUP_ID = "training"
    HELP = (
        'Cuts aligned image/label chips (GeoTIFF, georeferenced like the image) into a new folder with '
        'images/, labels/ and manifest.csv (position and pixel count of every label code per chip, for '
        'stratified splits). The label raster may be on another grid or CRS: it is warped onto the '
        "image's grid with nearest. Instead of a label raster, give polygons and the field holding their "
        'integer label codes: they are burnt onto the image grid (255 outside every polygon, ignored). '
        'Chips with more than <i>Max ignore</i> of ignore pixels (label codes '
        'in <i>Ignore codes</i>, or image nodata/alpha 0) are skipped.')

    def initAlgorithm(self, config=None):
        self.addParameter(QgsProcessingParameterRasterLayer(self.IMAGE, "Image"))
        self.addParameter(QgsProcessingParameterRasterLayer(self.LABEL, "Label raster", optional=True))
        self.addParameter(QgsProcessingParameterVectorLayer(self.POLYGONS, "or label polygons",
                                                            [QgsProcessing.TypeVectorPolygon], optional=True))
        self.addParameter(QgsProcessingParameterField(self.LABEL_FIELD, "Label field of the polygons (integer codes)",
                                                      parentLayerParameterName=self.POLYGONS, optional=True))
        self.addParameter(QgsProcessingParameterNumber(self.SIZE, "Chip size (px)", QgsProcessingParameterNumber.Integer,
                                                       defaultValue=256, minValue=8))
        self.addParameter(QgsProcessingParameterNumber(self.STRIDE, "Stride (px; empty = chip size)",
                                                       QgsProcessingParameterNumber.Integer, optional=True, minValue=1))
        self.addParameter(QgsProcessingParameterNumber(self.MAX_IGNORE, "Max ignore fraction",
                                                       QgsProcessingParameterNumber.Double, defaultValue=0.5,
                                                       minValue=0, maxValue=1))
        self.addParameter(QgsProcessingParameterString(self.IGNORE, "Ignore codes", defaultValue="0", optional=True))
        self.addParameter(QgsProcessingParameterFolderDestination(self.OUTPUT, "Chips folder"))
        self.addOutput(QgsProcessingOutputNumber("CHIPS", "Chips written"))

    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802
        from ..chips import ChipParams, export_chips
        from ..codes import parse_codes

        image = self.raster_file(parameters, self.IMAGE, context, "image")
        polygons = self.parameterAsVectorLayer(parameters, self.POLYGONS, context)
        has_raster = parameters.get(self.LABEL) not in (None, "")
        if has_raster == (polygons is not None):
            raise QgsProcessingException("give either a label raster or label polygons (with their label field)")
        label = self.raster_file(parameters, self.LABEL, context, "label raster") if has_raster else polygons.source().split("|")[0]

        def work(_feedback):
            return export_chips(ChipParams(
                image, label, self.parameterAsString(parameters, self.OUTPUT, context),
                self.parameterAsInt(parameters, self.SIZE, context), self.optional_int(parameters, self.STRIDE, context),
                self.parameterAsDouble(parameters, self.MAX_IGNORE, context),
                parse_codes(self.parameterAsString(parameters, self.IGNORE, context)),
                self.parameterAsString(parameters, self.LABEL_FIELD, context) or None))

        result = self.run_engine(feedback, work)
        if result is None:
            return {}
        feedback.pushInfo(result.summary())
        return {self.OUTPUT: str(result.output), "CHIPS": result.chips}
