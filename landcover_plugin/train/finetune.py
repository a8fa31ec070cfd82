"""Fine-tune an existing model on a user's own labels over one image, in minutes: ``landcover finetune``.

The model's network is recovered from its ONNX file (``weights.recover``) and trained on the user's
labels only — polygons (any CRS; a field holding class names or values of the model's classes) or a
label raster of class values — at the model's GSD (the image is resampled as ``classify`` does), so
the adapted model sees what it will classify. Everything unlabelled is ignored by the label loss.

What keeps the original model's knowledge (measured in docs/finetune.md):

- only the decoder, the head and the encoder's last stages train (``train_layers`` "late": the stride
  16 and 32 blocks); the early, high-resolution encoder stages and every BatchNorm's statistics stay
  as they were (BatchNorm runs in inference mode throughout);
- distillation (``distill`` weight) of what the user did not correct: on the unlabelled valid pixels of
  the same crops where the original network predicts, with a confidence of at least
  ``distill_confidence``, a class the user drew no area of, the adapted network's class distribution
  is pulled towards the original's (KL divergence), so those classes are not forgotten; where it
  predicts a drawn class, or is unsure, the user's labels decide (``distill_classes`` "all" distils
  every unlabelled pixel instead);
- a small number of steps under a time budget with AdamW, warm-up and cosine decay of the learning
  rate over the budget (the schedule follows the elapsed time, so it completes whatever the load).

Crops (``crop`` px, a batch of ``batch_size``) are centred near a labelled pixel of a class chosen
uniformly (rare classes are seen as often as common ones), flipped and rotated by multiples of 90°,
with brightness/contrast jitter; the cross-entropy is class-weighted (median frequency, softened).

Held-back accuracy: the labels are cut into connected areas (GDAL's polygonize, 8-connected, per
class); when a class has at least ``1 / holdout`` areas, a ``holdout`` share of them (whole areas,
chosen at random with the seed) is held back from training and scored at the end, with the original
and with the adapted model. The report says how many areas and pixels were held back.
"""
from __future__ import annotations

import copy
import json
import math
import platform
import time
import warnings
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
from osgeo import gdal, ogr

from ..engine.grid import Grid
from ..engine.reader import gdal_errors, grid_of, on_grid, open_raster, open_source, transform_bounds
from ..engine.resample import parse_gsd_option, plan_resolution
from ..engine.windows import PixelWindow
from ..errors import LandcoverError
from ..feedback import Feedback, RecordingFeedback
from ..metrics import confusion_matrix, scores
from ..outputs import AtomicOutputs, check_output_path
from ..polygons import VECTOR_SUFFIXES, burn_polygons

IGNORE = 255
DEFAULT_MINUTES = 3.0
MIN_LABELLED_PX = 1000  # at the model's GSD
MIN_HELD_PX = 200
CELL = 256  # labelled pixels are read in cells of this size, each with a margin of half a crop
MAX_CELLS = 600  # about 470 MB of 3-band uint8 at most; beyond, cells are sampled
TRAIN_LAYERS = ("all", "late", "head", "none")
DEFAULT_FIELD = "class"


@dataclass
class FinetuneParams:
    """A fine-tuning run. ``model``: a bundled model's name or an ONNX path (``None``: the default);
    ``label_field``: the polygons' field with class names or values (default ``class``); ``minutes``
    or ``steps`` the budget (``steps`` wins; neither: ``DEFAULT_MINUTES``); ``holdout``: the share of
    labelled areas held back for the accuracy report (0: none); ``gsd``: as ``classify`` (``auto``,
    ``off`` or the image's true GSD in m). The rest are the regularisation's settings (module
    docstring) and the crops."""

    image: str | Path
    labels: str | Path
    output: str | Path
    model: str | Path | None = None
    label_field: str | None = None
    minutes: float | None = None
    steps: int | None = None
    seed: int = 0
    holdout: float = 0.2
    device: str = "auto"
    gsd: str | float = "auto"
    bands: tuple[int, ...] | None = None
    probe: bool = True
    train_layers: str = "late"
    distill: float = 1.0
    distill_classes: str = "undrawn"
    distill_confidence: float = 0.6
    lr: float = 5e-4
    batch_size: int = 8
    crop: int = 256
    threads: int | None = None
    command: str = ""


@dataclass
class HeldOut:
    """The held-back labels' scores: ``split`` in words, pixels per class, and the original's and the
    adapted model's overall accuracy, mIoU (over classes held back) and per-class accuracy (recall)."""

    split: str
    pixels: dict[str, int]
    before: dict
    after: dict


@dataclass
class FinetuneResult:
    """What a run did (``summary()`` for people)."""

    output: str
    base_model: str
    base_path: str
    labels: str
    image: str
    network: str
    steps: int
    train_seconds: float
    seconds: float
    device: str
    train_pixels: dict[str, int]
    train_areas: dict[str, int]
    heldout: HeldOut | None
    holdout_note: str
    resolution_note: str
    settings: dict = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    @classmethod
    def from_dict(cls, data: dict) -> FinetuneResult:
        """The result from ``dataclasses.asdict`` of one (``finetune_worker``'s JSON)."""
        data = dict(data)
        if data.get("heldout") is not None:
            data["heldout"] = HeldOut(**data["heldout"])
        return cls(**data)

    def summary(self) -> str:
        """The report in words: the model, what was trained and how long, labels per class, held-back scores."""
        probe = self.settings.get("probe", "no")
        what = (f"{probe}, then " if probe != "no" else "") + (
            f"{self.steps} steps of the {self.settings.get('train_layers')} layers" if self.steps else "no further steps")
        lines = [f"Adapted model: {self.output} (from {self.base_model}, {self.network})",
                 f"Training: {what}; {self.train_seconds / 60:.1f} min of training ({self.seconds / 60:.1f} min in all) "
                 f"on {self.device}; {self.resolution_note}",
                 "Training pixels per class: " + ", ".join(f"{k} {v:,} ({self.train_areas.get(k, 0)} areas)"
                                                         for k, v in self.train_pixels.items() if v)]
        if self.heldout is None:
            lines.append(f"No held-back accuracy: {self.holdout_note}")
        else:
            h = self.heldout
            lines.append(f"Held back: {h.split}")
            lines.append(f"Accuracy on the held-back labels: {h.before['overall_accuracy']:.3f} → {h.after['overall_accuracy']:.3f}"
                         + (f", mIoU {h.before['miou']:.3f} → {h.after['miou']:.3f}" if len(h.pixels) > 1 else "")
                         + " (original → adapted)")
            lines.append("  per class (share of the class's held-back pixels predicted as it): " + ", ".join(
                f"{k} {h.before['accuracy'][k]:.2f} → {h.after['accuracy'][k]:.2f}" for k in h.pixels))
        lines += [f"Warning: {w}" for w in self.warnings]
        return "\n".join(lines)


# --------------------------------------------------------------------------------------------- labels

def class_lookup(meta) -> dict[str, int]:
    """Polygon field text → class index: the class's value, or its name (any case)."""
    table = {str(v): i for i, v in enumerate(meta.class_values)}
    table.update({n.strip().lower(): i for i, n in enumerate(meta.class_names)})
    return table


def _classes_text(meta) -> str:
    return ", ".join(f"{v} {n}" for v, n in zip(meta.class_values, meta.class_names))


def label_window(labels: Path, grid: Grid, image_name: str) -> PixelWindow:
    """The window of ``grid`` that the labels' extent covers (the whole grid when it cannot be known).
    Raises ``LandcoverError`` when the labels lie outside the image."""
    bounds: tuple[float, ...] | None = None
    crs = None
    if labels.suffix.lower() in VECTOR_SUFFIXES:
        with gdal_errors():
            source = ogr.Open(str(labels))
        if source is None:
            raise LandcoverError(f"labels {labels} cannot be read as a vector file (GeoPackage, Shapefile, GeoJSON…)")
        layer = source.GetLayer(0)
        if layer.GetFeatureCount() == 0:
            raise LandcoverError(f"labels {labels} hold no polygon: draw some areas first")
        xmin, xmax, ymin, ymax = layer.GetExtent()
        srs = layer.GetSpatialRef()
        bounds, crs = (xmin, ymin, xmax, ymax), srs.ExportToWkt() if srs is not None else None
        source = None
    else:
        ds = open_raster(labels, "labels")
        g = grid_of(ds)
        if g.geotransform is not None:
            bounds, crs = g.bounds(), g.crs_wkt
    if bounds is None or grid.geotransform is None:
        return PixelWindow(0, 0, grid.width, grid.height)
    if crs and grid.crs_wkt:
        bounds = transform_bounds((bounds[0], bounds[1], bounds[2], bounds[3]), crs, grid.crs_wkt)
    cols, rows = zip(*(grid.to_pixel(x, y) for x in (bounds[0], bounds[2]) for y in (bounds[1], bounds[3])))
    c0, c1 = max(0, math.floor(min(cols)) - 1), min(grid.width, math.ceil(max(cols)) + 1)
    r0, r1 = max(0, math.floor(min(rows)) - 1), min(grid.height, math.ceil(max(rows)) + 1)
    if c0 >= c1 or r0 >= r1:
        raise LandcoverError(f"the labels {labels.name} lie outside the image {image_name}: draw them on the image "
                             "(check that both are in the right place and CRS)")
    return PixelWindow(c0, r0, c1 - c0, r1 - r0)


def read_labels(labels: Path, grid: Grid, image_name: str, meta, field_name: str | None) -> np.ndarray:
    """Class indices ``(H, W)`` uint8 on ``grid`` (``IGNORE`` where unlabelled). Polygons: ``field_name``
    holds a class name or value of the model; a raster: class values of the model, with its nodata, 0
    and 255 (when they are not classes) meaning unlabelled; warped with nearest onto ``grid``. Raises
    ``LandcoverError`` for unknown classes, unreadable labels or labels off the image."""
    if labels.suffix.lower() in VECTOR_SUFFIXES:
        table = class_lookup(meta)
        return burn_polygons(grid, image_name, labels, field_name or DEFAULT_FIELD,
                             lambda text: table.get(text) if text in table else table.get(text.strip().lower()), IGNORE,
                             f"use the names or values of the model's classes ({_classes_text(meta)})")
    ds = open_raster(labels, "labels")
    band = ds.GetRasterBand(1)
    nodata = band.GetNoDataValue()
    view = on_grid(ds, grid, str(labels), f"image {image_name}", "label")
    data = view.GetRasterBand(1).ReadAsArray()
    if data is None:
        raise LandcoverError(f"cannot read the labels {labels}: the file is damaged")
    lut = np.full(65536, -1, np.int32)
    for i, v in enumerate(meta.class_values):
        if 0 <= v < 65536:
            lut[v] = i
    values = np.unique(data)
    unlabelled = {int(nodata)} if nodata is not None and float(nodata).is_integer() else set()
    unlabelled |= {v for v in (0, 255) if v not in meta.class_values}
    if values.dtype.kind == "f" or values.min() < 0 or values.max() >= 65536:
        raise LandcoverError(f"the label raster {labels.name} must hold whole class values ({_classes_text(meta)})")
    unknown = [int(v) for v in values if lut[int(v)] < 0 and int(v) not in unlabelled]
    if unknown:
        raise LandcoverError(f"the label raster {labels.name} has values {unknown[:8]} that are not classes of the model "
                             f"({_classes_text(meta)}; 0, 255 and nodata mean unlabelled): recode them")
    out = np.where(lut[data.astype(np.int64)] >= 0, lut[data.astype(np.int64)], IGNORE).astype(np.uint8)
    ds = None
    return out


def label_areas(label: np.ndarray) -> tuple[np.ndarray, list[int]]:
    """Connected labelled areas (8-connected, one class each): an ``(H, W)`` int32 array of area ids
    (0 where unlabelled) and each area's class (``areas[i - 1]`` is area ``i``'s)."""
    h, w = label.shape
    src = gdal.GetDriverByName("MEM").Create("", w, h, 1, gdal.GDT_Byte)
    src.GetRasterBand(1).WriteArray(label)
    mask = gdal.GetDriverByName("MEM").Create("", w, h, 1, gdal.GDT_Byte)
    mask.GetRasterBand(1).WriteArray((label != IGNORE).astype(np.uint8))
    store = ogr.GetDriverByName("Memory").CreateDataSource("")  # referenced while the layer is used
    layer = store.CreateLayer("areas")
    layer.CreateField(ogr.FieldDefn("cls", ogr.OFTInteger))
    layer.CreateField(ogr.FieldDefn("id", ogr.OFTInteger))
    with gdal_errors():
        gdal.Polygonize(src.GetRasterBand(1), mask.GetRasterBand(1), layer, 0, ["8CONNECTED=8"])
    classes = []
    for i, feature in enumerate(layer, start=1):
        feature.SetField("id", i)
        layer.SetFeature(feature)
        classes.append(int(feature.GetField("cls")))
    ids = gdal.GetDriverByName("MEM").Create("", w, h, 1, gdal.GDT_Int32)
    with gdal_errors():  # no CRS on either side: "assuming matching coordinate systems" is right
        gdal.RasterizeLayer(ids, [1], layer, options=["ATTRIBUTE=id"])
    out = ids.GetRasterBand(1).ReadAsArray().astype(np.int32)
    del layer, store, ids, src, mask
    return out, classes


def split_areas(areas: list[int], k: int, holdout: float, rng: np.random.Generator) -> set[int]:
    """Area ids (1-based) held back: for each class with at least ``1 / holdout`` areas, ``floor(n ·
    holdout)`` of them at random."""
    held: set[int] = set()
    if holdout <= 0:
        return held
    for c in range(k):
        ids = [i + 1 for i, cls in enumerate(areas) if cls == c]
        n = int(len(ids) * holdout + 1e-9)
        if n >= 1:
            held.update(int(i) for i in rng.choice(ids, n, replace=False))
    return held


# ----------------------------------------------------------------------------------------- the data

@dataclass
class Cell:
    """A labelled cell's surroundings: raw image ``(C, h, w)``, training labels ``(h, w)`` (``IGNORE`` where
    unlabelled or held back), held-back labels, validity, and the cell's core ``(r0, r1, c0, c1)`` in
    the array (each labelled pixel lies in exactly one core)."""

    image: np.ndarray
    train: np.ndarray
    held: np.ndarray
    valid: np.ndarray
    core: tuple[int, int, int, int]


def read_cells(work, window: PixelWindow, label: np.ndarray, held_mask: np.ndarray, margin: int, fill: float,
               rng: np.random.Generator, feedback: Feedback) -> list[Cell]:
    """The image around every ``CELL``-px cell of ``window`` holding a labelled pixel, ``margin`` px on each
    side (shifted inwards at the image's edges so a cell is at least a crop when the image is)."""
    cells = []
    labelled = label != IGNORE
    for r in range(0, window.height, CELL):
        for c in range(0, window.width, CELL):
            if labelled[r:r + CELL, c:c + CELL].any():
                cells.append((r, c))
    if len(cells) > MAX_CELLS:
        feedback.warning(f"the labels spread over {len(cells)} cells of {CELL} px: training reads {MAX_CELLS} of them, "
                         "chosen at random")
        cells = [cells[i] for i in sorted(rng.choice(len(cells), MAX_CELLS, replace=False))]
    out = []
    for r, c in cells:
        feedback.check_cancelled()
        gr, gc = window.row + r, window.col + c
        h, w = min(CELL, window.height - r), min(CELL, window.width - c)
        side = CELL + 2 * margin
        r0 = min(max(0, gr - margin), max(0, work.height - side))
        c0 = min(max(0, gc - margin), max(0, work.width - side))
        r1, c1 = min(work.height, max(gr + h + margin, r0 + side)), min(work.width, max(gc + w + margin, c0 + side))
        values, valid = work.read(PixelWindow(c0, r0, c1 - c0, r1 - r0))
        values = np.where(valid[None], values, np.asarray(fill).astype(values.dtype))
        train = np.full(valid.shape, IGNORE, np.uint8)
        held = np.full(valid.shape, IGNORE, np.uint8)
        # labels of the whole read area (cores of other cells included) that lie inside the label window
        lr0, lc0 = max(r0, window.row), max(c0, window.col)
        lr1, lc1 = min(r1, window.row + window.height), min(c1, window.col + window.width)
        if lr1 > lr0 and lc1 > lc0:
            sub = label[lr0 - window.row:lr1 - window.row, lc0 - window.col:lc1 - window.col]
            hm = held_mask[lr0 - window.row:lr1 - window.row, lc0 - window.col:lc1 - window.col]
            dst = (slice(lr0 - r0, lr1 - r0), slice(lc0 - c0, lc1 - c0))
            train[dst] = np.where(hm, IGNORE, sub)
            held[dst] = np.where(hm, sub, IGNORE)
        train[~valid] = IGNORE
        held[~valid] = IGNORE
        out.append(Cell(values, train, held, valid, (gr - r0, gr - r0 + h, gc - c0, gc - c0 + w)))
    return out


class Sampler:
    """Random training crops: a class chosen uniformly among those with training pixels, a random pixel of
    it (in a cell's core), a crop of ``size`` px around it inside the cell's array, a random flip and
    rotation by a multiple of 90°."""

    def __init__(self, cells: list[Cell], k: int, size: int, rng: np.random.Generator, per_class: int = 50000):
        self.cells, self.size, self.rng = cells, size, rng
        anchors: list[list[np.ndarray]] = [[] for _ in range(k)]
        for i, cell in enumerate(cells):
            r0, r1, c0, c1 = cell.core
            core = cell.train[r0:r1, c0:c1]
            for c in np.unique(core[core != IGNORE]):
                rows, cols = np.nonzero(core == c)
                anchors[int(c)].append(np.stack([np.full_like(rows, i), rows + r0, cols + c0], 1))
        self.anchors = {}
        for c, parts in enumerate(anchors):
            if parts:
                a = np.concatenate(parts)
                if len(a) > per_class:
                    a = a[rng.choice(len(a), per_class, replace=False)]
                self.anchors[c] = a
        self.classes = sorted(self.anchors)

    def crop(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        c = self.classes[self.rng.integers(len(self.classes))]
        i, y, x = self.anchors[c][self.rng.integers(len(self.anchors[c]))]
        cell = self.cells[int(i)]
        h, w = cell.train.shape
        s = self.size
        r = int(self.rng.integers(max(0, y - s + 1), min(y, h - s) + 1)) if h > s else 0
        q = int(self.rng.integers(max(0, x - s + 1), min(x, w - s) + 1)) if w > s else 0
        img, lab, valid = cell.image[:, r:r + s, q:q + s], cell.train[r:r + s, q:q + s], cell.valid[r:r + s, q:q + s]
        if img.shape[1:] != (s, s):  # an image smaller than a crop: pad (labels ignored, not distilled)
            ph, pw = s - img.shape[1], s - img.shape[2]
            img = np.pad(img, ((0, 0), (0, ph), (0, pw)), mode="edge")
            lab = np.pad(lab, ((0, ph), (0, pw)), constant_values=IGNORE)
            valid = np.pad(valid, ((0, ph), (0, pw)), constant_values=False)
        k = int(self.rng.integers(4))
        img, lab, valid = np.rot90(img, k, (1, 2)), np.rot90(lab, k), np.rot90(valid, k)
        if self.rng.random() < 0.5:
            img, lab, valid = img[:, :, ::-1], lab[:, ::-1], valid[:, ::-1]
        return img, lab, valid

    def batch(self, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        crops = [self.crop() for _ in range(n)]
        images, labels, valid = (np.stack([np.ascontiguousarray(c[j]) for c in crops]) for j in range(3))
        return images, labels, valid


def class_weights(counts: np.ndarray) -> np.ndarray:
    """``(median_freq / freq_c) ** 0.5`` clipped to [0.2, 5] for present classes, 0 for absent ones."""
    weights = np.zeros(len(counts))
    present = counts > 0
    freq = counts / max(1, counts.sum())
    weights[present] = np.clip((np.median(freq[present]) / freq[present]) ** 0.5, 0.2, 5.0)
    return weights


# ------------------------------------------------------------------------------------------ training

def trainable(net, mode: str) -> list:
    """Set ``requires_grad`` for ``mode`` ("all", "late": decoder, head and the encoder's stride 16 and 32
    blocks, "head": decoder and head, "none") and return the trainable parameters."""
    encoder = getattr(net, "encoder", None)
    late_from = None
    if mode == "late" and encoder is not None and getattr(encoder, "taps", None):
        late_from = encoder.taps[-2] if len(encoder.taps) >= 2 else encoder.taps[-1]
    params = []
    for name, p in net.named_parameters():
        if mode == "none":
            p.requires_grad = False
        elif mode == "all" or not name.startswith("encoder."):
            p.requires_grad = True
        elif late_from is not None and name.startswith("encoder.blocks."):
            p.requires_grad = int(name.split(".")[2]) >= late_from
        else:
            p.requires_grad = False
        if p.requires_grad:
            params.append(p)
    return params


def lr_factor(progress: float, warmup: float = 0.05) -> float:
    """Learning-rate factor at ``progress`` (0–1) of the budget: linear warm-up, then cosine decay to 0."""
    if progress < warmup:
        return max(progress / warmup, 0.05)
    return 0.5 * (1 + math.cos(math.pi * min(1.0, (progress - warmup) / (1 - warmup))))


def predict_cells(net, rec, cells: list[Cell], torch) -> list[np.ndarray]:
    """The class index of every pixel of each cell's array, from ``net`` on the whole array (padded to a
    multiple of 32)."""
    preds = []
    with torch.no_grad():
        for cell in cells:
            _, h, w = cell.image.shape
            ph, pw = -(-h // 32) * 32, -(-w // 32) * 32
            img = np.pad(cell.image, ((0, 0), (0, ph - h), (0, pw - w)), mode="reflect" if min(h, w) > 1 else "edge")
            device = next(net.parameters()).device
            preds.append(net(rec.network_input(img[None]).to(device)).argmax(1)[0, :h, :w].cpu().numpy())
    return preds


def held_scores(cells: list[Cell], preds: list[np.ndarray], names: tuple[str, ...]) -> dict:
    """OA, mIoU over the held-back classes and per-class accuracy on the held-back pixels of the cores."""
    k = len(names)
    cm = np.zeros((k, k), np.int64)
    for cell, pred in zip(cells, preds):
        r0, r1, c0, c1 = cell.core
        ref = cell.held[r0:r1, c0:c1]
        cm += confusion_matrix(ref, pred[r0:r1, c0:c1], k) if (ref != IGNORE).any() else 0
    s = scores(cm)
    present = cm.sum(1) > 0
    iou = np.asarray(s["iou"])
    return {"overall_accuracy": s["overall_accuracy"], "miou": float(np.nanmean(np.where(present, iou, np.nan))),
            "accuracy": {names[c]: float(cm[c, c] / cm[c].sum()) for c in range(k) if present[c]},
            "confusion": cm.tolist()}


PROBE_MARGIN = 64  # px of context around a cell's core when its features are computed for the head fit
PROBE_UNLABELLED = 1500  # unlabelled pixels per cell whose original prediction the head fit keeps (distillation)


def head_of(net):
    """The network's last layer, a 1×1 convolution from features to class logits (``None`` when it has none)."""
    head = getattr(net, "head", None)
    torch_nn = __import__("torch").nn
    return head if isinstance(head, torch_nn.Conv2d) and head.kernel_size == (1, 1) else None


def probe_features(net, rec, cells: list[Cell], rng: np.random.Generator, feedback: Feedback, device):
    """The features the head sees (interpolated to full resolution, as the network upsamples the head's
    logits bilinearly, which commutes with the 1×1 head), at every training pixel of the cells' cores and
    at up to ``PROBE_UNLABELLED`` unlabelled valid pixels per core: ``(X (N, C), y (N,), XU (M, C))``."""
    import torch
    from torch.nn import functional as F

    head = head_of(net)
    captured: dict[str, Any] = {}
    hook = head.register_forward_pre_hook(lambda m, args: captured.__setitem__("x", args[0]))
    xs, ys, us = [], [], []
    try:
        with torch.no_grad():
            for cell in cells:
                feedback.check_cancelled()
                r0, r1, c0, c1 = cell.core
                _, h, w = cell.image.shape
                a0, b0 = max(0, r0 - PROBE_MARGIN), max(0, c0 - PROBE_MARGIN)
                a1, b1 = min(h, r1 + PROBE_MARGIN), min(w, c1 + PROBE_MARGIN)
                img = cell.image[:, a0:a1, b0:b1]
                ph, pw = -(-img.shape[1] // 32) * 32, -(-img.shape[2] // 32) * 32
                img = np.pad(img, ((0, 0), (0, ph - img.shape[1]), (0, pw - img.shape[2])),
                             mode="reflect" if min(img.shape[1:]) > 1 else "edge")
                net(rec.network_input(img[None]).to(device))
                feat = F.interpolate(captured["x"], size=(ph, pw), mode="bilinear", align_corners=False)[0]
                feat = feat[:, r0 - a0:r1 - a0, c0 - b0:c1 - b0].reshape(feat.shape[0], -1)
                lab = cell.train[r0:r1, c0:c1].ravel()
                labelled = np.flatnonzero(lab != IGNORE)
                xs.append(feat[:, torch.from_numpy(labelled).to(device)].T.cpu())
                ys.append(torch.from_numpy(lab[labelled].astype(np.int64)))
                free = np.flatnonzero((lab == IGNORE) & cell.valid[r0:r1, c0:c1].ravel() & (cell.held[r0:r1, c0:c1].ravel() == IGNORE))
                if len(free):
                    free = rng.choice(free, min(PROBE_UNLABELLED, len(free)), replace=False)
                    us.append(feat[:, torch.from_numpy(free).to(device)].T.cpu())
    finally:
        hook.remove()
    empty = torch.zeros(0, head.in_channels)
    return torch.cat(xs), torch.cat(ys), torch.cat(us) if us else empty


def fit_head(head, x, y, unlabelled, weights, distill: float, kept=None, confident: float = 0.0, l2: float = 1e-3,
             rounds: int = 4) -> float:
    """Fit the 1×1 head to features ``x`` and labels ``y`` (class-weighted cross-entropy, L-BFGS), keeping the
    original head's predictions on ``unlabelled`` features (KL, weight ``distill``; only where the original
    predicts one of the ``kept`` classes, a bool ``(K,)`` tensor, with a probability of at least
    ``confident``, when given) and its weights close (L2, ``l2``). Returns the training accuracy."""
    import torch
    from torch.nn import functional as F

    w0, b0 = head.weight.detach()[:, :, 0, 0].cpu().clone(), head.bias.detach().cpu().clone()
    with torch.no_grad():
        target = (unlabelled @ w0.T + b0).softmax(1)
        if kept is not None:
            best, cls = target.max(1)
            chosen = kept[cls] & (best >= confident)
            unlabelled, target = unlabelled[chosen], target[chosen]
    w, b = w0.clone().requires_grad_(True), b0.clone().requires_grad_(True)
    opt = torch.optim.LBFGS([w, b], lr=1, max_iter=100, history_size=20, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = F.cross_entropy(x @ w.T + b, y, weight=weights.cpu()) + l2 * ((w - w0) ** 2).sum()
        if distill > 0 and len(unlabelled):
            kl = (target * (target.clamp_min(1e-8).log() - (unlabelled @ w.T + b).log_softmax(1))).sum(1)
            loss = loss + distill * kl.mean()
        loss.backward()
        return loss

    for _ in range(rounds):
        opt.step(closure)
    with torch.no_grad():
        head.weight.copy_(w[:, :, None, None].to(head.weight.device))
        head.bias.copy_(b.to(head.bias.device))
        return float(((x @ w.T + b).argmax(1) == y).float().mean())


def finetune(params: FinetuneParams, feedback: Feedback | None = None) -> FinetuneResult:
    """Fine-tune ``params.model`` on ``params.labels`` over ``params.image`` and write the adapted model to
    ``params.output`` (ONNX, with a model card ``.md`` beside it); see the module docstring.

    Every parameter and output path is checked before any work; the outputs are written under temporary
    names and renamed when complete. ``feedback`` gets progress (the time left follows from it), notes,
    and is polled for cancellation before every step (``Cancelled``: nothing written). Raises
    ``LandcoverError`` in one line for bad inputs (labels off the image, classes the model lacks, too few
    labelled pixels, a model whose weights cannot be recovered); ``ImportError`` when PyTorch or onnx is
    missing."""
    started = time.perf_counter()
    fb = RecordingFeedback(feedback)
    image, labels = Path(params.image), Path(params.labels)
    for path, what in ((image, "image"), (labels, "labels")):
        if not path.exists():
            raise LandcoverError(f"{what} not found: {path}")
    card = Path(params.output).with_suffix(".md")
    output = check_output_path(params.output, "output model", (".onnx",), (image, labels), beside=(card,))
    if params.train_layers not in TRAIN_LAYERS:
        raise LandcoverError(f"train_layers must be one of {', '.join(TRAIN_LAYERS)}, got {params.train_layers!r}")
    if params.steps is not None and (not isinstance(params.steps, int) or params.steps < 1):
        raise LandcoverError(f"--steps must be a whole number of at least 1, got {params.steps!r}")
    if params.minutes is not None and not 0 < params.minutes < 24 * 60:
        raise LandcoverError(f"--minutes must be a positive number of minutes, got {params.minutes!r}")
    if not 0 <= params.holdout < 1:
        raise LandcoverError(f"holdout must be in [0, 1), got {params.holdout!r}")
    if params.crop < 64 or params.crop % 32:
        raise LandcoverError(f"crop must be a multiple of 32 px of at least 64, got {params.crop}")
    gsd = parse_gsd_option(params.gsd)
    budget_s = None if params.steps else 60.0 * (params.minutes or DEFAULT_MINUTES)

    import torch

    from ..model.adapter import sha256
    from ..model.registry import resolve_model
    from .weights import recover

    if params.threads:
        torch.set_num_threads(params.threads)
    if params.device not in ("auto", "cpu", "cuda"):
        raise LandcoverError(f"device must be auto, cpu or cuda, got {params.device!r}")
    if params.device == "cuda" and not torch.cuda.is_available():
        raise LandcoverError("device 'cuda' asked for, but PyTorch sees no CUDA GPU: use --device cpu")
    dev = torch.device("cuda" if params.device != "cpu" and torch.cuda.is_available() else "cpu")
    model_path = resolve_model(params.model)
    fb.info(f"Recovering the weights of {model_path.name}…")
    rec = recover(model_path)
    meta = rec.meta
    base_name = meta.name or model_path.stem
    names = meta.class_names
    k = meta.num_classes
    fb.progress(0.01)

    native = open_source(image, rec.num_bands, meta.input_bands, params.bands)
    work = native
    try:
        plan = plan_resolution(native.gsd_m, meta.gsd_m, gsd)
        if plan.resampled:
            work = native.rescaled(plan.factor)
        window = label_window(labels, work.grid, image.name)
        sub = work.grid.sub(window.col, window.row, window.width, window.height)
        label = read_labels(labels, sub, image.name, meta, params.label_field)
        counts = np.bincount(label[label != IGNORE].ravel(), minlength=k)[:k]
        total = int(counts.sum())
        gsd_text = f" at the model's {meta.gsd_m:g} m" if meta.gsd_m else ""
        if total < MIN_LABELLED_PX:
            raise LandcoverError(f"only {total} labelled pixels{gsd_text} on the image: fine-tuning needs at least "
                                 f"{MIN_LABELLED_PX}; draw more or larger areas")
        drawn = [names[c] for c in range(k) if counts[c]]
        if len(drawn) == 1:
            fb.warning(f"only one class is labelled ({drawn[0]}): the model learns where it is, not what else is there; "
                       "label other classes too")
        rng = np.random.default_rng(params.seed)
        torch.manual_seed(params.seed)
        ids, area_classes = label_areas(label)
        held_ids = split_areas(area_classes, k, params.holdout, rng)
        held_mask = np.isin(ids, list(held_ids)) if held_ids else np.zeros(label.shape, bool)
        held_px = {names[c]: int(((label == c) & held_mask).sum()) for c in range(k)}
        held_px = {n: v for n, v in held_px.items() if v}
        if params.holdout <= 0:
            holdout_note = "holdout is 0 (every label trains)"
        elif not held_ids or sum(held_px.values()) < MIN_HELD_PX:
            holdout_note = (f"too few separate areas to hold some back (a class needs at least {math.ceil(1 / params.holdout)} "
                            "separate areas); every label trains")
            held_ids, held_mask, held_px = set(), np.zeros(label.shape, bool), {}
        else:
            holdout_note = ""
        train_areas = {names[c]: sum(1 for i, cls in enumerate(area_classes) if cls == c and i + 1 not in held_ids)
                       for c in range(k)}
        train_counts = np.bincount(label[(label != IGNORE) & ~held_mask].ravel(), minlength=k)[:k]
        crop = params.crop
        if min(work.width, work.height) < crop:
            crop = max(64, min(work.width, work.height) // 32 * 32)
        fill = meta.nodata_fill if meta.nodata_fill is not None else meta.value_range[0]
        cells = read_cells(work, window, label, held_mask, crop // 2, fill, rng, fb)
    finally:
        if work is not native:
            work.close()
        native.close()
    fb.progress(0.03)

    net = rec.net.to(dev)
    if params.distill_classes not in ("undrawn", "all"):
        raise LandcoverError(f"distill_classes must be undrawn or all, got {params.distill_classes!r}")
    # distillation keeps the original's predictions of these classes (all, or those the user drew no area of)
    kept = torch.tensor([params.distill_classes == "all" or not train_counts[c] for c in range(k)], device=dev)
    distill = params.distill if bool(kept.any()) else 0.0
    teacher = copy.deepcopy(net).eval() if distill > 0 or held_ids else None
    if teacher is not None:
        for p in teacher.parameters():
            p.requires_grad = False
    net.eval()  # BatchNorm statistics stay the original's; no dropout
    trained = trainable(net, params.train_layers)
    opt = torch.optim.AdamW(trained, lr=params.lr, weight_decay=1e-4) if trained else None
    weights = torch.tensor(class_weights(train_counts), dtype=torch.float32, device=dev)
    sampler = Sampler(cells, k, crop, rng)
    fb.info(f"Fine-tuning {base_name} ({rec.spec.text()}, weights recovered from {rec.found_by}; max |difference| "
            f"{rec.max_diff:.1g}) on {int(train_counts.sum()):,} labelled px of {len(drawn)} class(es) "
            f"in {len(cells)} cells of {CELL} px{gsd_text}; "
            + (f"{params.steps} steps" if params.steps else f"{(budget_s or 0) / 60:g} min")
            + f" of {params.batch_size} crops of {crop} px")
    train_start = time.perf_counter()
    probe_note = ""
    if params.probe and head_of(net) is not None:
        fb.info("Fitting the last layer to the labels on the original features…")
        x_l, y_l, x_u = probe_features(net, rec, cells, rng, fb, dev)
        accuracy = fit_head(head_of(net), x_l, y_l, x_u, weights, distill, kept.cpu(), params.distill_confidence)
        probe_note = f"last layer fitted first on {len(x_l):,} labelled px (training accuracy {accuracy:.2f})"
        fb.info(f"The {probe_note}; {time.perf_counter() - train_start:.0f} s")
        del x_l, y_l, x_u
    stage2_start = time.perf_counter()
    budget2 = None if budget_s is None else max(0.0, budget_s - (stage2_start - train_start))
    fb.progress(0.03 + 0.9 * ((stage2_start - train_start) / budget_s if budget_s else 0.1))
    step, losses = 0, []
    told = False
    F = torch.nn.functional
    while opt is not None:
        elapsed = time.perf_counter() - stage2_start
        if params.steps:
            progress = step / params.steps
        else:
            progress = elapsed / budget2 if budget2 else 1.0
        if progress >= 1:
            break
        fb.check_cancelled()
        for group in opt.param_groups:
            group["lr"] = params.lr * lr_factor(progress)
        raw, lab, valid = sampler.batch(params.batch_size)
        x = rec.network_input(raw)
        x = (x * torch.empty(len(x), 1, 1, 1).uniform_(0.8, 1.2) + torch.empty(len(x), 1, 1, 1).uniform_(-0.2, 0.2)).to(dev)
        y = torch.from_numpy(lab.astype(np.int64)).to(dev)
        logits = net(x)
        loss = F.cross_entropy(logits, y, weight=weights, ignore_index=IGNORE)
        if distill > 0:
            with torch.no_grad():
                target = teacher(x).softmax(1)  # type: ignore[misc]
            best, cls = target.max(1)
            mask = torch.from_numpy(valid & (lab == IGNORE)).to(dev) & kept[cls] & (best >= params.distill_confidence)
            if mask.any():
                kl = (target * (target.clamp_min(1e-8).log() - logits.log_softmax(1))).sum(1)
                loss = loss + distill * (kl * mask).sum() / mask.sum()
        if not torch.isfinite(loss):
            raise LandcoverError(f"the loss became {loss.item()} at step {step + 1}: no model written; lower the learning rate")
        opt.zero_grad()
        loss.backward()
        opt.step()
        step += 1
        losses.append(loss.item())
        if params.steps:
            done = 0.1 + 0.9 * step / params.steps
        else:
            done = (time.perf_counter() - train_start) / budget_s  # type: ignore[operator]
        fb.progress(0.03 + 0.9 * min(1.0, done))
        if not told and step == 3 and budget2:
            per_step = (time.perf_counter() - stage2_start) / step
            fb.info(f"about {per_step:.1f} s per step: about {budget2 / per_step:.0f} steps in the {budget2 / 60:.1f} min left")
            told = True
    train_seconds = time.perf_counter() - train_start
    net.eval()
    heldout = None
    if held_ids:
        fb.info("Scoring the held-back labels…")
        scored = [c for c in cells if (c.held[c.core[0]:c.core[1], c.core[2]:c.core[3]] != IGNORE).any()]
        before = held_scores(scored, predict_cells(teacher, rec, scored, torch), names)
        after = held_scores(scored, predict_cells(net, rec, scored, torch), names)
        n_held = len(held_ids)
        heldout = HeldOut(f"{n_held} whole labelled area{'s' if n_held != 1 else ''} ({sum(held_px.values()):,} px: "
                          + ", ".join(f"{n} {v:,}" for n, v in held_px.items())
                          + f"), {params.holdout:.0%} of the areas of each class with at least {math.ceil(1 / params.holdout)}, "
                          f"chosen at random (seed {params.seed}); not used in training", held_px, before, after)
    fb.progress(0.95)
    device = (f"GPU ({torch.cuda.get_device_name(dev)})" if dev.type == "cuda" else
              f"CPU ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)")
    net = net.cpu()
    train_px = {names[c]: int(train_counts[c]) for c in range(k)}
    settings = {"probe": probe_note or "no", "train_layers": params.train_layers, "distill": distill,
                "distill_classes": params.distill_classes, "distill_confidence": params.distill_confidence, "lr": params.lr,
                "batch_size": params.batch_size, "crop": crop, "seed": params.seed, "holdout": params.holdout}
    result = FinetuneResult(str(output), base_name, str(model_path), str(labels), str(image), rec.spec.text(), step,
                            train_seconds, 0.0, device, train_px, train_areas, heldout, holdout_note, plan.note, settings)
    description = (f"{base_name} adapted to {image.name} with {int(train_counts.sum()):,} labelled pixels of "
                   f"{labels.name} (landcover finetune). {meta.description}").strip()
    extra = {"adapted_from": base_name, "adapted_from_sha256": sha256(model_path), "adapted_image": image.name,
             "adapted_labels": labels.name, "adapted_pixels": json.dumps(train_px)}
    export_meta = rec.export_metadata(name=output.stem, description=description)
    export_meta = replace(export_meta, extra={**export_meta.extra, **extra})
    with AtomicOutputs() as out:
        tmp = out.add(output)
        tmp_card = out.add(card)
        fb.info(f"Writing {output}…")
        export(net, export_meta, tmp, rec)
        result.seconds = time.perf_counter() - started
        tmp_card.write_text(model_card(result, meta, params, export_meta))
        fb.check_cancelled()
        out.commit()
    fb.progress(1.0)
    result.warnings = list(fb.warnings)
    return result


def export(net, meta, path: Path, rec) -> None:
    """Write ``net`` as ONNX (``train.export.export_onnx``) and check that the file gives the network's
    probabilities (max |difference| ≤ 1e-3 on a random batch). Raises ``LandcoverError`` otherwise."""
    import torch

    from ..model.adapter import OnnxModel
    from .export import export_onnx

    with warnings.catch_warnings():  # torch's notes on its exporters are not the user's business
        warnings.simplefilter("ignore")
        export_onnx(net, meta, path, rec.in_channels)
    model = OnnxModel(path, "cpu")
    low, high = model.meta.value_range
    raw = np.random.default_rng(1).uniform(low, high, (1, int(model.num_bands or 1), 64, 64)).astype(np.float32)
    with torch.no_grad():
        expected = net(rec.network_input(raw)).softmax(1).numpy()
    diff = float(np.abs(model.predict(raw) - expected).max())
    if diff > 1e-3:
        raise LandcoverError(f"the written model differs from the trained network by {diff:.3g}: nothing written")


def model_card(result: FinetuneResult, base_meta, params: FinetuneParams, meta) -> str:
    """A Markdown model card for the adapted model."""
    rows = "\n".join(f"| {v} | {n} | `{c}` | {result.train_pixels.get(n, 0):,} | {result.train_areas.get(n, 0)} |"
                     for v, n, c in zip(meta.class_values, meta.class_names, meta.class_colors))
    held = f"No held-back accuracy: {result.holdout_note}."
    if result.heldout is not None:
        h = result.heldout
        per = "\n".join(f"| {n} | {h.pixels[n]:,} | {h.before['accuracy'][n]:.3f} | {h.after['accuracy'][n]:.3f} |" for n in h.pixels)
        held = (f"Held back: {h.split}.\n\nOverall accuracy **{h.before['overall_accuracy']:.3f} → "
                f"{h.after['overall_accuracy']:.3f}**, mIoU {h.before['miou']:.3f} → {h.after['miou']:.3f} (original → adapted).\n\n"
                f"| class | held-back px | original | adapted |\n|---|---|---|---|\n{per}")
    s = result.settings
    probe = f"the {s['probe']}; then " if s["probe"] != "no" else ""
    return f"""# Model card: {meta.name}

Adapted from **{result.base_model}** (`{Path(result.base_path).name}`, SHA-256 `{meta.extra.get('adapted_from_sha256', '')}`,
{result.network}) to the image `{Path(result.image).name}` with the labels `{Path(result.labels).name}`
by `landcover finetune`. Classes, colours, input bands, value range, GSD and tiling are the original's.

- **Training** ({result.train_seconds / 60:.1f} min on {result.device}): {probe}{result.steps}
  steps of {s['batch_size']} crops of {s['crop']} px training the {s['train_layers']} layers (AdamW lr {s['lr']:g}, warm-up and
  cosine decay); distillation weight {s['distill']:g} (the original's predictions on unlabelled pixels, where it predicts
  {'any class' if s['distill_classes'] == 'all' else 'a class with no labelled area'} with a probability of at least
  {s.get('distill_confidence', 0):g}); seed {s['seed']}.
- **Resolution**: {result.resolution_note}.
- **Original model**: {base_meta.description}
- **Licence**: {meta.license or 'as the original'}. **Attribution**: {meta.attribution or 'none'}.

## Labels used for training

| value | class | colour | pixels | areas |
|---|---|---|---|---|
{rows}

## Held-back labels

{held}

Reproduce: `{params.command or 'landcover finetune'}`
"""
