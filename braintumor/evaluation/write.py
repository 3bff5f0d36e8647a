"""Write every report file of one split into a run's ``reports/`` folder."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from braintumor.evaluation.classification import write_classification_report
from braintumor.evaluation.confusion import plot_confusion_matrix
from braintumor.evaluation.metrics import collapsed_accuracy, summary_metrics


def write_split_reports(
    out_dir: str | Path,
    split: str,
    y_true: np.ndarray,
    y_prob: np.ndarray,
    class_names: Sequence[str],
    extra: dict | None = None,
    collapse: Mapping[str, Sequence[str]] | None = None,
) -> dict:
    """Write ``{split}_metrics.json``, ``classification_report_{split}.csv`` and
    ``confusion_matrix_{split}.png`` into ``out_dir``; return the metrics (with ``extra``).

    ``collapse`` maps a name to the group of each class (e.g. ``"tumor_type"``); the metrics
    then include ``accuracy_<name>``, the accuracy with classes merged into their groups.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    y_pred = np.asarray(y_prob).argmax(axis=1)
    metrics = summary_metrics(y_true, y_prob, class_names)
    for name, group_of_class in (collapse or {}).items():
        metrics[f"accuracy_{name}"] = collapsed_accuracy(y_true, y_pred, group_of_class)
    metrics.update(extra or {})
    (out / f"{split}_metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    write_classification_report(
        out / f"classification_report_{split}.csv", y_true, y_pred, class_names
    )
    fig = plot_confusion_matrix(y_true, y_pred, class_names, title=f"{split} (n={len(y_true)})")
    fig.savefig(out / f"confusion_matrix_{split}.png", dpi=110)
    plt.close(fig)
    return metrics
