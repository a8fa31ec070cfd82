"""Classification speed: model-only MP/s (onnxruntime on random tiles in memory, no I/O), end-to-end
MP/s of `landcover classify` on a real raster, their ratio, the end-to-end run's peak RSS, and a
per-tile baseline (one tile per session call: read, infer, hard centre-crop, write — what most
plugins do) at the same tile size and overlap. Both end-to-end runs are processes of their own, timed
from start to exit (imports, model load and writing included).

Usage: .venv/bin/python bench/classify_speed.py [RASTER ...] [--tile-size PX] [--overlap PX]
       [--batch-size N] [--device cpu] [--no-baseline] [--repeat 3] [--model-seconds 10] [--json out.json]
Tile size, overlap and batch size default to what `landcover classify` uses (the model's metadata,
the engine's default batch for the provider). With no RASTER: the 21 MP FLAIR mosaic Z3 and a VRT
stacking it 4× vertically (84 MP, same width).
Each raster gets ``--repeat`` rounds (model-only limit, end to end, baseline, back to back); the table
gives medians, the JSON also their ranges. MP/s counts input raster pixels (the model-only figure
counts the pixels the blended output gains per tile at this overlap, so the two are comparable).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
from landcover_plugin.engine.classify import default_batch_size  # noqa: E402
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


def stacked_vrt(source: Path, copies: int, path: Path) -> Path:
    """A VRT repeating ``source`` ``copies`` times top to bottom (same width: memory should not grow)."""
    import rasterio

    with rasterio.open(source) as src:
        w, h, count, crs, t = src.width, src.height, src.count, src.crs.to_wkt(), src.transform
    bands = "".join(
        f'<VRTRasterBand dataType="Byte" band="{b}"><ColorInterp>{ci}</ColorInterp>' + "".join(
            f'<SimpleSource><SourceFilename relativeToVRT="0">{source}</SourceFilename><SourceBand>{b}</SourceBand>'
            f'<SrcRect xOff="0" yOff="0" xSize="{w}" ySize="{h}"/><DstRect xOff="0" yOff="{k * h}" xSize="{w}" ySize="{h}"/>'
            f'</SimpleSource>' for k in range(copies)) + "</VRTRasterBand>"
        for b, ci in zip(range(1, count + 1), ["Red", "Green", "Blue"]))
    path.write_text(f'<VRTDataset rasterXSize="{w}" rasterYSize="{h * copies}"><SRS>{crs}</SRS>'
                    f'<GeoTransform>{t.c}, {t.a}, {t.b}, {t.f}, {t.d}, {t.e}</GeoTransform>{bands}</VRTDataset>')
    return path


def baseline(raster: str, model: OnnxModel, tile: int, overlap: int, output: Path) -> None:
    """The per-tile loop most plugins use. Keeps each tile's centre (overlap/2 px margins, none at the
    raster's edge) with no blending."""
    import rasterio
    from rasterio.windows import Window

    margin = overlap // 2
    values = np.asarray(model.meta.class_values, np.uint8)
    with rasterio.open(raster) as src:
        profile = {"driver": "GTiff", "width": src.width, "height": src.height, "count": 1, "dtype": "uint8",
                   "crs": src.crs, "transform": src.transform, "tiled": True, "compress": "deflate"}
        with rasterio.open(output, "w", **profile) as dst:
            for row in window_rows(src.width, src.height, tile, overlap):
                for w in row:
                    x = src.read(window=Window(w.col, w.row, w.width, w.height))[None].astype(np.float32)
                    classes = values[model.predict(x)[0].argmax(0)]
                    top = 0 if w.row == 0 else margin
                    left = 0 if w.col == 0 else margin
                    bottom = w.height if w.row + w.height == src.height else w.height - margin
                    right = w.width if w.col + w.width == src.width else w.width - margin
                    dst.write(classes[top:bottom, left:right], 1,
                              window=Window(w.col + left, w.row + top, right - left, bottom - top))


def timed(cmd: list[str]) -> tuple[float, float]:
    """Run ``cmd`` as a process: wall seconds (start-up and model load included) and peak RSS (MB)."""
    start = time.perf_counter()
    proc = subprocess.run(["/usr/bin/time", "-f", "%M", *cmd], check=True, capture_output=True, text=True)
    return time.perf_counter() - start, int(proc.stderr.strip().splitlines()[-1]) / 1024


def measure(raster: str, args, model: OnnxModel) -> dict:
    """``args.repeat`` rounds, each timing the model-only limit, `landcover classify` and the baseline
    back to back; medians (and ranges) over the rounds, since shared machines are noisy."""
    import rasterio

    with rasterio.open(raster) as ds:
        width, height = ds.width, ds.height
    megapixels = width * height / 1e6
    windows = sum(len(r) for r in window_rows(width, height, args.tile_size, args.overlap))
    # The same work as end to end: `windows` tiles for width*height output pixels.
    per_tile_mp = (width * height) / (windows * args.tile_size ** 2)
    limits, seconds, rss, base = [], [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "out.tif"
        cmd = [str(REPO / ".venv" / "bin" / "landcover"), "classify", raster, str(out), "-q", "--model", args.model,
               "--tile-size", str(args.tile_size), "--overlap", str(args.overlap),
               "--batch-size", str(args.batch_size), "--device", args.device]
        base_cmd = [sys.executable, __file__, raster, "--baseline-to", str(Path(tmp) / "base.tif"), "--model", args.model,
                    "--tile-size", str(args.tile_size), "--overlap", str(args.overlap), "--device", args.device]
        for _ in range(args.repeat):
            limits.append(model_only(model, args.tile_size, args.batch_size, args.model_seconds) * per_tile_mp)
            s, r = timed(cmd)
            seconds.append(s)
            rss.append(r)
            if args.baseline:  # also a process of its own, so both include start-up and model load
                base.append(timed(base_cmd)[0])
    med = statistics.median
    e2e, limit = megapixels / med(seconds), med(limits)
    span = lambda values: [round(min(values), 3), round(max(values), 3)]  # noqa: E731
    return {
        "raster": raster, "size_px": [width, height], "megapixels": round(megapixels, 2), "windows": windows,
        "rounds": args.repeat, "model_only_limit_mp_s": round(limit, 3), "model_only_range": span(limits),
        "end_to_end_mp_s": round(e2e, 3), "end_to_end_range": span([megapixels / s for s in seconds]),
        "end_to_end_seconds": round(med(seconds), 1), "ratio_to_model_limit": round(e2e / limit, 3),
        "ratio_range": span([megapixels / s / lim for s, lim in zip(seconds, limits)]),
        "peak_rss_mb": round(max(rss)),
        "baseline_mp_s": round(megapixels / med(base), 3) if base else None,
        "speedup_over_baseline": round(med(base) / med(seconds), 2) if base else None,
        "speedup_range": span([b / s for b, s in zip(base, seconds)]) if base else None,
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("rasters", nargs="*")
    ap.add_argument("--model", default="flair-rgb")
    ap.add_argument("--tile-size", type=int, help="default: the model's")
    ap.add_argument("--overlap", type=int, help="default: the model's")
    ap.add_argument("--batch-size", type=int, help="default: classify's for the execution provider")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--no-baseline", dest="baseline", action="store_false")
    ap.add_argument("--repeat", type=int, default=3, help="rounds per raster; medians are reported")
    ap.add_argument("--model-seconds", type=float, default=10.0, help="model-only timing per round")
    ap.add_argument("--json")
    ap.add_argument("--baseline-to", help=argparse.SUPPRESS)  # internal: run the baseline alone into this file
    args = ap.parse_args()
    model = OnnxModel(resolve_model(args.model), args.device)
    args.tile_size = args.tile_size or model.meta.tile_size_px
    args.overlap = model.meta.overlap_px if args.overlap is None else args.overlap
    args.batch_size = args.batch_size or default_batch_size(model.provider, args.tile_size)
    if args.baseline_to:
        baseline(args.rasters[0], model, args.tile_size, args.overlap, Path(args.baseline_to))
        return
    tmp = Path(tempfile.mkdtemp())
    rasters = args.rasters or [str(DEFAULT_RASTER), str(stacked_vrt(DEFAULT_RASTER, 4, tmp / "Z3_x4.vrt"))]
    info = {"provider": model.provider, "onnxruntime": ort.__version__, "cpu": platform.processor() or platform.machine(),
            "cores": os.cpu_count(), "ort_intra_op_threads": "default (one per core)", "tile_size": args.tile_size,
            "overlap": args.overlap, "batch_size": args.batch_size}
    runs = [measure(r, args, model) for r in rasters]
    for key, value in info.items():
        print(f"{key:>24}: {value}")
    keys = list(runs[0])
    print("\n" + " | ".join(["measure"] + [Path(r["raster"]).name for r in runs]))
    for key in keys[1:]:
        print(" | ".join([key] + [str(r[key]) for r in runs]))
    if args.json:
        Path(args.json).write_text(json.dumps({**info, "runs": runs}, indent=2))


if __name__ == "__main__":
    main()
