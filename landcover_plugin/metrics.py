"""Segmentation accuracy from a confusion matrix (the standard definitions, e.g. Csurka et al. 2013;
Cohen 1960 for kappa).

``confusion[i, j]`` counts pixels of reference class ``i`` predicted as class ``j``.
precision_c = TP / (TP + FP); recall_c = TP / (TP + FN); IoU_c = TP / (TP + FP + FN);
F1_c = 2TP / (2TP + FP + FN); kappa = (p_o - p_e) / (1 - p_e) with p_o the overall accuracy and p_e the
agreement expected by chance from the row and column totals. mIoU averages IoU over the classes
present in the reference (a class absent from the reference has no IoU).
"""
from __future__ import annotations

import numpy as np


def confusion_matrix(reference: np.ndarray, predicted: np.ndarray, num_classes: int, ignore: int = 255) -> np.ndarray:
    """``(K, K)`` int64 counts over pixels whose reference is not ``ignore``; class ids 0..K-1."""
    keep = reference != ignore
    ref = reference[keep].astype(np.int64)
    pred = predicted[keep].astype(np.int64)
    return np.bincount(ref * num_classes + pred, minlength=num_classes * num_classes).reshape(num_classes, num_classes)


def scores(confusion: np.ndarray) -> dict:
    """Overall accuracy, per-class IoU and F1 (NaN where undefined) and mIoU over present classes."""
    cm = confusion.astype(np.float64)
    tp = np.diag(cm)
    ref = cm.sum(axis=1)
    pred = cm.sum(axis=0)
    total = cm.sum()
    with np.errstate(invalid="ignore", divide="ignore"):
        iou = tp / (ref + pred - tp)
        f1 = 2 * tp / (ref + pred)
        precision = tp / pred
        recall = tp / ref
        p_o = tp.sum() / total
        p_e = (ref * pred).sum() / total ** 2
        kappa = (p_o - p_e) / (1 - p_e)
    present = ref > 0
    return {
        "overall_accuracy": float(p_o) if total else float("nan"),
        "kappa": float(kappa) if total else float("nan"),
        "precision": precision.tolist(),
        "recall": recall.tolist(),
        "iou": iou.tolist(),
        "f1": f1.tolist(),
        "miou": float(np.mean(iou[present])) if present.any() else float("nan"),
        "present": present.tolist(),
    }
