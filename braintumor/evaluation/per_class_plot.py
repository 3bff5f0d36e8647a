"""One figure of the per-class numbers of a split: F1 as bars, precision and recall as marks,
the support beside each class (instead of one chart per class and metric)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

FONT = 8  # points: 11 px at the figure's 100 dpi


def plot_per_class(rows: Sequence[Mapping[str, Any]], title: str = "") -> Figure:
    """``rows``: the classification report's rows of the classes (``class``, ``precision``,
    ``recall``, ``f1``, ``support``), drawn top to bottom in their order."""
    names = [str(r["class"]) for r in rows]
    n = len(names)
    values = {k: np.array([float(r[k]) for r in rows]) for k in ("precision", "recall", "f1")}
    longest = max((len(s) for s in names), default=1)
    fig, ax = plt.subplots(figsize=(4.5 + longest * FONT * 0.62 / 72, 1.5 + 0.24 * n), dpi=100,
                           layout="constrained")  # fmt: skip
    y = np.arange(n)
    ax.barh(y, values["f1"], color="#9ecae1", edgecolor="#1f4e79", label="F1")
    ax.plot(values["precision"], y, "|", color="#c0392b", markersize=9, mew=2, label="precision")
    ax.plot(values["recall"], y, "o", color="#1f4e79", markersize=4, label="recall")
    for k, row in enumerate(rows):
        ax.text(1.03, k, f"n={int(float(row['support']))}", va="center", fontsize=FONT)
    ax.set_yticks(y, names, fontsize=FONT)
    ax.set_ylim(n - 0.5, -0.5)  # first class on top, no margins
    ax.set_xlim(-0.01, 1.01)
    ax.tick_params(axis="x", labelsize=FONT)
    ax.set_xlabel("score", fontsize=FONT)
    ax.legend(fontsize=FONT, loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=3, frameon=False)
    ax.set_title(title or "per class", fontsize=FONT + 2, pad=22)
    return fig
