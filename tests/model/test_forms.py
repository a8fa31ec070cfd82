"""Output forms and the model contract on small generated models: one-channel and rank-3 sigmoids with
seg_thresh, static batch and size, centred smaller outputs, and a one-line ModelError (at open where the
declared shapes tell, else at the first batch) for everything that is not a segmentation model."""
import json

import numpy as np
import pytest
from onnx import helper

from landcover_plugin.cli import main
from landcover_plugin.errors import ModelError
from landcover_plugin.model.adapter import OnnxModel, threshold_remap, validate_model
from tests.fixtures import make_graph, make_model, make_sigmoid_model


def raw(seed=0, shape=(2, 3, 40, 48)):
    return np.random.default_rng(seed).integers(0, 256, shape).astype(np.float32)


def sigmoid_of(x, weight=(1.0, -1.0, 0.0), bias=0.0):
    z = np.tensordot(np.asarray(weight), x.astype(np.float64) / 255, axes=([0], [1])) + bias
    return 1 / (1 + np.exp(-z))


@pytest.mark.parametrize("rank", [4, 3])
@pytest.mark.parametrize("thresh", [None, 0.3, 0.5, 0.8])
def test_one_sigmoid_channel_is_class_iff_p_reaches_seg_thresh(tmp_path, rank, thresh):
    props = {"class_names": json.dumps({"0": "water"})} | ({"seg_thresh": json.dumps(thresh)} if thresh is not None else {})
    model = OnnxModel(make_sigmoid_model(tmp_path / "s.onnx", rank=rank, props=props), "cpu")
    assert model.meta.class_names == ("background", "water") and model.meta.output == "sigmoid"
    x = raw()
    probs = model.predict(x)
    assert probs.shape == (2, 2, 40, 48)
    np.testing.assert_allclose(probs.sum(1), 1, atol=1e-6)
    p = sigmoid_of(x)
    want = p >= (0.5 if thresh is None else thresh)
    assert (probs.argmax(1) == want).mean() > 0.999  # float32 rounding right at the threshold may differ


def test_threshold_remap_is_monotone_and_exact_at_the_threshold():
    p = np.linspace(0, 1, 10001, dtype=np.float32)
    for t in (0.0, 0.1, 0.5, 0.9, 1.0):
        q = threshold_remap(p, t)
        assert (np.diff(q) >= 0).all() and q.min() >= 0 and q.max() <= 1
        np.testing.assert_array_equal(q > 0.5, p >= t)
    np.testing.assert_allclose(threshold_remap(p, 0.5)[p < 0.5], p[p < 0.5])


def test_static_batch_and_size_are_used(tmp_path):
    """A network fixed at batch 2 and 64×64 px: any batch is split and padded, the tile size is 64."""
    w = np.eye(3, dtype=np.float32).reshape(3, 3, 1, 1) * 10
    path = make_graph(tmp_path / "fixed.onnx", [helper.make_node("Conv", ["input", "w"], ["z"]),
                                                 helper.make_node("Softmax", ["z"], ["output"], axis=1)],
                      [("input", [2, 3, 64, 64])], [("output", [2, 3, 64, 64])], {"w": w},
                      {"model_type": '"Segmentor"', "class_names": '{"0": "r", "1": "g", "2": "b"}'})
    model = OnnxModel(path, "cpu")
    assert model.meta.tile_size_px == 64 and model.batch == 2 and model.fixed_size == (64, 64)
    x = raw(shape=(3, 3, 50, 64))  # 3 tiles (batch 2 + 1 padded), smaller than the fixed size (padded)
    p = model.predict(x)
    assert p.shape == (3, 3, 50, 64)
    np.testing.assert_array_equal(p.argmax(1), x.argmax(1))
    with pytest.raises(ModelError, match="larger than the network's fixed input 64×64: use --tile-size 64"):
        model.predict(raw(shape=(1, 3, 80, 80)))


def test_centred_smaller_output_sets_padding_and_overlap(tmp_path):
    """A valid 5×5 convolution: 64 px in, 60 px out, centred; padding 2 px, overlap ≥ 4 px."""
    w = np.zeros((2, 3, 5, 5), np.float32)
    w[0, 0, 2, 2] = w[1, 1, 2, 2] = 10
    path = make_graph(tmp_path / "valid.onnx", [helper.make_node("Conv", ["input", "w"], ["z"]),
                                                 helper.make_node("Softmax", ["z"], ["output"], axis=1)],
                      [("input", ["B", 3, 64, 64])], [("output", ["B", 2, 60, 60])], {"w": w},
                      {"class_names": '["red", "green"]', "tile_size": "64", "overlap": "2"})
    model = OnnxModel(path, "cpu")
    assert model.meta.padding_px == 2 and model.meta.overlap_px == 4
    x = raw(shape=(1, 3, 64, 64))
    p = model.predict(x)
    assert p.shape == (1, 2, 64, 64)
    inner = (x[0, 0] < x[0, 1])[2:-2, 2:-2].astype(int)
    np.testing.assert_array_equal(p.argmax(1)[0, 2:-2, 2:-2], inner)


def io_model(tmp_path, name, inputs, outputs, nodes, weights=None, props=None):
    return make_graph(tmp_path / f"{name}.onnx", nodes, inputs, outputs, weights,
                      {"class_names": '["a", "b"]', **(props or {})})


REFUSED = {
    "two_inputs": (dict(inputs=[("input", ["B", 3, "H", "W"]), ("mask", ["B", 1, "H", "W"])],
                        outputs=[("output", ["B", 2, "H", "W"])],
                        nodes=[helper.make_node("Concat", ["input", "mask"], ["c"], axis=1),
                               helper.make_node("Slice", ["c", "s", "e", "ax"], ["output"])]),
                   "2 inputs .*one image input"),
    "rank5": (dict(inputs=[("input", ["B", 3, "H", "W"])], outputs=[("output", ["B", 1, 3, "H", "W"])],
                   nodes=[helper.make_node("Unsqueeze", ["input", "ax"], ["output"])]), "rank-5 output"),
    "recognition": (dict(inputs=[("input", ["B", 3, "H", "W"])], outputs=[("output", ["B", 3])],
                         nodes=[helper.make_node("ReduceMean", ["input"], ["output"], axes=[2, 3], keepdims=0)]),
                    "image-recognition"),
    "superres": (dict(inputs=[("input", ["B", 3, 32, 32])], outputs=[("output", ["B", 2, 64, 64])],
                      nodes=[helper.make_node("Resize", ["input", "", "scales"], ["output"])]), "super-resolution"),
    "detector_shape": (dict(inputs=[("input", [1, 3, 64, 64])], outputs=[("output", [1, 100, 6])],
                            nodes=[helper.make_node("Reshape", ["input", "shape"], ["output"])]), "object detector"),
    "detector_type": (dict(inputs=[("input", ["B", 3, "H", "W"])], outputs=[("output", ["B", 2, "H", "W"])],
                           nodes=[helper.make_node("Identity", ["input"], ["output"])], props={"model_type": '"Detector"'}),
                      "an object detector .*not a segmentation model"),
    "regressor": (dict(inputs=[("input", ["B", 3, "H", "W"])], outputs=[("output", ["B", 1, "H", "W"])],
                       nodes=[helper.make_node("Identity", ["input"], ["output"])], props={"model_type": '"Regressor"'}),
                  "a regression model"),
    "wrong_classes": (dict(inputs=[("input", ["B", 3, "H", "W"])], outputs=[("output", ["B", 3, "H", "W"])],
                           nodes=[helper.make_node("Identity", ["input"], ["output"])]), "outputs 3 classes but"),
    "odd_size": (dict(inputs=[("input", ["B", 3, 64, 64])], outputs=[("output", ["B", 2, 63, 64])],
                      nodes=[helper.make_node("Conv", ["input", "k21"], ["output"])]), "neither the input's"),
}


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_what_is_not_a_segmentation_model_is_refused_at_open_in_one_line(tmp_path, name, capsys):
    spec, message = REFUSED[name]
    weights = {"s": [0], "e": [2], "ax": [1], "hw": [2, 3], "scales": [1, 1, 2, 2], "shape": [1, 100, 6],
               "k21": np.ones((2, 3, 2, 1))}
    path = io_model(tmp_path, name, weights=None, **spec)
    import onnx
    from onnx import numpy_helper

    m = onnx.load(str(path))
    for k, v in weights.items():
        dtype = np.float32 if k in ("scales", "k21") else np.int64
        m.graph.initializer.append(numpy_helper.from_array(np.asarray(v, dtype), k))
    onnx.save(m, str(path))
    with pytest.raises(ModelError, match=message) as err:
        OnnxModel(path, "cpu")
    assert "\n" not in str(err.value) and str(path) in str(err.value)
    with pytest.raises(ModelError, match=message):
        validate_model(path)  # the model manager's Add ONNX… and Validate
    assert main(["info", str(path)]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("landcover: error:")


def test_non_finite_or_unnormalised_outputs_stop_with_a_model_error(tmp_path):
    nan = make_graph(tmp_path / "nan.onnx", [helper.make_node("Log", ["input"], ["output"])],
                     [("input", ["B", 2, "H", "W"])], [("output", ["B", 2, "H", "W"])],
                     props={"schema_version": "1", "class_names": '["a", "b"]', "value_range": "[100, 200]"})
    with pytest.raises(ModelError, match="non-finite values"):
        OnnxModel(nan, "cpu").predict(np.zeros((1, 2, 8, 8), np.float32))  # log of negative numbers
    unnormalised = make_model(tmp_path / "u.onnx", output="logits", props={"output": "probabilities"})
    with pytest.raises(ModelError, match="sum to .* not 1: set metadata 'output' to 'logits'"):
        OnnxModel(unnormalised, "cpu").predict(raw())
    unbounded = make_graph(tmp_path / "r.onnx", [helper.make_node("Conv", ["input", "w"], ["output"])],
                           [("input", ["B", 3, "H", "W"])], [("output", ["B", 1, "H", "W"])],
                           {"w": np.full((1, 3, 1, 1), 10, np.float32)}, {"class_names": '["x"]'})
    with pytest.raises(ModelError, match="must be a sigmoid probability in \\[0, 1\\]"):
        OnnxModel(unbounded, "cpu").predict(raw())  # a regression output, not a probability
