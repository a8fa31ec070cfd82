"""Georeferenced image + label raster pairs held in memory, split by contiguous blocks, and crop sampling."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import rasterio

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


def load_pairs(config: TrainConfig) -> list[Pair]:
    """Read every pair fully; the label must lie on exactly the image's grid (same size and transform).

    Raises ``LandcoverError`` when a pair's grids differ.
    """
    lut = code_lut(config)
    pairs = []
    for image_path, label_path in config.pairs:
        with rasterio.open(image_path) as img, rasterio.open(label_path) as lab:
            if (img.width, img.height) != (lab.width, lab.height) or not img.transform.almost_equals(lab.transform):
                raise LandcoverError(f"label {label_path} is not on the grid of image {image_path}: same size and transform needed")
            image = img.read()
            label = lut[lab.read(1)]
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
