"""Command-line interface: ``landcover classify|models|info|train`` (also ``python -m landcover_plugin``).

Errors the user can fix print one line to stderr and exit with status 2; no traceback.
"""
from __future__ import annotations

import argparse
import json
import shlex
import sys
from datetime import datetime
from pathlib import Path

from .errors import LandcoverError

# GDAL's block cache defaults to 5 % of RAM and fills as a large raster is read; the engine streams,
# so a small cache keeps the process's memory flat with raster size (not slower in bench/).
GDAL_CACHE_MB = 128


def _bands(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(b) for b in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"--bands takes 1-based band numbers like 1,2,3, got {text!r}") from None


def _classify(args) -> int:
    from tqdm import tqdm

    from .engine.classify import ClassifyParams, classify

    params = ClassifyParams(args.input, args.output, args.model, args.tile_size, args.overlap, args.batch_size,
                            args.device, args.confidence, args.bands, args.threads, tta=args.tta)
    if args.scheduler:
        from .scale_out import classify_dask

        classify_dask(params, args.scheduler, args.part_rows, info=(lambda m: None) if args.quiet else print)
        return 0
    bar = tqdm(total=100, unit="%", desc="classify", disable=args.quiet or None,
               bar_format="{l_bar}{bar}| {n:.0f}/{total}% [{elapsed}<{remaining}]")
    info = (lambda m: None) if args.quiet else tqdm.write

    def progress(fraction: float) -> None:
        bar.update(100 * fraction - bar.n)

    try:
        result = classify(params, progress=progress, info=info)
    finally:
        bar.close()
    if args.areas:
        result.write_class_areas(args.areas)
    if not args.quiet:
        print(summary_text(result))
    return 0


def summary_text(result) -> str:
    """The closing summary: output, pixels, seconds, MP/s, provider and the class-area table."""
    lines = [f"Wrote {result.output}" + (f" and {result.confidence}" if result.confidence else ""),
             f"{result.width}×{result.height} px ({result.width * result.height / 1e6:.2f} MP, {result.valid_pixels:,} valid) "
             f"in {result.seconds:.1f} s = {result.megapixels_per_second:.2f} MP/s on {result.provider}; model {result.model_name}, {result.bands}"]
    georef = result.pixel_area_m2 is not None
    lines.append(f"{'class':<24}{'pixels':>14}" + (f"{'km²':>12}" if georef else "") + f"{'%':>8}")
    for name, pixels, km2, pct in result.class_table():
        lines.append(f"{name:<24}{pixels:>14,}" + (f"{km2:>12.6f}" if georef else "") + f"{pct:>8.2f}")
    return "\n".join(lines)


def _models(args) -> int:
    from .model.adapter import read_metadata
    from .model.metadata import gsd_text
    from .model.registry import DEFAULT_MODEL, bundled_models

    for name, path in bundled_models().items():
        meta = read_metadata(path)
        default = " (default)" if name == DEFAULT_MODEL else ""
        bands = f"{meta.num_bands} band{'s' if meta.num_bands != 1 else ''} ({', '.join(meta.input_bands or ['unnamed'])})"
        print(f"{name}{default}: {meta.num_classes} classes, {bands}, GSD {gsd_text(meta.gsd)} — {path}")
        print("    " + ", ".join(f"{v}={n}" for v, n in zip(meta.class_values, meta.class_names)))
    return 0


def _info(args) -> int:
    from .model.adapter import read_metadata, sha256
    from .model.metadata import gsd_text
    from .model.registry import resolve_model

    path = resolve_model(args.model)
    meta = read_metadata(path)
    print(f"{path}\n  sha256 {sha256(path)}")
    for key in ("name", "version", "description", "license", "attribution"):
        if getattr(meta, key):
            print(f"  {key}: {getattr(meta, key)}")
    print(f"  input: {meta.num_bands} bands {list(meta.input_bands or [])}, value range {list(meta.value_range)}, "
          f"mean {list(meta.mean or [])}, std {list(meta.std or [])}")
    print(f"  GSD {gsd_text(meta.gsd)}, tile {meta.tile_size} px, overlap {meta.overlap} px, padding {meta.padding} px, output {meta.output}")
    print("  classes:")
    for v, n, c in zip(meta.class_values, meta.class_names, meta.class_colors):
        print(f"    {v:>3}  {c}  {n}")
    return 0


def _settings(items: list[str]) -> dict:
    """``KEY=VALUE`` strings → {KEY: VALUE parsed as JSON, or the plain string when it is not JSON}."""
    parsed = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise LandcoverError(f"--set {item!r}: write KEY=VALUE, e.g. --set architecture=fpn or --set 'loss={{\"ce\": 1, \"dice\": 1}}'")
        try:
            parsed[key] = json.loads(value)
        except json.JSONDecodeError:
            parsed[key] = value
    return parsed


def _train(args) -> int:
    from .train.config import load_config
    from .train.trainer import find_lr, train

    config = load_config(args.config, steps=args.steps, seed=args.seed, **_settings(args.set))
    run_dir = args.run_dir or Path("runs") / f"{config.name}-{datetime.now():%Y%m%d-%H%M%S}"
    if args.find_lr:
        found = find_lr(config, run_dir)
        print(f"learning-rate range test over {found['steps']} steps: suggested lr {found['suggested_lr']:.2g} "
              f"(curve in {found['csv']}); set it with --set lr={found['suggested_lr']:.2g}")
        return 0
    if not args.output:
        raise LandcoverError("--output is required to train: the ONNX file to write")
    command = "landcover " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    print(train(config, args.output, run_dir, command=command).summary())
    return 0


def _evaluate(args) -> int:
    from .codes import parse_codes, parse_mapping
    from .evaluate import EvaluateParams, evaluate, write_report

    result = evaluate(EvaluateParams(args.prediction, args.reference, parse_mapping(args.map), parse_codes(args.ignore)))
    write_report(result, args.json, args.report)
    print(f"overall accuracy {result['overall_accuracy']:.4f}, kappa {result['kappa']:.4f}, "
          f"mIoU {result['miou']:.4f} over {sum(result['present'])} classes; {result['scored_pixels']:,} pixels scored")
    print(f"{'class':<24}{'precision':>10}{'recall':>10}{'F1':>8}{'IoU':>8}")
    for i, name in enumerate(result["classes"]):
        print(f"{name:<24}" + "".join(f"{result[m][i]:>{w}.3f}" for m, w in
                                      (("precision", 10), ("recall", 10), ("f1", 8), ("iou", 8))))
    return 0


def _chips(args) -> int:
    from .chips import ChipParams, export_chips
    from .codes import parse_codes

    result = export_chips(ChipParams(args.image, args.label, args.output, args.size, args.stride, args.max_ignore,
                                     parse_codes(args.ignore), args.label_field))
    print(f"Wrote {result['chips']} chip pairs to {result['output']} (manifest.csv; {result['skipped']} skipped)")
    return 0


def _vectorize(args) -> int:
    from .vectorize import VectorizeParams, vectorize

    result = vectorize(VectorizeParams(args.classes, args.output, args.sieve, args.min_area))
    print(f"Wrote {result['polygons']} polygons to {result['output']} (+ .qml style)")
    return 0


def _diagnostics(args) -> int:
    from .diagnostics import diagnostics_text

    print(diagnostics_text())
    return 0


def _export(args) -> int:
    from .train.config import load_config
    from .train.trainer import export_checkpoint

    export_checkpoint(load_config(args.config), args.checkpoint, args.output)
    print(f"Wrote {args.output}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="landcover", description="Land-cover classification of rasters with ONNX segmentation models.")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("classify", help="classify a raster into a styled class GeoTIFF")
    p.add_argument("input", help="input raster (GeoTIFF, VRT, JPEG, PNG, ... anything GDAL reads)")
    p.add_argument("output", help="output class GeoTIFF (.tif); a .qml style is written beside it")
    p.add_argument("--model", help="bundled model name or ONNX path (default: flair-rgb)")
    p.add_argument("--tile-size", type=int, help="tile edge in px (default: the model's)")
    p.add_argument("--overlap", type=int, help="overlap between tiles in px (default: the model's)")
    p.add_argument("--batch-size", type=int, default=4, help="tiles per inference call (default 4)")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto", help="execution device (default auto)")
    p.add_argument("--confidence", help="also write the maximum class probability to this GeoTIFF")
    p.add_argument("--bands", type=_bands, help="1-based input bands in the model's order, e.g. 1,2,3")
    p.add_argument("--threads", type=int, help="CPU threads for onnxruntime (default: all cores)")
    p.add_argument("--areas", help="also write the class-area table (class, pixels, km², %%) to this CSV")
    p.add_argument("--tta", action="store_true", help="test-time augmentation: average over flips and 90° rotations (8× slower)")
    p.add_argument("--scheduler", help="run on Dask: local[N] (N worker processes) or tcp://HOST:PORT; "
                                       "OUTPUT .tif gives a COG, .vrt a VRT over the parts; a killed run resumes")
    p.add_argument("--part-rows", type=int, default=2048, help="rows per Dask task (default 2048)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar or summary")
    p.set_defaults(func=_classify)

    p = sub.add_parser("models", help="list bundled models and their classes")
    p.set_defaults(func=_models)

    p = sub.add_parser("info", help="show a model's metadata")
    p.add_argument("model", nargs="?", help="bundled model name or ONNX path (default: flair-rgb)")
    p.set_defaults(func=_info)

    p = sub.add_parser("train", help="train a model from image + label raster pairs and export it to ONNX")
    p.add_argument("--config", required=True, help="training config JSON (pairs, classes, hyper-parameters)")
    p.add_argument("--output", help="ONNX file to write (a model card .md is written beside it)")
    p.add_argument("--run-dir", type=Path, help="run folder (default runs/NAME-TIMESTAMP)")
    p.add_argument("--steps", type=int, help="override the config's number of steps")
    p.add_argument("--seed", type=int, help="override the config's random seed")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override any config key (VALUE as JSON), e.g. --set architecture=fpn --set 'loss={\"ce\":1,\"dice\":1}'")
    p.add_argument("--find-lr", action="store_true",
                   help="run a learning-rate range test (100 steps) instead of training and suggest an lr")
    p.set_defaults(func=_train)

    p = sub.add_parser("evaluate", help="score a class raster against reference labels")
    p.add_argument("prediction", help="class raster written by `landcover classify`")
    p.add_argument("reference", help="reference label raster (same grid, or georeferenced: warped with nearest)")
    p.add_argument("--map", help="reference codes onto class values, e.g. 13-19:13,0:255")
    p.add_argument("--ignore", help="reference codes not scored, e.g. 0,255")
    p.add_argument("--json", type=Path, help="write all numbers as JSON")
    p.add_argument("--report", type=Path, help="write a Markdown report (and a confusion-matrix PNG beside it)")
    p.set_defaults(func=_evaluate)

    p = sub.add_parser("chips", help="cut aligned image/label training chips with a manifest")
    p.add_argument("image", help="image raster")
    p.add_argument("label", help="label raster (any grid if both are georeferenced: warped with nearest), or "
                                 "polygons (GeoPackage, Shapefile, GeoJSON…) with --label-field")
    p.add_argument("output", help="new folder for images/, labels/ and manifest.csv")
    p.add_argument("--size", type=int, default=256, help="chip edge in px (default 256)")
    p.add_argument("--stride", type=int, help="px between chips (default: the size)")
    p.add_argument("--max-ignore", type=float, default=0.5, help="skip chips with more ignore pixels than this fraction")
    p.add_argument("--ignore", default="0", help="label codes that mean 'no label' (default 0)")
    p.add_argument("--label-field", help="polygon labels: the field holding each polygon's integer code")
    p.set_defaults(func=_chips)

    p = sub.add_parser("vectorize", help="class raster to styled polygons (GeoPackage)")
    p.add_argument("classes", help="class raster written by `landcover classify`")
    p.add_argument("output", help="GeoPackage (.gpkg) to write; a .qml style is written beside it")
    p.add_argument("--sieve", type=int, default=0, help="merge regions smaller than this many px first (default 0: off)")
    p.add_argument("--min-area", type=float, default=0.0, help="drop polygons smaller than this area (m²)")
    p.set_defaults(func=_vectorize)

    p = sub.add_parser("diagnostics", help="versions, execution providers (available and used) and bundled models")
    p.set_defaults(func=_diagnostics)

    p = sub.add_parser("export", help="export a training checkpoint (best.pt of a run folder) to ONNX")
    p.add_argument("checkpoint", help="state dict written by `landcover train` (run folder's best.pt)")
    p.add_argument("--config", required=True, help="the training config the checkpoint was trained with")
    p.add_argument("--output", required=True, help="ONNX file to write")
    p.set_defaults(func=_export)
    return parser


def main(argv: list[str] | None = None) -> int:
    import rasterio

    args = build_parser().parse_args(argv)
    try:
        with rasterio.Env(GDAL_CACHEMAX=GDAL_CACHE_MB):
            return args.func(args)
    except LandcoverError as exc:
        print(f"landcover: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("landcover: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
