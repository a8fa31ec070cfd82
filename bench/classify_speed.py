"""Classification speed: model-only MP/s (onnxruntime on random tiles in memory, no I/O), end-to-end
MP/s of `landcover classify` on a real raster, their ratio, and the end-to-end run's peak RSS.

Usage: .venv/bin/python bench/classify_speed.py [RASTER] [--tile-size 512] [--overlap 128]
       [--batch-size 4] [--device cpu] [--json out.json]
MP/s counts input raster pixels (the model-only figure counts the pixels the blended output gains
per tile at this overlap, so the two are comparable).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
from landcover_plugin.engine.windows import window_rows  # noqa: E402
from landcover_plugin.model.adapter import OnnxModel  # noqa: E402
from landcover_plugin.model.registry import resolve_model  # noqa: E402

DEFAULT_RASTER = REPO.parent / "shared" / "data" / "flair" / "zones" / "Z3_image.vrt"


def model_only(model: OnnxModel, tile: int, batch: int, seconds: float = 20.0) -> float:
    """Model-only throughput in tile megapixels per second."""
    x = np.random.default_rng(0).integers(0, 256, (batch, model.num_bands, tile, tile)).astype(np.float32)
    model.predict(x)  # warm-up
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        model.predict(x)
        n += 1
    return n * batch * tile * tile / 1e6 / (time.perf_counter() - start)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("raster", nargs="?", default=str(DEFAULT_RASTER))
    ap.add_argument("--model", default="flair-rgb")
    ap.add_argument("--tile-size", type=int, default=512)
    ap.add_argument("--overlap", type=int, default=128)
    ap.add_argument("--batch-size", type=int, default=4)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--json")
    args = ap.parse_args()

    import rasterio

    with rasterio.open(args.raster) as ds:
        width, height = ds.width, ds.height
    windows = sum(len(r) for r in window_rows(width, height, args.tile_size, args.overlap))
    model = OnnxModel(resolve_model(args.model), args.device)
    tile_mps = model_only(model, args.tile_size, args.batch_size)
    # The same work as end to end: `windows` tiles for width*height output pixels.
    limit = tile_mps * (width * height) / (windows * args.tile_size ** 2)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "out.tif"
        start = time.perf_counter()
        subprocess.run([str(REPO / ".venv" / "bin" / "landcover"), "classify", args.raster, str(out), "-q",
                        "--model", args.model, "--tile-size", str(args.tile_size), "--overlap", str(args.overlap),
                        "--batch-size", str(args.batch_size), "--device", args.device], check=True)
        seconds = time.perf_counter() - start
    rss_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    e2e = width * height / 1e6 / seconds
    result = {
        "raster": args.raster, "size_px": [width, height], "megapixels": round(width * height / 1e6, 2),
        "tile_size": args.tile_size, "overlap": args.overlap, "batch_size": args.batch_size, "windows": windows,
        "provider": model.provider, "onnxruntime": ort.__version__, "cpu": platform.processor() or platform.machine(),
        "cores": os.cpu_count(), "model_only_tile_mp_s": round(tile_mps, 3), "model_only_limit_mp_s": round(limit, 3),
        "end_to_end_mp_s": round(e2e, 3), "end_to_end_seconds": round(seconds, 1),
        "ratio_to_model_limit": round(e2e / limit, 3), "peak_rss_mb": round(rss_mb),
    }
    for key, value in result.items():
        print(f"{key:>24}: {value}")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
