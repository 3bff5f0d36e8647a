"""The closing summary a run prints: one table of the headline metrics per split."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from braintumor.evaluation.bootstrap import format_with_interval

# columns, named as in the metrics JSON (METRIC_NAMES)
COLUMNS = ("accuracy", "precision_macro", "recall_macro", "f1_macro", "ece", "n")


def format_metrics_table(metrics_by_split: Mapping[str, Mapping[str, Any]]) -> str:
    """Rows = splits, columns = accuracy, macro precision/recall/F1, ECE and n (and the
    accuracy collapsed to tumor type, when reported), headed by their metric names; then the
    95% intervals of accuracy and macro F1 when the reports have them (``0.912 [0.881, 0.940]``)."""
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
    intervals = {s: m["ci95"] for s, m in metrics_by_split.items() if m.get("ci95")}
    if intervals:
        method = next(m.get("ci_method", "") for m in metrics_by_split.values() if m.get("ci95"))
        lines += ["", f"95% intervals, {method.split(' (')[0]}:"]
        for split, ci in intervals.items():
            metrics = metrics_by_split[split]
            shown = [f"{k} {format_with_interval(metrics[k], ci.get(k))}"
                     for k in ("accuracy", "f1_macro") if metrics.get(k) is not None]  # fmt: skip
            lines.append(f"{split:6}" + "  ".join(shown))
    return "\n".join(lines)
