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
