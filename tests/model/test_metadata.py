import json

import pytest

from landcover_plugin.errors import ModelError
from landcover_plugin.model.metadata import ModelMetadata, parse_metadata

DEEPNESS = {  # keys and value styles as written by the Deepness plugin's published models
    "model_type": json.dumps("Segmentor"),
    "class_names": json.dumps({0: "background", 1: "field", 2: "road"}),
    "resolution": json.dumps(20), "tiles_size": json.dumps(512), "tiles_overlap": json.dumps(15),
    "standardization_mean": "[0.485, 0.456, 0.406]", "standardization_std": "[0.229, 0.224, 0.225]",
}


def test_deepness_keys_are_read():
    meta = parse_metadata(DEEPNESS)
    assert meta.class_names == ("background", "field", "road")
    assert meta.gsd_m == pytest.approx(0.2)
    assert meta.tile_size_px == 512 and meta.overlap_px == round(512 * 0.15)
    assert meta.mean == (0.485, 0.456, 0.406) and meta.num_bands == 3
    assert meta.class_values == (0, 1, 2) and len(meta.class_colors) == 3
    assert meta.value_range == (0.0, 255.0)


def test_tile_size_alias_and_round_trip():
    meta = parse_metadata({"class_names": '["a", "b"]', "tile_size": "256", "overlap": "32", "gsd": "0.5",
                           "class_colors": '["#FF0000", "#00ff00"]', "class_values": "[3, 9]",
                           "input_bands": '["Red", "Green"]', "padding": "8", "output": "logits"})
    assert meta.tile_size_px == 256 and meta.overlap_px == 32 and meta.padding_px == 8
    assert meta.input_bands == ("red", "green") and meta.class_colors == ("#ff0000", "#00ff00")
    again = parse_metadata(meta.to_props())
    assert again == meta
    assert meta.to_props()["resolution"] == "50.0" and meta.to_props()["schema_version"] == "1"


def test_further_keys_are_written_as_json_and_read_back_as_text():
    meta = parse_metadata({"class_names": '["a", "b"]', "architecture": "fpn", "training_recipe": '"two stages"',
                           "epochs": "12"})  # plain text (older files), a JSON string, a number
    assert meta.extra == {"architecture": "fpn", "training_recipe": "two stages", "epochs": "12"}
    props = meta.to_props()
    assert all(json.loads(v) is not None for v in props.values())  # every value is JSON, as the docstring says
    assert props["architecture"] == '"fpn"' and parse_metadata(props).extra == meta.extra


@pytest.mark.parametrize("props,key", [
    ({}, "class_names"),
    ({"class_names": "3"}, "class_names"),
    ({"class_names": '["a", 7]'}, "class_names"),
    ({"class_names": '{"0": "a", "2": "b"}'}, "class_names"),
    ({"class_names": '["a"]', "class_colors": '["red"]'}, "class_colors"),
    ({"class_names": '["a"]', "class_values": '[300]'}, "class_values"),
    ({"class_names": '["a"]', "tile_size": '"big"'}, "tile_size"),
    ({"class_names": '["a"]', "tile_size": "0"}, "tile_size"),
    ({"class_names": '["a"]', "standardization_std": "[0, 1, 1]"}, "standardization_std"),
    ({"class_names": '["a"]', "input_bands": '["red"]', "standardization_mean": "[0, 1]"}, "standardization_mean"),
    ({"class_names": '["a"]', "value_range": "[1, 0]"}, "value_range"),
    ({"class_names": '["a"]', "output": "scores"}, "output"),
    ({"class_names": '["a"]', "schema_version": "2"}, "schema_version"),
    ({"class_names": '["a"]', "model_type": '"Detector"'}, "model_type"),
])
def test_bad_metadata_names_the_key(props, key):
    with pytest.raises(ModelError, match=key):
        parse_metadata(props)


def test_defaults():
    meta = parse_metadata({"class_names": '["a", "b"]'})
    assert isinstance(meta, ModelMetadata)
    assert (meta.tile_size_px, meta.overlap_px, meta.padding_px, meta.output) == (512, 64, 0, "probabilities")
    assert meta.num_bands is None and meta.gsd_m is None


def test_peer_keys_are_written_as_json_beside_ours():
    meta = parse_metadata({"class_names": '["a", "b", "c"]', "tile_size": "512", "overlap": "128", "gsd": "0.2",
                           "small_segment": "64", "name": "m"})
    props = meta.to_props()
    for value in props.values():
        json.loads(value)  # GeoDeep json.loads some values, Deepness most: every value is JSON
    assert json.loads(props["model_type"]) == "Segmentor" and json.loads(props["name"]) == "m"
    assert json.loads(props["class_names"]) == {"0": "a", "1": "b", "2": "c"}
    assert props["tile_size"] == props["tiles_size"] == "512" and props["tiles_overlap"] == "25"
    assert json.loads(props["resolution"]) == 20 and json.loads(props["seg_thresh"]) == 0
    assert json.loads(props["seg_small_segment"]) == 4  # GeoDeep sieves (2·4)² = 64 px
    assert parse_metadata(props) == meta


def test_deepness_forms_are_read():
    assert parse_metadata({"class_names": "[{\"0\": \"Coffee\", \"1\": \"Tea\"}, {\"0\": \"Juice\", \"1\": \"Beer\"}]"},
                          num_outputs=2, output_index=1).class_names == ("Juice", "Beer")
    with pytest.raises(ModelError, match="names classes for 2 outputs but the network has 3"):
        parse_metadata({"class_names": '[{"0": "a"}, {"0": "b"}]'}, num_outputs=3)
    numbered = parse_metadata({"model_type": '"Segmentor"'}, num_classes=3)
    assert numbered.class_names == ("class 0", "class 1", "class 2") and "names no classes" in numbered.notes[0]
    binary = parse_metadata({"class_names": '{"0": "Coffee"}', "seg_thresh": "0.7"}, num_classes=1, sigmoid=True)
    assert binary.class_names == ("background", "Coffee") and binary.seg_thresh == 0.7 and binary.output == "sigmoid"
    assert parse_metadata({"class_names": '["a"]', "seg_small_segment": "11"}).small_segment_px == 484
    assert parse_metadata({"class_names": '["a"]', "small_segment": "100", "seg_small_segment": "11"}).small_segment_px == 100
    assert parse_metadata({"class_names": '["a"]', "tiles_size": "256", "tiles_overlap": "12.5"}).overlap_px == 32
    with pytest.raises(ModelError, match="seg_thresh"):
        parse_metadata({"class_names": '["a"]', "seg_thresh": "1.5"})
    with pytest.raises(ModelError, match="a super-resolution model"):
        parse_metadata({"class_names": '["a"]', "model_type": '"Superresolution"'})


def test_the_doc_key_table_is_generated_from_the_key_table():
    """docs/model-format.md's key table is ``key_table_markdown()`` verbatim (regenerate it with
    ``python -c 'from landcover_plugin.model.metadata import key_table_markdown; print(key_table_markdown())'``)."""
    from landcover_plugin.model.metadata import FIELDS, KEYS, key_table_markdown
    from tests.fixtures import REPO

    assert key_table_markdown() in (REPO / "docs" / "model-format.md").read_text()
    assert {k.field for k in KEYS if k.field} <= set(FIELDS)
    assert {"gsd_m", "tile_size_px", "overlap_px", "padding_px", "small_segment_px"} <= set(FIELDS)


def test_training_and_inference_share_one_normalisation():
    """The trainer's tensors and the adapter's network input come from ``model.normalise``, bit for bit,
    and it rounds as the trainer's formula always did."""
    import numpy as np

    from landcover_plugin.model.normalise import Normaliser, normalise

    x = np.random.default_rng(0).integers(0, 4096, (2, 3, 16, 16)).astype(np.uint16)
    low, high, mean, std = 0.0, 4095.0, (0.4, 0.5, 0.6), (0.2, 0.25, 0.3)
    old = (((x.astype(np.float32) - low) / (high - low) - np.asarray(mean, np.float32)[:, None, None])
           / np.asarray(std, np.float32)[:, None, None])
    np.testing.assert_array_equal(normalise(x, (low, high), mean, std), old)
    np.testing.assert_array_equal(Normaliser((low, high), mean, std)(x.astype(np.float32)), old)
    pytest.importorskip("torch")
    from landcover_plugin.train import trainer

    config = type("Config", (), {"value_range": (low, high), "mean": mean, "std": std})
    np.testing.assert_array_equal(trainer.normalise(x, config).numpy(), old)
