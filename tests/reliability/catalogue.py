"""The fault catalogue: bad inputs, broken models, bad arguments and faults, each with what must happen.

One ``Case`` per fault, grouped by failure class (the groups of issue 14):

1. wrong-map — a map that would be silently wrong: non-finite or unnormalised model outputs,
   one-channel sigmoids, inputs outside the model's value range;
2. read-error — corrupt tiles, truncated files, VRTs whose source moved (``--on-read-error``);
3. contract — models that break the (B, C, H, W) → (B, K, H, W) contract; hostile or broken training
   checkpoints and configs;
4. leftovers — output paths that clash (folders, sidecars, parts and run folders), stale temporaries;
5. arguments — every argument checked before any work, in one line;
6. resources — rasters of absurd size, tiles that cannot fit in memory;
7. disk-full — the disk fills up while writing.

A case runs the real CLI (``python -m landcover_plugin ARGS``) in a folder holding only what its
``make`` wrote, and asserts (``test_catalogue.py``): the exit status; for a failure, exactly one line on
stderr matching ``message`` (``landcover: error: …``); for a success, only ``Warning: …`` lines on stderr
(one matching ``message`` when given); never a traceback; afterwards the folder holds the inputs
(unchanged, byte for byte) plus ``outputs`` and nothing else (no temporaries), and ``check`` passes on
the outputs. Cases with ``qgis`` also run through ``qgis_process`` (``test_catalogue_qgis.py``).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Callable

import numpy as np
from osgeo import gdal

from tests.fixtures import expected_classes
from tests.reliability import faults as f

CLASSIFY = ("classify", "in.tif", "out.tif", "--model", "m.onnx", "-q")
STYLED = ("out.tif", "out.qml", "out.tif.aux.xml")  # a class raster and its sidecars


@dataclass(frozen=True)
class Case:
    id: str
    group: str
    make: Callable[[Path], None]
    args: tuple[str, ...]
    exit: int = 2
    message: str = ""  # regex: the error line (failures) or one of the warning lines (successes)
    outputs: tuple[str, ...] = ()  # files the run creates (relative to the case folder)
    removed: tuple[str, ...] = ()  # inputs the run must delete (stale temporaries of killed runs)
    check: Callable[[Path], None] | None = None
    qgis: tuple[str, ...] | None = None  # qgis_process run ALGORITHM -- PARAMS ({d}: the case folder)
    tmpfs: tuple[str, str] | None = None  # (folder, mount options): a tmpfs mounted there for the run (root only)
    fsize: int | None = None  # RLIMIT_FSIZE of the run, bytes
    slow: bool = False
    env: dict = field(default_factory=dict)


# ------------------------------------------------------------------------------------------- makers

def both(*makers: Callable[[Path], None]) -> Callable[[Path], None]:
    def make(folder: Path) -> None:
        for maker in makers:
            maker(folder)
    return make


def scene_and(model_maker: Callable[[Path], None], **scene_kw) -> Callable[[Path], None]:
    return both(lambda d: f.scene(d, **scene_kw), model_maker)


def dominant(folder: Path) -> None:
    f.dominant_model(folder)


def plain(folder: Path) -> None:
    f.scene(folder)
    f.dominant_model(folder)


def write(name: str, data: np.ndarray, **kw) -> Callable[[Path], None]:
    return lambda d: f.write_tif(d / name, data, **kw)


def mkdir(*names: str) -> Callable[[Path], None]:
    def make(folder: Path) -> None:
        for name in names:
            (folder / name).mkdir(parents=True)
            (folder / name / "keep.txt").write_text("a user's file inside the folder\n")
    return make


def mkdir_empty(name: str) -> Callable[[Path], None]:
    return lambda d: (d / name).mkdir()


def text(name: str, content: str | bytes) -> Callable[[Path], None]:
    def make(folder: Path) -> None:
        (folder / name).write_bytes(content.encode() if isinstance(content, str) else content)
    return make


def stale_parts(folder: Path) -> None:
    """Temporaries of a run killed with -9 (PID 4194303, beyond any live process), one of a live process
    (PID 1), and a user's file that merely looks similar."""
    (folder / ".out.tif.part4194303").write_bytes(b"\0" * 4096)
    (folder / ".out.tif.part4194303.aux.xml").write_text("<PAMDataset/>")
    (folder / ".out.qml.part4194303").write_text("<qgis/>")
    (folder / ".other.tif.part1").write_bytes(b"\0" * 16)
    (folder / ".notes.partial").write_text("mine")


# ------------------------------------------------------------------------------------------- checks

def read(path: Path) -> np.ndarray:
    ds = gdal.Open(str(path))
    data = ds.ReadAsArray()
    ds = None
    return data


def classes_are(expected: Callable[[], np.ndarray], name: str = "out.tif") -> Callable[[Path], None]:
    def check(folder: Path) -> None:
        got = read(folder / name)
        np.testing.assert_array_equal(got, expected())
    return check


def dominant_classes() -> np.ndarray:
    return expected_classes(f.scene_data())


def sigmoid_classes() -> np.ndarray:
    return f.sigmoid_expected(f.scene_data())


def sigmoid_check(folder: Path) -> None:
    data = f.scene_data()
    got = read(folder / "out.tif")
    clear = np.abs(data[0].astype(int) - data[1].astype(int)) >= 2  # away from the threshold
    np.testing.assert_array_equal(got[clear], f.sigmoid_expected(data)[clear])
    assert set(np.unique(got)) == {0, 1}


def holes_check(folder: Path) -> None:
    """--on-read-error nodata: the corrupt block (rows and columns 64–127) is nodata, every other
    classified pixel is right, and the holes stay near the block."""
    got = read(folder / "out.tif")
    want = dominant_classes()
    assert (got[64:128, 64:128] == 255).all()
    valid = got != 255
    np.testing.assert_array_equal(got[valid], want[valid])
    assert valid.mean() > 0.6
    ds = gdal.Open(str(folder / "out.tif"))
    assert "could not be read" in ds.GetMetadataItem("LANDCOVER_WARNINGS")
    ds = None


def moved_holes_check(folder: Path) -> None:
    assert (read(folder / "out.tif") == 255).all()


def classified(folder: Path, name: str = "out.tif") -> None:
    got = read(folder / name)
    assert got.shape == (f.H, f.W) and (got != 255).all()


def onnx_runs(folder: Path) -> None:
    from landcover_plugin.model.adapter import validate_model

    model = validate_model(folder / "out.onnx")
    assert model.meta.class_names == ("red", "green", "blue")


def nodata_where_inf(folder: Path) -> None:
    data = f.scene_data().astype(np.float32)
    data[:, 10:20, 30:40] = np.inf
    got = read(folder / "out.tif")
    assert (got[10:20, 30:40] == 255).all()
    want = expected_classes(data)
    keep = np.ones(got.shape, bool)
    keep[10:20, 30:40] = False
    np.testing.assert_array_equal(got[keep], want[keep])


def all_nodata(folder: Path) -> None:
    assert (read(folder / "out.tif") == 255).all()


def inf_scene(folder: Path) -> None:
    data = f.scene_data().astype(np.float32)
    data[:, 10:20, 30:40] = np.inf
    f.write_tif(folder / "in.tif", data)


def train_pair_mismatch(folder: Path) -> None:
    """Image 128×128 and labels 100×90, neither georeferenced: they cannot be put on one grid."""
    f.train_config(folder)
    f.write_tif(folder / "img.tif", f.scene_data(128, 128), georef=False)
    f.write_tif(folder / "lab.tif", np.ones((1, 100, 90), np.uint8), georef=False, color=False)


def corrupt_prediction(folder: Path) -> None:
    """A class raster as classify writes it (LANDCOVER_CLASSES), with one corrupt tile."""
    path = f.write_tif(folder / "pred.tif", expected_classes(f.scene_data())[None], color=False)
    ds = gdal.Open(str(path), gdal.GA_Update)
    ds.SetMetadataItem("LANDCOVER_CLASSES", '{"0": "red thing", "1": "green thing", "2": "blue thing"}')
    ds = None
    (folder / "pred.tif.aux.xml").unlink(missing_ok=True)
    f.corrupt_block(path)


def payload_not_run(folder: Path) -> None:
    assert not (folder / "PWNED").exists(), "the pickle payload ran"


def complex_scene(folder: Path) -> None:
    ds = gdal.GetDriverByName("GTiff").Create(str(folder / "in.tif"), 50, 40, 3, gdal.GDT_CInt16)
    for b in range(3):
        ds.GetRasterBand(b + 1).WriteArray(np.full((40, 50), 10 * b, np.int16))
    ds = None


def truncated_jpeg(folder: Path) -> None:
    """A JPEG cut in half: libjpeg would decode the missing half as grey, with only a warning."""
    src = f.write_tif(folder / "src.tif", f.scene_data(600, 600))
    gdal.Translate(str(folder / "full.jpg"), str(src), format="JPEG")
    data = (folder / "full.jpg").read_bytes()
    (folder / "in.jpg").write_bytes(data[: len(data) // 2])
    for name in ("src.tif", "full.jpg", "full.jpg.aux.xml"):
        (folder / name).unlink(missing_ok=True)


def json_config(content: str) -> Callable[[Path], None]:
    def make(folder: Path) -> None:
        f.train_config(folder)
        (folder / "config.json").write_text(content)
    return make


def config_with(**changes) -> Callable[[Path], None]:
    return lambda d: f.train_config(d, **changes)


TRAIN = ("train", "--config", "config.json", "--output", "model.onnx", "--run-dir", "run")
EXPORT = ("export", "best.pt", "--config", "config.json", "--output", "out.onnx")
ERR_READ = r"cannot read window \d+×\d+ px at column \d+, row \d+ of .*in\.{ext} \(.+\): .*--on-read-error nodata"
QC = ("landcover:classify", "--", "INPUT={d}/in.tif", "OUTPUT={d}/out.tif", "MODEL={d}/m.onnx")

CASES: list[Case] = [
    # ---------------------------------------------------------------- 1. silently wrong maps
    Case("nan-output", "wrong-map", both(f.scene, f.nan_model), CLASSIFY,
         message=r"m\.onnx: the network produced non-finite values \(NaN or infinity\)", qgis=QC),
    Case("partly-nan-output", "wrong-map", both(f.scene, f.partly_nan_model), CLASSIFY, message=r"non-finite values"),
    Case("inf-output", "wrong-map", both(f.scene, f.inf_model), CLASSIFY, message=r"non-finite values"),
    Case("probabilities-not-summing-to-one", "wrong-map", both(f.scene, f.unnormalised_model), CLASSIFY,
         message=r"class probabilities sum to .*not 1: set metadata 'output' to 'logits'"),
    Case("sigmoid-one-channel", "wrong-map", both(f.scene, f.sigmoid_model), CLASSIFY, exit=0,
         message=r"one sigmoid channel: 'red over green' where p ≥ seg_thresh 0\.5", outputs=STYLED, check=sigmoid_check,
         qgis=QC),
    Case("sigmoid-rank3", "wrong-map", both(f.scene, partial(f.sigmoid_model, squeeze=True)), CLASSIFY, exit=0,
         outputs=STYLED, check=sigmoid_check),
    Case("sigmoid-channel-not-a-probability", "wrong-map", both(f.scene, partial(f.sigmoid_model, activation=False)),
         CLASSIFY, message=r"a one-channel output must be a sigmoid probability in \[0, 1\].*add a Sigmoid"),
    Case("uint16-above-range", "wrong-map", both(write("in.tif", f.scene_data(dtype=np.uint16, scale=20)), dominant),
         CLASSIFY, exit=0, message=r"[\d,]+ valid pixels \(\d+\.\d%\) lie outside the model's input range \[0, 255\]",
         outputs=STYLED, qgis=QC),
    Case("int16-negative", "wrong-map", both(write("in.tif", f.scene_data(dtype=np.int16, offset=-150)), dominant),
         CLASSIFY, exit=0, message=r"[\d,]+ valid pixels \(\d+\.\d%\) lie outside the model's input range \[0, 255\]",
         outputs=STYLED),
    Case("float-above-range-resampled", "wrong-map",
         both(write("in.tif", f.scene_data(dtype=np.float32, scale=3), res=0.1), dominant),
         CLASSIFY, exit=0, message=r"valid pixels \(\d+\.\d%\) lie outside the model's input range", outputs=STYLED),
    Case("in-range-no-warning", "wrong-map", plain, CLASSIFY, exit=0, outputs=STYLED, check=classes_are(dominant_classes)),
    Case("infinite-input-pixels-are-nodata", "wrong-map", both(inf_scene, dominant), CLASSIFY, exit=0,
         outputs=STYLED, check=nodata_where_inf),
    Case("complex-input", "wrong-map", both(complex_scene, dominant), CLASSIFY,
         message=r"band 1 of in\.tif holds complex numbers \(CInt16\): Landcover classifies real-valued bands"),
    Case("all-nodata-input", "wrong-map", both(write("in.tif", np.zeros((3, 40, 50), np.uint8), nodata=0), dominant),
         CLASSIFY, exit=0, message=r"no valid pixel", outputs=STYLED, check=all_nodata),

    # ---------------------------------------------------------------- 2. read errors
    Case("corrupt-tile", "read-error", both(f.corrupt_scene, dominant), CLASSIFY, message=ERR_READ.format(ext="tif"),
         qgis=QC),
    Case("corrupt-tile-nodata", "read-error", both(f.corrupt_scene, dominant), (*CLASSIFY, "--on-read-error", "nodata"),
         exit=0, message=r"\d+ window\(s\) could not be read and are nodata; first: 64×64 px at column \d+, row \d+",
         outputs=STYLED, check=holes_check),
    Case("corrupt-tile-resampled", "read-error", both(partial(f.corrupt_scene, res=0.1), dominant), CLASSIFY,
         message=r"cannot read .*in\.tif.*--on-read-error nodata"),
    Case("corrupt-tile-dask", "read-error", both(f.corrupt_scene, dominant), (*CLASSIFY, "--scheduler", "local[1]"),
         message=ERR_READ.format(ext="tif"), slow=True),
    Case("truncated-file", "read-error", both(f.truncated_scene, dominant), CLASSIFY,
         message=r"(cannot read window .* of .*in\.tif|in\.tif is not a raster GDAL can read)"),
    Case("truncated-jpeg", "read-error", both(truncated_jpeg, dominant),
         ("classify", "in.jpg", "out.tif", "--model", "m.onnx", "-q", "--gsd", "off"),
         message=r"cannot read window .* of in\.jpg \(libjpeg: Premature end of JPEG file\)"),
    Case("vrt-source-moved", "read-error", both(f.moved_source_vrt, dominant),
         ("classify", "in.vrt", "out.tif", "--model", "m.onnx", "-q"),
         message=r"cannot read window .* of .*in\.vrt \(.*src\.tif.*\)",
         qgis=("landcover:classify", "--", "INPUT={d}/in.vrt", "OUTPUT={d}/out.tif", "MODEL={d}/m.onnx")),
    Case("vrt-source-moved-nodata", "read-error", both(f.moved_source_vrt, dominant),
         ("classify", "in.vrt", "out.tif", "--model", "m.onnx", "-q", "--on-read-error", "nodata"), exit=0,
         message=r"window\(s\) could not be read and are nodata", outputs=STYLED, check=moved_holes_check),
    Case("corrupt-training-image", "read-error", both(lambda d: f.train_config(d), lambda d: f.corrupt_block(d / "img.tif")),
         TRAIN, message=r"cannot read window .* of .*img\.tif", slow=True),
    Case("corrupt-prediction-evaluate", "read-error", both(corrupt_prediction, write("ref.tif", np.ones((1, f.H, f.W), np.uint8))),
         ("evaluate", "pred.tif", "ref.tif"), message=r"cannot read window .* of .*pred\.tif"),

    # ---------------------------------------------------------------- 3. model contract, checkpoints, configs
    Case("two-inputs", "contract", both(f.scene, f.two_input_model), CLASSIFY,
         message=r"m\.onnx: the network has 2 inputs \(input, other\)", qgis=QC),
    Case("rank5-output", "contract", both(f.scene, f.rank5_model), CLASSIFY, message=r"rank-5 output", qgis=QC),
    Case("rank2-output", "contract", both(f.scene, f.rank2_model), CLASSIFY, message=r"image-recognition"),
    Case("rank3-input", "contract", both(f.scene, f.rank3_input_model), CLASSIFY, message=r"needs \(B, C, H, W\)"),
    Case("output-smaller-static", "contract", both(f.scene, f.odd_output_model), CLASSIFY,
         message=r"neither the input's 64×64 px nor centred smaller"),
    Case("output-downsampled-static", "contract", both(f.scene, partial(f.downsampling_model, static=True)), CLASSIFY,
         message=r"m\.onnx: the network's output .*64×64"),
    Case("output-downsampled-dynamic", "contract", both(f.scene, partial(f.downsampling_model, static=False)), CLASSIFY,
         message=r"m\.onnx: .*input gave a 32×32 px output"),
    Case("class-axis-static", "contract", both(f.scene, partial(f.class_axis_model, static=True)), CLASSIFY,
         message=r"outputs 4 classes but metadata 'class_names' names 3"),
    Case("class-axis-dynamic", "contract", both(f.scene, partial(f.class_axis_model, static=False)), CLASSIFY,
         message=r"outputs 4 classes but metadata ('class_names' )?names 3"),
    Case("int64-argmax-output", "contract", both(f.scene, f.argmax_model), CLASSIFY,
         message=r"m\.onnx: the network's output is tensor\(int64\)"),
    Case("uint8-input", "contract", both(f.scene, f.uint8_input_model), CLASSIFY,
         message=r"m\.onnx: the network's input is tensor\(uint8\)"),
    Case("network-fails-at-runtime", "contract", both(f.scene, f.failing_model), CLASSIFY,
         message=r"m\.onnx: the network fails on a batch"),
    Case("tile-larger-than-fixed-input", "contract", both(f.scene, f.fixed_size_model), (*CLASSIFY, "--tile-size", "96"),
         message=r"tile size 96 px is larger than the network's fixed input of 64 px: use --tile-size 64"),
    Case("metadata-value-range-nan", "contract", both(f.scene, lambda d: f.dominant_model(d, props={"value_range": "[0, NaN]"})),
         CLASSIFY, message=r"m\.onnx: model metadata key 'value_range' must be a JSON list of finite numbers"),
    Case("model-empty-file", "contract", both(f.scene, text("m.onnx", b"")), CLASSIFY, message=r"not a valid ONNX model"),
    Case("model-text-file", "contract", both(f.scene, text("m.onnx", "hello\n")), CLASSIFY, message=r"not a valid ONNX model"),
    Case("model-is-a-folder", "contract", both(f.scene, mkdir("m.onnx")), CLASSIFY,
         message=r"m\.onnx' is neither a bundled model .* nor an existing ONNX file"),
    Case("export-plain-text-checkpoint", "contract", both(lambda d: f.train_config(d), text("best.pt", "just text\n")),
         EXPORT, message=r"best\.pt is not a checkpoint .* \(a state dict saved by landcover train\)", slow=True),
    Case("export-malicious-pickle", "contract", f.malicious_checkpoint, EXPORT,
         message=r"best\.pt is not a checkpoint", check=payload_not_run, slow=True),
    Case("export-missing-checkpoint", "contract", lambda d: f.train_config(d), EXPORT,
         message=r"checkpoint best\.pt not found", slow=True),
    Case("export-list-checkpoint", "contract", partial(f.torch_checkpoint, what="list"), EXPORT,
         message=r"best\.pt is not a checkpoint", slow=True),
    Case("export-other-architecture", "contract", partial(f.torch_checkpoint, what="fpn"), EXPORT,
         message=r"does not fit the 'unet' network", slow=True),
    Case("export-valid", "contract", partial(f.torch_checkpoint, what="valid"), EXPORT, exit=0,
         outputs=("out.onnx",), check=onnx_runs, slow=True),
    Case("config-json-list", "contract", json_config("[1, 2, 3]"), TRAIN,
         message=r"training config config\.json must be a JSON object", slow=True,
         qgis=("landcover:train", "--", "CONFIG={d}/config.json", "OUTPUT={d}/model.onnx")),
    Case("config-not-json", "contract", json_config("{name: tiny"), TRAIN, message=r"is not valid JSON", slow=True),
    Case("config-class-without-name", "contract", config_with(classes=[{"color": "#ff0000", "codes": [1]}]), TRAIN,
         message=r"classes\[0\].*'name'", slow=True),
    Case("config-pairs-malformed", "contract", config_with(pairs=["img.tif"]), TRAIN,
         message=r"'pairs' must be a list of \[image, label\]", slow=True),
    Case("config-steps-not-a-number", "contract", config_with(steps="many"), TRAIN,
         message=r"'steps' must be an integer", slow=True),
    Case("config-missing", "contract", lambda d: None, TRAIN, message=r"training config not found: config\.json", slow=True),

    # ---------------------------------------------------------------- 4. leftovers and output-path clashes
    Case("output-is-a-folder", "leftovers", both(plain, mkdir("out.tif")), CLASSIFY,
         message=r"output out\.tif is an existing folder",
         qgis=("landcover:classify", "--", "INPUT={d}/in.tif", "OUTPUT={d}/out.tif", "MODEL={d}/m.onnx")),
    Case("style-sidecar-is-a-folder", "leftovers", both(plain, mkdir("out.qml")), CLASSIFY,
         message=r"out\.qml, written beside the output out\.tif, is an existing folder", qgis=QC),
    Case("aux-sidecar-is-a-folder", "leftovers", both(plain, mkdir("out.tif.aux.xml")), CLASSIFY,
         message=r"out\.tif\.aux\.xml, written beside the output out\.tif, is an existing folder"),
    Case("confidence-is-a-folder", "leftovers", both(plain, mkdir("conf.tif")), (*CLASSIFY, "--confidence", "conf.tif"),
         message=r"confidence output conf\.tif is an existing folder"),
    Case("areas-is-a-folder", "leftovers", both(plain, mkdir("areas.csv")), (*CLASSIFY, "--areas", "areas.csv"),
         message=r"class-area CSV areas\.csv is an existing folder"),
    Case("confidence-equals-output", "leftovers", plain, (*CLASSIFY, "--confidence", "./out.tif"),
         message=r"must be different files"),
    Case("output-is-the-input", "leftovers", plain, ("classify", "in.tif", "./in.tif", "--model", "m.onnx", "-q"),
         message=r"output (\./)?in\.tif is an input"),
    Case("stale-temporaries-removed", "leftovers", both(plain, stale_parts), CLASSIFY, exit=0, outputs=STYLED,
         removed=(".out.tif.part4194303", ".out.tif.part4194303.aux.xml", ".out.qml.part4194303"),
         check=classes_are(dominant_classes)),
    Case("stale-temporaries-removed-on-failure", "leftovers", both(f.scene, f.nan_model, stale_parts), CLASSIFY,
         message=r"non-finite values", removed=(".out.tif.part4194303", ".out.tif.part4194303.aux.xml",
                                                ".out.qml.part4194303")),
    Case("parts-folder-is-a-file", "leftovers", both(plain, text("out.tif.parts", "mine")),
         (*CLASSIFY, "--scheduler", "local[1]"), message=r"out\.tif\.parts exists and is not a folder"),
    Case("dask-failure-leaves-no-parts-folder", "leftovers", both(f.scene, f.nan_model),
         (*CLASSIFY, "--scheduler", "local[1]"), message=r"non-finite values", slow=True),
    Case("dask-confidence-refused", "leftovers", plain, (*CLASSIFY, "--scheduler", "local[1]", "--confidence", "c.tif"),
         message=r"--confidence and --areas are not supported with --scheduler"),
    Case("train-image-label-mismatch", "leftovers", train_pair_mismatch, TRAIN,
         message=r"the label raster .*lab\.tif \(90×100\) is not on the grid of image .*img\.tif \(128×128\)", slow=True,
         qgis=("landcover:train", "--", "CONFIG={d}/config.json", "OUTPUT={d}/model.onnx")),
    Case("train-run-dir-is-a-file", "leftovers", both(lambda d: f.train_config(d), text("run", "mine")), TRAIN,
         message=r"run folder run is an existing file", slow=True),
    Case("train-output-folder-missing", "leftovers", lambda d: f.train_config(d),
         ("train", "--config", "config.json", "--output", "nowhere/model.onnx", "--run-dir", "run"),
         message=r"output model folder .*nowhere does not exist", slow=True),
    Case("export-output-is-a-folder", "leftovers", both(partial(f.torch_checkpoint, what="valid"), mkdir("out.onnx")),
         EXPORT, message=r"output model out\.onnx is an existing folder", slow=True),
    Case("vectorize-output-is-a-folder", "leftovers", both(plain, mkdir("poly.gpkg")),
         ("vectorize", "in.tif", "poly.gpkg"), message=r"poly\.gpkg is an existing folder"),

    # ---------------------------------------------------------------- 5. arguments, all checked before any work
    Case("areas-into-missing-folder", "arguments", plain, (*CLASSIFY, "--areas", "nowhere/areas.csv"),
         message=r"class-area CSV folder .*nowhere does not exist",
         qgis=(*QC, "CLASS_AREAS={d}/nowhere/areas.csv")),
    Case("areas-wrong-extension", "arguments", plain, (*CLASSIFY, "--areas", "areas.txt"), message=r"must end in \.csv"),
    Case("confidence-into-missing-folder", "arguments", plain, (*CLASSIFY, "--confidence", "nowhere/c.tif"),
         message=r"confidence output folder .*nowhere does not exist"),
    Case("output-into-missing-folder", "arguments", plain, ("classify", "in.tif", "a/b/out.tif", "--model", "m.onnx"),
         message=r"output folder .*a/b does not exist"),
    Case("output-wrong-extension", "arguments", plain, ("classify", "in.tif", "out.png", "--model", "m.onnx"),
         message=r"out\.png must end in \.tif or \.tiff"),
    Case("tile-size-zero", "arguments", plain, (*CLASSIFY, "--tile-size", "0"),
         message=r"argument --tile-size: must be at least 16, got 0"),
    Case("tile-size-text", "arguments", plain, (*CLASSIFY, "--tile-size", "big"),
         message=r"argument --tile-size: expected a whole number, got 'big'"),
    Case("overlap-negative", "arguments", plain, (*CLASSIFY, "--overlap", "-1"), message=r"argument --overlap: must be at least 0"),
    Case("overlap-not-below-tile", "arguments", plain, (*CLASSIFY, "--tile-size", "32", "--overlap", "32"),
         message=r"overlap 32 px must be smaller than the tile size 32 px"),
    Case("batch-size-zero", "arguments", plain, (*CLASSIFY, "--batch-size", "0"), message=r"argument --batch-size: must be at least 1"),
    Case("threads-zero", "arguments", plain, (*CLASSIFY, "--threads", "0"), message=r"argument --threads: must be at least 1"),
    Case("bands-zero", "arguments", plain, (*CLASSIFY, "--bands", "0,1,2"), message=r"band numbers start at 1"),
    Case("bands-missing", "arguments", plain, (*CLASSIFY, "--bands", "1,2,9"), message=r"band\(s\) \[9\] do not exist"),
    Case("bands-too-few", "arguments", plain, (*CLASSIFY, "--bands", "1,2"), message=r"2 band\(s\) given but the model needs 3"),
    Case("device-unknown", "arguments", plain, (*CLASSIFY, "--device", "tpu"), message=r"argument --device: invalid choice: 'tpu'"),
    Case("device-cuda-absent", "arguments", plain, (*CLASSIFY, "--device", "cuda"),
         message=r"device 'cuda' asked for, but this onnxruntime has no CUDA execution provider"),
    Case("gsd-text", "arguments", plain, (*CLASSIFY, "--gsd", "fine"), message=r"--gsd must be auto, off or a pixel size in metres"),
    Case("gsd-negative", "arguments", plain, (*CLASSIFY, "--gsd=-1"), message=r"--gsd must be a positive number of metres"),
    Case("gsd-nan", "arguments", plain, (*CLASSIFY, "--gsd", "nan"), message=r"--gsd must be a positive number of metres"),
    Case("output-resolution-zero", "arguments", plain, (*CLASSIFY, "--output-resolution", "0"),
         message=r"--output-resolution must be a positive number of metres"),
    Case("model-output-out-of-range", "arguments", plain, (*CLASSIFY, "--model-output", "3"),
         message=r"output 3 asked for, but the network has 1 output \(0\.\.0\)"),
    Case("model-output-negative", "arguments", plain, (*CLASSIFY, "--model-output", "-1"),
         message=r"argument --model-output: must be at least 0"),
    Case("on-read-error-unknown", "arguments", plain, (*CLASSIFY, "--on-read-error", "skip"),
         message=r"argument --on-read-error: invalid choice: 'skip'"),
    Case("scheduler-unknown", "arguments", plain, (*CLASSIFY, "--scheduler", "spark://x"),
         message=r"scheduler must be local\[N\] with N >= 1 or tcp://HOST:PORT"),
    Case("part-rows-zero", "arguments", plain, (*CLASSIFY, "--scheduler", "local[1]", "--part-rows", "0"),
         message=r"argument --part-rows: must be at least 1, got 0"),
    Case("unknown-option", "arguments", plain, (*CLASSIFY, "--colour", "red"), message=r"unrecognized arguments: --colour red"),
    Case("missing-output-argument", "arguments", plain, ("classify", "in.tif"),
         message=r"the following arguments are required: output"),
    Case("no-command", "arguments", lambda d: None, (), message=r"the following arguments are required: command"),
    Case("input-missing", "arguments", dominant, CLASSIFY, message=r"input raster not found: in\.tif"),
    Case("input-not-a-raster", "arguments", both(text("in.tif", "hello"), dominant), CLASSIFY,
         message=r"input in\.tif is not a raster GDAL can read"),
    Case("input-is-a-folder", "arguments", both(mkdir("in.tif"), dominant), CLASSIFY,
         message=r"input in\.tif is (a folder|not a raster GDAL can read)"),
    Case("input-too-few-bands", "arguments", both(write("in.tif", f.scene_data()[:1]), dominant), CLASSIFY,
         message=r"the input has 1 image band\(s\) but the model needs 3"),
    Case("gsd-far-coarser", "arguments", both(write("in.tif", f.scene_data(), res=30.0), dominant), CLASSIFY,
         message=r"--gsd off"),
    Case("output-folder-read-only", "arguments", both(plain, mkdir_empty("ro")),
         ("classify", "in.tif", "ro/out.tif", "--model", "m.onnx", "-q"),
         message=r"output folder .*ro is not writable: choose another output path", tmpfs=("ro", "size=1m,ro")),
    Case("evaluate-json-into-missing-folder", "arguments", plain, ("evaluate", "in.tif", "in.tif", "--json", "no/r.json"),
         message=r"JSON output folder .*no does not exist"),
    Case("vectorize-sieve-negative", "arguments", plain, ("vectorize", "in.tif", "p.gpkg", "--sieve", "-3"),
         message=r"argument --sieve: must be at least 0"),
    Case("train-steps-zero", "arguments", lambda d: f.train_config(d), (*TRAIN, "--steps", "0"),
         message=r"argument --steps: must be at least 1"),
    Case("train-set-malformed", "arguments", lambda d: f.train_config(d), (*TRAIN, "--set", "lr"),
         message=r"--set 'lr': write KEY=VALUE", slow=True),

    # ---------------------------------------------------------------- 6. resources
    Case("vrt-million-by-million", "resources", both(f.huge_vrt, dominant),
         ("classify", "in.vrt", "out.tif", "--model", "m.onnx", "-q"),
         message=r"GB free but out\.tif need about 250 GB: free some space or write elsewhere",
         qgis=("landcover:classify", "--", "INPUT={d}/in.vrt", "OUTPUT={d}/out.tif", "MODEL={d}/m.onnx")),
    Case("tile-too-large-for-memory", "resources", both(f.huge_vrt, dominant),
         ("classify", "in.vrt", "out.tif", "--model", "m.onnx", "-q", "--tile-size", "200000", "--overlap", "0"),
         message=r"tile size 200000 px .*memory"),
    Case("wide-raster-in-column-strips", "resources", both(f.wide_vrt, dominant),
         ("classify", "in.vrt", "out.tif", "--model", "m.onnx", "-q"), exit=0, outputs=STYLED,
         check=lambda d: np.testing.assert_array_equal(
             read(d / "out.tif"), expected_classes(np.tile(f.scene_data(64, 400), (1, 1, 100))))),

    # ---------------------------------------------------------------- 7. disk full
    Case("disk-full-while-writing", "disk-full", both(write("in.tif", f.scene_data(600, 600)), dominant, mkdir_empty("full")),
         ("classify", "in.tif", "full/out.tif", "--model", "m.onnx", "-q", "--confidence", "full/conf.tif"),
         message=r"writing the .* failed \(.*No space left on device.*\): the disk may be full", tmpfs=("full", "size=960k")),
    Case("disk-too-small-before-start", "disk-full", both(f.scene, dominant, mkdir_empty("full")),
         ("classify", "in.tif", "full/out.tif", "--model", "m.onnx", "-q", "--confidence", "full/conf.tif"),
         message=r"full has \d+(\.\d+)? kB free but out\.tif, conf\.tif need about 57\.4 kB: free some space", tmpfs=("full", "size=16k")),
    Case("file-size-limit", "disk-full", plain, (*CLASSIFY, "--confidence", "conf.tif"),
         message=r"writing the .* failed \(.*(File too large|Write error).*\)", fsize=20_000),
]
