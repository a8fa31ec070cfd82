"""Processing algorithm ``landcover:train`` (engine: ``landcover_plugin.train``); runs in the background
like any Processing algorithm, with progress and Cancel."""
from datetime import datetime
from pathlib import Path

from qgis.core import (
    QgsProcessingException,
    QgsProcessingOutputFolder,
    QgsProcessingOutputNumber,
    QgsProcessingParameterFile,
    QgsProcessingParameterFileDestination,
    QgsProcessingParameterNumber,
)

from .base import LandcoverAlgorithm


class TrainAlgorithm(LandcoverAlgorithm):
    CONFIG, STEPS, SEED, OUTPUT = "CONFIG", "STEPS", "SEED", "OUTPUT"

    NAME = "train"
    REQUIRES = ("onnxruntime",)
    DISPLAY_NAME = "Train a land-cover model"
    GROUP = "Training"
    GROUP_ID = "training"
    HELP = (
        'Trains a segmentation model (U-Net or FPN on an ImageNet-pretrained EfficientNet-Lite0, as the '
        'config\'s "architecture" says) from the image + label raster pairs and classes of a training config '
        '(JSON; see models/flair-rgb.train.json), '
        'validates on contiguous held-out blocks, and exports the best step to ONNX with complete '
        'metadata and a model card (.md beside it). The run folder (config, metrics.csv, best.pt, '
        "summary.json) is created beside the output. Needs PyTorch in QGIS' Python. Cancel stops after "
        'the current step; no model is written then.')

    def initAlgorithm(self, config=None):
        self.addParameter(QgsProcessingParameterFile(self.CONFIG, "Training config (JSON)", extension="json"))
        self.addParameter(QgsProcessingParameterNumber(self.STEPS, "Steps (empty = the config's)",
                                                       QgsProcessingParameterNumber.Integer, optional=True, minValue=1))
        self.addParameter(QgsProcessingParameterNumber(self.SEED, "Random seed (empty = the config's)",
                                                       QgsProcessingParameterNumber.Integer, optional=True))
        self.addParameter(QgsProcessingParameterFileDestination(self.OUTPUT, "Model (ONNX)", "ONNX models (*.onnx)"))
        self.addOutput(QgsProcessingOutputNumber("VAL_MIOU", "Validation mIoU"))
        self.addOutput(QgsProcessingOutputFolder("RUN_DIR", "Run folder"))

    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802
        try:
            from ..train.config import load_config
            from ..train.trainer import train
        except ImportError as exc:
            from .dependencies_ui import extras_command

            raise QgsProcessingException(f"training needs the Python package '{exc.name}' in QGIS' Python: install the "
                                         f"training extras (PyTorch: about 1 GB) with QGIS' Python: "
                                         f"{extras_command('training')}, then restart QGIS") from None
        output = Path(self.parameterAsFileOutput(parameters, self.OUTPUT, context))

        def work(engine_feedback):
            config = load_config(self.parameterAsFile(parameters, self.CONFIG, context),
                                 steps=self.optional_int(parameters, self.STEPS, context),
                                 seed=self.optional_int(parameters, self.SEED, context))
            run_dir = output.parent / f"{output.stem}-run-{datetime.now():%Y%m%d-%H%M%S}"
            engine_feedback.info(f"Training {config.name}: {config.steps} steps; run folder {run_dir}")
            summary = train(config, output, run_dir, command="landcover:train", progress=engine_feedback.progress,
                            cancelled=engine_feedback.is_cancelled, info=engine_feedback.info)
            return summary, run_dir

        done = self.run_engine(feedback, work)
        if done is None:
            return {}
        summary, run_dir = done
        feedback.pushInfo(summary.summary())
        return {self.OUTPUT: str(output), "VAL_MIOU": summary.val_miou, "RUN_DIR": str(run_dir)}
