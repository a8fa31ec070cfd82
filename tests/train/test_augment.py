"""Training for consistency and robustness: crop sizes, scale jitter, class-balanced placement, shift-
consistency pairs, colour and haze jitter, the typed result and the rebuild metadata. Generated
fixtures and a one-layer stand-in network: seconds, no shared data."""
import csv
import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from landcover_plugin.errors import LandcoverError  # noqa: E402
from landcover_plugin.train import trainer  # noqa: E402
from landcover_plugin.train.config import ClassSpec, TrainConfig, load_config  # noqa: E402
from landcover_plugin.train.data import IGNORE, CropSampler, Pair, degrade, photometric, resample_crop, scale_factor, uses_crop_sampler  # noqa: E402
from landcover_plugin.train.trainer import TrainResult, _unaugment, consistency_loss  # noqa: E402
from tests.fixtures import make_raster  # noqa: E402


def cfg(**kw) -> TrainConfig:
    base = dict(name="t", pairs=(("a", "b"),), classes=(ClassSpec("a", "#000000", (0,), 0), ClassSpec("b", "#ffffff", (1,), 1)),
                crop=64, batch_size=4, min_labelled=0.0)
    base.update(kw)
    return TrainConfig(**base)


def coordinate_pair(height=300, width=400, split=320) -> Pair:
    """An image whose bands are row, column and row+column (mod 251): every pixel says where it is;
    labels 0, with class 1 in a 12 px square only (0.1 % of the pixels)."""
    y, x = np.mgrid[0:height, 0:width]
    image = np.stack([y % 251, x % 251, (y + x) % 251]).astype(np.uint8)
    label = np.zeros((height, width), np.uint8)
    label[200:212, 100:112] = 1
    return Pair("coords", image, label, split)


def test_crop_sizes_keep_the_pixels_per_step_and_the_crops_aligned():
    config = cfg(crop_sizes=(32, 64, 96))
    assert uses_crop_sampler(config) and not uses_crop_sampler(cfg())
    sampler = CropSampler([coordinate_pair()], config)
    rng = np.random.default_rng(0)
    seen = {}
    for _ in range(12):
        batch = sampler.batch(rng)
        s = batch.images.shape[-1]
        seen[s] = len(batch.images)
        assert batch.images.shape[1:] == (3, s, s) and batch.labels.shape[1:] == (s, s) and not batch.pairs
        for img, aug in zip(batch.images, batch.augs):  # undoing the augmentation gives a plain image window
            back = _unaugment(torch.from_numpy(img.astype(np.float32).copy()), aug).numpy()
            assert ((np.diff(back[1], axis=1) % 251) == 1).all() and ((np.diff(back[0], axis=0) % 251) == 1).all()
            assert back[1].max() < 320  # columns from the training part only
    assert seen == {32: 16, 64: 4, 96: 2}  # round(4 × 64² / s²), at least 2


def test_scale_jitter_is_log_uniform_and_shrinking_is_antialiased():
    rng = np.random.default_rng(1)
    f = np.array([scale_factor(cfg(scale_jitter=(0.5, 2.0)), rng) for _ in range(4000)])
    assert 0.5 <= f.min() and f.max() <= 2.0 and abs(np.median(f) - 1.0) < 0.05  # the geometric mean is 1
    assert abs((f < 0.707).mean() - 0.25) < 0.03
    half = np.array([scale_factor(cfg(scale_jitter=(0.5, 2.0), scale_jitter_fraction=0.5), rng) for _ in range(4000)])
    assert abs((half == 1.0).mean() - 0.5) < 0.03
    stripes = np.tile(np.array([0, 255], np.uint8), (1, 64, 32))  # 1-px stripes
    shrunk, lab = resample_crop(stripes, np.zeros((64, 64), np.uint8), 32)
    assert shrunk.dtype == np.uint8 and lab.shape == (32, 32)
    assert np.abs(shrunk[:, :, 1:-1].astype(int) - 128).max() <= 1  # averaged, not aliased to one stripe


def test_degrade_removes_detail_but_keeps_size_objects_and_smooth_ground():
    rng = np.random.default_rng(2)
    y, x = np.mgrid[0:64, 0:64]
    ramp = np.stack([x * 3, y * 3, (x + y)]).astype(np.uint8)  # smooth ground survives coarsening
    stripes = np.tile(np.array([0, 255], np.uint8), (3, 64, 32))  # 1-px detail does not
    images = np.stack([ramp, stripes] * 8)
    assert degrade(images, cfg(), rng) is images  # off by default
    assert (degrade(images, cfg(degrade=(2.0, 2.0), degrade_fraction=0.0), rng) == images).all()
    out = degrade(images, cfg(degrade=(2.0, 3.0), degrade_fraction=1.0), rng)
    assert out.shape == images.shape and out.dtype == np.uint8 and (images[1] == stripes).all()  # the input is kept
    inner = (slice(None), slice(4, -4), slice(4, -4))
    assert np.abs(out[0][inner].astype(int) - ramp[inner]).max() <= 3
    assert out[1][inner].std() < 0.25 * stripes.std() and abs(out[1][inner].mean() - 127.5) < 4  # averaged away
    half = degrade(images, cfg(degrade=(2.0, 2.0), degrade_fraction=0.5), rng)
    assert 0 < sum((half[i] != images[i]).any() for i in range(1, 16, 2)) < 8  # a fraction of the crops
    sixteen = degrade(images.astype(np.uint16) * 200, cfg(degrade=(2.0, 2.0), degrade_fraction=1.0), rng)
    assert sixteen.dtype == np.uint16 and abs(int(sixteen[1][inner].mean()) - 25500) < 300


def test_consistency_pairs_see_the_same_ground_on_their_overlap():
    config = cfg(consistency=1.0, scale_jitter=(0.5, 2.0))
    sampler = CropSampler([coordinate_pair()], config)
    rng = np.random.default_rng(2)
    for _ in range(5):
        batch = sampler.batch(rng)
        assert len(batch.images) == 4 and len(batch.pairs) == 2
        x = torch.from_numpy(batch.images.astype(np.float32))
        # an identity "network" (logits = the image): its crops agree wherever they overlap
        assert consistency_loss(x / 50, batch) < 1e-6
        # a network that depends on the position in the tile does not
        ramp = torch.zeros_like(x)
        ramp[:, 0] = torch.linspace(0, 3, x.shape[-1])
        assert consistency_loss(x / 50 + ramp, batch) > 1e-2
        for _, _, (ya, xa), (yb, xb) in batch.pairs:
            shift = (yb - ya, xb - xa)
            assert max(abs(v) for v in shift) <= x.shape[-1] // 2 and shift != (0, 0)


def test_class_balanced_placement_finds_the_rare_class():
    pair = coordinate_pair()

    def share(balance):
        sampler = CropSampler([pair], cfg(class_balance=balance))
        rng = np.random.default_rng(3)
        labels = np.concatenate([sampler.batch(rng).labels for _ in range(50)])
        return (labels == 1).any(axis=(1, 2)).mean()

    assert share(1.0) > max(0.5, 3 * share(0.0))  # half the crops are placed on class 1


def test_too_sparse_labels_are_an_error():
    pair = coordinate_pair()
    pair.label[:] = IGNORE
    pair.label[0, 0] = 0
    with pytest.raises(LandcoverError, match="too sparse"):
        CropSampler([pair], cfg(crop_sizes=(64,), min_labelled=0.5)).batch(np.random.default_rng(0))


def test_photometric_jitter_and_haze():
    rng = np.random.default_rng(4)
    x = rng.uniform(0.1, 0.6, (16, 3, 8, 8)).astype(np.float32)
    assert np.array_equal(photometric(x.copy(), cfg(), rng), x)
    out = photometric(x.copy(), cfg(color_jitter=0.3), rng)
    assert out.dtype == np.float32 and out.shape == x.shape and out.min() >= 0 and not np.allclose(out, x)
    hazy = photometric(x.copy(), cfg(haze=0.6), np.random.default_rng(5))
    changed = ~np.all(np.isclose(hazy, x), axis=(1, 2, 3))
    assert 0 < changed.sum() < 16  # about half the images
    assert (hazy[changed].mean(axis=(1, 2, 3)) > x[changed].mean(axis=(1, 2, 3))).all()  # brighter
    assert (hazy[changed].std(axis=(1, 2, 3)) < x[changed].std(axis=(1, 2, 3))).all()  # flatter
    grey = photometric(x[:, :1].copy(), cfg(color_jitter=0.3, haze=0.5), rng)
    assert grey.shape == (16, 1, 8, 8)


def test_config_checks_new_keys(tmp_path):
    image = make_raster(tmp_path / "i.tif", np.zeros((3, 64, 64), np.uint8))
    mask = make_raster(tmp_path / "m.tif", np.zeros((1, 64, 64), np.uint8))
    base = {"name": "t", "pairs": [[str(image), str(mask)]], "classes": [{"name": "a", "color": "#000000", "codes": [0]}]}
    for bad, match in (({"encoder": "resnet50"}, "encoder"), ({"crop_sizes": [100]}, "multiples of 32"),
                       ({"scale_jitter": [2, 0.5]}, "scale_jitter"), ({"degrade": [0.5, 2]}, "degrade"),
                       ({"degrade_fraction": 1.5}, "degrade_fraction"), ({"init_model": "nowhere.onnx"}, "init_model .*nowhere")):
        path = tmp_path / "c.json"
        path.write_text(json.dumps({**base, **bad}))
        with pytest.raises(LandcoverError, match=match):
            load_config(path)


class Tiny(torch.nn.Module):
    """A one-layer stand-in for the segmentation network (same call signature as build_network's)."""

    def __init__(self, num_classes, in_channels=3, *args, **kwargs):
        super().__init__()
        self.conv = torch.nn.Conv2d(in_channels, num_classes, 3, padding=1)

    def forward(self, x):
        return self.conv(x)


@pytest.fixture
def tiny_run(tmp_path, monkeypatch):
    monkeypatch.setattr(trainer, "build_network", lambda arch, k, c, weights=None, encoder=None, antialias=False: Tiny(k, c))
    rng = np.random.default_rng(0)
    label = np.zeros((1, 96, 160), np.uint8)
    label[0, :, 60:] = 1
    label[0, 40:56, 20:36] = 2
    image = (rng.integers(0, 60, (3, 96, 160)) + label * 80).astype(np.uint8)
    make_raster(tmp_path / "img.tif", image)
    make_raster(tmp_path / "lab.tif", label)
    config = {"name": "tiny", "pairs": [["img.tif", "lab.tif"], ["img.tif", "lab.tif"]], "gsd": 0.2,
              "classes": [{"name": n, "color": "#000000", "codes": [i]} for i, n in enumerate(["x", "y", "z"])],
              "crop": 32, "crop_sizes": [32, 64], "batch_size": 4, "steps": 6, "eval_every": 3, "tile_size": 32,
              "overlap": 8, "val_tile_size": 24, "val_fraction": 0.25, "scale_jitter": [0.5, 2.0], "color_jitter": 0.2, "haze": 0.3,
              "class_balance": 0.5, "consistency": 1.0, "encoder": "efficientnet-lite1", "architecture": "fpn",
              "loss": {"ce": 1, "dice": 1}, "extra": {"training_recipe": "test"}}
    (tmp_path / "tiny.json").write_text(json.dumps(config))
    return load_config(tmp_path / "tiny.json")


def test_train_returns_a_typed_result_and_runs_repeat_exactly(tmp_path, tiny_run):
    from landcover_plugin.model.adapter import OnnxModel

    first = trainer.train(tiny_run, tmp_path / "a.onnx", tmp_path / "run-a", weights_path="-", info=lambda m: None)
    assert isinstance(first, TrainResult)
    assert first.encoder == "efficientnet-lite1" and first.steps == 6 and first.best_step in (3, 6)
    assert 0 <= first.val_miou <= 1 and first.train_seconds >= 0 and first.run_dir == tmp_path / "run-a"
    line = first.summary()
    assert line.startswith("tiny: validation mIoU") and "\n" not in line and str(tmp_path / "a.onnx") in line
    saved = json.loads((tmp_path / "run-a" / "summary.json").read_text())
    assert saved["val_miou"] == first.val_miou and saved["encoder"] == "efficientnet-lite1"
    meta = OnnxModel(tmp_path / "a.onnx", "cpu").meta
    assert meta.extra["architecture"] == "fpn" and meta.extra["encoder"] == "efficientnet-lite1"
    assert meta.extra["training_recipe"] == "test" and meta.tile_size_px == 32 and meta.overlap_px == 8
    card = (tmp_path / "a.md").read_text()
    assert "EfficientNet-Lite1" in card and "shift-consistency" in card and "class drawn uniformly" not in card
    assert "scale jitter 0.5–2× (log-uniform)" in card and "haze up to 0.3" in card
    second = trainer.train(tiny_run, tmp_path / "b.onnx", tmp_path / "run-b", weights_path="-", info=lambda m: None)
    rows = [list(csv.reader(open(tmp_path / r / "metrics.csv"))) for r in ("run-a", "run-b")]
    assert [r[:4] for r in rows[0]] == [r[:4] for r in rows[1]]  # same seed: same losses and scores
    assert second.val_miou == first.val_miou


def test_init_model_of_another_network_is_refused_in_one_line(tmp_path, tiny_run):
    from dataclasses import replace

    from tests.fixtures import REPO

    config = replace(tiny_run, init_model=str(REPO / "models" / "dubai-rgb.onnx"))
    with pytest.raises(LandcoverError, match=r"^init_model dubai-rgb.onnx is a fpn on efficientnet-lite0 .* 5 classes"
                                             r".*fpn on efficientnet-lite1 with 3 classes.*same network$"):
        trainer.train(config, tmp_path / "a.onnx", tmp_path / "run", info=lambda m: None)
    assert not (tmp_path / "a.onnx").exists()
    (tmp_path / "text.pt").write_text("not a checkpoint")
    with pytest.raises(LandcoverError, match="text.pt is not a checkpoint"):
        trainer.train(replace(tiny_run, init_model=str(tmp_path / "text.pt")), tmp_path / "a.onnx", tmp_path / "run")
    torch.save(Tiny(5).state_dict(), tmp_path / "five.pt")  # a state dict of another class count
    with pytest.raises(LandcoverError, match=r"^init_model .*five.pt does not fit the 'fpn' network"):
        trainer.train(replace(tiny_run, init_model=str(tmp_path / "five.pt")), tmp_path / "a.onnx", tmp_path / "run")
    torch.save(Tiny(3).state_dict(), tmp_path / "three.pt")  # one that fits trains
    result = trainer.train(replace(tiny_run, init_model=str(tmp_path / "three.pt"), steps=3), tmp_path / "b.onnx",
                           tmp_path / "run-b", info=lambda m: None)
    assert result.steps == 3 and (tmp_path / "b.onnx").exists()


def test_antialiased_encoder_keeps_shapes_and_exports(tmp_path):
    from landcover_plugin.model.adapter import OnnxModel
    from landcover_plugin.train.export import export_onnx
    from landcover_plugin.train.network import BlurPool, build_network
    from landcover_plugin.train.trainer import metadata_for, normalise

    net = build_network("fpn", 3, 3, antialias=True).eval()
    assert sum(isinstance(m, BlurPool) for m in net.modules()) == 5  # the stem and four stride-2 depthwise convs
    config = cfg(antialias=True, tile_size=64, overlap=16, classes=tuple(ClassSpec(n, "#000000", (i,), i) for i, n in enumerate("abc")))
    path = tmp_path / "aa.onnx"
    export_onnx(net, metadata_for(config), path, 3)
    raw = np.random.default_rng(0).integers(0, 256, (1, 3, 64, 96)).astype(np.float32)
    with torch.no_grad():
        expected = torch.softmax(net(normalise(raw, config)), 1).numpy()
    model = OnnxModel(path, "cpu")
    np.testing.assert_allclose(model.predict(raw), expected, atol=1e-4)
    assert model.meta.extra["antialias"] == "true" and model.meta.extra["encoder"] == "efficientnet-lite0"
