"""The closing summary a run prints: one table of the headline metrics per split."""

from __future__ import annotations

from collections.abc import Mapping

COLUMNS = (("accuracy", "acc"), ("precision_macro", "precision"), ("recall_macro", "recall"),
           ("f1_macro", "f1"), ("ece", "ece"), ("n", "n"))  # fmt: skip


def format_metrics_table(metrics_by_split: Mapping[str, Mapping[str, float]]) -> str:
    """Rows = splits, columns = accuracy, macro precision/recall/F1, ECE and n (and the
    accuracy collapsed to tumor type, when reported)."""
    columns = list(COLUMNS)
    if any("accuracy_tumor_type" in m for m in metrics_by_split.values()):
        columns.insert(1, ("accuracy_tumor_type", "acc(type)"))
    header = f"{'':6}" + "".join(f"{label:>11}" for _, label in columns)
    lines = [header]
    for split, metrics in metrics_by_split.items():
        cells = []
        for key, _ in columns:
            value = metrics.get(key, float("nan"))
            cells.append(f"{value:>11d}" if key == "n" else f"{value:>11.4f}")
        lines.append(f"{split:6}" + "".join(cells))
    return "\n".join(lines)
