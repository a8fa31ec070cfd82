"""The CLI's bad-input handling: one clear line, exit status 2, no output file, input untouched."""
import hashlib
import subprocess
import sys

import pytest

from landcover_plugin.cli import main
from tests.fixtures import REPO, dominant_image, make_model, make_raster


def digest(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def scene(tmp_path):
    return make_raster(tmp_path / "scene.tif", dominant_image())


def fails(capsys, argv, match):
    code = main(argv)
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    assert len(err.splitlines()) == 1 and err.startswith("landcover: error: ")
    assert match in err, err
    return err


def test_classify_and_summary(tmp_path, scene, model_path, capsys):
    assert main(["classify", str(scene), str(tmp_path / "o.tif"), "--model", str(model_path), "--tile-size", "48",
                 "--overlap", "8", "--batch-size", "3", "--device", "cpu", "--bands", "1,2,3",
                 "--areas", str(tmp_path / "areas.csv")]) == 0
    out = capsys.readouterr().out
    assert "MP/s on CPUExecutionProvider" in out and "km²" in out and "green thing" in out
    rows = (tmp_path / "areas.csv").read_text().splitlines()
    assert rows[0] == "class,pixels,km2,percent" and len(rows) == 4
    total = sum(int(r.split(",")[1]) for r in rows[1:])
    assert total == 150 * 170 and abs(sum(float(r.split(",")[3]) for r in rows[1:]) - 100) < 1e-3


def test_bad_inputs_give_one_line_and_no_output(tmp_path, scene, model_path, capsys):
    before = digest(scene)
    out = tmp_path / "out.tif"
    m = ["--model", str(model_path)]
    fails(capsys, ["classify", str(tmp_path / "missing.tif"), str(out), *m], "input raster not found")
    text = tmp_path / "notes.tif"
    text.write_text("hello, not a raster")
    fails(capsys, ["classify", str(text), str(out), *m], "is not a raster GDAL can read")
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"\x08\x01garbage")
    fails(capsys, ["classify", str(scene), str(out), "--model", str(junk)], "not a valid ONNX model")
    fails(capsys, ["classify", str(scene), str(out), "--model", str(make_model(tmp_path / "nc.onnx", drop=("class_names",)))],
          "'class_names' is missing")
    fails(capsys, ["classify", str(scene), str(out), "--model",
                   str(make_model(tmp_path / "wt.onnx", props={"class_names": "42"}))], "'class_names' must be")
    fails(capsys, ["classify", str(scene), str(out), "--model", str(make_model(tmp_path / "m4.onnx", bands=4))],
          "the input has 3 image band(s) but the model needs 4")
    fails(capsys, ["classify", str(scene), str(tmp_path / "nowhere" / "o.tif"), *m], "does not exist")
    fails(capsys, ["classify", str(scene), str(scene), *m], "is the input raster")
    fails(capsys, ["classify", str(scene), str(out), "--model", "no-such-model"], "neither a bundled model")
    assert digest(scene) == before
    leftovers = sorted(p.name for p in tmp_path.iterdir())
    assert "out.tif" not in leftovers and not [p for p in leftovers if ".part" in p]



def test_unwritable_folder_is_refused(tmp_path, scene, model_path, monkeypatch):
    import os

    from landcover_plugin.engine import classify as mod

    real = os.access
    monkeypatch.setattr(mod.os, "access", lambda p, mode: False if str(p) == str(tmp_path / "ro") else real(p, mode))
    (tmp_path / "ro").mkdir()
    with pytest.raises(mod.LandcoverError, match="is not writable"):
        mod.classify(mod.ClassifyParams(scene, tmp_path / "ro" / "o.tif", model_path))


def test_models_and_info(capsys):
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    assert "flair-rgb (default)" in out and "building" in out
    assert "dubai-rgb: 5 classes" in out and "1=building, 2=land (unpaved), 3=road" in out
    assert main(["info", "flair-rgb"]) == 0
    out = capsys.readouterr().out
    assert "GSD 0.2 m/px" in out and "#db0e9a" in out
    assert main(["info", "dubai-rgb"]) == 0
    assert "GSD unknown" in capsys.readouterr().out


def test_python_dash_m_entry_point():
    proc = subprocess.run([sys.executable, "-m", "landcover_plugin", "models"], cwd=REPO, capture_output=True, text=True)
    assert proc.returncode == 0 and "flair-rgb" in proc.stdout


def test_diagnostics(capsys):
    assert main(["diagnostics"]) == 0
    out = capsys.readouterr().out
    assert "available execution providers: " in out and "CPUExecutionProvider" in out
    assert "execution provider used for device 'auto': CPUExecutionProvider" in out
    assert "flair-rgb (default): 13 classes, bands red, green, blue, GSD 0.2 m/px" in out
    assert "dubai-rgb: 5 classes, bands red, green, blue, GSD unknown" in out
