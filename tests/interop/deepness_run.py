"""Run a model in the Deepness QGIS plugin (0.6.5, ``../shared/peers/deepness``), headless, the way
Deepness' own tests do: ``QgsApplication`` without GUI, a ``MagicMock`` map canvas, the parameter
dataclasses of ``deepness.common.processing_parameters``, ``MapProcessorSegmentation.run()``.

Usage (run in a subprocess by the tests, with ``QT_QPA_PLATFORM=offscreen``)::

    python deepness_run.py '{"deepness": SRC, "raster": R, "model": M, "out": OUT.npy,
                             "resolution_cm": 20, "overlap_pct": 25, "threshold": 0.0, "batch": 1}'

Writes Deepness' result image ``(outputs, H, W)`` uint8 (class index + 1, 0 outside) to ``out``.
Nothing of Deepness is copied into Landcover; it is imported from the peers folder at test time.
"""
import json
import sys
from unittest.mock import MagicMock


def main(args: dict) -> None:
    sys.path.insert(0, args["deepness"])
    import numpy as np
    from qgis.core import QgsApplication, QgsProject, QgsRasterLayer

    app = QgsApplication([b""], False)
    app.initQgis()
    from deepness.common.channels_mapping import ChannelsMapping, ImageChannelStandaloneBand
    from deepness.common.processing_overlap import ProcessingOverlap, ProcessingOverlapOptions
    from deepness.common.processing_parameters.map_processing_parameters import ProcessedAreaType
    from deepness.common.processing_parameters.segmentation_parameters import SegmentationParameters
    from deepness.processing.map_processor.map_processor_segmentation import MapProcessorSegmentation
    from deepness.processing.models.segmentor import Segmentor

    rlayer = QgsRasterLayer(args["raster"], "raster")
    if not rlayer.isValid():
        raise SystemExit(f"QGIS cannot open {args['raster']}")
    QgsProject.instance().addMapLayer(rlayer)
    model = Segmentor(args["model"])
    mapping = ChannelsMapping()
    mapping.set_image_channels([ImageChannelStandaloneBand(band_number=b, name=str(b))
                                for b in range(1, rlayer.bandCount() + 1)])
    mapping.set_number_of_model_inputs(model.get_number_of_channels())
    params = SegmentationParameters(
        resolution_cm_per_px=args["resolution_cm"],
        tile_size_px=model.get_input_size_in_pixels()[0],
        batch_size=args.get("batch", 1),
        local_cache=False,
        processed_area_type=ProcessedAreaType.ENTIRE_LAYER,
        mask_layer_id=None,
        input_layer_id=rlayer.id(),
        input_channels_mapping=mapping,
        postprocessing_dilate_erode_size=args.get("dilate", 0),
        processing_overlap=ProcessingOverlap(ProcessingOverlapOptions.OVERLAP_IN_PERCENT, percentage=args["overlap_pct"]),
        pixel_classification__probability_threshold=args["threshold"],
        model=model,
    )
    processor = MapProcessorSegmentation(rlayer=rlayer, vlayer_mask=None, map_canvas=MagicMock(), params=params)
    processor.run()
    result = processor._processing_result
    if type(result).__name__ != "MapProcessingResultSuccess":
        raise SystemExit(f"Deepness failed: {getattr(result, 'message', result)} {getattr(result, 'exception', '')!r}")
    np.save(args["out"], np.asarray(processor.get_result_img()))


if __name__ == "__main__":
    main(json.loads(sys.argv[1]))
