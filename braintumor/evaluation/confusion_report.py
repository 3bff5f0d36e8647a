"""The confusion-matrix files of one split: a PNG and an interactive HTML page per label set
(the classes, and each grouping such as the tumor type of a 44-class model)."""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from braintumor.atomic import write_atomically
from braintumor.evaluation.confusion import confusion_counts_matrix, plot_confusion_matrix
from braintumor.evaluation.confusion_html import cell_examples, confusion_html


def grouped(labels: np.ndarray, group_of_class: Sequence[str]) -> tuple[np.ndarray, list[str]]:
    """Class indices as indices of their groups (groups in order of first appearance)."""
    names = list(dict.fromkeys(group_of_class))
    index = np.array([names.index(g) for g in group_of_class], dtype=np.int64)
    return index[np.asarray(labels, dtype=np.int64)], names


def write_confusion_reports(
    out: Path,
    split: str,
    y_true: np.ndarray,
    y_pred: np.ndarray,
    class_names: Sequence[str],
    paths: Sequence[str] | None = None,
    collapse: Mapping[str, Sequence[str]] | None = None,
    *,
    min_support: int,
) -> list[Path]:
    """Write ``confusion_matrix_{split}.png`` and ``.html`` and, for each ``collapse`` entry
    (name -> group of each class), ``confusion_matrix_{split}_{name}.png`` and ``.html``.
    ``paths``: the file of each image, listed as examples on hover. Returns the PNGs."""
    written = []
    sets = [("", np.asarray(y_true), np.asarray(y_pred), list(class_names))]
    for name, group_of_class in (collapse or {}).items():
        true_g, names = grouped(y_true, group_of_class)
        sets.append((f"_{name}", true_g, grouped(y_pred, group_of_class)[0], names))
    for suffix, truth, pred, names in sets:
        stem = f"confusion_matrix_{split}{suffix}"
        label = f"{split}{suffix.replace('_', ' ')} (n={len(truth)})"
        fig = plot_confusion_matrix(truth, pred, names, title=label, min_support=min_support)
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=fig.dpi)
        plt.close(fig)
        written.append(write_atomically(out / f"{stem}.png", buffer.getvalue()))
        examples = cell_examples(truth, pred, paths) if paths is not None else None
        counts = confusion_counts_matrix(truth, pred, len(names))
        page = confusion_html(
            counts, names, examples, f"confusion matrix: {label}", min_support=min_support
        )
        write_atomically(out / f"{stem}.html", page)
    return written
