"""Georeferenced image + label raster pairs held in memory, split by contiguous blocks, and crop sampling."""
from __future__ import annotations

from dataclasses import dataclass

import warnings

import numpy as np
import rasterio
from rasterio.errors import NotGeoreferencedWarning

from ..errors import LandcoverError
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


def _read_label(lab, path: str, config: TrainConfig, lut: np.ndarray) -> np.ndarray:
    """Class indices from a label raster: RGB colour masks and paletted (1 band + colour table) masks
    through ``mask_colors``, other 1-band labels through their codes."""
    if lab.count >= 3:
        return colors_to_classes(lab.read([1, 2, 3]), config, path)
    if any(c.mask_colors for c in config.classes):
        try:
            cmap = lab.colormap(1)
        except ValueError:
            raise LandcoverError(f"label {path} has 1 band and no colour table, but the config gives mask_colors: "
                                 "give RGB or paletted masks, or class codes instead of mask_colors") from None
        palette = np.array([cmap.get(i, (0, 0, 0, 0))[:3] for i in range(256)], np.uint8)
        return colors_to_classes(palette[lab.read(1)].transpose(2, 0, 1), config, path)
    return lut[lab.read(1)]


def load_pairs(config: TrainConfig) -> list[Pair]:
    """Read every pair fully; the label must lie on exactly the image's grid (same size and transform).
    A 1-band label holds class codes; an RGB or paletted label is a colour-coded mask (``mask_colors``). The
    validation block is the rightmost ``val_fraction`` of columns, or, with ``val_pairs``, whole pairs.

    Raises ``LandcoverError`` when a pair's grids differ or a mask has an unknown colour.
    """
    lut = code_lut(config)
    pairs = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        for image_path, label_path in config.pairs:
            with rasterio.open(image_path) as img, rasterio.open(label_path) as lab:
                if (img.width, img.height) != (lab.width, lab.height) or not img.transform.almost_equals(lab.transform):
                    raise LandcoverError(f"label {label_path} ({lab.width}×{lab.height}) is not on the grid of image "
                                         f"{image_path} ({img.width}×{img.height}): same size and transform needed")
                image = img.read()
                label = _read_label(lab, label_path, config, lut)
            if config.val_pairs:
                split = 0 if any(v in image_path for v in config.val_pairs) else image.shape[2]
            else:
                split = int(round(image.shape[2] * (1 - config.val_fraction)))
            pairs.append(Pair(image_path, image, label, split))
    return pairs


def sample_batch(pairs: list[Pair], config: TrainConfig, rng: np.random.Generator,
                 min_labelled: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    """A training batch of random crops from the train blocks: images ``(B, C, s, s)`` in the raw
    dtype, labels ``(B, s, s)`` uint8; each crop has at least ``min_labelled`` labelled pixels and
    gets a random flip and 90° rotation."""
    s = config.crop
    widths = np.array([max(p.split_col - s, 0) * (p.image.shape[1] - s) for p in pairs], float)
    if widths.sum() == 0:
        raise LandcoverError(f"no training area of at least {s}×{s} px left after the validation split")
    images, labels = [], []
    while len(images) < config.batch_size:
        p = pairs[rng.choice(len(pairs), p=widths / widths.sum())]
        r = rng.integers(0, p.image.shape[1] - s + 1)
        c = rng.integers(0, p.split_col - s + 1)
        lab = p.label[r:r + s, c:c + s]
        if (lab != IGNORE).mean() < min_labelled:
            continue
        img = p.image[:, r:r + s, c:c + s]
        k = rng.integers(4)
        img, lab = np.rot90(img, k, (1, 2)), np.rot90(lab, k)
        if rng.random() < 0.5:
            img, lab = img[:, :, ::-1], lab[:, ::-1]
        images.append(img)
        labels.append(lab)
    return np.stack(images), np.stack(labels)
