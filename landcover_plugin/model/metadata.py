"""The Landcover model metadata schema (version 1), stored in an ONNX file's ``metadata_props``.

Every value is a string; structured values are JSON. Keys (``docs/model-format.md`` has the full table):

==========================  =======================================================================
``schema_version``          ``"1"``. Absent: the file is read as a Deepness model (keys below).
``model_type``              ``"segmentation"``, or Deepness' ``"Segmentor"`` (the only type supported).
``name``, ``version``       model name and version; ``description``, ``license``, ``attribution``.
``class_names``             JSON list of K names, or Deepness' ``{"0": "name", ...}`` (required).
``class_colors``            JSON list of K ``"#rrggbb"`` (default: a fixed palette).
``class_values``            JSON list of K ints 0..254 written to the class raster (default 0..K-1).
``input_bands``             JSON list of C colour interpretations, e.g. ``["red","green","blue"]``.
``value_range``             JSON ``[low, high]``: raw input values mapped linearly to [0, 1]
                            (default ``[0, 255]``, i.e. /255 as in Deepness).
``standardization_mean``,   JSON lists of C floats applied after scaling: ``(x - mean) / std``
``standardization_std``     (Deepness' keys; default 0 and 1).
``gsd``                     ground sample distance the model was trained at, metres/pixel.
``resolution``              the same in cm/pixel (Deepness' key); used when ``gsd`` is absent.
``tile_size``               tile edge in px (Deepness: ``tiles_size``); default 512.
``overlap``                 default overlap in px. Deepness' ``tiles_overlap`` is in percent.
``padding``                 px at each tile edge whose predictions are unreliable (weight 0).
``output``                  ``"probabilities"`` (default) or ``"logits"`` (softmax applied).
``nodata_fill``             raw value put in nodata/alpha-0 pixels before inference (default low).
==========================  =======================================================================
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any, Mapping

from ..errors import ModelError

SCHEMA_VERSION = 1
DEFAULT_PALETTE = ("#e6194b", "#3cb44b", "#ffe119", "#4363d8", "#f58231", "#911eb4", "#46f0f0", "#f032e6",
                   "#bcf60c", "#fabebe", "#008080", "#e6beff", "#9a6324", "#fffac8", "#800000", "#aaffc3")
OUTPUTS = ("probabilities", "logits")
SEGMENTATION_TYPES = ("segmentation", "segmentor")  # ours, Deepness' ("Segmentor")


@dataclass(frozen=True)
class ModelMetadata:
    """Everything the engine needs to know about a segmentation model (one schema, any source)."""

    class_names: tuple[str, ...]
    class_colors: tuple[str, ...]
    class_values: tuple[int, ...]
    input_bands: tuple[str, ...] | None = None
    value_range: tuple[float, float] = (0.0, 255.0)
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None
    gsd: float | None = None
    tile_size: int = 512
    overlap: int = 64
    padding: int = 0
    output: str = "probabilities"
    nodata_fill: float | None = None
    name: str = ""
    version: str = ""
    description: str = ""
    license: str = ""
    attribution: str = ""
    extra: dict = field(default_factory=dict)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def num_bands(self) -> int | None:
        """Input bands the model takes (C), from ``input_bands`` or the standardisation lists."""
        for seq in (self.input_bands, self.mean, self.std):
            if seq is not None:
                return len(seq)
        return None

    def to_props(self) -> dict[str, str]:
        """The ``metadata_props`` (all strings) that ``parse_metadata`` reads back unchanged."""
        d = asdict(self)
        props = {"schema_version": str(SCHEMA_VERSION), "model_type": "segmentation"}
        for key, value in d.items():
            if key == "extra":
                props.update({k: str(v) for k, v in value.items()})
            elif key in ("mean", "std"):
                if value is not None:
                    props[f"standardization_{key}"] = json.dumps(list(value))
            elif value is None or value == "":
                continue
            elif isinstance(value, str):
                props[key] = value
            else:
                props[key] = json.dumps(list(value) if isinstance(value, tuple) else value)
        if self.gsd is not None:
            props["resolution"] = json.dumps(round(self.gsd * 100, 6))
        return props


def gsd_text(gsd: float | None) -> str:
    """A GSD for people: ``"0.2 m/px"``, or ``"unknown"``."""
    return "unknown" if gsd is None else f"{gsd:g} m/px"


def _load(props: Mapping[str, str], key: str) -> Any:
    raw = props[key]
    try:
        return json.loads(raw)
    except json.JSONDecodeError:
        # Deepness writes some scalars unquoted and some strings bare; a bare word is a string.
        return raw


def _number(props: Mapping[str, str], key: str, kind=float, positive: bool = True):
    value = _load(props, key)
    try:
        number = kind(value)
    except (TypeError, ValueError):
        raise ModelError(f"model metadata key '{key}' must be a number, got {props[key]!r}: fix the model's metadata") from None
    if positive and number <= 0:
        raise ModelError(f"model metadata key '{key}' must be > 0, got {number}: fix the model's metadata")
    return number


def _float_list(props: Mapping[str, str], key: str, length: int | None = None) -> tuple[float, ...]:
    value = _load(props, key)
    if not isinstance(value, list) or not value or not all(isinstance(v, (int, float)) for v in value):
        raise ModelError(f"model metadata key '{key}' must be a JSON list of numbers, got {props[key]!r}")
    if length is not None and len(value) != length:
        raise ModelError(f"model metadata key '{key}' has {len(value)} entries but the model has {length}")
    return tuple(float(v) for v in value)


def _class_names(props: Mapping[str, str]) -> tuple[str, ...]:
    if "class_names" not in props:
        raise ModelError("model metadata key 'class_names' is missing: add a JSON list of class names to the ONNX metadata_props")
    value = _load(props, "class_names")
    if isinstance(value, dict):  # Deepness: {"0": "background", "1": "field", ...}
        try:
            items = sorted((int(k), v) for k, v in value.items())
        except ValueError:
            raise ModelError("model metadata key 'class_names' has non-integer keys: use {\"0\": name, ...} or a list") from None
        if [k for k, _ in items] != list(range(len(items))):
            raise ModelError("model metadata key 'class_names' must number classes 0..K-1 without gaps")
        value = [v for _, v in items]
    if not isinstance(value, list) or not value or not all(isinstance(v, str) and v for v in value):
        raise ModelError(f"model metadata key 'class_names' must be a non-empty JSON list of names, got {props['class_names']!r}")
    return tuple(value)


def _colors(props: Mapping[str, str], k: int) -> tuple[str, ...]:
    if "class_colors" not in props:
        return tuple(DEFAULT_PALETTE[i % len(DEFAULT_PALETTE)] for i in range(k))
    value = _load(props, "class_colors")
    ok = isinstance(value, list) and len(value) == k and all(
        isinstance(c, str) and len(c) == 7 and c[0] == "#" and all(ch in "0123456789abcdefABCDEF" for ch in c[1:])
        for c in value)
    if not ok:
        raise ModelError(f"model metadata key 'class_colors' must be a JSON list of {k} '#rrggbb' colours, got {props['class_colors']!r}")
    return tuple(c.lower() for c in value)


def _values(props: Mapping[str, str], k: int) -> tuple[int, ...]:
    if "class_values" not in props:
        if k > 255:
            raise ModelError(f"the model has {k} classes; at most 255 fit a uint8 class raster")
        return tuple(range(k))
    value = _load(props, "class_values")
    ok = (isinstance(value, list) and len(value) == k and all(isinstance(v, int) and 0 <= v <= 254 for v in value)
          and len(set(value)) == k)
    if not ok:
        raise ModelError(f"model metadata key 'class_values' must be a JSON list of {k} distinct ints in 0..254, got {props['class_values']!r}")
    return tuple(value)


def parse_metadata(props: Mapping[str, str]) -> ModelMetadata:
    """Validate ONNX ``metadata_props`` (schema 1 or Deepness keys) and return ``ModelMetadata``.

    Raises ``ModelError`` naming the first bad key and how to fix it.
    """
    version = props.get("schema_version")
    if version is not None and version.strip() != str(SCHEMA_VERSION):
        raise ModelError(f"model metadata 'schema_version' is {version!r}; this Landcover reads version {SCHEMA_VERSION}: upgrade Landcover")
    model_type = str(_load(props, "model_type")) if "model_type" in props else "segmentation"
    if model_type.lower() not in SEGMENTATION_TYPES:
        raise ModelError(f"model metadata 'model_type' is {model_type!r}; only 'segmentation' models classify land cover")
    names = _class_names(props)
    k = len(names)
    bands = None
    if "input_bands" in props:
        value = _load(props, "input_bands")
        if not isinstance(value, list) or not value or not all(isinstance(b, str) for b in value):
            raise ModelError(f"model metadata key 'input_bands' must be a JSON list of band names, got {props['input_bands']!r}")
        bands = tuple(b.lower() for b in value)
    n = len(bands) if bands else None
    mean = _float_list(props, "standardization_mean", n) if "standardization_mean" in props else None
    std = _float_list(props, "standardization_std", n or (len(mean) if mean else None)) if "standardization_std" in props else None
    if std is not None and any(s <= 0 for s in std):
        raise ModelError("model metadata key 'standardization_std' must hold values > 0")
    if mean is not None and std is not None and len(mean) != len(std):
        raise ModelError("model metadata keys 'standardization_mean' and 'standardization_std' differ in length")
    value_range = (0.0, 255.0)
    if "value_range" in props:
        value_range = _float_list(props, "value_range", 2)
        if value_range[1] <= value_range[0]:
            raise ModelError(f"model metadata key 'value_range' must be [low, high] with high > low, got {props['value_range']!r}")
    gsd = None
    if "gsd" in props:
        gsd = _number(props, "gsd")
    elif "resolution" in props:
        gsd = _number(props, "resolution") / 100.0
    size_key = "tile_size" if "tile_size" in props else "tiles_size" if "tiles_size" in props else None
    tile = _number(props, size_key, int) if size_key else 512
    if "overlap" in props:
        overlap = _number(props, "overlap", int, positive=False)
    elif "tiles_overlap" in props:  # Deepness: percent of the tile size
        overlap = int(round(tile * _number(props, "tiles_overlap", float, positive=False) / 100.0))
    else:
        overlap = tile // 8
    padding = _number(props, "padding", int, positive=False) if "padding" in props else 0
    if not 0 <= overlap < tile:
        raise ModelError(f"model metadata overlap {overlap} px must be in [0, tile size {tile})")
    output = props.get("output", "probabilities").strip().strip('"')
    if output not in OUTPUTS:
        raise ModelError(f"model metadata key 'output' must be one of {OUTPUTS}, got {output!r}")
    fill = _number(props, "nodata_fill", float, positive=False) if "nodata_fill" in props else None
    known = {"schema_version", "model_type", "class_names", "class_colors", "class_values", "input_bands",
             "value_range", "standardization_mean", "standardization_std", "gsd", "resolution", "tile_size",
             "tiles_size", "overlap", "tiles_overlap", "padding", "output", "nodata_fill", "name", "version",
             "description", "license", "attribution"}
    return ModelMetadata(
        class_names=names, class_colors=_colors(props, k), class_values=_values(props, k), input_bands=bands,
        value_range=value_range, mean=mean, std=std, gsd=gsd, tile_size=tile, overlap=overlap, padding=padding,
        output=output, nodata_fill=fill, name=props.get("name", ""), version=props.get("version", ""),
        description=props.get("description", ""), license=props.get("license", ""),
        attribution=props.get("attribution", ""), extra={k: v for k, v in props.items() if k not in known})
