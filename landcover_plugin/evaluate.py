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
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from .engine.reader import grid_of, on_grid, open_raster, read_window
from .engine.windows import PixelWindow
from .engine.writer import read_classes_tag
from .errors import LandcoverError
from .metrics import scores
from .outputs import AtomicOutputs

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


@dataclass
class EvaluateResult:
    """Scores of a prediction against a reference (``metrics.scores``; per-class lists follow
    ``classes``). ``confusion``: K×K pixel counts, rows = reference."""

    prediction: str
    reference: str
    classes: list[str]
    values: list[int]
    confusion: list[list[int]]
    scored_pixels: int
    unclassified_pixels: int
    overall_accuracy: float
    kappa: float
    miou: float
    precision: list[float]
    recall: list[float]
    f1: list[float]
    iou: list[float]
    present: list[bool]

    def to_dict(self) -> dict:
        return asdict(self)

    def summary(self) -> str:
        """Overall figures, then a per-class table."""
        lines = [f"overall accuracy {self.overall_accuracy:.4f}, kappa {self.kappa:.4f}, mIoU {self.miou:.4f} over "
                 f"{sum(self.present)} classes; {self.scored_pixels:,} pixels scored",
                 f"{'class':<24}{'precision':>10}{'recall':>10}{'F1':>8}{'IoU':>8}"]
        for i, name in enumerate(self.classes):
            lines.append(f"{name:<24}{self.precision[i]:>10.3f}{self.recall[i]:>10.3f}{self.f1[i]:>8.3f}{self.iou[i]:>8.3f}")
        return "\n".join(lines)


def evaluate(params: EvaluateParams) -> EvaluateResult:
    """Score the prediction against the reference.

    Raises ``LandcoverError`` for missing/unreadable rasters, grids that cannot be aligned, a prediction
    without class metadata, or reference values that are neither a class nor ignored."""
    pred_path, ref_path = Path(params.prediction), Path(params.reference)
    pred = open_raster(pred_path, "prediction")
    ref_ds = open_raster(ref_path, "reference")
    classes = params.classes or read_classes_tag(pred, str(pred_path), "evaluate a class raster written by landcover "
                                                 "classify (or pass EvaluateParams.classes from Python)")
    values = sorted(classes)
    k = len(values)
    nodata = pred.GetRasterBand(1).GetNoDataValue()
    nodata = 255 if nodata is None else int(nodata)
    to_index = np.full(256, -1, np.int64)  # prediction value → class index (-1: unclassified)
    to_index[values] = np.arange(k)
    ref_lut = np.arange(256)
    for code, value in params.mapping.items():
        ref_lut[code] = value
    ref_lut = np.where(np.isin(np.arange(256), params.ignore), -2, to_index[np.clip(ref_lut, 0, 255)])
    grid = grid_of(pred)
    ref = on_grid(ref_ds, grid, str(ref_path), f"prediction {pred_path}", "reference")
    cm = np.zeros((k, k), np.int64)
    unclassified = 0
    for row in range(0, grid.height, BLOCK_ROWS):
        window = PixelWindow(0, row, grid.width, min(BLOCK_ROWS, grid.height - row))
        p = read_window(pred, (1,), window, str(pred_path))[0]
        r = read_window(ref, (1,), window, str(ref_path))[0]
        if r.max(initial=0) > 255 or r.min(initial=0) < 0:
            raise LandcoverError(f"reference values must lie in 0..255 ({ref_path} has {r.min()}..{r.max()}): give a label raster")
        r_idx = ref_lut[r.astype(np.int64)]
        unknown = r_idx == -1
        if unknown.any():
            bad = sorted(set(np.unique(r[unknown]).tolist()))[:10]
            raise LandcoverError(f"reference values {bad} are neither prediction classes {values} nor "
                                 "ignored: map them with --map CODE:VALUE or skip them with --ignore")
        scored = r_idx >= 0
        p_idx = to_index[p.astype(np.int64)]
        unclassified += int((scored & ((p == nodata) | (p_idx < 0))).sum())
        keep = scored & (p_idx >= 0)
        cm += np.bincount(r_idx[keep] * k + p_idx[keep], minlength=k * k).reshape(k, k)
    return EvaluateResult(str(pred_path), str(ref_path), [classes[v] for v in values], values, cm.tolist(), int(cm.sum()),
                          unclassified, **scores(cm))


def _fmt(x: float) -> str:
    return "n/a" if x != x else f"{x:.3f}"


def write_report(evaluation: EvaluateResult, json_path: Path | None = None, report_path: Path | None = None) -> None:
    """JSON of the result; a Markdown report and, beside it, the confusion-matrix PNG (row-normalised).
    Each file is written under a temporary name and renamed when complete."""
    result = evaluation.to_dict()
    with AtomicOutputs() as outputs:
        if json_path:
            outputs.add(json_path).write_text(json.dumps(result, indent=2))
        if report_path:
            _write_report(result, Path(report_path), outputs)
        outputs.commit()


def _write_report(result: dict, report_path: Path, outputs: AtomicOutputs) -> None:
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
    fig.savefig(outputs.add(png), format="png")
    plt.close(fig)
    rows = "\n".join(
        f"| {n} | {v} | {int(cm[i].sum()):,} | {_fmt(result['precision'][i])} | {_fmt(result['recall'][i])} | "
        f"{_fmt(result['f1'][i])} | {_fmt(result['iou'][i])} |"
        for i, (n, v) in enumerate(zip(names, result["values"])))
    header = "| reference ↓ predicted → | " + " | ".join(names) + " |"
    matrix = "\n".join(f"| {n} | " + " | ".join(f"{int(c):,}" for c in cm[i]) + " |" for i, n in enumerate(names))
    outputs.add(report_path).write_text(f"""# Accuracy report

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
