"""Accuracy of a class raster against reference labels: confusion matrix, overall accuracy, Cohen's
kappa, per-class precision/recall/F1/IoU and mIoU (definitions in ``metrics``), as JSON and a
Markdown report with a confusion-matrix image.

The reference is read on the prediction's grid: directly when both share size and geotransform,
else warped with nearest-neighbour resampling (both must then be georeferenced). Reference codes can
be mapped onto the prediction's class values (``--map 13-19:13``) or ignored (``--ignore 0``);
prediction nodata pixels are not scored and are counted as ``unclassified``. Rasters are read in
blocks of rows, so memory does not grow with their size.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from rasterio.windows import Window

from .engine.reader import on_grid, open_raster
from .errors import LandcoverError
from .metrics import scores

BLOCK_ROWS = 1024


@dataclass
class EvaluateParams:
    """``mapping``: reference code → prediction class value; ``ignore``: reference codes not scored;
    ``classes``: class value → name (default: the prediction's ``LANDCOVER_CLASSES`` tag)."""

    prediction: str | Path
    reference: str | Path
    mapping: dict[int, int] = field(default_factory=dict)
    ignore: tuple[int, ...] = ()
    classes: dict[int, str] | None = None


def evaluate(params: EvaluateParams) -> dict:
    """Score the prediction; returns a dict with ``classes``, ``values``, ``confusion`` (K×K, rows =
    reference), ``scored_pixels``, ``unclassified_pixels`` and everything ``metrics.scores`` gives.

    Raises ``LandcoverError`` for missing/unreadable rasters, grids that cannot be aligned, unknown
    class names, or reference values that are neither a class nor ignored."""
    pred_path, ref_path = Path(params.prediction), Path(params.reference)
    with open_raster(pred_path, "prediction") as pred, open_raster(ref_path, "reference") as ref_ds:
        classes = params.classes
        if classes is None:
            tag = pred.tags().get("LANDCOVER_CLASSES")
            if not tag:
                raise LandcoverError(f"{pred_path} has no LANDCOVER_CLASSES tag: evaluate a class raster written by "
                                     "landcover classify (or pass EvaluateParams.classes from Python)")
            classes = {int(k): v for k, v in json.loads(tag).items()}
        values = sorted(classes)
        k = len(values)
        nodata = pred.nodata if pred.nodata is not None else 255
        to_index = np.full(256, -1, np.int64)  # prediction value → class index (-1: unclassified)
        to_index[values] = np.arange(k)
        ref_lut = np.arange(256)
        for code, value in params.mapping.items():
            ref_lut[code] = value
        ref_lut = np.where(np.isin(np.arange(256), params.ignore), -2, to_index[np.clip(ref_lut, 0, 255)])
        ref = on_grid(ref_ds, pred, "reference")
        cm = np.zeros((k, k), np.int64)
        unclassified = 0
        try:
            for row in range(0, pred.height, BLOCK_ROWS):
                window = Window(0, row, pred.width, min(BLOCK_ROWS, pred.height - row))
                p = pred.read(1, window=window)
                r = ref.read(1, window=window)
                if r.max(initial=0) > 255 or r.min(initial=0) < 0:
                    raise LandcoverError("reference values must lie in 0..255")
                r_idx = ref_lut[r.astype(np.int64)]
                unknown = r_idx == -1
                if unknown.any():
                    bad = sorted(set(np.unique(r[unknown]).tolist()))[:10]
                    raise LandcoverError(f"reference values {bad} are neither prediction classes {values} nor "
                                         "ignored: map them with --map CODE:VALUE or skip them with --ignore")
                scored = r_idx >= 0
                p_idx = to_index[p]
                unclassified += int((scored & ((p == nodata) | (p_idx < 0))).sum())
                keep = scored & (p_idx >= 0)
                cm += np.bincount(r_idx[keep] * k + p_idx[keep], minlength=k * k).reshape(k, k)
        finally:
            if ref is not ref_ds:
                ref.close()
    names = [classes[v] for v in values]
    return {"prediction": str(pred_path), "reference": str(ref_path), "classes": names, "values": values,
            "confusion": cm.tolist(), "scored_pixels": int(cm.sum()), "unclassified_pixels": unclassified,
            **scores(cm)}


def _fmt(x: float) -> str:
    return "n/a" if x != x else f"{x:.3f}"


def write_report(result: dict, json_path: Path | None = None, report_path: Path | None = None) -> None:
    """JSON of ``result``; a Markdown report and, beside it, the confusion-matrix PNG (row-normalised)."""
    if json_path:
        Path(json_path).write_text(json.dumps(result, indent=2))
    if not report_path:
        return
    report_path = Path(report_path)
    png = report_path.with_suffix(".png")
    cm = np.array(result["confusion"], float)
    names = result["classes"]
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with np.errstate(invalid="ignore"):
        share = cm / cm.sum(axis=1, keepdims=True)
    fig, ax = plt.subplots(figsize=(1.0 + 0.55 * len(names), 0.8 + 0.5 * len(names)), dpi=110)
    ax.imshow(np.nan_to_num(share), cmap="Blues", vmin=0, vmax=1)
    for i in range(len(names)):
        for j in range(len(names)):
            if cm[i, j]:
                ax.text(j, i, f"{share[i, j]:.2f}", ha="center", va="center", fontsize=7,
                        color="white" if share[i, j] > 0.5 else "black")
    ax.set_xticks(range(len(names)), names, rotation=60, ha="right", fontsize=8)
    ax.set_yticks(range(len(names)), names, fontsize=8)
    ax.set_xlabel("predicted")
    ax.set_ylabel("reference")
    ax.set_title("confusion matrix (share of each reference class)")
    fig.tight_layout()
    fig.savefig(png)
    plt.close(fig)
    rows = "\n".join(
        f"| {n} | {v} | {int(cm[i].sum()):,} | {_fmt(result['precision'][i])} | {_fmt(result['recall'][i])} | "
        f"{_fmt(result['f1'][i])} | {_fmt(result['iou'][i])} |"
        for i, (n, v) in enumerate(zip(names, result["values"])))
    header = "| reference ↓ predicted → | " + " | ".join(names) + " |"
    matrix = "\n".join(f"| {n} | " + " | ".join(f"{int(c):,}" for c in cm[i]) + " |" for i, n in enumerate(names))
    report_path.write_text(f"""# Accuracy report

- Prediction: `{result['prediction']}`
- Reference: `{result['reference']}`
- Scored pixels: {result['scored_pixels']:,}; prediction nodata over scored reference: {result['unclassified_pixels']:,}

**Overall accuracy {_fmt(result['overall_accuracy'])}**, **Cohen's kappa {_fmt(result['kappa'])}**,
**mIoU {_fmt(result['miou'])}** (over the {sum(result['present'])} classes present in the reference).

| class | value | reference pixels | precision | recall | F1 | IoU |
|---|---|---|---|---|---|---|
{rows}

## Confusion matrix (pixels; rows = reference)

{header}
|{'---|' * (len(names) + 1)}
{matrix}

![confusion matrix]({png.name})
""")
