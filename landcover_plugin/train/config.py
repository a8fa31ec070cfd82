"""Training configuration: a JSON file whose relative paths resolve against the file's folder."""
from __future__ import annotations

import json
from dataclasses import dataclass, field, fields
from pathlib import Path

from ..errors import LandcoverError

ARCHITECTURES = ("unet", "fpn")
ENCODERS = ("efficientnet-lite0", "efficientnet-lite1", "efficientnet-lite2")
LOSS_TERMS = ("ce", "dice", "focal")


@dataclass(frozen=True)
class ClassSpec:
    """One output class: its name, colour, the label-raster codes mapped to it, the value written, and
    (for colour-coded RGB masks) the mask colours mapped to it."""

    name: str
    color: str
    codes: tuple[int, ...]
    value: int
    mask_colors: tuple[tuple[int, int, int], ...] = ()


@dataclass(frozen=True)
class TrainConfig:
    """A training run. Units: ``gsd`` metres/pixel; ``crop``, ``tile_size``, ``overlap`` px."""

    name: str
    pairs: tuple[tuple[str, str], ...]
    classes: tuple[ClassSpec, ...]
    input_bands: tuple[str, ...] = ("red", "green", "blue")
    gsd: float | None = None
    value_range: tuple[float, float] = (0.0, 255.0)  # raw values mapped to [0, 1]: (0, 65535) or (0, 10000) for 16-bit
    tile_size: int = 512
    overlap: int = 128
    mean: tuple[float, ...] = (0.498, 0.498, 0.498)
    std: tuple[float, ...] = (0.502, 0.502, 0.502)
    val_fraction: float = 0.2
    val_pairs: tuple[str, ...] = ()  # pairs whose image path contains one of these are validation, the rest train
    ignore_colors: tuple[tuple[int, int, int], ...] = ()  # RGB mask colours that mean "no label"
    label_field: str | None = None  # polygon labels: the field holding a class code or name
    ignore_codes: tuple[int, ...] = ()  # polygon field values that mean "no label"
    min_labelled: float = 0.5  # a training crop needs at least this fraction of labelled pixels
    architecture: str = "unet"  # "unet" or "fpn" (see network.py)
    encoder: str = "efficientnet-lite0"  # or "efficientnet-lite1", "efficientnet-lite2" (ImageNet weights)
    antialias: bool = False  # blur-pooled (anti-aliased) stride-2 layers in the encoder (network.BlurPool)
    loss: dict = field(default_factory=lambda: {"ce": 1.0})  # weighted sum of "ce", "dice", "focal"
    class_weighting: str = "median_sqrt"  # "median_sqrt" (median-frequency, softened) or "none"
    label_smoothing: float = 0.0  # for the "ce" term
    focal_gamma: float = 2.0  # for the "focal" term
    scale_jitter: tuple[float, float] | None = None  # e.g. [0.5, 2]: ground extent of a crop × this (log-uniform)
    scale_jitter_fraction: float = 1.0  # the share of crops that get scale jitter (the others keep the GSD)
    crop_sizes: tuple[int, ...] = ()  # per batch, a crop size from these (px); batch size scaled to keep pixels
    color_jitter: float = 0.0  # per-band gain, brightness, contrast, gamma, saturation jitter of this strength
    haze: float = 0.0  # haze (blend towards a bright airlight) of up to this opacity, on half the crops
    class_balance: float = 0.0  # fraction of crops placed on a pixel of a class drawn uniformly
    consistency: float = 0.0  # weight of the shift-consistency loss (crops in pairs shifted by an odd offset)
    val_tile_size: int | None = None  # validation tiles (px, no overlap); default: tile_size
    schedule: str = "onecycle"  # "onecycle" or "cosine" (linear warm-up, then cosine decay)
    early_stop_patience: int = 0  # stop after this many evaluations without a better val mIoU (0 = off)
    device: str = "auto"  # "auto" (CUDA when torch sees a GPU), "cpu" or "cuda"; CUDA trains in mixed precision
    crop: int = 256
    batch_size: int = 8
    steps: int = 2000
    eval_every: int = 250
    lr: float = 1e-3
    weight_decay: float = 1e-4
    seed: int = 0
    version: str = "1.0"
    description: str = ""
    license: str = ""
    attribution: str = ""
    extra: dict = field(default_factory=dict)


def load_config(path: str | Path, **overrides) -> TrainConfig:
    """Read a training config JSON; ``overrides`` (non-None) replace its top-level keys.

    Raises ``LandcoverError`` for a missing file, bad JSON, an unknown key or a missing pair file.
    """
    path = Path(path)
    try:
        raw = json.loads(path.read_text())
    except FileNotFoundError:
        raise LandcoverError(f"training config not found: {path}") from None
    except json.JSONDecodeError as exc:
        raise LandcoverError(f"training config {path} is not valid JSON ({exc}): fix the file") from None
    raw.update({k: v for k, v in overrides.items() if v is not None})
    known = {f.name for f in fields(TrainConfig)} | {"pair_globs"}  # pair_globs expand into pairs
    unknown = set(raw) - known
    if unknown:
        raise LandcoverError(f"training config {path}: unknown keys {sorted(unknown)}; known keys are {sorted(known)}")
    base = path.parent
    pairs = []
    for image_glob, label_template in raw.pop("pair_globs", []):
        # ["images/*.jpg", "../masks/{stem}.png"]: each image, and its label relative to the image's folder
        for image in sorted(base.glob(image_glob)):
            pairs.append((str(image.resolve()), str((image.parent / label_template.format(stem=image.stem)).resolve())))
    for image, label in raw.get("pairs", []):
        pairs.append(tuple(str((base / p).resolve()) for p in (image, label)))
    if not pairs:
        raise LandcoverError(f"training config {path}: 'pairs' or 'pair_globs' must give [image, label] pairs")
    for pair in pairs:
        for p in pair:
            if not Path(p).exists():
                raise LandcoverError(f"training config {path}: file {p} does not exist")
    raw["pairs"] = tuple(pairs)
    raw["classes"] = tuple(ClassSpec(c["name"], c["color"], tuple(c.get("codes", ())), c.get("value", i),
                                     tuple(tuple(rgb) for rgb in c.get("mask_colors", ())))
                           for i, c in enumerate(raw.get("classes", [])))
    raw["ignore_colors"] = tuple(tuple(rgb) for rgb in raw.get("ignore_colors", ()))
    raw["ignore_codes"] = tuple(raw.get("ignore_codes", ()))
    if raw.get("scale_jitter") is not None:
        raw["scale_jitter"] = tuple(raw["scale_jitter"])
        if len(raw["scale_jitter"]) != 2 or not 0 < raw["scale_jitter"][0] <= raw["scale_jitter"][1]:
            raise LandcoverError(f"training config {path}: scale_jitter must be [low, high] with 0 < low <= high")
    if any(s % 32 or s < 32 for s in raw.get("crop_sizes", ())):
        raise LandcoverError(f"training config {path}: crop_sizes must be multiples of 32 px")
    choices = {"architecture": ARCHITECTURES, "schedule": ("onecycle", "cosine"),
               "class_weighting": ("median_sqrt", "none"), "device": ("auto", "cpu", "cuda"), "encoder": ENCODERS}
    for key, allowed in choices.items():
        if key in raw and raw[key] not in allowed:
            raise LandcoverError(f"training config {path}: {key} '{raw[key]}' is not one of {', '.join(allowed)}")
    bad_terms = set(raw.get("loss", {})) - set(LOSS_TERMS)
    if bad_terms:
        raise LandcoverError(f"training config {path}: unknown loss terms {sorted(bad_terms)}; use {', '.join(LOSS_TERMS)}")
    raw["val_pairs"] = tuple(raw.get("val_pairs", ()))
    if not raw["classes"]:
        raise LandcoverError(f"training config {path}: 'classes' must list the output classes")
    for key in ("input_bands", "mean", "std", "value_range", "crop_sizes"):
        if key in raw:
            raw[key] = tuple(raw[key])
    return TrainConfig(**raw)
