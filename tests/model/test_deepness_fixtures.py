"""Every Deepness test model in ``../shared/data/deepness_models/`` classified on its own orthophoto,
checked against what each model is documented to compute (not against Landcover's own output): the
dummy model raises each band to the 8th power, the others are 1×1 (or one 29×29) convolutions followed by
a softmax or sigmoid, so the expected class of every pixel follows from the weights in the file."""
import numpy as np
import onnx
import pytest
import rasterio
from onnx import numpy_helper
from scipy.signal import correlate

from landcover_plugin.cli import main
from landcover_plugin.engine.classify import ClassifyParams, classify
from landcover_plugin.feedback import Feedback
from landcover_plugin.model.adapter import OnnxModel, validate_model

pytestmark = pytest.mark.shared_data
FIXTURES = ("dummy_model", "one_output_softmax_bsx2x512x512", "one_output_sigmoid_bsx1x512x512",
            "one_output_sigmoid_bsx512x512", "two_outputs_softmax_bsx2x512x512", "two_outputs_sigmoid_bsx1x512x512",
            "two_outputs_sigmoid_bsx512x512", "different_output_size_512_to_484")


@pytest.fixture(scope="module")
def folder():
    from tests.fixtures import SHARED

    if not SHARED.is_dir():
        pytest.skip(f"real data folder {SHARED} is absent")
    return SHARED / "deepness_models"


@pytest.fixture(scope="module")
def image(folder):
    with rasterio.open(folder / "dummy_fotomap_small.tif") as src:
        return src.read((1, 2, 3)).astype(np.float64) / 255.0  # what Deepness feeds: x / 255, no standardisation


def weights(path):
    return {t.name: numpy_helper.to_array(t).astype(np.float64) for t in onnx.load(str(path)).graph.initializer}


def conv1x1(x, w, b):
    return np.tensordot(w[:, :, 0, 0], x, axes=1) + b[:, None, None]


def expected_classes(name, path, x):
    """Class index of every pixel from the model's documented computation; ``None`` where undefined."""
    if name == "dummy_model":
        return (x ** 8).argmax(0)  # x⁸ per channel: the brightest band wins (ties: the first)
    w = weights(path)
    if name == "different_output_size_512_to_484":
        kernel, bias = w["0.weight"], w["0.bias"]
        logits = np.stack([sum(correlate(x[c], kernel[k, c], mode="valid") for c in range(3)) + bias[k] for k in range(2)])
        return logits.argmax(0)  # two sigmoids: the larger wins; the outer 14 px have no prediction
    logits = conv1x1(x, w["conv.weight"], w["conv.bias"])
    if logits.shape[0] == 1:  # one sigmoid channel: the class iff sigmoid(z) ≥ 0.5, i.e. z ≥ 0
        return (logits[0] >= 0).astype(int)
    return logits.argmax(0)  # softmax keeps the argmax


class Notes(Feedback):
    """Keeps every message the run gives."""

    def __init__(self, notes):
        self.notes = notes

    def info(self, message):
        self.notes.append(message)

    def warning(self, message):
        self.notes.append(message)


@pytest.mark.parametrize("name", FIXTURES)
def test_fixture_classifies_as_documented(name, folder, image, tmp_path):
    path = folder / f"{name}.onnx"
    notes = []
    result = classify(ClassifyParams(folder / "dummy_fotomap_small.tif", tmp_path / "c.tif", path, device="cpu"),
                      Notes(notes))
    with rasterio.open(tmp_path / "c.tif") as src:
        got = src.read(1)
    want = expected_classes(name, path, image)
    if name == "different_output_size_512_to_484":
        got = got[14:-14, 14:-14]
        assert any("28 px smaller than its input" in n for n in notes)
    assert got.shape == want.shape
    # Ties and float rounding at a class boundary may flip the odd pixel; nothing else may differ.
    assert (got == want).mean() > 0.999, (name, (got == want).mean())
    if "sigmoid" in name:  # one sigmoid channel: two classes, background and the named class
        assert list(result.class_pixels)[0] == "background" and len(result.class_pixels) == 2
    if name in ("dummy_model", "one_output_softmax_bsx2x512x512", "different_output_size_512_to_484",
                "two_outputs_sigmoid_bsx512x512"):
        assert any("names no classes" in n for n in notes)  # Deepness numbers them too
    if name.startswith("two_outputs"):
        assert any("using output 0" in n and "--model-output" in n for n in notes)


def test_the_second_output_of_a_two_output_model(folder, image, tmp_path, capsys):
    """Deepness' multi-output form: ``class_names`` as one dict per output; --model-output chooses."""
    path = folder / "two_outputs_softmax_bsx2x512x512.onnx"
    assert main(["classify", str(folder / "dummy_fotomap_small.tif"), str(tmp_path / "o.tif"), "--model", str(path),
                 "--model-output", "1", "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    assert "using output 1 ('output2')" in out and "Juice" in out and "Beer" in out
    w = weights(path)  # both outputs are the softmax of the same convolution in this fixture
    want = conv1x1(image, w["conv.weight"], w["conv.bias"]).argmax(0)
    with rasterio.open(tmp_path / "o.tif") as src:
        assert (src.read(1) == want).mean() > 0.999
    assert main(["classify", str(folder / "dummy_fotomap_small.tif"), str(tmp_path / "p.tif"), "--model", str(path),
                 "--model-output", "2", "--device", "cpu"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "has 2 outputs (0..1)" in err[0]


def test_rank3_output_runs_at_any_batch_size(folder, image):
    """(B, H, W) output whose graph reshapes to a batch of 1: batches of 4 are run one tile at a time."""
    model = OnnxModel(folder / "one_output_sigmoid_bsx512x512.onnx", "cpu")
    x = np.stack([np.pad(image[:, :512, :512] * 255, ((0, 0), (0, 0), (0, 0)))] * 3).astype(np.float32)
    p = model.predict(x)
    assert p.shape == (3, 2, 512, 512) and model.batch == 1
    np.testing.assert_allclose(p.sum(1), 1, atol=1e-6)


@pytest.mark.parametrize("name", FIXTURES)
def test_model_manager_and_info_accept_every_fixture(name, folder, capsys):
    """The model manager's Add ONNX… and Validate run ``validate_model``; ``landcover info`` says which tools
    run the file."""
    model = validate_model(folder / f"{name}.onnx")
    assert model.meta.num_classes >= 2
    assert main(["info", str(folder / f"{name}.onnx")]) == 0
    assert "runs in: Landcover yes" in capsys.readouterr().out
