import numpy as np
import pytest

from landcover_plugin.errors import LandcoverError, ModelError
from landcover_plugin.model.adapter import OnnxModel, choose_providers, read_metadata
from landcover_plugin.model.registry import DEFAULT_MODEL, bundled_models, resolve_model
from tests.fixtures import make_model


def test_provider_choice():
    assert choose_providers("auto", ["CPUExecutionProvider"]) == ["CPUExecutionProvider"]
    assert choose_providers("auto", ["CUDAExecutionProvider", "CPUExecutionProvider"])[0] == "CUDAExecutionProvider"
    assert choose_providers("cpu", ["CUDAExecutionProvider", "CPUExecutionProvider"]) == ["CPUExecutionProvider"]
    with pytest.raises(LandcoverError, match="no CUDA execution provider"):
        choose_providers("cuda", ["CPUExecutionProvider"])
    with pytest.raises(LandcoverError, match="device must be"):
        choose_providers("tpu", ["CPUExecutionProvider"])


def test_predict_maps_bchw_to_bkhw_probabilities(model_path):
    model = OnnxModel(model_path, "cpu")
    assert model.provider == "CPUExecutionProvider" and model.num_bands == 3
    x = np.random.default_rng(0).integers(0, 255, (2, 3, 37, 50)).astype(np.float32)
    p = model.predict(x)
    assert p.shape == (2, 3, 37, 50) and p.dtype == np.float32
    np.testing.assert_allclose(p.sum(axis=1), 1, rtol=1e-5)
    np.testing.assert_array_equal(p.argmax(1), x.argmax(1))
    assert model.padded_size(37, 50) == (64, 64)


def test_logits_models_get_a_softmax(tmp_path):
    model = OnnxModel(make_model(tmp_path / "l.onnx", output="logits"), "cpu")
    x = np.random.default_rng(0).integers(0, 255, (1, 3, 8, 8)).astype(np.float32)
    p = model.predict(x)
    np.testing.assert_allclose(p.sum(axis=1), 1, rtol=1e-5)
    ref = OnnxModel(make_model(tmp_path / "p.onnx"), "cpu").predict(x)
    np.testing.assert_allclose(p, ref, rtol=1e-4, atol=1e-6)


def test_metadata_that_contradicts_the_network_is_refused(tmp_path):
    with pytest.raises(ModelError, match="4 input bands but the network takes 3"):
        OnnxModel(make_model(tmp_path / "m.onnx", props={"input_bands": '["r","g","b","n"]'}), "cpu")
    with pytest.raises(ModelError, match="outputs 3 classes but metadata 'class_names' names 2"):  # at open, not at inference
        OnnxModel(make_model(tmp_path / "k.onnx", props={"class_names": '["a","b"]', "class_colors": '["#000000","#ffffff"]'}), "cpu")


def test_unreadable_files(tmp_path):
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"this is not a protobuf \x00\xff" * 10)
    with pytest.raises(ModelError, match="not a valid ONNX model"):
        read_metadata(junk)
    with pytest.raises(ModelError, match="class_names"):
        read_metadata(make_model(tmp_path / "n.onnx", drop=("class_names",)))


def test_registry(tmp_path):
    with pytest.raises(ModelError, match="neither a bundled model"):
        resolve_model("no-such-model")
    path = make_model(tmp_path / "mine.onnx")
    assert resolve_model(str(path)) == path
    assert DEFAULT_MODEL in bundled_models()
    assert resolve_model(None) == bundled_models()[DEFAULT_MODEL]


def test_tta_maps_each_transform_back(tmp_path):
    """A model invariant to flips and rotations (a 5×5 box filter) gives the same output with TTA; a
    wrong inverse transform would not. (Tiles are multiples of 32 px, so no one-sided padding.)"""
    model = OnnxModel(make_model(tmp_path / "k5.onnx", kernel=5), "cpu")
    x = np.random.default_rng(0).integers(0, 255, (2, 3, 64, 96)).astype(np.float32)
    np.testing.assert_allclose(model.predict(x, tta=True), model.predict(x), atol=1e-6)
    odd = np.random.default_rng(1).integers(0, 255, (1, 3, 40, 56)).astype(np.float32)
    assert model.predict(odd, tta=True).shape == (1, 3, 40, 56)
