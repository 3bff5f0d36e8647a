"""Write every report file of one split into a run's ``reports/`` folder."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from braintumor.atomic import write_atomically
from braintumor.evaluation.classification import classification_report_rows, write_report_rows
from braintumor.evaluation.confusion_report import write_confusion_reports
from braintumor.evaluation.metrics import collapsed_accuracy, summary_metrics


@dataclass(frozen=True)
class SplitReport:
    """The numbers of one split's report files, computed once from its predictions.

    ``metrics``: the content of ``{split}_metrics.json`` (names of
    :data:`~braintumor.vocabulary.METRIC_NAMES`, plus ``extra``); ``per_class``: the
    rows of ``classification_report_{split}.csv`` (``class``, ``precision``, ``recall``,
    ``f1``, ``support``; one per class, then the ``macro avg`` and ``weighted avg`` rows).
    """

    metrics: dict[str, Any]
    per_class: list[dict[str, Any]]

    def class_rows(self) -> list[dict[str, Any]]:
        """The rows of the classes alone (without the two average rows that end the table)."""
        return self.per_class[:-2]


def write_split_reports(
    out_dir: str | Path,
    split: str,
    y_true: np.ndarray,
    y_prob: np.ndarray,
    class_names: Sequence[str],
    extra: dict | None = None,
    collapse: Mapping[str, Sequence[str]] | None = None,
    *,
    ece_bins: int,
    min_support: int,
    per_class_extra: Sequence[Mapping[str, Any]] = (),
    paths: Sequence[str] | None = None,
) -> SplitReport:
    """Write ``{split}_metrics.json``, ``classification_report_{split}.csv`` and the
    confusion matrices (``confusion_matrix_{split}.png`` and ``.html``, and one per
    ``collapse`` entry) into ``out_dir``; return their numbers.

    ``collapse`` maps a name to the group of each class (e.g. ``"tumor_type"``); the metrics
    then include ``accuracy_<name>``, the accuracy with classes merged into their groups.
    ``ece_bins``: bins of the calibration error (the model's ``ece_bins``).
    ``per_class_extra``: more columns of the classification report, one dict per class.
    ``paths``: each image's file (examples in the HTML confusion matrix); ``min_support``:
    rows of fewer images are marked in the row-normalized matrix.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    y_pred = np.asarray(y_prob).argmax(axis=1)
    metrics = summary_metrics(y_true, y_prob, class_names, ece_bins)
    for name, group_of_class in (collapse or {}).items():
        metrics[f"accuracy_{name}"] = collapsed_accuracy(y_true, y_pred, group_of_class)
    metrics.update(extra or {})
    text = json.dumps(json_safe(metrics), indent=2, allow_nan=False) + "\n"
    write_atomically(out / f"{split}_metrics.json", text)
    rows = classification_report_rows(y_true, y_pred, class_names)
    for row, more in zip(rows, per_class_extra, strict=False):
        row.update({k: v for k, v in more.items() if k != "class"})
    write_report_rows(out / f"classification_report_{split}.csv", rows)
    write_confusion_reports(
        out, split, y_true, y_pred, class_names, paths, collapse, min_support=min_support
    )
    return SplitReport(metrics, rows)


def json_safe(value: Any) -> Any:
    """``value`` with NumPy numbers as Python ones and NaN/inf as ``None`` (strict JSON)."""
    if isinstance(value, Mapping):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value
