"""Metrics by subgroup: MRI sequence, the source image's mode and size, the source dataset.

A model can be good on average and poor on T2 slices or on small screenshots; the subgroup
table shows it. Subgroups with fewer than :data:`MIN_IMAGES` images are listed without
metrics (too few to mean anything)."""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from braintumor.atomic import write_atomically
from braintumor.data.taxonomy import parse_folder
from braintumor.evaluation.bootstrap import confusion_counts, metrics_from_counts

MIN_IMAGES = 5
SIZE_BUCKETS = ((256, "< 256 px"), (512, "256-511 px"), (10**9, ">= 512 px"))


def sequence_of(folder: str) -> str:
    """``"Meningioma T1C+"`` -> ``"T1C+"``; ``"unknown"`` without a sequence part."""
    parsed = parse_folder(folder)
    return parsed[1] if parsed else "unknown"


def size_bucket(width: int, height: int) -> str:
    """The size bucket of an image by its longer side."""
    side = max(width, height)
    return next(name for limit, name in SIZE_BUCKETS if side < limit)


def mode_group(mode: str) -> str:
    """``grayscale`` for one-channel modes, ``color`` for the others (RGB, CMYK, palettes)."""
    return "grayscale" if mode in ("L", "I", "I;16", "I;16B", "I;16L", "F", "1", "LA") else "color"


def subgroup_rows(
    y_true: Sequence[int],
    y_prob: np.ndarray,
    num_classes: int,
    attributes: Mapping[str, Sequence[str]],
) -> list[dict[str, object]]:
    """One row per (attribute, value): ``n``, ``accuracy``, ``f1_macro`` (macro over the classes
    present in the subgroup: T2 images hold no T1 class), or ``None`` with ``note`` below
    :data:`MIN_IMAGES` images."""
    y_true = np.asarray(y_true)
    y_pred = np.asarray(y_prob).argmax(1) if len(y_true) else np.zeros(0, dtype=np.int64)
    rows = []
    for attribute, values in attributes.items():
        values = np.asarray(values, dtype=object)
        for value in sorted(set(values.tolist())):
            mask = values == value
            row: dict[str, object] = {"attribute": attribute, "value": value, "n": int(mask.sum())}
            if mask.sum() < MIN_IMAGES:
                row.update(accuracy=None, f1_macro=None, note=f"fewer than {MIN_IMAGES} images")
            else:
                counts = confusion_counts(y_true[mask], y_pred[mask], num_classes)
                present = np.nonzero(counts.sum(1))[0]  # a subgroup holds some classes only
                tp, support, predicted = np.diag(counts), counts.sum(1), counts.sum(0)
                f1 = 2 * tp[present] / (support[present] + predicted[present])
                accuracy = metrics_from_counts(counts)["accuracy"]
                row.update(accuracy=accuracy, f1_macro=float(f1.mean()), note="")
            rows.append(row)
    return rows


def write_subgroups_csv(path: Path, rows: Sequence[Mapping[str, object]]) -> Path:
    """``<split>_subgroups.csv``."""
    text = io.StringIO()
    writer = csv.DictWriter(text, ["attribute", "value", "n", "accuracy", "f1_macro", "note"])
    writer.writeheader()
    for row in rows:
        writer.writerow({k: ("" if v is None else v) for k, v in row.items()})
    return write_atomically(path, text.getvalue())
