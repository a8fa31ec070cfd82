"""Training data: colour-coded masks, globbed pairs and a split by whole pairs (the Dubai layout)."""
import json

import numpy as np
import pytest
from PIL import Image

from landcover_plugin.errors import LandcoverError
from landcover_plugin.train.config import load_config
from landcover_plugin.train.data import IGNORE, load_pairs
from tests.fixtures import box_in, write_polygons

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


# ---- georeferenced labels: rasters on another grid and CRS, polygons (generated fixtures) ----

def geo_config(tmp_path, image, label, **extra):
    cfg = {"name": "geo", "pairs": [[str(image), str(label)]], "val_fraction": 0.25,
           "classes": [{"name": "field", "color": "#ffff00", "codes": [1]},
                       {"name": "water", "color": "#0000ff", "codes": [2]}], **extra}
    path = tmp_path / "geo.json"
    path.write_text(json.dumps(cfg))
    return load_config(path)


@pytest.fixture
def scene(tmp_path):
    """An 80×60 px RGB image at 0.2 m in EPSG:2154 and its truth: code 1 left of column 40, 2 right."""
    from tests.fixtures import make_raster

    image = make_raster(tmp_path / "image.tif", np.random.default_rng(0).integers(0, 255, (3, 60, 80), dtype=np.uint8))
    truth = np.where(np.arange(80)[None, :] < 40, 1, 2).repeat(60, 0).astype(np.uint8)
    return image, truth


def test_a_label_raster_in_another_crs_and_resolution_is_warped_onto_the_image(tmp_path, scene):
    import rasterio
    from rasterio.warp import Resampling, calculate_default_transform, reproject

    image, truth = scene
    with rasterio.open(image) as img:
        transform, width, height = calculate_default_transform(img.crs, "EPSG:3857", img.width, img.height,
                                                               *img.bounds, resolution=0.37)
        label = np.zeros((height, width), np.uint8)
        reproject(truth, label, src_transform=img.transform, src_crs=img.crs, dst_transform=transform,
                  dst_crs="EPSG:3857", resampling=Resampling.nearest)
    with rasterio.open(tmp_path / "label_3857.tif", "w", driver="GTiff", width=width, height=height, count=1,
                       dtype="uint8", crs="EPSG:3857", transform=transform) as dst:
        dst.write(label, 1)
    (pair,) = load_pairs(geo_config(tmp_path, image, tmp_path / "label_3857.tif"))
    assert pair.label.shape == (60, 80)
    inner = (slice(3, -3), np.r_[3:37, 43:77])  # away from the image edge and the class boundary
    np.testing.assert_array_equal(pair.label[inner], truth[inner] - 1)  # codes 1, 2 → class indices 0, 1


def test_polygons_in_another_crs_are_rasterised_and_unlabelled_pixels_ignored(tmp_path, scene):
    image, _ = scene
    x0, top = 700000, 6600000  # the image: 16 m × 12 m at 0.2 m
    gpkg = write_polygons(tmp_path / "labels.gpkg", 4326, [
        (box_in("EPSG:4326", x0, top - 12, x0 + 8, top), 1),  # columns 0-39: field
        (box_in("EPSG:4326", x0 + 8, top - 6, x0 + 16, top), 2),  # columns 40-79, rows 0-29: water
        (box_in("EPSG:4326", x0 + 12, top - 6, x0 + 16, top - 3), 9)])  # rows 15-29, cols 60-79: "ignore" (code 9)
    (pair,) = load_pairs(geo_config(tmp_path, image, gpkg, label_field="code", ignore_codes=[9]))
    lab = pair.label
    assert (lab[1:-1, 1:39] == 0).all() and (lab[1:29, 41:59] == 1).all() and (lab[1:14, 61:] == 1).all()
    assert (lab[32:, 41:] == IGNORE).all()  # outside every polygon
    assert (lab[16:29, 61:] == IGNORE).all()  # the ignore polygon, drawn last, wins


def test_bad_polygon_labels_fail_clearly(tmp_path, scene):
    from osgeo import ogr

    image, _ = scene
    here = box_in("EPSG:2154", 700000, 6599988, 700016, 6600000)
    gpkg = write_polygons(tmp_path / "a.gpkg", 2154, [(here, 1)])
    with pytest.raises(LandcoverError, match="set 'label_field'"):
        load_pairs(geo_config(tmp_path, image, gpkg))
    with pytest.raises(LandcoverError, match=r"no field 'cls' \(fields: code\)"):
        load_pairs(geo_config(tmp_path, image, gpkg, label_field="cls"))
    unknown = write_polygons(tmp_path / "b.gpkg", 2154, [(here, 7)])
    with pytest.raises(LandcoverError, match=r"values \['7'\] of field 'code' are not known: add them to a class's 'codes'"):
        load_pairs(geo_config(tmp_path, image, unknown, label_field="code"))
    far = write_polygons(tmp_path / "c.gpkg", 2154, [(box_in("EPSG:2154", 800000, 6500000, 800010, 6500010), 1)])
    with pytest.raises(LandcoverError, match="do not overlap image"):
        load_pairs(geo_config(tmp_path, image, far, label_field="code"))
    names = write_polygons(tmp_path / "d.gpkg", 2154, [(here, "water")], field="kind", kind=ogr.OFTString)
    (pair,) = load_pairs(geo_config(tmp_path, image, names, label_field="kind"))  # class names work too
    assert (pair.label[2:-2, 2:-2] == 1).all()


def test_real_partial_polygons_train_crops(shared, tmp_path):
    """../shared/data/polygons_nb: 43 hand-drawn polygons over a 0.5 m orthophoto in EPSG:2953."""
    from landcover_plugin.train.data import sample_batch

    folder = shared / "polygons_nb"
    classes = [{"name": n, "color": "#000000", "codes": [i]} for i, n in enumerate(["other", "forest", "water", "road", "building"])]
    config = geo_config(tmp_path, folder / "23322E759967N_clipped_1m_1of2.tif", folder / "BakerLake_2017_clipped.gpkg",
                        classes=classes, label_field="Quatreclasses", ignore_codes=[255], crop=64, batch_size=4,
                        min_labelled=0.2)
    (pair,) = load_pairs(config)
    labelled = pair.label != IGNORE
    assert 0.05 < labelled.mean() < 0.95  # partial labelling: the rest is ignore
    assert len(np.unique(pair.label[labelled])) >= 3
    images, labels = sample_batch([pair], config, np.random.default_rng(0))
    assert images.shape == (4, 3, 64, 64) and ((labels != IGNORE).mean(axis=(1, 2)) >= 0.2).all()
    with pytest.raises(LandcoverError, match="labels are too sparse; lower 'min_labelled'"):
        sample_batch([pair], geo_config(tmp_path, folder / "23322E759967N_clipped_1m_1of2.tif",
                                        folder / "BakerLake_2017_clipped.gpkg", classes=classes,
                                        label_field="Quatreclasses", ignore_codes=[255], crop=64, min_labelled=1.0),
                     np.random.default_rng(0))


def test_a_one_band_config_trains_on_the_luma_of_rgb_images(tmp_path, scene):
    import rasterio

    from landcover_plugin.engine.reader import open_raster
    from landcover_plugin.train.data import read_image

    image, truth = scene
    config = geo_config(tmp_path, image, image, input_bands=["gray"], mean=[0.5], std=[0.5])
    with rasterio.open(image) as img:
        rgb = img.read().astype(float)
    grey = read_image(open_raster(image), str(image), config)
    assert grey.shape == (1, 60, 80) and grey.dtype == np.uint8
    np.testing.assert_array_equal(grey[0], np.round(0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2]))


def test_no_labelled_training_pixel_is_an_error(tmp_path, scene):
    image, _ = scene
    gpkg = write_polygons(tmp_path / "ignore.gpkg", 2154, [(box_in("EPSG:2154", 700000, 6599988, 700016, 6600000), 9)])
    with pytest.raises(LandcoverError, match="no labelled pixel is left in the training part"):
        load_pairs(geo_config(tmp_path, image, gpkg, label_field="code", ignore_codes=[9]))


def test_label_fraction_keeps_evenly_spread_stripes_of_the_training_labels(tmp_path):
    """A learning curve's data point: half the training columns keep labels, in 512 px stripes spread
    over the scene; the validation block and the image are untouched."""
    from tests.fixtures import make_raster

    image = make_raster(tmp_path / "wide.tif", np.random.default_rng(0).integers(0, 255, (3, 16, 2600), dtype=np.uint8))
    label = make_raster(tmp_path / "wide_label.tif", np.full((1, 16, 2600), 2, np.uint8))
    (full,) = load_pairs(geo_config(tmp_path, image, label, val_fraction=0.2))
    (half,) = load_pairs(geo_config(tmp_path, image, label, val_fraction=0.2, label_fraction=0.5))
    assert full.split_col == half.split_col == 2080 and (full.label == 1).all()
    np.testing.assert_array_equal(half.image, full.image)
    labelled = half.label[0] != IGNORE
    assert labelled[2080:].all()  # validation unchanged
    assert labelled[:512].all() and not labelled[512:1024].any() and labelled[1024:1536].all() and not labelled[1536:2080].any()
    with pytest.raises(LandcoverError, match="label_fraction.*a number in \\(0, 1\\]"):
        geo_config(tmp_path, image, label, label_fraction=0)
