"""Confusion-matrix figure: counts beside row-normalized rates."""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure
from sklearn.metrics import confusion_matrix


def plot_confusion_matrix(
    y_true: np.ndarray, y_pred: np.ndarray, class_names: Sequence[str], title: str = ""
) -> Figure:
    """Two panels (counts, and each row divided by the class's support), sized so that the
    labels stay readable from 2 to 44+ classes. Cell values are printed up to 25 classes."""
    n = len(class_names)
    counts = confusion_matrix(y_true, y_pred, labels=list(range(n)))
    support = counts.sum(axis=1, keepdims=True)
    rates = np.divide(counts, support, out=np.zeros_like(counts, dtype=float), where=support > 0)
    side = max(4.5, 0.28 * n + 2.5)
    font = 9 if n <= 12 else max(5, 9 - (n - 12) // 8)
    fig, axes = plt.subplots(1, 2, figsize=(2 * side + 1.5, side + 0.8), layout="constrained")
    panels = [(counts, "counts", "d", "Blues"), (rates, "row-normalized (recall)", ".2f", "Blues")]
    for ax, (matrix, name, fmt, cmap) in zip(axes, panels, strict=True):
        image = ax.imshow(matrix, cmap=cmap, vmin=0, vmax=1 if fmt == ".2f" else None)
        fig.colorbar(image, ax=ax, fraction=0.046, pad=0.02)
        ax.set_xticks(range(n), class_names, rotation=90, fontsize=font)
        ax.set_yticks(range(n), class_names, fontsize=font)
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
        ax.set_title(name)
        if n <= 25:
            limit = matrix.max() / 2 if matrix.max() > 0 else 0.5
            for i in range(n):
                for j in range(n):
                    if matrix[i, j] == 0:
                        continue
                    color = "white" if matrix[i, j] > limit else "black"
                    text = format(matrix[i, j], fmt)
                    ax.text(j, i, text, ha="center", va="center", fontsize=font - 1, color=color)
    if title:
        fig.suptitle(title)
    return fig
