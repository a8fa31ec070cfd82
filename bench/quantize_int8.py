"""An int8 copy of a bundled model and what it costs in accuracy: static QDQ quantization with
onnxruntime's quantization tool (per-channel int8 weights, uint8 activations calibrated on tiles from
the training part of the config's scenes, never the validation blocks), then the model-only time per
batch of 512 px tiles for both files and `bench/evaluate_flair.py` for both.

Usage: .venv/bin/python bench/quantize_int8.py [--model models/flair-rgb.onnx]
       [--config models/flair-rgb.train.json] [--output out/flair-rgb-int8.onnx] [--tiles 12]
Needs the `onnx` package (installed with the training extras).
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import rasterio
from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
from onnxruntime.quantization.shape_inference import quant_pre_process
from rasterio.windows import Window

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
from bench.classify_speed import model_only  # noqa: E402
from landcover_plugin.model.adapter import OnnxModel  # noqa: E402
from landcover_plugin.train.config import load_config  # noqa: E402
from landcover_plugin.train.data import split_column  # noqa: E402


class Tiles(CalibrationDataReader):
    """Normalised ``(1, C, tile, tile)`` float32 tiles at random places of the scenes' training columns."""

    def __init__(self, model: OnnxModel, config, count: int, tile: int):
        rng = np.random.default_rng(0)
        self.tiles = []
        for i in range(count):
            image_path = config.pairs[i % len(config.pairs)][0]
            with rasterio.open(image_path) as src:
                train_cols = split_column(image_path, src.width, config.val_fraction)
                col = int(rng.integers(0, train_cols - tile + 1))
                row = int(rng.integers(0, src.height - tile + 1))
                x = src.read(window=Window(col, row, tile, tile)).astype(np.float32)[None]
            self.tiles.append({model.input_name: model.normalise(x)})
        self.iterator = iter(self.tiles)

    def get_next(self):
        return next(self.iterator, None)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default=str(REPO / "models" / "flair-rgb.onnx"))
    ap.add_argument("--config", default=str(REPO / "models" / "flair-rgb.train.json"))
    ap.add_argument("--output", default=str(REPO / "out" / "flair-rgb-int8.onnx"))
    ap.add_argument("--tiles", type=int, default=12, help="calibration tiles")
    args = ap.parse_args()
    config, model = load_config(args.config), OnnxModel(args.model, "cpu")
    output = Path(args.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        prepared = Path(tmp) / "prepared.onnx"
        quant_pre_process(args.model, str(prepared))
        quantize_static(str(prepared), str(output), Tiles(model, config, args.tiles, model.meta.tile_size_px),
                        quant_format=QuantFormat.QDQ, per_channel=True, activation_type=QuantType.QUInt8,
                        weight_type=QuantType.QInt8)
    tile = model.meta.tile_size_px
    for path in (Path(args.model), output):
        seconds = 4 * tile * tile / 1e6 / model_only(OnnxModel(path, "cpu"), tile, 4, seconds=10.0)
        print(f"{path.name}: {path.stat().st_size / 1e6:.1f} MB, {seconds:.3f} s per batch "
              f"of 4 × {tile} px tiles (model only, CPU)", flush=True)
        subprocess.run([sys.executable, str(REPO / "bench" / "evaluate_flair.py"), "--config", args.config,
                        "--model", str(path)], check=True)


if __name__ == "__main__":
    main()
