"""`landcover finetune` on small synthetic scenes (no real data): a complete adapted model that classify runs,
its card and metadata, labels as polygons in another CRS or as a raster, the held-back split, cancel, and
bad inputs refused in one line with nothing written."""
import json
import subprocess
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("onnx")
pytest.importorskip("efficientnet_lite_pytorch")

from landcover_plugin.engine.classify import ClassifyParams, classify  # noqa: E402
from landcover_plugin.errors import Cancelled, LandcoverError  # noqa: E402
from landcover_plugin.feedback import Feedback  # noqa: E402
from landcover_plugin.model.adapter import OnnxModel  # noqa: E402
from landcover_plugin.train.finetune import FinetuneParams, finetune, label_areas, split_areas  # noqa: E402
from tests.fixtures import REPO, box_in, make_model, make_raster, write_polygons  # noqa: E402

X0, Y0 = 700000, 6600000  # the image's upper-left corner (EPSG:2154), 0.2 m pixels
FAST = {"batch_size": 2, "crop": 64}


@pytest.fixture(scope="module")
def scene(tmp_path_factory):
    """A 256 px image: water-blue left half, vegetation-green right half, a grey road across; polygons of
    dubai-rgb's classes (names in the field "class", given in WGS 84)."""
    folder = tmp_path_factory.mktemp("scene")
    rng = np.random.default_rng(0)
    img = np.zeros((3, 256, 256), np.uint8)
    img[:, :, :128] = np.array([30, 60, 140])[:, None, None]
    img[:, :, 128:] = np.array([60, 140, 50])[:, None, None]
    img[:, 120:136] = 128
    img = np.clip(img + rng.integers(-10, 10, img.shape), 0, 255).astype(np.uint8)
    image = make_raster(folder / "image.tif", img)

    def box(c0, r0, c1, r1):  # pixel box → polygon in WGS 84
        return box_in("EPSG:4326", X0 + c0 * 0.2, Y0 - r1 * 0.2, X0 + c1 * 0.2, Y0 - r0 * 0.2)

    features = [(box(10 + 22 * i, 20, 30 + 22 * i, 40), "water") for i in range(5)]
    features += [(box(140 + 22 * i, 200, 160 + 22 * i, 220), "vegetation") for i in range(5)]
    features += [(box(20, 122, 100, 134), "road"), (box(150, 122, 240, 134), "3")]  # a class value works too
    labels = write_polygons(folder / "labels.gpkg", 4326, features, field="class", kind=4)  # 4: OFTString
    return folder, image, labels


def run(scene, tmp_path, **kw):
    _, image, labels = scene
    feedback = kw.pop("feedback", None)
    params = FinetuneParams(image, kw.pop("labels", labels), tmp_path / "adapted.onnx", kw.pop("model", "dubai-rgb"),
                            steps=kw.pop("steps", 2), **{**FAST, **kw})
    return finetune(params, feedback)


@pytest.mark.slow  # a whole fine-tuning run
def test_an_adapted_model_is_complete_and_classify_runs_it(scene, tmp_path):
    result = run(scene, tmp_path, holdout=0.2)
    out = tmp_path / "adapted.onnx"
    assert result.output == str(out) and out.exists() and out.with_suffix(".md").exists()
    base, adapted = OnnxModel(REPO / "models/dubai-rgb.onnx", "cpu").meta, OnnxModel(out, "cpu").meta
    assert adapted.class_names == base.class_names and adapted.class_colors == base.class_colors
    assert adapted.class_values == base.class_values and adapted.tile_size_px == base.tile_size_px
    assert adapted.name == "adapted" and adapted.extra["adapted_from"] == "dubai-rgb"
    assert adapted.extra["architecture"] == "fpn" and adapted.extra["adapted_labels"] == "labels.gpkg"
    assert result.steps == 2 and result.train_pixels["water"] == 4 * 400 and result.train_pixels["road"] > 0
    assert result.heldout is not None and result.heldout.pixels == {"vegetation": 400, "water": 400}
    assert "1 of 5" not in result.heldout.split and "20%" in result.heldout.split
    card = out.with_suffix(".md").read_text()
    assert "Adapted from **dubai-rgb**" in card and "| 4 | vegetation |" in card and "Held back" in card
    classify(ClassifyParams(scene[1], tmp_path / "classes.tif", model=out))
    assert (tmp_path / "classes.tif").exists()
    assert not [p for p in tmp_path.iterdir() if ".part" in p.name]
    assert "Accuracy on the held-back labels" in result.summary()


def test_labels_as_a_raster_of_class_values(scene, tmp_path):
    label = np.zeros((1, 256, 256), np.uint8)  # 0: unlabelled
    label[0, 20:60, 20:60] = 5  # water
    label[0, 180:220, 180:220] = 4  # vegetation
    path = make_raster(tmp_path / "labels.tif", label)
    result = run(scene, tmp_path, labels=path)
    assert result.train_pixels["water"] == 1600 and result.train_pixels["vegetation"] == 1600
    assert result.heldout is None and "separate areas" in result.holdout_note


def test_label_areas_and_the_split():
    label = np.full((40, 40), 255, np.uint8)
    for i in range(5):
        label[2:6, 2 + 7 * i:6 + 7 * i] = 0  # five areas of class 0
    label[20:30, 20:30] = 1
    ids, classes = label_areas(label)
    assert sorted(classes) == [0, 0, 0, 0, 0, 1] and len(np.unique(ids[ids > 0])) == 6
    held = split_areas(classes, 2, 0.2, np.random.default_rng(0))
    assert len(held) == 1 and classes[next(iter(held)) - 1] == 0  # class 1 has one area: never held back


class CancelAfter(Feedback):
    def __init__(self):
        self.calls = 0

    def is_cancelled(self):
        self.calls += 1
        return self.calls > 3


def test_cancel_writes_nothing(scene, tmp_path):
    with pytest.raises(Cancelled):
        run(scene, tmp_path, steps=50, feedback=CancelAfter())
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("case, match", [
    ("outside", "lie outside the image"),
    ("unknown", "not known: use the names or values of the model's classes"),
    ("few", "only 400 labelled pixels"),
    ("foreign", "no recoverable weights"),
    ("raster-unknown", "values \\[9\\] that are not classes of the model"),
    ("missing-field", "no field 'class'"),
])
def test_bad_inputs_are_refused_in_one_line_and_nothing_is_written(scene, tmp_path, case, match):
    folder, image, labels = scene
    kw = {}
    if case == "outside":
        kw["labels"] = write_polygons(tmp_path / "far.gpkg", 2154, [(box_in("EPSG:2154", 0, 0, 10, 10), "water")],
                                      field="class", kind=4)
    elif case == "unknown":
        kw["labels"] = write_polygons(tmp_path / "u.gpkg", 2154, [(box_in("EPSG:2154", X0, Y0 - 10, X0 + 10, Y0), "lava")],
                                      field="class", kind=4)
    elif case == "few":
        kw["labels"] = write_polygons(tmp_path / "f.gpkg", 2154, [(box_in("EPSG:2154", X0, Y0 - 4, X0 + 4, Y0), "water")],
                                      field="class", kind=4)
    elif case == "foreign":
        kw["model"] = make_model(tmp_path / "foreign.onnx")
    elif case == "raster-unknown":
        label = np.zeros((1, 256, 256), np.uint8)
        label[0, :50, :50] = 9
        kw["labels"] = make_raster(tmp_path / "l.tif", label)
    else:
        kw["label_field"] = "class"
        kw["labels"] = write_polygons(tmp_path / "n.gpkg", 2154, [(box_in("EPSG:2154", X0, Y0 - 10, X0 + 10, Y0), 5)],
                                      field="code")
    before = set(tmp_path.iterdir())
    with pytest.raises(LandcoverError, match=match) as err:
        run(scene, tmp_path, **kw)
    assert "\n" not in str(err.value)
    assert set(tmp_path.iterdir()) == before  # no model, no card, no temporary file


@pytest.mark.slow  # a whole fine-tuning run in another process
def test_the_command_line(scene, tmp_path):
    _, image, labels = scene
    out = tmp_path / "cli.onnx"
    cmd = [sys.executable, "-m", "landcover_plugin", "finetune", str(image), str(labels), str(out), "--model", "dubai-rgb",
           "--steps", "1", "--holdout", "0", "--set", "crop=64", "--set", "batch_size=2", "-q"]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO)
    assert proc.returncode == 0, proc.stderr
    assert out.exists() and json.loads(OnnxModel(out, "cpu").meta.extra["adapted_pixels"])["water"] == 2000
    bad = subprocess.run(cmd[:6] + [str(tmp_path / "x.onnx"), "--model", "dubai-rgb", "--label-field", "nope"],
                         capture_output=True, text=True, cwd=REPO)
    assert bad.returncode == 2 and bad.stderr.startswith("landcover: error: polygons") and bad.stderr.count("\n") == 1


@pytest.mark.slow  # a whole fine-tuning run in another process
def test_the_worker_process_reports_json_lines_and_stops_cleanly_on_sigterm(scene, tmp_path):
    """What the QGIS dock runs: progress, notes and the result as JSON lines; SIGTERM (Cancel) writes nothing."""
    import os
    import signal

    from landcover_plugin.train.finetune import FinetuneResult

    _, image, labels = scene
    params = {"image": str(image), "labels": str(labels), "output": str(tmp_path / "w.onnx"), "model": "dubai-rgb",
              "steps": 1, "holdout": 0, **FAST}
    (tmp_path / "p.json").write_text(json.dumps(params))
    cmd = [sys.executable, "-m", "landcover_plugin.train.finetune_worker", str(tmp_path / "p.json")]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO)
    items = [json.loads(line) for line in proc.stdout.splitlines()]
    assert proc.returncode == 0, proc.stderr
    assert any("progress" in i for i in items) and any("info" in i for i in items)
    result = FinetuneResult.from_dict(items[-1]["result"])
    assert result.output == str(tmp_path / "w.onnx") and "Training pixels per class" in result.summary()
    params.update(output=str(tmp_path / "never.onnx"), steps=10000)
    (tmp_path / "p.json").write_text(json.dumps(params))
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, cwd=REPO)
    for line in proc.stdout:
        if json.loads(line).get("progress", 0) >= 0.05:  # training has started
            break
    os.kill(proc.pid, signal.SIGTERM)
    rest = [json.loads(line) for line in proc.stdout]
    assert proc.wait() == 130 and rest[-1] == {"cancelled": True}
    assert not [p for p in tmp_path.iterdir() if p.name.startswith((".never", "never"))]
    params.update(labels=str(tmp_path / "missing.gpkg"))
    (tmp_path / "p.json").write_text(json.dumps(params))
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO)
    assert proc.returncode == 2 and json.loads(proc.stdout.splitlines()[-1]) == {"error": f"labels not found: {tmp_path / 'missing.gpkg'}"}
