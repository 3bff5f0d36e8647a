"""Per-class numbers beyond precision/recall/F1: one-vs-rest AUROC, specificity, balanced
accuracy and calibration error, from scikit-learn and torchmetrics. A number a split cannot
define (a class absent from it) is ``None`` with the reason, never a crash."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from sklearn.metrics import roc_auc_score
from torchmetrics.functional.classification import (
    binary_calibration_error,
    multiclass_specificity,
)


def per_class_metrics(
    y_true: Sequence[int], y_prob: np.ndarray, class_names: Sequence[str], ece_bins: int
) -> list[dict[str, object]]:
    """One dict per class: ``auroc`` (one-vs-rest), ``specificity``, ``balanced_accuracy``
    (mean of its sensitivity and specificity), ``ece`` (its one-vs-rest calibration error)
    and ``undefined`` (why some are ``None``)."""
    y_true = np.asarray(y_true, dtype=np.int64)
    y_prob = np.asarray(y_prob, dtype=np.float64)
    k = len(class_names)
    if len(y_true) == 0:
        empty = dict.fromkeys(("auroc", "specificity", "balanced_accuracy", "ece"))
        return [{"class": c, **empty, "undefined": "no image in this split"} for c in class_names]
    preds, target = torch.from_numpy(y_prob).float(), torch.from_numpy(y_true)
    specificity = multiclass_specificity(preds, target, k, average=None).tolist()
    y_pred = y_prob.argmax(1)
    rows = []
    for c, name in enumerate(class_names):
        positive = y_true == c
        row: dict[str, object] = {"class": name}
        reasons = []
        if positive.all() or not positive.any():
            row["auroc"] = None
            reasons.append("no image of this class" if not positive.any() else "only this class")
        else:
            row["auroc"] = float(roc_auc_score(positive, y_prob[:, c]))
        negatives = (~positive).sum()
        row["specificity"] = float(specificity[c]) if negatives else None
        if positive.any() and negatives:
            sensitivity = float(np.mean(y_pred[positive] == c))
            row["balanced_accuracy"] = (sensitivity + float(specificity[c])) / 2
        else:
            row["balanced_accuracy"] = None
        row["ece"] = float(
            binary_calibration_error(
                preds[:, c], torch.from_numpy(positive.astype(np.int64)), n_bins=ece_bins, norm="l1"
            )
        )
        row["undefined"] = "; ".join(reasons)
        rows.append(row)
    return rows
