"""The closing summary a run prints: one table of the headline metrics per split."""

from __future__ import annotations

from collections.abc import Mapping

# columns, named as in the metrics JSON (METRIC_NAMES)
COLUMNS = ("accuracy", "precision_macro", "recall_macro", "f1_macro", "ece", "n")


def format_metrics_table(metrics_by_split: Mapping[str, Mapping[str, float]]) -> str:
    """Rows = splits, columns = accuracy, macro precision/recall/F1, ECE and n (and the
    accuracy collapsed to tumor type, when reported), headed by their metric names."""
    columns = list(COLUMNS)
    if any("accuracy_tumor_type" in m for m in metrics_by_split.values()):
        columns.insert(1, "accuracy_tumor_type")
    widths = [max(len(key), 8) + 2 for key in columns]
    header = f"{'':6}" + "".join(f"{key:>{w}}" for key, w in zip(columns, widths, strict=True))
    lines = [header]
    for split, metrics in metrics_by_split.items():
        cells = []
        for key, width in zip(columns, widths, strict=True):
            value = metrics.get(key, float("nan"))
            cells.append(f"{value:>{width}d}" if key == "n" else f"{value:>{width}.4f}")
        lines.append(f"{split:6}" + "".join(cells))
    return "\n".join(lines)
