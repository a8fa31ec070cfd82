"""Training configuration: a JSON file whose relative paths resolve against the file's folder."""
from __future__ import annotations

import json
from dataclasses import dataclass, field, fields
from pathlib import Path

from ..errors import LandcoverError


@dataclass(frozen=True)
class ClassSpec:
    """One output class: its name, colour, the label-raster codes mapped to it and the value written."""

    name: str
    color: str
    codes: tuple[int, ...]
    value: int


@dataclass(frozen=True)
class TrainConfig:
    """A training run. Units: ``gsd`` metres/pixel; ``crop``, ``tile_size``, ``overlap`` px."""

    name: str
    pairs: tuple[tuple[str, str], ...]
    classes: tuple[ClassSpec, ...]
    input_bands: tuple[str, ...] = ("red", "green", "blue")
    gsd: float | None = None
    tile_size: int = 512
    overlap: int = 128
    mean: tuple[float, ...] = (0.498, 0.498, 0.498)
    std: tuple[float, ...] = (0.502, 0.502, 0.502)
    val_fraction: float = 0.2
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
    known = {f.name for f in fields(TrainConfig)}
    unknown = set(raw) - known
    if unknown:
        raise LandcoverError(f"training config {path}: unknown keys {sorted(unknown)}; known keys are {sorted(known)}")
    base = path.parent
    pairs = []
    for image, label in raw.get("pairs", []):
        resolved = tuple(str((base / p).resolve()) for p in (image, label))
        for p in resolved:
            if not Path(p).exists():
                raise LandcoverError(f"training config {path}: file {p} does not exist")
        pairs.append(resolved)
    if not pairs:
        raise LandcoverError(f"training config {path}: 'pairs' must list [image, label] raster pairs")
    raw["pairs"] = tuple(pairs)
    raw["classes"] = tuple(ClassSpec(c["name"], c["color"], tuple(c["codes"]), c.get("value", i))
                           for i, c in enumerate(raw.get("classes", [])))
    if not raw["classes"]:
        raise LandcoverError(f"training config {path}: 'classes' must list the output classes")
    for key in ("input_bands", "mean", "std"):
        if key in raw:
            raw[key] = tuple(raw[key])
    return TrainConfig(**raw)
