"""Weights recovered from ONNX files: the bundled models (BatchNorm folded by the exporter, normalisation and
luma in the graph), a model whose metadata names no network, without and with its training config beside
it, a fresh export whose metadata names its network, a re-export, and models whose weights cannot be recovered."""
import shutil
from dataclasses import replace

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("onnx")
pytest.importorskip("efficientnet_lite_pytorch")

from landcover_plugin.errors import LandcoverError  # noqa: E402
from landcover_plugin.model.adapter import OnnxModel  # noqa: E402
from landcover_plugin.model.metadata import ModelMetadata  # noqa: E402
from landcover_plugin.train import network  # noqa: E402
from landcover_plugin.train.export import export_onnx  # noqa: E402
from landcover_plugin.train.weights import NetworkSpec, recover, verify  # noqa: E402
from tests.fixtures import REPO, make_model  # noqa: E402


@pytest.mark.parametrize("name, spec, in_channels, luma, found_by", [
    ("flair-rgb", NetworkSpec("fpn"), 3, False, "the model's metadata"),  # 1.1 models carry their architecture and encoder
    ("dubai-rgb", NetworkSpec("fpn"), 3, False, "the model's metadata"),
    ("dubai-grey", NetworkSpec("fpn"), 1, True, "the model's metadata"),
])
def test_the_bundled_models_weights_are_recovered(name, spec, in_channels, luma, found_by):
    rec = recover(REPO / "models" / f"{name}.onnx")
    assert rec.spec == spec and rec.in_channels == in_channels and rec.luma is luma
    assert rec.found_by == found_by
    assert rec.max_diff < 1e-5  # the file's probabilities, reproduced
    assert rec.mean is not None and rec.std is not None  # the peer-compatible export's in-graph standardisation


def test_without_a_training_config_every_network_is_tried(tmp_path):
    import onnx

    model = onnx.load(REPO / "models" / "dubai-grey.onnx")
    kept = [p for p in model.metadata_props if p.key not in ("architecture", "encoder")]  # as in files before 1.1
    del model.metadata_props[:]
    model.metadata_props.extend(kept)
    onnx.save(model, tmp_path / "grey.onnx")
    rec = recover(tmp_path / "grey.onnx")
    assert rec.spec.architecture == "fpn" and rec.found_by == "trying every network Landcover trains"
    assert rec.max_diff < 1e-5
    shutil.copy(REPO / "models" / "dubai-grey.train.json", tmp_path / "grey.train.json")  # a config beside it names it
    rec = recover(tmp_path / "grey.onnx")
    assert rec.spec == NetworkSpec("fpn") and rec.found_by == "its training config grey.train.json"
    assert rec.max_diff < 1e-5


def random_batchnorm(net, seed=0):
    """Non-trivial BatchNorm statistics and affine parameters, as after training."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.1)
                m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
                m.weight.copy_(torch.rand(m.num_features, generator=g) + 0.5)
                m.bias.copy_(torch.randn(m.num_features, generator=g) * 0.1)


def meta_for(k=4, bands=("red", "green", "blue"), **extra):
    return ModelMetadata(class_names=tuple(f"c{i}" for i in range(k)), class_colors=("#ff0000",) * k,
                         class_values=tuple(range(1, k + 1)), input_bands=bands, mean=(0.4,) * len(bands),
                         std=(0.3,) * len(bands), gsd_m=0.5, tile_size_px=128, overlap_px=32, name="fresh",
                         extra=dict(extra))


def test_a_fresh_export_naming_its_network_is_recovered_and_re_exported_identically(tmp_path):
    torch.manual_seed(0)
    net = network.build_network("fpn", 4, 3).eval()
    random_batchnorm(net)
    path = tmp_path / "fresh.onnx"
    export_onnx(net, meta_for(architecture="fpn", encoder=network.ENCODER_NAME), path, 3)
    rec = recover(path)
    assert rec.found_by == "the model's metadata" and rec.spec == NetworkSpec("fpn") and rec.max_diff < 1e-4
    raw = np.random.default_rng(1).uniform(0, 255, (1, 3, 64, 96)).astype(np.float32)
    standardised = torch.from_numpy(((raw / 255 - 0.4) / 0.3).astype(np.float32))
    with torch.no_grad():
        assert np.abs(rec.net(rec.network_input(raw)).numpy() - net(standardised).numpy()).max() < 1e-3
    again = tmp_path / "again.onnx"
    export_onnx(rec.net, rec.export_metadata(), again, rec.in_channels)  # what finetune writes
    model = OnnxModel(again, "cpu")
    assert np.abs(model.predict(raw) - OnnxModel(path, "cpu").predict(raw)).max() < 1e-4
    assert model.meta.extra["architecture"] == "fpn" and recover(again).found_by == "the model's metadata"


@pytest.mark.skipif("antialias" not in network.build_network.__code__.co_varnames, reason="this network.py has no antialias")
def test_an_anti_aliased_network_is_recovered(tmp_path):
    """BlurPool's fixed convolutions are Conv nodes too: they are checked, not assigned."""
    torch.manual_seed(0)
    net = network.build_network("unet", 3, 3, antialias=True).eval()
    random_batchnorm(net)
    path = tmp_path / "aa.onnx"
    export_onnx(net, meta_for(3, architecture="unet", encoder=network.ENCODER_NAME, antialias="true"), path, 3)
    rec = recover(path)
    assert rec.spec.antialias and rec.max_diff < 1e-4


def test_a_grey_model_written_fresh_keeps_its_luma(tmp_path):
    torch.manual_seed(0)
    net = network.build_network("unet", 3, 1).eval()
    random_batchnorm(net, 1)
    path = tmp_path / "grey.onnx"
    export_onnx(net, meta_for(3, ("gray",), architecture="unet"), path, 1)
    rec = recover(path)
    assert rec.luma and rec.in_channels == 1 and rec.num_bands == 1 and rec.max_diff < 1e-4


def test_a_model_without_recoverable_weights_is_refused_in_one_line(tmp_path):
    path = make_model(tmp_path / "foreign.onnx")
    with pytest.raises(LandcoverError) as err:
        recover(path)
    message = str(err.value)
    assert "no recoverable weights" in message and "\n" not in message and "foreign.onnx" in message


def test_a_wrong_network_in_the_metadata_is_refused(tmp_path):
    torch.manual_seed(0)
    net = network.build_network("unet", 4, 3).eval()
    path = tmp_path / "liar.onnx"
    export_onnx(net, meta_for(architecture="fpn"), path, 3)  # says FPN, holds a U-Net
    with pytest.raises(LandcoverError, match="no recoverable weights .*convolutions"):
        recover(path)


def test_verification_catches_a_different_network(tmp_path):
    rec = recover(REPO / "models" / "dubai-rgb.onnx")
    with torch.no_grad():
        rec.net.head.bias[0] += 5.0  # a network that no longer matches the file
    assert verify(rec, OnnxModel(REPO / "models" / "dubai-rgb.onnx", "cpu")) > 1e-3
    assert replace(rec.spec, antialias=True).text().endswith("(anti-aliased)")
