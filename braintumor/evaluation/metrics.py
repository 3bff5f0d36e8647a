"""Summary metrics of one split, named as in :mod:`braintumor.vocabulary`."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sklearn.metrics import accuracy_score, log_loss, precision_recall_fscore_support

from braintumor.evaluation.calibration import expected_calibration_error


def summary_metrics(
    y_true: np.ndarray, y_prob: np.ndarray, class_names: Sequence[str], ece_bins: int
) -> dict[str, float | int]:
    """``accuracy``, macro and weighted precision/recall/F1, ``ece``, ``log_loss`` and ``n``.

    Macro averages run over every class of the model (a class absent from ``y_true`` and
    never predicted counts as 0), matching torchmetrics' macro averages during training.
    """
    y_true = np.asarray(y_true)
    y_prob = np.asarray(y_prob, dtype=np.float64)
    y_pred = y_prob.argmax(axis=1)
    labels = list(range(len(class_names)))
    out: dict[str, float | int] = {"n": len(y_true)}
    out["accuracy"] = float(accuracy_score(y_true, y_pred))
    for average in ("macro", "weighted"):
        p, r, f, _ = precision_recall_fscore_support(
            y_true, y_pred, labels=labels, average=average, zero_division=0
        )
        out[f"precision_{average}"] = float(p)
        out[f"recall_{average}"] = float(r)
        out[f"f1_{average}"] = float(f)
    out["ece"] = expected_calibration_error(y_true, y_prob, ece_bins)
    clipped = np.clip(y_prob, 1e-12, 1.0)
    out["log_loss"] = float(
        log_loss(y_true, clipped / clipped.sum(1, keepdims=True), labels=labels)
    )
    return out


def collapsed_accuracy(
    y_true: np.ndarray, y_pred: np.ndarray, group_of_class: Sequence[str]
) -> float:
    """Accuracy after mapping every class to its group (e.g. "Meningioma T1" -> "Meningioma"):
    confusing two sequences of one tumor type is then no mistake."""
    groups = np.asarray(group_of_class, dtype=object)
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    if len(y_true) == 0:
        return float("nan")
    return float(np.mean(groups[y_true] == groups[y_pred]))
