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
    label_fraction: float = 1.0  # share of each pair's training columns whose labels are used (512 px stripes, spread evenly)
    architecture: str = "unet"  # "unet" or "fpn" (see network.py)
    encoder: str = "efficientnet-lite0"  # or "efficientnet-lite1", "efficientnet-lite2" (ImageNet weights)
    antialias: bool = False  # blur-pooled (anti-aliased) stride-2 layers in the encoder (network.BlurPool)
    loss: dict = field(default_factory=lambda: {"ce": 1.0})  # weighted sum of "ce", "dice", "focal"
    class_weighting: str = "median_sqrt"  # "median_sqrt" (median-frequency, softened) or "none"
    label_smoothing: float = 0.0  # for the "ce" term
    focal_gamma: float = 2.0  # for the "focal" term
    scale_jitter: tuple[float, float] | None = None  # e.g. [0.5, 2]: ground extent of a crop × this (log-uniform)
    scale_jitter_fraction: float = 1.0  # the share of crops that get scale jitter (the others keep the GSD)
    degrade: tuple[float, float] | None = None  # e.g. [1, 2.5]: detail of a crop averaged down by this factor, then cubic back up
    degrade_fraction: float = 0.5  # the share of crops that get degraded (with ``degrade``)
    init_model: str | None = None  # start from this model's weights (an ONNX written by landcover train, or a run's .pt)
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


def _json_type(value) -> str:
    return {list: "list", dict: "object", str: "string", bool: "boolean", type(None): "null", int: "number",
            float: "number"}.get(type(value), type(value).__name__)


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and v == v and abs(v) != float("inf")


def _is_pair(v, item=lambda x: isinstance(x, str)) -> bool:
    return isinstance(v, (list, tuple)) and len(v) == 2 and all(item(x) for x in v)


def _is_rgb(v) -> bool:
    return isinstance(v, (list, tuple)) and len(v) == 3 and all(_is_int(x) and 0 <= x <= 255 for x in v)


def _list_of(test):
    return lambda v: isinstance(v, (list, tuple)) and all(test(x) for x in v)


# key: (test, what it must be) — checked before anything is read, so a bad value is one line, not a traceback
_TYPES = {
    "name": (lambda v: isinstance(v, str) and v.strip() != "", "a non-empty string"),
    "pairs": (_list_of(_is_pair), "a list of [image, label] path pairs"),
    "pair_globs": (_list_of(_is_pair), "a list of [image glob, label template] pairs"),
    "classes": (lambda v: isinstance(v, list) and bool(v), "a non-empty list of classes"),
    "input_bands": (lambda v: _list_of(lambda x: isinstance(x, str))(v) and len(v) > 0, "a non-empty list of band names"),
    "gsd": (lambda v: v is None or (_is_number(v) and v > 0), "a positive number of metres (or null)"),
    "value_range": (lambda v: _is_pair(v, _is_number) and v[1] > v[0], "[low, high] with high > low"),
    "tile_size": (lambda v: _is_int(v) and v >= 16, "an integer ≥ 16"),
    "overlap": (lambda v: _is_int(v) and v >= 0, "an integer ≥ 0"),
    "mean": (lambda v: _list_of(_is_number)(v) and len(v) > 0, "a list of numbers"),
    "std": (lambda v: _list_of(lambda x: _is_number(x) and x > 0)(v) and len(v) > 0, "a list of numbers > 0"),
    "val_fraction": (lambda v: _is_number(v) and 0 <= v < 1, "a number in [0, 1)"),
    "val_pairs": (_list_of(lambda x: isinstance(x, str)), "a list of strings"),
    "ignore_colors": (_list_of(_is_rgb), "a list of [r, g, b] colours"),
    "label_field": (lambda v: v is None or isinstance(v, str), "a field name (or null)"),
    "ignore_codes": (_list_of(lambda x: _is_int(x) or isinstance(x, str)), "a list of codes"),
    "min_labelled": (lambda v: _is_number(v) and 0 <= v <= 1, "a number in [0, 1]"),
    "label_fraction": (lambda v: _is_number(v) and 0 < v <= 1, "a number in (0, 1]"),
    "architecture": (lambda v: isinstance(v, str), "a string"),
    "loss": (lambda v: isinstance(v, dict) and bool(v) and all(_is_number(x) and x >= 0 for x in v.values()),
             'an object of term weights, e.g. {"ce": 1, "dice": 1}'),
    "class_weighting": (lambda v: isinstance(v, str), "a string"),
    "label_smoothing": (lambda v: _is_number(v) and 0 <= v < 1, "a number in [0, 1)"),
    "focal_gamma": (lambda v: _is_number(v) and v >= 0, "a number ≥ 0"),
    "scale_jitter": (lambda v: v is None or (_is_pair(v, lambda x: _is_number(x) and x > 0) and v[0] <= v[1]),
                     "[low, high] scale factors (or null)"),
    "scale_jitter_fraction": (lambda v: _is_number(v) and 0 <= v <= 1, "a number in [0, 1]"),
    "degrade": (lambda v: v is None or (_is_pair(v, lambda x: _is_number(x) and x >= 1) and v[0] <= v[1]),
                "[low, high] factors ≥ 1 (or null)"),
    "degrade_fraction": (lambda v: _is_number(v) and 0 <= v <= 1, "a number in [0, 1]"),
    "init_model": (lambda v: v is None or (isinstance(v, str) and v.strip() != ""), "a model path (or null)"),
    "schedule": (lambda v: isinstance(v, str), "a string"),
    "early_stop_patience": (lambda v: _is_int(v) and v >= 0, "an integer ≥ 0"),
    "device": (lambda v: isinstance(v, str), "a string"),
    "crop": (lambda v: _is_int(v) and v >= 16, "an integer ≥ 16"),
    "batch_size": (lambda v: _is_int(v) and v >= 1, "an integer ≥ 1"),
    "steps": (lambda v: _is_int(v) and v >= 1, "an integer ≥ 1"),
    "eval_every": (lambda v: _is_int(v) and v >= 1, "an integer ≥ 1"),
    "lr": (lambda v: _is_number(v) and v > 0, "a number > 0"),
    "weight_decay": (lambda v: _is_number(v) and v >= 0, "a number ≥ 0"),
    "seed": (_is_int, "an integer"),
    "version": (lambda v: isinstance(v, str), "a string"),
    "description": (lambda v: isinstance(v, str), "a string"),
    "license": (lambda v: isinstance(v, str), "a string"),
    "attribution": (lambda v: isinstance(v, str), "a string"),
    "extra": (lambda v: isinstance(v, dict), "an object"),
}
_CLASS_KEYS = {"name", "color", "codes", "value", "mask_colors"}


def check_types(raw: dict, path: Path | str = "config") -> None:
    """Raise ``LandcoverError`` naming the first key of a training config whose value has the wrong type
    or range (``_TYPES``), or the first malformed class entry."""
    for key, value in raw.items():
        test, what = _TYPES.get(key, (lambda v: True, ""))
        if not test(value):
            raise LandcoverError(f"training config {path}: '{key}' must be {what}, got {json.dumps(value)[:80]}: fix the file "
                                 "(or the --set override)")
    for i, spec in enumerate(raw.get("classes", [])):
        where = f"training config {path}: classes[{i}]"
        if not isinstance(spec, dict):
            raise LandcoverError(f"{where} must be an object with 'name' and 'color', got {json.dumps(spec)[:80]}")
        unknown = set(spec) - _CLASS_KEYS
        if unknown:
            raise LandcoverError(f"{where} has unknown keys {sorted(unknown)}; a class has {sorted(_CLASS_KEYS)}")
        if not isinstance(spec.get("name"), str) or not spec["name"]:
            raise LandcoverError(f"{where} needs a 'name' (a non-empty string)")
        color = spec.get("color")
        if not (isinstance(color, str) and len(color) == 7 and color[0] == "#"
                and all(ch in "0123456789abcdefABCDEF" for ch in color[1:])):
            raise LandcoverError(f"{where} needs a 'color' like \"#ff0000\", got {json.dumps(color)}")
        if not _list_of(lambda x: _is_int(x) and 0 <= x <= 255)(spec.get("codes", [])):
            raise LandcoverError(f"{where}: 'codes' must be a list of label codes 0..255")
        if "value" in spec and not (_is_int(spec["value"]) and 0 <= spec["value"] <= 254):
            raise LandcoverError(f"{where}: 'value' must be an integer 0..254 (255 is nodata)")
        if not _list_of(_is_rgb)(spec.get("mask_colors", [])):
            raise LandcoverError(f"{where}: 'mask_colors' must be a list of [r, g, b] colours")


def load_config(path: str | Path, **overrides) -> TrainConfig:
    """Read a training config JSON; ``overrides`` (non-None) replace its top-level keys.

    Raises ``LandcoverError`` for a missing file, bad JSON, an unknown key or a missing pair file.
    """
    path = Path(path)
    try:
        raw = json.loads(path.read_text())
    except FileNotFoundError:
        raise LandcoverError(f"training config not found: {path}") from None
    except IsADirectoryError:
        raise LandcoverError(f"training config {path} is a folder: give the JSON file") from None
    except UnicodeDecodeError:
        raise LandcoverError(f"training config {path} is not a text file: give the JSON file") from None
    except json.JSONDecodeError as exc:
        raise LandcoverError(f"training config {path} is not valid JSON ({exc}): fix the file") from None
    if not isinstance(raw, dict):
        raise LandcoverError(f"training config {path} must be a JSON object {{\"name\": …, \"pairs\": …, \"classes\": …}}, "
                             f"got a JSON {_json_type(raw)}: see models/flair-rgb.train.json")
    init_from_set = overrides.get("init_model") is not None
    raw.update({k: v for k, v in overrides.items() if v is not None})
    known = {f.name for f in fields(TrainConfig)} | {"pair_globs"}  # pair_globs expand into pairs
    unknown = set(raw) - known
    if unknown:
        raise LandcoverError(f"training config {path}: unknown keys {sorted(unknown)}; known keys are {sorted(known)}")
    check_types(raw, path)
    base = path.parent
    pairs = []
    for image_glob, label_template in raw.pop("pair_globs", []):
        # ["images/*.jpg", "../masks/{stem}.png"]: each image, and its label relative to the image's folder
        for image in sorted(base.glob(image_glob)):
            pairs.append((str(image.resolve()), str((image.parent / label_template.format(stem=image.stem)).resolve())))
    for image, label in raw.get("pairs", []):
        pairs.append((str((base / image).resolve()), str((base / label).resolve())))
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
    if raw.get("degrade") is not None:
        raw["degrade"] = tuple(raw["degrade"])
    if raw.get("init_model"):
        # from the file: relative to its folder (like the pairs); from --set: relative to the working folder
        init = Path(raw["init_model"]).expanduser()
        init = (init if init_from_set else base / init).resolve()
        if not init.is_file():
            raise LandcoverError(f"training config {path}: init_model {init} does not exist: give a model written by "
                                 "landcover train (.onnx) or a run folder's best.pt")
        raw["init_model"] = str(init)
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
