"""The Landcover model metadata schema (version 1), stored in an ONNX file's ``metadata_props``.

One table, ``KEYS``, lists every key: its ``ModelMetadata`` field, type, unit, default, what Deepness,
GeoDeep and Esri's model definition (EMD) call it, and what it means. That table drives
``parse_metadata`` (reading, including the other tools' spellings), ``ModelMetadata.to_props``
(writing: our keys plus the ones Deepness and GeoDeep read, every value JSON-encoded) and the key
table of ``docs/model-format.md`` (``key_table_markdown``; a test keeps the doc in step).

Values are strings; structured values are JSON. A bare word where JSON is expected is read as a
string (Deepness writes some scalars unquoted).
"""
from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any, Callable, overload

from ..errors import ModelError

SCHEMA_VERSION = 1
DEFAULT_PALETTE = ("#e6194b", "#3cb44b", "#ffe119", "#4363d8", "#f58231", "#911eb4", "#46f0f0", "#f032e6",
                   "#bcf60c", "#fabebe", "#008080", "#e6beff", "#9a6324", "#fffac8", "#800000", "#aaffc3")
OUTPUTS = ("probabilities", "logits", "sigmoid")
SEGMENTATION_TYPES = ("segmentation", "segmentor")  # ours (older files), Deepness' and GeoDeep's ("Segmentor")
WRITTEN_MODEL_TYPE = "Segmentor"  # what Deepness and GeoDeep require, so we write it
# What a model of another type is, in words (Deepness' and GeoDeep's model_type values, lower case).
OTHER_TYPES = {"detector": "an object detector", "regressor": "a regression model",
               "superresolution": "a super-resolution model", "recognition": "an image-recognition model"}
DEFAULT_SEG_THRESH = 0.5


@dataclass(frozen=True)
class ModelMetadata:
    """Everything the engine needs to know about a segmentation model (one schema, any source).

    Units are in the field names: ``gsd_m`` metres/pixel, ``tile_size_px``, ``overlap_px``,
    ``padding_px`` and ``small_segment_px`` pixels. ``notes`` are one-line remarks made while reading
    (numbered classes, the output chosen, ...) that the engine shows as warnings."""

    class_names: tuple[str, ...]
    class_colors: tuple[str, ...]
    class_values: tuple[int, ...]
    input_bands: tuple[str, ...] | None = None
    value_range: tuple[float, float] = (0.0, 255.0)
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None
    gsd_m: float | None = None
    tile_size_px: int = 512
    overlap_px: int = 64
    padding_px: int = 0
    output: str = "probabilities"
    seg_thresh: float = DEFAULT_SEG_THRESH
    small_segment_px: int = 0
    nodata_fill: float | None = None
    band_repeat: int = 1
    size_multiple_px: int | None = None
    name: str = ""
    version: str = ""
    description: str = ""
    license: str = ""
    attribution: str = ""
    extra: dict[str, Any] = field(default_factory=dict)
    notes: tuple[str, ...] = ()

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
        """The ``metadata_props`` (all strings, all JSON) that ``parse_metadata`` reads back unchanged,
        plus the keys Deepness and GeoDeep read (``model_type`` "Segmentor", ``class_names`` as
        ``{"0": name}``, ``tiles_size`` and ``tile_size``, ``tiles_overlap`` in %, ``resolution`` in
        cm/px, ``seg_thresh``, ``seg_small_segment``)."""
        props: dict[str, str] = {}
        for key in KEYS:
            if key.write is not None:
                props.update({k: json.dumps(v) for k, v in key.write(self).items() if v is not None})
        props.update({k: json.dumps(v) for k, v in self.extra.items() if k not in props})
        return props


@dataclass(frozen=True)
class Key:
    """One metadata key. ``field``: the ``ModelMetadata`` field it fills ("" for none); ``kind``:
    how its value is read (see ``_READERS``); ``aliases``: other tools' keys for the same thing, with a
    function turning their (JSON-decoded) value into ours, given the props read so far;
    ``write``: the keys and (JSON-able) values ``to_props`` writes for it."""

    key: str
    field: str
    kind: str
    unit: str
    default: str
    deepness: str
    geodeep: str
    esri: str
    doc: str
    required: bool = False
    write: Callable[[ModelMetadata], dict[str, Any]] | None = None


def _percent(meta: ModelMetadata) -> float | int:
    pct = round(100.0 * meta.overlap_px / meta.tile_size_px, 4)
    return int(pct) if pct == int(pct) else pct


def _seg_small_segment(px: int) -> int:
    """Our sieve size (px) → Deepness' ``seg_small_segment`` s, where GeoDeep sieves (2 s)² px."""
    return int(round(math.sqrt(px) / 2)) if px > 0 else 0


def _opt(value: tuple[Any, ...] | None) -> list[Any] | None:
    return None if value in (None, "", ()) else (list(value) if isinstance(value, tuple) else value)


KEYS: tuple[Key, ...] = (
    Key("schema_version", "", "int", "", "absent: a Deepness/GeoDeep model", "—", "—", "—",
        "Landcover schema version, `1`. Absent: the file is read as another tool's model (numbered classes allowed).",
        write=lambda m: {"schema_version": SCHEMA_VERSION}),
    Key("model_type", "", "text", "", "`\"Segmentor\"`", "`model_type` (`\"Segmentor\"`)", "`model_type` (`\"Segmentor\"`)",
        "`ModelType` (`\"ImageClassification\"`)",
        "`\"Segmentor\"` (or `\"segmentation\"`). Other types (Detector, Regressor, Superresolution, Recognition) are refused with a one-line reason.",
        write=lambda m: {"model_type": WRITTEN_MODEL_TYPE}),
    Key("class_names", "class_names", "class_names", "", "absent: `class 0`, `class 1`, … (warning)",
        "`class_names`: `{\"0\": name}` or, one per output, `[{\"0\": name}, …]`", "`class_names` (`{\"0\": name}`)",
        "`Classes[].Name`",
        "Class names in output-channel order: a JSON list, `{\"0\": name, …}`, or a list of such dicts for a multi-output model (the chosen output's dict is used). A 1-channel sigmoid output with one name gets `background` first.",
        write=lambda m: {"class_names": {str(i): n for i, n in enumerate(m.class_names)}}),
    Key("class_colors", "class_colors", "colors", "", "a fixed palette", "—", "—", "`Classes[].Color` (RGB)",
        "JSON list of K `\"#rrggbb\"`: the legend and colour table.",
        write=lambda m: {"class_colors": list(m.class_colors)}),
    Key("class_values", "class_values", "values", "", "`0..K-1`", "— (class index + 1 in its rasters)", "— (class index)",
        "`Classes[].Value`",
        "JSON list of K distinct ints 0–254 written to the class raster for each class; 255 is nodata.",
        write=lambda m: {"class_values": list(m.class_values)}),
    Key("input_bands", "input_bands", "bands", "", "the first C bands", "— (the user maps channels)",
        "— (red, green, blue by colour interpretation)", "`ExtractBands` (band indexes)",
        "JSON list of C colour interpretations (`red`, `green`, `blue`, `nir`, `gray`, …): which input bands are read, in order.",
        write=lambda m: {"input_bands": _opt(m.input_bands)}),
    Key("band_repeat", "band_repeat", "count", "", "1", "—", "—", "—",
        "The network takes C × n channels: each band Landcover reads is fed n times in a row (e.g. a greyscale model whose graph takes RGB and computes the luma inside, so other tools can feed it RGB).",
        write=lambda m: {"band_repeat": m.band_repeat if m.band_repeat != 1 else None}),
    Key("value_range", "value_range", "range", "raw value", "`[0, 255]`", "— (always ÷255)", "— (÷255 for 8-bit)",
        "`DataRange`",
        "JSON `[low, high]`: raw input values mapped linearly onto [0, 1] before standardisation (`[0, 65535]` for 16-bit).",
        write=lambda m: {"value_range": list(m.value_range)}),
    Key("standardization_mean", "mean", "floats", "", "0 per band", "`standardization_mean`", "— (ignored)",
        "`NormalizationStats.band_mean_values`",
        "JSON list of C floats: after scaling to [0, 1], `x' = (x - mean) / std`. Exported models do this inside the graph and write 0 and 1 here, because GeoDeep only divides by 255.",
        write=lambda m: {"standardization_mean": _opt(m.mean)}),
    Key("standardization_std", "std", "floats", "", "1 per band", "`standardization_std`", "— (ignored)",
        "`NormalizationStats.band_std_values`", "JSON list of C floats > 0; see `standardization_mean`.",
        write=lambda m: {"standardization_std": _opt(m.std)}),
    Key("gsd", "gsd_m", "float", "m/px", "unknown", "`resolution` (cm/px)", "`resolution` (cm/px; default 10)", "—",
        "Ground sample distance the model was trained at. Read from `resolution` ÷ 100 when absent. The engine warns when the input's differs by more than 2×.",
        write=lambda m: {"gsd": m.gsd_m, "resolution": None if m.gsd_m is None else round(m.gsd_m * 100, 6)}),
    Key("tile_size", "tile_size_px", "size", "px", "the network's static input size, else 512",
        "`tile_size` (docs: `tiles_size`)", "— (the input shape's last dimension)", "`ImageHeight`, `ImageWidth`",
        "Default tile edge. Read from `tiles_size` when absent. A network with a static input size runs at that size.",
        write=lambda m: {"tile_size": m.tile_size_px, "tiles_size": m.tile_size_px}),
    Key("overlap", "overlap_px", "size0", "px", "tile/8, at least 2 × padding", "`tiles_overlap` (% of the tile)",
        "`tiles_overlap` (%; default 5)", "— (`ModelPadding` is similar)",
        "Default overlap between tiles. Read from `tiles_overlap` (percent of the tile) when absent.",
        write=lambda m: {"overlap": m.overlap_px, "tiles_overlap": _percent(m)}),
    Key("padding", "padding_px", "size0", "px", "0 (or half the size lost by a smaller output)", "—", "—", "`ModelPadding`",
        "Border of each tile whose predictions are unreliable: zero blending weight (except at the raster's edge). An output smaller than the input (centred) sets it to at least half the difference; overlap must be ≥ 2 × padding.",
        write=lambda m: {"padding": m.padding_px}),
    Key("output", "output", "choice", "", "`probabilities` (schema 1); found from the shape and values otherwise",
        "— (softmax, or sigmoid when 1 channel / rank 3)", "— (argmax)", "—",
        "`probabilities` (sum to 1 over classes), `logits` (the engine applies a softmax) or `sigmoid` (independent per-class scores in [0, 1]; the engine divides by their sum, argmax unchanged).",
        write=lambda m: {"output": m.output if m.output in OUTPUTS else None}),
    Key("seg_thresh", "seg_thresh", "fraction", "probability", "0.5", "`seg_thresh` (also for K > 1)",
        "`seg_thresh` (also for K > 1)", "—",
        "1-channel sigmoid and rank-3 outputs: a pixel is the class iff p ≥ seg_thresh. Deepness and GeoDeep also zero every class probability under it and take the argmax (class 0 when none is left); exported multi-class models write 0 so they take the plain argmax as Landcover does.",
        write=lambda m: {"seg_thresh": m.seg_thresh if m.output == "sigmoid" and len(m.class_names) == 2 else 0.0}),
    Key("small_segment", "small_segment_px", "size0", "px", "0 (off)", "`seg_small_segment` s (a median/dilate size)",
        "`seg_small_segment` s: sieve (2 s)² px; default 11", "—",
        "Regions of the class map smaller than this are merged into their neighbours (a sieve after blending). Read from `seg_small_segment` s as (2 s)² px, GeoDeep's rule.",
        write=lambda m: {"small_segment": m.small_segment_px, "seg_small_segment": _seg_small_segment(m.small_segment_px)}),
    Key("size_multiple", "size_multiple_px", "size", "px", "absent", "—", "—", "`SupportsVariableTileSize`",
        "The network is fully convolutional: Landcover may run it at any tile size that is a multiple of this, even when its input shape is static (the static size is for tools that take the tile size from the shape).",
        write=lambda m: {"size_multiple": m.size_multiple_px}),
    Key("nodata_fill", "nodata_fill", "float0", "raw value", "`value_range` low", "—", "—", "—",
        "Raw value put into nodata / alpha-0 pixels before inference.",
        write=lambda m: {"nodata_fill": m.nodata_fill}),
    Key("name", "name", "text", "", "the file name", "—", "—", "—", "Model name, shown by `landcover info` and written to outputs.",
        write=lambda m: {"name": m.name or None}),
    Key("version", "version", "text", "", "", "—", "—", "—", "Model version.", write=lambda m: {"version": m.version or None}),
    Key("description", "description", "text", "", "", "—", "—", "—", "What the model does.",
        write=lambda m: {"description": m.description or None}),
    Key("license", "license", "text", "", "", "—", "—", "—", "Licence of the weights and training data.",
        write=lambda m: {"license": m.license or None}),
    Key("attribution", "attribution", "text", "", "", "—", "—", "—", "Credit line to show with results.",
        write=lambda m: {"attribution": m.attribution or None}),
)
# Other tools' spellings, read when ours is absent: (their key, our key).
ALIASES = (("tiles_size", "tile_size"), ("resolution", "gsd"), ("tiles_overlap", "overlap"),
           ("seg_small_segment", "small_segment"), ("names", "class_names"))
KNOWN = {k.key for k in KEYS} | {a for a, _ in ALIASES}


def key_table_markdown() -> str:
    """The key table of ``docs/model-format.md``, generated from ``KEYS``."""
    head = ("| key | `ModelMetadata` field | unit | default | Deepness | GeoDeep | Esri EMD | meaning |\n"
            "|---|---|---|---|---|---|---|---|\n")
    rows = [f"| `{k.key}` | {f'`{k.field}`' if k.field else '—'} | {k.unit or '—'} | {k.default or '—'} | {k.deepness} | "
            f"{k.geodeep} | {k.esri} | {k.doc} |" for k in KEYS]
    return head + "\n".join(rows) + "\n"


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


@overload
def _number(props: Mapping[str, str], key: str, kind: type[int], positive: bool = True) -> int: ...
@overload
def _number(props: Mapping[str, str], key: str, kind: type[float] = float, positive: bool = True) -> float: ...
def _number(props: Mapping[str, str], key: str, kind: type[int] | type[float] = float, positive: bool = True) -> int | float:
    value = _load(props, key)
    try:
        if isinstance(value, bool):
            raise TypeError
        number = kind(value)
        if kind is int and number != float(value):
            raise ValueError
    except (TypeError, ValueError):
        raise ModelError(f"model metadata key '{key}' must be a number, got {props[key]!r}: fix the model's metadata") from None
    if not math.isfinite(number):
        raise ModelError(f"model metadata key '{key}' must be finite, got {props[key]!r}: fix the model's metadata")
    if positive and number <= 0:
        raise ModelError(f"model metadata key '{key}' must be > 0, got {number}: fix the model's metadata")
    if not positive and number < 0:
        raise ModelError(f"model metadata key '{key}' must be ≥ 0, got {number}: fix the model's metadata")
    return number


def _float_list(props: Mapping[str, str], key: str, length: int | None = None) -> tuple[float, ...]:
    value = _load(props, key)
    if not isinstance(value, list) or not value or not all(isinstance(v, (int, float)) and not isinstance(v, bool)
                                                           and math.isfinite(v) for v in value):
        raise ModelError(f"model metadata key '{key}' must be a JSON list of finite numbers, got {props[key]!r}: fix the "
                         "model's metadata")
    if length is not None and len(value) != length:
        raise ModelError(f"model metadata key '{key}' has {len(value)} entries but the model has {length}: fix the model's metadata")
    return tuple(float(v) for v in value)


def _text(props: Mapping[str, str], key: str) -> str:
    raw = props[key]
    try:
        value = json.loads(raw)
    except json.JSONDecodeError:
        return raw
    return value if isinstance(value, str) else raw


def _names_of(value: Any, key: str, raw: str) -> list[str]:
    if isinstance(value, dict):  # Deepness: {"0": "background", "1": "field", ...}
        try:
            items = sorted((int(k), v) for k, v in value.items())
        except ValueError:
            raise ModelError(f"model metadata key '{key}' has non-integer keys: use {{\"0\": name, ...}} or a list") from None
        if [k for k, _ in items] != list(range(len(items))):
            raise ModelError(f"model metadata key '{key}' must number classes 0..K-1 without gaps, got {raw!r}")
        value = [v for _, v in items]
    if not isinstance(value, list) or not value or not all(isinstance(v, str) and v for v in value):
        raise ModelError(f"model metadata key '{key}' must be a non-empty JSON list of names or {{\"0\": name, ...}}, got {raw!r}")
    return value


def class_names_per_output(props: Mapping[str, str]) -> list[list[str]] | None:
    """Class names for each output from ``class_names`` (or Deepness' older ``names``): one list per
    output (a plain list or dict gives one), ``None`` when absent. Raises ``ModelError`` when malformed."""
    key = "class_names" if "class_names" in props else "names" if "names" in props else None
    if key is None:
        return None
    value = _load(props, key)
    if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):  # one dict per output
        return [_names_of(v, key, props[key]) for v in value]
    return [_names_of(value, key, props[key])]


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


def model_kind(props: Mapping[str, str]) -> str | None:
    """``None`` for a segmentation model (or no ``model_type``), else what the model is in words."""
    if "model_type" not in props:
        return None
    model_type = str(_load(props, "model_type")).strip()
    if model_type.lower() in SEGMENTATION_TYPES:
        return None
    return OTHER_TYPES.get(model_type.lower(), f"a model of type {model_type!r}")


def parse_metadata(props: Mapping[str, str], num_classes: int | None = None, output_index: int = 0,
                   num_outputs: int = 1, sigmoid: bool = False) -> ModelMetadata:
    """Validate ONNX ``metadata_props`` (schema 1, or Deepness'/GeoDeep's keys) and return ``ModelMetadata``.

    ``num_classes``: the channels of the chosen output when the network fixes them (needed when
    ``class_names`` is absent: classes are then numbered, with a note); ``output_index`` of
    ``num_outputs``: the output whose class names are used; ``sigmoid``: the output is one sigmoid
    channel or rank 3, read as two classes (background, class).
    Raises ``ModelError`` naming the first bad key and how to fix it, on one line.
    """
    notes: list[str] = []
    version = props.get("schema_version")
    if version is not None and version.strip().strip('"') != str(SCHEMA_VERSION):
        raise ModelError(f"model metadata 'schema_version' is {version!r}; this Landcover reads version {SCHEMA_VERSION}: upgrade Landcover")
    kind = model_kind(props)
    if kind is not None:
        raise ModelError(f"the model is {kind} (model_type {props['model_type']}), not a segmentation model: "
                         "Landcover classifies pixels; use a segmentation model")
    per_output = class_names_per_output(props)
    if per_output is None:
        if version is not None:
            raise ModelError("model metadata key 'class_names' is missing: add a JSON list of class names to the ONNX metadata_props")
        if num_classes is None:
            raise ModelError("model metadata key 'class_names' is missing and the network does not fix its number of "
                             "classes: add class_names to the ONNX metadata_props")
        k = 1 if sigmoid else num_classes
        names = [f"class {i}" for i in range(k)]
        notes.append(f"the model names no classes (no 'class_names' metadata): they are numbered {', '.join(names)}")
    else:
        if len(per_output) > 1 and len(per_output) != num_outputs:
            raise ModelError(f"model metadata key 'class_names' names classes for {len(per_output)} outputs but the network "
                             f"has {num_outputs}: fix the model's metadata")
        names = per_output[output_index if len(per_output) > 1 else 0]
    if sigmoid and len(names) == 1:
        names = ["background", *names]
    elif sigmoid and len(names) != 2:
        raise ModelError(f"the output is one sigmoid channel (class vs background) but 'class_names' names {len(names)} "
                         "classes: give one name (or background and the class)")
    elif not sigmoid and num_classes is not None and len(names) != num_classes:
        raise ModelError(f"the network outputs {num_classes} classes but metadata 'class_names' names {len(names)}: "
                         "fix the model's metadata (one name per output channel)")
    k = len(names)
    values: dict[str, Any] = {"class_names": tuple(names), "class_colors": _colors(props, k),
                              "class_values": _values(props, k)}
    if "input_bands" in props:
        value = _load(props, "input_bands")
        if not isinstance(value, list) or not value or not all(isinstance(b, str) for b in value):
            raise ModelError(f"model metadata key 'input_bands' must be a JSON list of band names, got {props['input_bands']!r}")
        values["input_bands"] = tuple(b.lower() for b in value)
    n = len(values["input_bands"]) if "input_bands" in values else None
    mean = _float_list(props, "standardization_mean", n) if "standardization_mean" in props else None
    std = _float_list(props, "standardization_std", n or (len(mean) if mean else None)) if "standardization_std" in props else None
    if std is not None and any(s <= 0 for s in std):
        raise ModelError("model metadata key 'standardization_std' must hold values > 0: fix the model's metadata")
    if mean is not None and std is not None and len(mean) != len(std):
        raise ModelError("model metadata keys 'standardization_mean' and 'standardization_std' differ in length: fix the model's metadata")
    values.update(mean=mean, std=std)
    if "value_range" in props:
        value_range = _float_list(props, "value_range", 2)
        if value_range[1] <= value_range[0]:
            raise ModelError(f"model metadata key 'value_range' must be [low, high] with high > low, got {props['value_range']!r}")
        values["value_range"] = value_range
    if "gsd" in props:
        values["gsd_m"] = _number(props, "gsd")
    elif "resolution" in props:
        values["gsd_m"] = _number(props, "resolution") / 100.0
    size_key = "tile_size" if "tile_size" in props else "tiles_size" if "tiles_size" in props else None
    tile = _number(props, size_key, int) if size_key else 512
    padding = _number(props, "padding", int, positive=False) if "padding" in props else 0
    if "overlap" in props:
        overlap = _number(props, "overlap", int, positive=False)
    elif "tiles_overlap" in props:  # Deepness, GeoDeep: percent of the tile size
        pct = _number(props, "tiles_overlap", float, positive=False)
        if pct >= 100:
            raise ModelError(f"model metadata key 'tiles_overlap' is {pct:g} %; it must be under 100: fix the model's metadata")
        overlap = int(round(tile * pct / 100.0))
    else:
        overlap = max(tile // 8, 2 * padding)
    if not 0 <= overlap < tile:
        raise ModelError(f"model metadata overlap {overlap} px must be in [0, tile size {tile}): fix the model's metadata")
    values.update(tile_size_px=tile, overlap_px=overlap, padding_px=padding)
    if "output" in props:
        output = _text(props, "output").strip()
        if output not in OUTPUTS:
            raise ModelError(f"model metadata key 'output' must be one of {', '.join(OUTPUTS)}, got {output!r}")
        values["output"] = output
    elif sigmoid:
        values["output"] = "sigmoid"
    if "seg_thresh" in props:
        thresh = _number(props, "seg_thresh", float, positive=False)
        if thresh > 1:
            raise ModelError(f"model metadata key 'seg_thresh' must be in [0, 1], got {thresh:g}: fix the model's metadata")
        if sigmoid:  # Landcover uses it for one-channel outputs only (see the key table)
            values["seg_thresh"] = thresh
    if "small_segment" in props:
        values["small_segment_px"] = _number(props, "small_segment", int, positive=False)
    elif "seg_small_segment" in props:
        values["small_segment_px"] = (2 * _number(props, "seg_small_segment", int, positive=False)) ** 2
    if "band_repeat" in props:
        values["band_repeat"] = _number(props, "band_repeat", int)
    if "size_multiple" in props:
        values["size_multiple_px"] = _number(props, "size_multiple", int)
    if "nodata_fill" in props:
        fill = _load(props, "nodata_fill")
        if isinstance(fill, bool) or not isinstance(fill, (int, float)) or not math.isfinite(fill):
            raise ModelError(f"model metadata key 'nodata_fill' must be a number, got {props['nodata_fill']!r}: fix the model's metadata")
        values["nodata_fill"] = float(fill)
    for key in ("name", "version", "description", "license", "attribution"):
        if key in props:
            values[key] = _text(props, key)
    values["extra"] = {k: _extra_text(v) for k, v in props.items() if k not in KNOWN}
    values["notes"] = tuple(notes)
    return ModelMetadata(**values)


def _extra_text(value: str) -> str:
    """A further metadata value as text: a JSON string decoded (``"fpn"`` → ``fpn``; how ``to_props``
    writes them), anything else (numbers, objects, and the plain text older files hold) as stored."""
    try:
        decoded = json.loads(value)
    except ValueError:
        return value
    return decoded if isinstance(decoded, str) else value


def with_notes(meta: ModelMetadata, *notes: str) -> ModelMetadata:
    """``meta`` with ``notes`` added."""
    return replace(meta, notes=meta.notes + tuple(notes))


FIELDS = tuple(f.name for f in fields(ModelMetadata))
