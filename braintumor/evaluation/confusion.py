"""Confusion-matrix figure that stays readable from 2 to 44+ classes: counts (with each row's
support) beside row-normalized rates, every non-zero cell numbered."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.axes import Axes
from matplotlib.colors import LinearSegmentedColormap, LogNorm, Normalize, PowerNorm
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

MIN_LABEL_PX = 9  # the smallest text of the figure, in pixels at 100% zoom
# "Blues" without its near-white start: a cell holding 1 is visibly blue, an empty cell white
CELL_COLORS = LinearSegmentedColormap.from_list(
    "cells", plt.get_cmap("Blues")(np.linspace(0.22, 1, 256))
)
FEW_COLORS = LinearSegmentedColormap.from_list(
    "few", plt.get_cmap("Greys")(np.linspace(0.15, 0.55, 256))
)


@dataclass(frozen=True)
class ConfusionLayout:
    """Sizes of a confusion-matrix figure of ``n`` classes: ``font`` (points) of the labels and
    cell numbers, ``cell`` (inches) per cell, ``dpi`` of the PNG. A label is
    ``font * dpi / 72`` pixels tall."""

    n: int
    font: float
    cell: float
    dpi: int

    @classmethod
    def for_classes(cls, n: int, dpi: int = 110) -> ConfusionLayout:
        font = 9.0 if n <= 12 else 8.0 if n <= 25 else 7.0
        font = max(font, MIN_LABEL_PX * 72 / dpi)  # never under MIN_LABEL_PX at this dpi
        # a cell holds "0.00" or a 3-digit count; small matrices still get a panel of ~3 in
        cell = max(font * 0.048, 3.0 / max(n, 1))
        return cls(n, font, cell, dpi)

    @property
    def label_px(self) -> float:
        return self.font * self.dpi / 72


def confusion_counts_matrix(y_true: np.ndarray, y_pred: np.ndarray, n: int) -> np.ndarray:
    """``n x n`` counts: row = true class, column = predicted class (class indices)."""
    y_true = np.asarray(y_true, dtype=np.int64).ravel()
    y_pred = np.asarray(y_pred, dtype=np.int64).ravel()
    if len(y_true) != len(y_pred):
        raise ValueError(f"{len(y_true)} true labels but {len(y_pred)} predictions.")
    outside = [int(v) for v in np.concatenate([y_true, y_pred]) if not 0 <= v < n]
    if outside:
        raise ValueError(
            f"class indices must be in [0, {n}) for {n} class names, got {outside[:5]}."
        )
    return np.bincount(y_true * n + y_pred, minlength=n * n).reshape(n, n)


def row_rates(counts: np.ndarray) -> np.ndarray:
    """Each row divided by its support (all zero for a class without images)."""
    support = counts.sum(axis=1, keepdims=True)
    return np.divide(counts, support, out=np.zeros_like(counts, dtype=float), where=support > 0)


def plot_confusion_matrix(
    y_true: np.ndarray,
    y_pred: np.ndarray,
    class_names: Sequence[str],
    title: str = "",
    *,
    min_support: int,
    dpi: int = 110,
) -> Figure:
    """Two panels: counts, on a log colour scale where 1 differs from 0 (empty cells are
    white), with each class's support at the right; and each row divided by its support
    (recall on the diagonal), where rows of fewer than ``min_support`` images are grey and
    hatched and their cells read ``count/support`` instead of a rate. Every non-zero cell is
    numbered; font and figure size follow the class count (:class:`ConfusionLayout`)."""
    n = len(class_names)
    layout = ConfusionLayout.for_classes(n, dpi)
    counts = confusion_counts_matrix(y_true, y_pred, n)
    few = counts.sum(axis=1) < min_support
    # the axes are placed in inches: cells keep their size whatever the label lengths
    pt = layout.font / 72  # inches per point of text
    longest = max((len(str(c)) for c in class_names), default=1)
    labels = longest * layout.font * 0.62 / 72 + 2.2 * pt * 1.3  # tick labels + axis label
    panel = n * layout.cell
    digits = len(str(int(counts.sum(axis=1).max(initial=0))))
    right = [digits * 0.7 * pt + 3 * pt + 0.15, 0.15]  # support labels (counts panel only)
    bar = 0.18 + 0.12 + 6 * pt + 2 * pt  # gap, bar, its tick labels and its label
    top, bottom = 0.45 + (4 * pt if title else 0), labels + 0.15
    width = 2 * (labels + panel + bar) + sum(right) + 0.3
    height = top + panel + bottom
    fig = plt.figure(figsize=(width, height), dpi=dpi)
    x = labels
    for k, draw in enumerate((_counts_panel, _rates_panel)):
        ax = fig.add_axes((x / width, bottom / height, panel / width, panel / height))
        x += panel + right[k]
        cax = fig.add_axes(((x + 0.18) / width, bottom / height, 0.12 / width, panel / height))
        draw(fig, ax, cax, counts, class_names, layout, few, min_support)
        x += bar + labels
    if title:
        fig.suptitle(title, fontsize=layout.font + 3, y=1 - 0.12 / height, va="top")
    return fig


def _axes_labels(ax: Axes, class_names: Sequence[str], layout: ConfusionLayout, name: str) -> None:
    n = len(class_names)
    ax.set_xticks(range(n), class_names, rotation=90, fontsize=layout.font)
    ax.set_yticks(range(n), class_names, fontsize=layout.font)
    ax.set_xlabel("predicted", fontsize=layout.font + 1)
    ax.set_ylabel("true", fontsize=layout.font + 1)
    ax.set_title(name, fontsize=layout.font + 2)
    ax.set_xticks(np.arange(-0.5, n, 1), minor=True)
    ax.set_yticks(np.arange(-0.5, n, 1), minor=True)
    ax.grid(which="minor", color="0.9", linewidth=0.5)
    ax.tick_params(which="minor", length=0)


def _number(ax: Axes, i: int, j: int, text: str, dark: bool, layout: ConfusionLayout) -> None:
    ax.text(j, i, text, ha="center", va="center", fontsize=layout.font,
            color="white" if dark else "black")  # fmt: skip


def _counts_panel(fig: Figure, ax: Axes, cax: Axes, counts: np.ndarray,
                  class_names: Sequence[str], layout: ConfusionLayout, few: np.ndarray,
                  min_support: int) -> None:  # fmt: skip
    top = max(int(counts.max()), 2)
    norm = LogNorm(vmin=1, vmax=top)
    image = ax.imshow(np.ma.masked_equal(counts, 0), cmap=CELL_COLORS, norm=norm)
    bar = fig.colorbar(image, cax=cax)
    bar.ax.tick_params(labelsize=layout.font)
    bar.set_label("images (log scale; empty cells white)", fontsize=layout.font)
    _axes_labels(ax, class_names, layout, "counts")
    for i, j in zip(*np.nonzero(counts), strict=True):
        _number(ax, i, j, str(counts[i, j]), norm(counts[i, j]) > 0.6, layout)
    side = ax.secondary_yaxis("right")
    side.set_yticks(range(len(class_names)), [str(s) for s in counts.sum(axis=1)],
                    fontsize=layout.font)  # fmt: skip
    side.set_ylabel("support (images)", fontsize=layout.font + 1)


def _rates_panel(fig: Figure, ax: Axes, cax: Axes, counts: np.ndarray,
                 class_names: Sequence[str], layout: ConfusionLayout, few: np.ndarray,
                 min_support: int) -> None:  # fmt: skip
    rates = row_rates(counts)
    norm = PowerNorm(gamma=0.5, vmin=0, vmax=1)  # small confusions stay visible
    trusted = np.ma.masked_where((rates == 0) | few[:, None], rates)
    image = ax.imshow(trusted, cmap=CELL_COLORS, norm=norm)
    if few.any():
        ax.imshow(np.ma.masked_where((rates == 0) | ~few[:, None], rates), cmap=FEW_COLORS,
                  norm=Normalize(0, 1))  # fmt: skip
    bar = fig.colorbar(image, cax=cax)
    bar.ax.tick_params(labelsize=layout.font)
    bar.set_label("share of the true class (recall on the diagonal)", fontsize=layout.font)
    name = "row-normalized"
    if few.any():
        name += f"\nhatched rows: fewer than {min_support} images, shown as count/support"
    _axes_labels(ax, class_names, layout, name)
    support = counts.sum(axis=1)
    for i in np.nonzero(few)[0]:
        ax.add_patch(Rectangle((-0.5, i - 0.5), len(class_names), 1, fill=False, hatch="///",
                               edgecolor="0.75", linewidth=0))  # fmt: skip
    for i, j in zip(*np.nonzero(counts), strict=True):
        if few[i]:
            _number(ax, i, j, f"{counts[i, j]}/{support[i]}", False, layout)
        else:
            _number(ax, i, j, f"{rates[i, j]:.2f}", norm(rates[i, j]) > 0.6, layout)
