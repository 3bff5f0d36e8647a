"""Per-class precision, recall, F1 and support."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from sklearn.metrics import precision_recall_fscore_support

from braintumor.atomic import write_atomically


def classification_report_rows(
    y_true: np.ndarray, y_pred: np.ndarray, class_names: Sequence[str]
) -> list[dict[str, object]]:
    """One row per class, then ``macro avg`` and ``weighted avg`` rows (scikit-learn's)."""
    labels = list(range(len(class_names)))
    p, r, f, s = precision_recall_fscore_support(
        y_true, y_pred, labels=labels, average=None, zero_division=0
    )
    rows: list[dict[str, object]] = [
        {"class": name, "precision": p[i], "recall": r[i], "f1": f[i], "support": int(s[i])}
        for i, name in enumerate(class_names)
    ]
    for average in ("macro", "weighted"):
        ap, ar, af, _ = precision_recall_fscore_support(
            y_true, y_pred, labels=labels, average=average, zero_division=0
        )
        rows.append(
            {"class": f"{average} avg", "precision": ap, "recall": ar, "f1": af,
             "support": int(s.sum())}
        )  # fmt: skip
    return rows


def write_classification_report(
    path: str | Path, y_true: np.ndarray, y_pred: np.ndarray, class_names: Sequence[str]
) -> Path:
    """Write :func:`classification_report_rows` as CSV (floats with 4 decimals)."""
    return write_report_rows(path, classification_report_rows(y_true, y_pred, class_names))


def write_report_rows(path: str | Path, rows: Sequence[dict[str, object]]) -> Path:
    """Write rows of :func:`classification_report_rows` as CSV (floats with 4 decimals)."""
    path = Path(path)
    columns = ["class", "precision", "recall", "f1", "support"]
    for row in rows:  # further per-class columns (AUROC, specificity, ...) in their order
        columns += [k for k in row if k not in columns]
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=columns)
    writer.writeheader()
    for row in rows:
        cells = {k: "" if v is None else v for k, v in row.items()}
        writer.writerow({k: f"{v:.4f}" if isinstance(v, float) else v for k, v in cells.items()})
    return write_atomically(path, text.getvalue())
