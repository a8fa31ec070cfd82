"""The Processing provider ``landcover``."""
from qgis.core import QgsProcessingProvider
from qgis.PyQt.QtGui import QIcon

from .. import __version__
from .base import ICON
from .change_algorithm import ChangeAlgorithm
from .chips_algorithm import ExportChipsAlgorithm
from .classify_algorithm import ClassifyAlgorithm
from .evaluate_algorithm import EvaluateAlgorithm
from .finetune_algorithm import FinetuneAlgorithm
from .train_algorithm import TrainAlgorithm
from .vectorize_algorithm import VectorizeAlgorithm


class LandcoverProvider(QgsProcessingProvider):
    def id(self):
        return "landcover"

    def name(self):
        return "Landcover"

    def longName(self):
        return f"Landcover {__version__}"

    def icon(self):
        return QIcon(ICON)

    def versionInfo(self):
        return __version__

    def supportedOutputRasterLayerExtensions(self):
        return ["tif"]

    def loadAlgorithms(self):
        self.addAlgorithm(ChangeAlgorithm())
        self.addAlgorithm(ClassifyAlgorithm())
        self.addAlgorithm(EvaluateAlgorithm())
        self.addAlgorithm(ExportChipsAlgorithm())
        self.addAlgorithm(FinetuneAlgorithm())
        self.addAlgorithm(TrainAlgorithm())
        self.addAlgorithm(VectorizeAlgorithm())
