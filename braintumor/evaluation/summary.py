"""The closing summary a run prints: one table of the headline metrics per split."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from braintumor.evaluation.bootstrap import format_with_interval
from braintumor.vocabulary import names_in

COLUMNS = names_in("console")  # named as in the metrics JSON
# a column's header: its group (a row above, spanning the group's columns) and its own label
HEADERS = {"accuracy_tumor_type": ("tumor type", "accuracy")} | {
    f"{name}_macro": ("macro", name) for name in ("precision", "recall", "f1")
}
SPLIT_WIDTH = 6


def _header(columns: list[str], widths: list[int]) -> list[str]:
    """The group row (``--- macro ---`` over precision, recall, f1) and the label row."""
    groups, labels = " " * SPLIT_WIDTH, " " * SPLIT_WIDTH
    spans: list[tuple[str, int]] = []  # (group, width) of runs of columns sharing a group
    for key, width in zip(columns, widths, strict=True):
        group, label = HEADERS.get(key, ("", key))
        labels += f"{label:>{width}}"
        if spans and spans[-1][0] == group and group:
            spans[-1] = (group, spans[-1][1] + width)
        else:
            spans.append((group, width))
    for group, width in spans:
        groups += f" {f' {group} ':-^{width - 1}}" if group else " " * width
    return [groups.rstrip(), labels]


def format_metrics_table(metrics_by_split: Mapping[str, Mapping[str, Any]]) -> str:
    """Rows = splits, columns = accuracy, macro precision/recall/F1, ECE and n (and the
    accuracy collapsed to tumor type, when reported), under a header that says which are
    macro averages; then the 95% intervals of accuracy and macro F1 when the reports have
    them (``0.912 [0.881, 0.940]``). Fits in 80 columns."""
    columns = list(COLUMNS)
    if any("accuracy_tumor_type" in m for m in metrics_by_split.values()):
        columns.insert(1, "accuracy_tumor_type")
    widths = [max(len(part) for part in HEADERS.get(key, (key,))) + 2 for key in columns]
    widths = [max(w, 8) for w in widths]
    lines = _header(columns, widths)
    for split, metrics in metrics_by_split.items():
        cells = []
        for key, width in zip(columns, widths, strict=True):
            value = metrics.get(key, float("nan"))
            cells.append(f"{value:>{width}d}" if key == "n" else f"{value:>{width}.4f}")
        lines.append(f"{split:{SPLIT_WIDTH}}" + "".join(cells))
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
