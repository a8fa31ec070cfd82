"""Training pairs held in memory, split by contiguous blocks or whole pairs, and crop sampling.

An image's label is a class-code raster, a colour-coded (RGB or paletted) mask, or polygons with a
class field (rasterised; pixels outside every polygon are ignore). A label raster on another grid or
CRS is warped onto the image's grid with nearest neighbour; polygons are reprojected to the image's
CRS. A 1-band config (``input_bands: ["gray"]``) turns RGB images into luma (ITU-R BT.601 weights).
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray
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
    ``val_pairs``, whole pairs. With ``label_fraction`` < 1 only that share of the training columns keeps
    its labels (``keep_label_stripes``).

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
        split = split_column(image_path, image.shape[2], config.val_fraction, config.val_pairs)
        if config.label_fraction < 1:
            label = keep_label_stripes(label, split, config.label_fraction)
        pairs.append(Pair(image_path, image, label, split))
    if not any((p.label[:, :p.split_col] != IGNORE).any() for p in pairs):
        raise LandcoverError("no labelled pixel is left in the training part after the split and ignore values: "
                             "check the labels, 'ignore_codes'/'ignore_colors' and the validation split")
    return pairs


def split_column(image_path: str, width: int, val_fraction: float, val_pairs: Sequence[str] = ()) -> int:
    """The first validation column of a pair ``width`` px wide: the rightmost ``val_fraction`` of columns
    is validation, or with ``val_pairs`` the whole pair (0) when its path contains one of them, else none."""
    if val_pairs:
        return 0 if any(v in image_path for v in val_pairs) else width
    return int(round(width * (1 - val_fraction)))


LABEL_STRIPE = 512  # px: a FLAIR patch's width


def keep_label_stripes(label: np.ndarray, split_col: int, fraction: float) -> np.ndarray:
    """A copy of ``label`` ``(H, W)`` whose training columns (left of ``split_col``) keep their labels
    only in evenly spread stripes of ``LABEL_STRIPE`` px making up ``fraction`` of them; the rest become
    ``IGNORE`` (the image stays, as unlabelled context). Validation columns are unchanged. For a
    learning curve: accuracy against the labelled area."""
    out = label.copy()
    stripes = max(1, -(-split_col // LABEL_STRIPE))
    kept = {int(i / fraction) for i in range(max(1, round(stripes * fraction)))}  # evenly spread, the first always
    for stripe in range(stripes):
        if stripe not in kept:
            out[:, stripe * LABEL_STRIPE:min((stripe + 1) * LABEL_STRIPE, split_col)] = IGNORE
    return out


def _resize(image: np.ndarray, rows: int, cols: int, method: int) -> np.ndarray:
    """Resize an image ``(C, h, w)`` to ``(C, rows, cols)`` with the Pillow filter ``method`` (filters
    are scaled when shrinking, so they average); same dtype (integers rounded and clipped)."""
    from PIL import Image

    if image.dtype == np.uint8 and image.shape[0] == 3:
        rgb = Image.fromarray(np.ascontiguousarray(image.transpose(1, 2, 0)), "RGB")
        return np.asarray(rgb.resize((cols, rows), method)).transpose(2, 0, 1)
    if image.dtype == np.uint8:
        return np.stack([np.asarray(Image.fromarray(np.ascontiguousarray(b), "L").resize((cols, rows), method))
                         for b in image])
    img = np.stack([np.asarray(Image.fromarray(b.astype(np.float32), "F").resize((cols, rows), method)) for b in image])
    if np.issubdtype(image.dtype, np.integer):
        info = np.iinfo(image.dtype)
        img = np.clip(np.round(img), info.min, info.max)
    return img.astype(image.dtype)


def resample_crop(image: np.ndarray, label: np.ndarray, size: int | tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Resize a crop ``(C, h, w)`` / ``(h, w)`` to ``size`` (``s`` for ``s`` × ``s``, or ``(rows, cols)``):
    bilinear for the image (Pillow's, antialiased when shrinking, like an area average; same dtype),
    nearest for the label (so classes stay classes; source pixel ``floor(i × h / rows)``)."""
    from PIL import Image

    rows, cols = (size, size) if isinstance(size, int) else tuple(size)
    img = _resize(image, rows, cols, Image.BILINEAR)
    r = np.minimum((np.arange(rows) * (label.shape[0] / rows)).astype(np.int64), label.shape[0] - 1)
    c = np.minimum((np.arange(cols) * (label.shape[1] / cols)).astype(np.int64), label.shape[1] - 1)
    return np.ascontiguousarray(img, dtype=image.dtype), label[np.ix_(r, c)]


def degrade(images: np.ndarray, config: TrainConfig, rng: np.random.Generator) -> np.ndarray:
    """Imagery coarser than the model's GSD, as the engine gives it to the model: with ``config.degrade``
    ``(lo, hi)``, a fraction ``degrade_fraction`` of the crops of ``images`` ``(B, C, s, s)`` (raw dtype)
    is box-averaged down by ``f`` (log-uniform in [lo, hi]) and brought back to ``s`` px with bicubic
    interpolation — the GDAL average + cubic of the engine's resampling (``engine.resample``) for an
    input ``f``× coarser than the model's GSD. Object sizes and labels are unchanged; only detail is
    lost. Returns a new array (the others' crops copied)."""
    from PIL import Image

    if not config.degrade:
        return images
    out = images.copy()
    lo, hi = config.degrade
    s_rows, s_cols = images.shape[2:]
    for i in range(len(images)):
        if rng.random() >= config.degrade_fraction:
            continue
        f = float(np.exp(rng.uniform(np.log(lo), np.log(hi))))
        small = _resize(images[i], max(1, round(s_rows / f)), max(1, round(s_cols / f)), Image.BOX)
        out[i] = _resize(small, s_rows, s_cols, Image.BICUBIC)
    return out


def scale_factor(config: TrainConfig, rng: np.random.Generator) -> float:
    """A crop's ground extent relative to its size: log-uniform in ``config.scale_jitter`` (1 without),
    for a fraction ``config.scale_jitter_fraction`` of the crops (the others 1)."""
    if not config.scale_jitter:
        return 1.0
    if config.scale_jitter_fraction < 1 and rng.random() >= config.scale_jitter_fraction:
        return 1.0
    lo, hi = config.scale_jitter
    return float(np.exp(rng.uniform(np.log(lo), np.log(hi))))


def sample_batch(pairs: list[Pair], config: TrainConfig, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A training batch of random crops from the train blocks: images ``(B, C, s, s)`` in the raw
    dtype, labels ``(B, s, s)`` uint8; each crop has at least ``config.min_labelled`` labelled pixels
    and gets a random flip and 90° rotation. With ``config.scale_jitter`` ``(lo, hi)``, a crop of
    ``s × f`` px (``f`` log-uniform in [lo, hi]) is resampled to ``s`` (``resample_crop``).
    Raises ``LandcoverError`` when no crop qualifies. (The sampler of configs without ``crop_sizes``,
    ``class_balance`` or ``consistency``; ``CropSampler`` has those.)"""
    s, min_labelled = config.crop, config.min_labelled
    widths = np.array([max(p.split_col - s, 0) * (p.image.shape[1] - s) for p in pairs], float)
    if widths.sum() == 0:
        raise LandcoverError(f"no training area of at least {s}×{s} px left after the validation split")
    images: list[NDArray[Any]] = []  # raw dtype
    labels: list[NDArray[np.uint8]] = []
    tries = 0
    while len(images) < config.batch_size:
        tries += 1
        if tries > 200 * config.batch_size:
            raise LandcoverError(f"no {s}×{s} px training crop has {min_labelled:.0%} labelled pixels: the labels are "
                                 "too sparse; lower 'min_labelled' or 'crop' in the training config")
        p = pairs[rng.choice(len(pairs), p=widths / widths.sum())]
        size = s
        if config.scale_jitter:
            size = int(round(s * scale_factor(config, rng)))
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


@dataclass
class Batch:
    """A training batch: ``images`` ``(B, C, s, s)`` raw dtype, ``labels`` ``(B, s, s)`` uint8, each
    crop's augmentation ``augs[i] = (k, flip)`` (``np.rot90(·, k)`` then a left-right flip when
    ``flip``), and for the shift-consistency loss ``pairs``: ``(a, b, (ya, xa), (yb, xb))``, two crops
    cut from one region at those offsets (px, in the region before augmentation)."""

    images: np.ndarray
    labels: np.ndarray
    augs: list[tuple[int, bool]]
    pairs: list[tuple[int, int, tuple[int, int], tuple[int, int]]]


def uses_crop_sampler(config: TrainConfig) -> bool:
    """Whether ``config`` needs ``CropSampler`` (otherwise ``sample_batch`` gives the same crops as before)."""
    return bool(config.crop_sizes or config.class_balance or config.consistency)


class CropSampler:
    """Training crops with random sizes (``crop_sizes``), scale jitter, class-balanced placement and
    shift-consistency pairs.

    Per batch a crop size ``s`` is drawn from ``crop_sizes`` (default ``[crop]``) and the batch holds
    ``round(batch_size × crop² / s²)`` crops (about the same pixels per step). A crop covers ``s × f``
    px of the image (``f`` log-uniform in ``scale_jitter``) resampled to ``s`` (``resample_crop``);
    with probability ``class_balance`` it is placed on a random pixel of a class drawn uniformly among
    the classes of the training blocks (at a random position inside the crop), else uniformly. With
    ``consistency`` > 0 crops come in pairs cut from one region of ``(s + |dy|) × (s + |dx|)`` px,
    the second shifted by ``(dy, dx)``, each uniform in ``[-s/2, s/2]`` px: the two see their overlap
    with different context and a different alignment to the network's stride-32 grid. Every crop
    gets its own random 90° rotation and flip.
    """

    def __init__(self, pairs: list[Pair], config: TrainConfig, index_stride: int = 8):
        self.pairs, self.config = pairs, config
        self.area = np.array([p.split_col * p.image.shape[1] for p in pairs], float)
        if self.area.sum() == 0:
            raise LandcoverError("no training area left after the validation split")
        self.by_class: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        if config.class_balance:
            found: dict[int, list[tuple[np.ndarray, np.ndarray, np.ndarray]]] = {}
            for i, p in enumerate(pairs):
                grid = p.label[::index_stride, :p.split_col:index_stride]
                for c in np.unique(grid):
                    if c == IGNORE:
                        continue
                    ys, xs = np.nonzero(grid == c)
                    found.setdefault(int(c), []).append((np.full(len(ys), i, np.int32), ys.astype(np.int32) * index_stride,
                                                          xs.astype(np.int32) * index_stride))
            for c in sorted(found):
                index, ys, xs = (np.concatenate(parts) for parts in zip(*found[c]))
                self.by_class.append((index, ys, xs))

    def _region(self, rng: np.random.Generator, rows: int, cols: int) -> tuple[np.ndarray, np.ndarray] | None:
        """An image/label region resampled to ``rows`` × ``cols`` px, or ``None`` when too little is labelled."""
        f = scale_factor(self.config, rng)
        if self.by_class and rng.random() < self.config.class_balance:
            pick = self.by_class[rng.integers(len(self.by_class))]
            j = rng.integers(len(pick[0]))
            p = self.pairs[pick[0][j]]
            h, w = min(int(round(rows * f)), p.image.shape[1]), min(int(round(cols * f)), p.split_col)
            r = int(np.clip(pick[1][j] - rng.integers(h), 0, p.image.shape[1] - h))
            c = int(np.clip(pick[2][j] - rng.integers(w), 0, p.split_col - w))
        else:
            p = self.pairs[rng.choice(len(self.pairs), p=self.area / self.area.sum())]
            h, w = min(int(round(rows * f)), p.image.shape[1]), min(int(round(cols * f)), p.split_col)
            r = int(rng.integers(0, p.image.shape[1] - h + 1))
            c = int(rng.integers(0, p.split_col - w + 1))
        lab = p.label[r:r + h, c:c + w]
        if (lab != IGNORE).mean() < self.config.min_labelled:
            return None
        img = p.image[:, r:r + h, c:c + w]
        if (h, w) != (rows, cols):
            img, lab = resample_crop(img, lab, (rows, cols))
        return img, lab

    @staticmethod
    def _augment(img: np.ndarray, lab: np.ndarray, rng: np.random.Generator):
        k, flip = int(rng.integers(4)), bool(rng.random() < 0.5)
        img, lab = np.rot90(img, k, (1, 2)), np.rot90(lab, k)
        if flip:
            img, lab = img[:, :, ::-1], lab[:, ::-1]
        return img, lab, (k, flip)

    def batch(self, rng: np.random.Generator) -> Batch:
        """A batch (see the class docstring). Raises ``LandcoverError`` when no crop qualifies."""
        config = self.config
        s = int(rng.choice(config.crop_sizes)) if config.crop_sizes else config.crop
        n = max(2, int(round(config.batch_size * config.crop ** 2 / s ** 2)))
        paired = config.consistency > 0
        n += n % 2 if paired else 0
        images: list[NDArray[Any]] = []  # raw dtype
        labels: list[NDArray[np.uint8]] = []
        augs: list[tuple[int, bool]] = []
        pairs: list[tuple[int, int, tuple[int, int], tuple[int, int]]] = []
        tries = 0
        while len(images) < n:
            tries += 1
            if tries > 200 * n:
                raise LandcoverError(f"no {s}×{s} px training crop has {config.min_labelled:.0%} labelled pixels: the "
                                     "labels are too sparse; lower 'min_labelled' or 'crop' in the training config")
            if paired:
                dy, dx = (int(v) for v in rng.integers(-(s // 2), s // 2 + 1, 2))
                region = self._region(rng, s + abs(dy), s + abs(dx))
                if region is None:
                    continue
                ya, xa = max(0, -dy), max(0, -dx)
                offsets = ((ya, xa), (ya + dy, xa + dx))
                pairs.append((len(images), len(images) + 1, *offsets))
                for y, x in offsets:
                    img, lab, aug = self._augment(region[0][:, y:y + s, x:x + s], region[1][y:y + s, x:x + s], rng)
                    images.append(img)
                    labels.append(lab)
                    augs.append(aug)
            else:
                region = self._region(rng, s, s)
                if region is None:
                    continue
                img, lab, aug = self._augment(*region, rng)
                images.append(img)
                labels.append(lab)
                augs.append(aug)
        return Batch(np.stack(images), np.stack(labels), augs, pairs)


def photometric(x: np.ndarray, config: TrainConfig, rng: np.random.Generator) -> np.ndarray:
    """Colour and haze jitter of images ``(B, C, H, W)`` float32 scaled to [0, 1] (``value_range``).

    ``color_jitter`` ``s``: contrast × U(1−s, 1+s) about the image mean, saturation × U(1−s, 1+s)
    (3+ bands), brightness × U(1−s, 1+s) times a per-band gain U(1−s/2, 1+s/2), then gamma
    exp(U(−s, s)). ``haze`` ``h``: half the images are blended towards a bright, slightly blue
    airlight (grey for other than 3 bands) with opacity U(0, h), as thin haze or a bright, flat
    exposure looks. Negative values are clipped to 0."""
    b, c = x.shape[:2]
    s = config.color_jitter
    if s:
        mean = x.mean(axis=(1, 2, 3), keepdims=True)
        x = (x - mean) * rng.uniform(1 - s, 1 + s, (b, 1, 1, 1)).astype(np.float32) + mean
        if c >= 3:
            grey = x[:, :3].mean(axis=1, keepdims=True)
            x[:, :3] = grey + (x[:, :3] - grey) * rng.uniform(1 - s, 1 + s, (b, 1, 1, 1)).astype(np.float32)
        gain = rng.uniform(1 - s, 1 + s, (b, 1, 1, 1)) * rng.uniform(1 - s / 2, 1 + s / 2, (b, c, 1, 1))
        x = np.clip(x * gain.astype(np.float32), 0, None) ** np.exp(rng.uniform(-s, s, (b, 1, 1, 1))).astype(np.float32)
    if config.haze:
        alpha = rng.uniform(0, config.haze, (b, 1, 1, 1)) * (rng.random((b, 1, 1, 1)) < 0.5)
        tint = np.array([0.95, 1.0, 1.05] + [1.0] * (c - 3), np.float32)[:, None, None] if c == 3 else np.ones((c, 1, 1))
        light = rng.uniform(0.7, 1.0, (b, 1, 1, 1)) * tint[None]
        x = x * (1 - alpha).astype(np.float32) + (alpha * light).astype(np.float32)
    return np.clip(x, 0, None).astype(np.float32)
