"""Bootstrap confidence intervals of the headline metrics.

Resampling images treats every image as independent; several slices and sequences of one case
are not, so with groups (the user's case ids, else near-duplicate groups) whole cases are
resampled, which gives the honest, wider interval. Percentile intervals, seeded.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from braintumor.vocabulary import names_in

# the metrics with intervals, each a function of a confusion matrix (metrics_from_counts)
HEADLINE = names_in("bootstrap")


def confusion_counts(
    y_true: np.ndarray, y_pred: np.ndarray, num_classes: int, weights: np.ndarray | None = None
) -> np.ndarray:
    """``(K, K)`` counts, rows true class, columns predicted, each image weighted."""
    codes = np.asarray(y_true) * num_classes + np.asarray(y_pred)
    flat = np.bincount(codes, weights=weights, minlength=num_classes * num_classes)
    return flat.reshape(num_classes, num_classes)


def class_ratios(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Precision, recall, F1 and support of each class of a confusion matrix (an undefined
    ratio is 0)."""
    tp = np.diag(counts)
    support, predicted = counts.sum(1), counts.sum(0)
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = np.where(predicted > 0, tp / predicted, 0.0)
        recall = np.where(support > 0, tp / support, 0.0)
        f1 = np.where(support + predicted > 0, 2 * tp / (support + predicted), 0.0)
    return precision, recall, f1, support


def metrics_from_counts(counts: np.ndarray) -> dict[str, float]:
    """The headline metrics of a confusion matrix, as scikit-learn defines them: macro
    averages over every class of the model (an undefined ratio counts as 0), balanced accuracy
    over the classes present."""
    tp = np.diag(counts)
    total = counts.sum()
    precision, recall, f1, support = class_ratios(counts)
    present = support > 0
    return {
        "accuracy": float(tp.sum() / total) if total else float("nan"),
        "balanced_accuracy": float(recall[present].mean()) if present.any() else float("nan"),
        "precision_macro": float(precision.mean()),
        "recall_macro": float(recall.mean()),
        "f1_macro": float(f1.mean()),
    }


def bootstrap_intervals(
    y_true: Sequence[int],
    y_pred: Sequence[int],
    num_classes: int,
    groups: Sequence[object] | None,
    resamples: int,
    seed: int = 0,
    level: float = 0.95,
    metrics: Callable[[np.ndarray], dict[str, float]] = metrics_from_counts,
) -> tuple[dict[str, list[float]], str]:
    """``({metric: [low, high]}, method)``: percentile intervals of :data:`HEADLINE` over
    ``resamples`` resamples of the images, or of whole groups when ``groups`` is given;
    ``metrics`` computes them from a resample's confusion matrix (e.g. over a subset of the
    classes: :func:`braintumor.evaluation.external.shared_metrics`)."""
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    if groups is None:
        unit_of = np.arange(len(y_true))
        method = f"bootstrap over images ({len(y_true)}), {resamples} resamples, percentile"
    else:
        _, unit_of = np.unique(np.asarray(groups, dtype=str), return_inverse=True)
        method = (
            f"bootstrap over cases ({unit_of.max() + 1 if len(unit_of) else 0} groups of "
            f"{len(y_true)} images), {resamples} resamples, percentile"
        )
    n_units = int(unit_of.max()) + 1 if len(unit_of) else 0
    if n_units < 2 or resamples < 1:
        return {name: [float("nan"), float("nan")] for name in HEADLINE}, method
    rng = np.random.default_rng(seed)
    values = {name: np.empty(resamples) for name in HEADLINE}
    for b in range(resamples):
        drawn = np.bincount(rng.integers(0, n_units, n_units), minlength=n_units)
        counts = confusion_counts(y_true, y_pred, num_classes, drawn[unit_of].astype(float))
        drawn_metrics = metrics(counts)
        for name in HEADLINE:
            values[name][b] = drawn_metrics[name]
    tail = (1 - level) / 2 * 100
    intervals = {
        name: [float(np.nanpercentile(v, tail)), float(np.nanpercentile(v, 100 - tail))]
        for name, v in values.items()
    }
    return intervals, method


def format_with_interval(value: float, interval: Sequence[float] | None) -> str:
    """``0.912 [0.881, 0.940]`` (the value alone when there is no interval)."""
    if interval is None or any(not np.isfinite(x) for x in interval):
        return f"{value:.3f}"
    return f"{value:.3f} [{interval[0]:.3f}, {interval[1]:.3f}]"
