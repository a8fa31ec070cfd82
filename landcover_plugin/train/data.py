"""Training pairs held in memory, split by contiguous blocks or whole pairs, and crop sampling.

An image's label is a class-code raster, a colour-coded (RGB or paletted) mask, or polygons with a
class field (rasterised; pixels outside every polygon are ignore). A label raster on another grid or
CRS is warped onto the image's grid with nearest neighbour; polygons are reprojected to the image's
CRS. A 1-band config (``input_bands: ["gray"]``) turns RGB images into luma (ITU-R BT.601 weights).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from osgeo import gdal

from ..engine.reader import grid_of, on_grid, open_raster, read_window
from ..engine.source import to_luma
from ..engine.windows import PixelWindow
from ..errors import LandcoverError
from ..polygons import VECTOR_SUFFIXES, burn_polygons
from .config import TrainConfig

IGNORE = 255


@dataclass
class Pair:
    """One image ``(C, H, W)`` uint8/uint16 and its class-index label ``(H, W)`` uint8 (255 = ignore).

    ``split_col``: columns ``[0, split_col)`` train, ``[split_col, W)`` validate (a contiguous block).
    """

    name: str
    image: np.ndarray
    label: np.ndarray
    split_col: int


def code_lut(config: TrainConfig) -> np.ndarray:
    """256-entry lookup from label-raster code to class index (255 for codes no class claims)."""
    lut = np.full(256, IGNORE, np.uint8)
    for index, spec in enumerate(config.classes):
        for code in spec.codes:
            lut[code] = index
    return lut


def colors_to_classes(rgb: np.ndarray, config: TrainConfig, source: str = "mask") -> np.ndarray:
    """Colour-coded mask ``(3, H, W)`` uint8 → class indices ``(H, W)`` uint8 (255 for ignore colours).

    Colours are matched exactly. Raises ``LandcoverError`` naming any colour that is neither a class's
    ``mask_colors`` nor in ``ignore_colors``."""
    key = (rgb[0].astype(np.uint32) << 16) | (rgb[1].astype(np.uint32) << 8) | rgb[2]
    table = {(r << 16) | (g << 8) | b: i for i, c in enumerate(config.classes) for r, g, b in c.mask_colors}
    table.update({(r << 16) | (g << 8) | b: IGNORE for r, g, b in config.ignore_colors})
    colors, inverse = np.unique(key, return_inverse=True)
    unknown = [int(c) for c in colors if int(c) not in table]
    if unknown:
        shown = ", ".join(f"({c >> 16}, {(c >> 8) & 255}, {c & 255})" for c in unknown[:5])
        raise LandcoverError(f"{source} has colours that are neither a class's mask_colors nor ignore_colors: {shown}: "
                             "add them to the training config")
    return np.array([table[int(c)] for c in colors], np.uint8)[inverse].reshape(key.shape)


def _whole(ds: gdal.Dataset, bands: tuple[int, ...], name: str) -> np.ndarray:
    return read_window(ds, bands, PixelWindow(0, 0, ds.RasterXSize, ds.RasterYSize), name)


def _read_label(lab: gdal.Dataset, view: gdal.Dataset, path: str, config: TrainConfig, lut: np.ndarray) -> np.ndarray:
    """Class indices from label raster ``lab`` read through ``view`` (itself, or its view on the image's
    grid): RGB colour masks and paletted (1 band + colour table) masks through ``mask_colors``, other
    1-band labels through their codes."""
    if lab.RasterCount >= 3:
        return colors_to_classes(_whole(view, (1, 2, 3), path), config, path)
    if any(c.mask_colors for c in config.classes):
        table = lab.GetRasterBand(1).GetColorTable()
        if table is None:
            raise LandcoverError(f"label {path} has 1 band and no colour table, but the config gives mask_colors: "
                                 "give RGB or paletted masks, or class codes instead of mask_colors")
        palette = np.array([table.GetColorEntry(i)[:3] if i < table.GetCount() else (0, 0, 0) for i in range(256)],
                           np.uint8)
        return colors_to_classes(palette[_whole(view, (1,), path)[0]].transpose(2, 0, 1), config, path)
    return lut[_whole(view, (1,), path)[0]]


def label_raster_on_grid(img: gdal.Dataset, image_path: str, label_path: str, config: TrainConfig,
                         lut: np.ndarray) -> np.ndarray:
    """Class indices ``(H, W)`` uint8 of the label raster on ``img``'s grid (``on_grid``: warped with
    nearest when the grids differ). Raises ``LandcoverError`` when the grids differ and either lacks a
    CRS, or when the label does not overlap the image."""
    lab = open_raster(label_path, "label")
    return _read_label(lab, on_grid(lab, grid_of(img), label_path, f"image {image_path}"), label_path, config, lut)


def rasterize_polygons(img: gdal.Dataset, image_path: str, path: str, config: TrainConfig) -> np.ndarray:
    """Class indices ``(H, W)`` uint8 from polygons (``burn_polygons``), ``IGNORE`` outside every polygon.

    The config's ``label_field`` holds each polygon's class: a code listed in a class's ``codes``, a
    class name, or a value in ``ignore_codes``. Raises ``LandcoverError`` (see ``burn_polygons``)."""
    if not config.label_field:
        raise LandcoverError(f"labels {path} are polygons: set 'label_field' in the training config to the field "
                             "that holds each polygon's class")
    by_value = {str(code): i for i, c in enumerate(config.classes) for code in c.codes}
    by_value.update({c.name: i for i, c in enumerate(config.classes)})
    by_value.update({str(code): IGNORE for code in config.ignore_codes})
    return burn_polygons(grid_of(img), image_path, path, config.label_field, by_value.get, IGNORE,
                         "add them to a class's 'codes' or to 'ignore_codes'")


def read_image(img: gdal.Dataset, image_path: str, config: TrainConfig) -> np.ndarray:
    """The image ``(C, H, W)`` in its dtype; for a 1-band config and an image of 3 or more bands, the luma
    of bands 1–3 (rounded, same dtype)."""
    image = _whole(img, tuple(range(1, img.RasterCount + 1)), image_path)
    if len(config.input_bands) == 1 and image.shape[0] >= 3:
        return to_luma(image)
    if image.shape[0] < len(config.input_bands):
        raise LandcoverError(f"image {image_path} has {image.shape[0]} band(s) but the config's input_bands name "
                             f"{len(config.input_bands)}: fix input_bands or the pairs")
    return image[:len(config.input_bands)]


def load_pairs(config: TrainConfig) -> list[Pair]:
    """Read every pair fully, labels on the image's grid (see the module docstring). A 1-band label
    raster holds class codes; an RGB or paletted one is a colour-coded mask (``mask_colors``); a vector
    file holds polygons. The validation block is the rightmost ``val_fraction`` of columns, or, with
    ``val_pairs``, whole pairs.

    Raises ``LandcoverError`` for labels off the image, unknown mask colours or polygon classes, or no
    labelled pixel in the training part.
    """
    lut = code_lut(config)
    pairs = []
    for image_path, label_path in config.pairs:
        img = open_raster(image_path, "image")
        image = read_image(img, image_path, config)
        if Path(label_path).suffix.lower() in VECTOR_SUFFIXES:
            label = rasterize_polygons(img, image_path, label_path, config)
        else:
            label = label_raster_on_grid(img, image_path, label_path, config, lut)
        if config.val_pairs:
            split = 0 if any(v in image_path for v in config.val_pairs) else image.shape[2]
        else:
            split = int(round(image.shape[2] * (1 - config.val_fraction)))
        pairs.append(Pair(image_path, image, label, split))
    if not any((p.label[:, :p.split_col] != IGNORE).any() for p in pairs):
        raise LandcoverError("no labelled pixel is left in the training part after the split and ignore values: "
                             "check the labels, 'ignore_codes'/'ignore_colors' and the validation split")
    return pairs


def resample_crop(image: np.ndarray, label: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Resize a crop ``(C, h, w)`` / ``(h, w)`` to ``size`` × ``size``: bilinear for the image (same
    dtype), nearest for the label (so classes stay classes)."""
    import torch
    from torch.nn import functional as F

    x = torch.from_numpy(image.astype(np.float32))[None]
    img = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)[0].numpy()
    y = torch.from_numpy(label.astype(np.float32))[None, None]
    lab = F.interpolate(y, size=(size, size), mode="nearest")[0, 0].numpy()
    return np.round(img).astype(image.dtype), lab.astype(label.dtype)


def sample_batch(pairs: list[Pair], config: TrainConfig, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A training batch of random crops from the train blocks: images ``(B, C, s, s)`` in the raw
    dtype, labels ``(B, s, s)`` uint8; each crop has at least ``config.min_labelled`` labelled pixels
    and gets a random flip and 90° rotation. With ``config.scale_jitter`` ``(lo, hi)``, a crop of
    ``s × f`` px (``f`` uniform in [lo, hi]) is resampled to ``s`` (bilinear image, nearest label).
    Raises ``LandcoverError`` when no crop qualifies."""
    s, min_labelled = config.crop, config.min_labelled
    widths = np.array([max(p.split_col - s, 0) * (p.image.shape[1] - s) for p in pairs], float)
    if widths.sum() == 0:
        raise LandcoverError(f"no training area of at least {s}×{s} px left after the validation split")
    images, labels = [], []
    tries = 0
    while len(images) < config.batch_size:
        tries += 1
        if tries > 200 * config.batch_size:
            raise LandcoverError(f"no {s}×{s} px training crop has {min_labelled:.0%} labelled pixels: the labels are "
                                 "too sparse; lower 'min_labelled' or 'crop' in the training config")
        p = pairs[rng.choice(len(pairs), p=widths / widths.sum())]
        size = s
        if config.scale_jitter:
            size = int(round(s * rng.uniform(*config.scale_jitter)))
            size = min(size, p.split_col, p.image.shape[1])
        r = rng.integers(0, p.image.shape[1] - size + 1)
        c = rng.integers(0, p.split_col - size + 1)
        lab = p.label[r:r + size, c:c + size]
        if (lab != IGNORE).mean() < min_labelled:
            continue
        img = p.image[:, r:r + size, c:c + size]
        if size != s:
            img, lab = resample_crop(img, lab, s)
        k = rng.integers(4)
        img, lab = np.rot90(img, k, (1, 2)), np.rot90(lab, k)
        if rng.random() < 0.5:
            img, lab = img[:, :, ::-1], lab[:, ::-1]
        images.append(img)
        labels.append(lab)
    return np.stack(images), np.stack(labels)
