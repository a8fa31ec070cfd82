"""Models Landcover writes run in Deepness and GeoDeep unchanged (the declared shapes and metadata they
read), and rewriting a model that way changes none of its outputs."""
import json

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from landcover_plugin.model import onnx_proto
from landcover_plugin.model.adapter import OnnxModel, compatible_tools
from landcover_plugin.model.registry import bundled_models
from landcover_plugin.train.export import NORMALISED, upgrade_model
from tests.fixtures import make_model


@pytest.mark.parametrize("name", ["flair-rgb", "dubai-rgb", "dubai-grey"])
def test_bundled_models_carry_what_deepness_and_geodeep_read(name):
    path = bundled_models()[name]
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    props = session.get_modelmeta().custom_metadata_map
    for value in props.values():
        json.loads(value)
    assert json.loads(props["model_type"]) == "Segmentor" and isinstance(json.loads(props["class_names"]), dict)
    inp, out = session.get_inputs()[0].shape, session.get_outputs()[0].shape
    tile = 1024  # every bundled model's default tiling, chosen with bench/grid_shift.py (the model cards)
    assert inp[1:] == [3, tile, tile] and out[1:] == [len(json.loads(props["class_names"])), tile, tile]
    assert json.loads(props["tiles_size"]) == json.loads(props["tile_size"]) == tile
    assert json.loads(props["tiles_overlap"]) == 25 and json.loads(props["seg_small_segment"]) == 0
    assert compatible_tools(path) == {"Landcover": "yes", "Deepness": "yes", "GeoDeep": "yes"}
    model = OnnxModel(path, "cpu")
    assert model.relaxed and model.fixed_size == (None, None)  # Landcover still runs any multiple of 32 px
    assert model.predict(np.full((1, model.num_bands, 96, 160), 128, np.float32)).shape[2:] == (96, 160)


@pytest.mark.parametrize("grey", [False, True])
def test_upgrade_keeps_the_outputs(tmp_path, grey):
    """The rewritten model, fed as every tool feeds it (x / 255), gives what the original gave with
    Landcover's normalisation outside the graph: the network inside is untouched."""
    props = {"standardization_mean": "[0.4, 0.5, 0.45]", "standardization_std": "[0.2, 0.3, 0.25]", "tile_size": "64",
             "overlap": "16"}
    if grey:
        props.update({"input_bands": '["gray"]', "standardization_mean": "[0.5]", "standardization_std": "[0.25]",
                      "class_names": '["a", "b"]', "class_colors": '["#000000", "#ffffff"]'})
    src = make_model(tmp_path / "src.onnx", bands=1 if grey else 3, classes=2 if grey else 3, kernel=3, props=props)
    meta = upgrade_model(src, tmp_path / "new.onnx")
    assert meta.mean == (0.0,) * (1 if grey else 3) and meta.band_repeat == (3 if grey else 1)
    old, new = OnnxModel(src, "cpu"), OnnxModel(tmp_path / "new.onnx", "cpu")
    assert new.num_bands == old.num_bands
    x = np.random.default_rng(0).integers(0, 256, (2, old.num_bands, 64, 96)).astype(np.float32)
    diff = np.abs(old.predict(x) - new.predict(x)).max()
    assert diff <= (1e-6 if grey else 0.0)  # grey: the luma of three equal bands rounds like the band
    if not grey:  # the added nodes compute exactly the standardisation Landcover did outside
        model = onnx.load(str(tmp_path / "new.onnx"))
        assert any(NORMALISED in n.input for n in model.graph.node)
    assert compatible_tools(tmp_path / "new.onnx")["GeoDeep"] == "yes"


def test_protobuf_reader_matches_onnx(tmp_path):
    path = make_model(tmp_path / "m.onnx", props={"size_multiple": "32", "name": "é ü"})
    data = path.read_bytes()
    want = {p.key: p.value for p in onnx.load(str(path)).metadata_props}
    assert onnx_proto.metadata_props(data) == onnx_proto.file_metadata_props(path) == want
    relaxed = onnx.load_from_string(onnx_proto.free_spatial_dims(data))
    dims = [d.dim_param or d.dim_value for d in relaxed.graph.input[0].type.tensor_type.shape.dim]
    assert dims == ["B", 3, "height", "width"]
    onnx.checker.check_model(relaxed)
    with pytest.raises(ValueError):
        list(onnx_proto.fields(b"\x0a\xff\xff"))
