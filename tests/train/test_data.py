"""Training data: colour-coded masks, globbed pairs and a split by whole pairs (the Dubai layout)."""
import json

import numpy as np
import pytest
from PIL import Image

from landcover_plugin.errors import LandcoverError
from landcover_plugin.train.config import load_config
from landcover_plugin.train.data import IGNORE, load_pairs

BUILDING, WATER, UNLABELED = (60, 16, 152), (226, 169, 41), (155, 155, 155)


def write_tile(folder, name, mask_colors, size=(40, 30)):
    (folder / "images").mkdir(parents=True, exist_ok=True)
    (folder / "masks").mkdir(exist_ok=True)
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (*size[::-1], 3), dtype=np.uint8)).save(folder / "images" / f"{name}.jpg")
    mask = np.zeros((*size[::-1], 3), np.uint8)
    for i, color in enumerate(mask_colors):
        mask[:, i * size[0] // len(mask_colors):] = color
    Image.fromarray(mask).save(folder / "masks" / f"{name}.png")


def config(tmp_path, **extra):
    cfg = {"name": "t", "pair_globs": [["tile_*/images/*.jpg", "../masks/{stem}.png"]], "val_pairs": ["tile_2"],
           "classes": [{"name": "building", "color": "#3c1098", "mask_colors": [list(BUILDING)]},
                       {"name": "water", "color": "#e2a929", "mask_colors": [list(WATER)]}],
           "ignore_colors": [list(UNLABELED)], **extra}
    path = tmp_path / "cfg.json"
    path.write_text(json.dumps(cfg))
    return load_config(path)


def test_colour_masks_globbed_pairs_and_split_by_pair(tmp_path):
    write_tile(tmp_path / "tile_1", "image_part_001", [BUILDING, WATER])
    write_tile(tmp_path / "tile_1", "image_part_002", [WATER, UNLABELED])
    write_tile(tmp_path / "tile_2", "image_part_001", [BUILDING])
    pairs = load_pairs(config(tmp_path))
    assert [p.name.split("/")[-3:] for p in pairs] == [["tile_1", "images", "image_part_001.jpg"],
                                                      ["tile_1", "images", "image_part_002.jpg"],
                                                      ["tile_2", "images", "image_part_001.jpg"]]
    assert [p.split_col for p in pairs] == [40, 40, 0]  # tile_2 is all validation, tile_1 all training
    assert (pairs[0].label[:, :20] == 0).all() and (pairs[0].label[:, 20:] == 1).all()
    assert (pairs[1].label[:, 20:] == IGNORE).all()


def test_unknown_mask_colour_fails_loudly(tmp_path):
    write_tile(tmp_path / "tile_1", "a", [BUILDING, (0, 0, 0)])
    with pytest.raises(LandcoverError, match=r"colours that are neither .*\(0, 0, 0\)"):
        load_pairs(config(tmp_path))


def test_image_and_mask_size_mismatch(tmp_path):
    write_tile(tmp_path / "tile_1", "a", [BUILDING])
    Image.fromarray(np.zeros((10, 10, 3), np.uint8)).save(tmp_path / "tile_1" / "masks" / "a.png")
    with pytest.raises(LandcoverError, match="is not on the grid"):
        load_pairs(config(tmp_path, ignore_colors=[[0, 0, 0]]))


def test_paletted_masks_are_read_through_their_colour_table(tmp_path):
    write_tile(tmp_path / "tile_1", "a", [BUILDING, WATER])
    rgb = np.asarray(Image.open(tmp_path / "tile_1" / "masks" / "a.png"))
    paletted = Image.fromarray(np.where((rgb == BUILDING).all(-1), 1, 0).astype(np.uint8), mode="P")
    paletted.putpalette([*WATER, *BUILDING] + [0] * 762)
    paletted.save(tmp_path / "tile_1" / "masks" / "a.png")
    (label,) = [p.label for p in load_pairs(config(tmp_path))]
    assert (label[:, :20] == 0).all() and (label[:, 20:] == 1).all()
    Image.fromarray(np.zeros((30, 40), np.uint8), mode="L").save(tmp_path / "tile_1" / "masks" / "a.png")
    with pytest.raises(LandcoverError, match="no colour table"):
        load_pairs(config(tmp_path))
