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
    fails(capsys, ["classify", str(scene), str(scene), *m], "is an input")
    fails(capsys, ["classify", str(scene), str(out), "--model", "no-such-model"], "neither a bundled model")
    assert digest(scene) == before
    leftovers = sorted(p.name for p in tmp_path.iterdir())
    assert "out.tif" not in leftovers and not [p for p in leftovers if ".part" in p]



def test_unwritable_folder_is_refused(tmp_path, scene, model_path, monkeypatch):
    import os

    from landcover_plugin import outputs
    from landcover_plugin.engine import classify as mod

    real = os.access
    monkeypatch.setattr(outputs.os, "access", lambda p, mode: False if str(p) == str(tmp_path / "ro") else real(p, mode))
    (tmp_path / "ro").mkdir()
    with pytest.raises(mod.LandcoverError, match="is not writable"):
        mod.classify(mod.ClassifyParams(scene, tmp_path / "ro" / "o.tif", model_path))


def test_models_and_info(capsys):
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    assert "flair-rgb (default)" in out and "building" in out
    assert "dubai-rgb: 5 classes, 3 bands (red, green, blue)" in out and "1=building, 2=land (unpaved), 3=road" in out
    assert "dubai-grey: 5 classes, 1 band (gray)" in out
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
    assert "CPU: " in out and "logical cores" in out


def test_the_grey_model_classifies_a_greyscale_and_an_rgb_image(tmp_path, shared, capsys):
    """dubai-grey on a held-out Dubai image, as a 1-band greyscale raster and as the RGB JPEG (read as luma)."""
    import numpy as np
    import rasterio
    from rasterio.enums import ColorInterp

    jpeg = shared / "dubai" / "tile_2" / "images" / "image_part_001.jpg"
    with rasterio.open(jpeg) as src:
        rgb = src.read().astype(float)
    luma = np.round(0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2]).astype(np.uint8)
    grey = tmp_path / "grey.tif"
    with rasterio.open(grey, "w", driver="GTiff", width=luma.shape[1], height=luma.shape[0], count=1, dtype="uint8") as dst:
        dst.write(luma, 1)
        dst.colorinterp = [ColorInterp.gray]
    outputs = []
    for source in (grey, jpeg):
        out = tmp_path / f"{source.stem}_classes.tif"
        assert main(["classify", str(source), str(out), "--model", "dubai-grey"]) == 0
        with rasterio.open(out) as dst:
            outputs.append(dst.read(1))
    assert "luma of bands 1,2,3" in capsys.readouterr().out
    np.testing.assert_array_equal(outputs[0], outputs[1])  # the RGB image is read as exactly that luma
    values, counts = np.unique(outputs[0], return_counts=True)
    assert set(values) <= {1, 2, 3, 4, 5} and len(values) >= 3  # several classes, not one
