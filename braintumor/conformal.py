"""Split-conformal prediction sets: the classes a scan may be, with a guaranteed coverage.

A set at level 0.95 holds the true class for at least 95% of new scans drawn like the
validation scans it was calibrated on (Vovk et al. 2005; Romano, Sesia & Candès 2020 for APS;
Angelopoulos et al. 2021 for RAPS). The score of a class for a scan is the calibrated
probability mass of the classes ranked above it (APS without its random share of the class's
own mass, so that a scan always gets the same set); RAPS adds ``penalty`` for every rank
beyond ``k_reg``, which keeps sets small when the tail is flat. The threshold is the
``ceil((n + 1) * level)``-th smallest score of the true class over ``n`` validation scans (or
cases); a set holds every class whose score is at most the threshold. The most probable class
scores 0, so no set is empty; a set is then filled until the mass before the next class
exceeds the threshold. Coverage is at least the level, and at most ``level + 1 / (n + 1)``
unless the model's top class alone is right more often than the level asks (sets of one
class then cover more).

Sets are calibrated on images and, when the data has cases (patients), on cases too (a case's
probabilities are the mean of its images', :mod:`braintumor.evaluation.cases`). Numpy only:
the ONNX predictor builds sets without PyTorch. The method needs a few lines, so no
conformal library is taken on (TorchCP needs PyTorch at prediction time, MAPIE wraps
scikit-learn estimators, not stored probabilities).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from braintumor.errors import DataError

METHODS = ("aps", "raps")


@dataclass(frozen=True)
class ConformalScore:
    """How a class's nonconformity is scored: ``aps`` or ``raps`` (with its penalty)."""

    method: str = "aps"
    penalty: float = 0.0  # RAPS: added per rank beyond k_reg
    k_reg: int = 1  # RAPS: ranks without penalty

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ValueError(f"conformal method must be one of {METHODS}, got {self.method!r}.")

    def all_classes(self, probs: np.ndarray) -> np.ndarray:
        """``(N, K)``: the score each class would have as the answer."""
        probs = np.asarray(probs, dtype=np.float64)
        order = np.argsort(-probs, axis=1, kind="stable")
        ranked = np.take_along_axis(probs, order, axis=1)
        cumulative = np.cumsum(ranked, axis=1) - ranked  # the mass ranked above each class
        if self.method == "raps" and self.penalty > 0:
            ranks = np.arange(1, probs.shape[1] + 1)
            cumulative = cumulative + self.penalty * np.maximum(ranks - self.k_reg, 0)
        out = np.empty_like(cumulative)
        np.put_along_axis(out, order, cumulative, axis=1)
        return out

    def of_labels(self, probs: np.ndarray, labels: np.ndarray) -> np.ndarray:
        """``(N,)``: the score of each row's true label."""
        return self.all_classes(probs)[np.arange(len(labels)), np.asarray(labels)]

    @classmethod
    def of(cls, stored: Mapping[str, Any]) -> ConformalScore:
        return cls(str(stored["method"]), float(stored.get("penalty", 0.0)),
                   int(stored.get("k_reg", 1)))  # fmt: skip


def needed(level: float) -> int:
    """The fewest calibration scans (or cases) a level needs: ``1 / (1 - level) - 1``."""
    return math.ceil(round(level / (1.0 - level), 9))


def threshold(scores: np.ndarray, level: float, what: str = "validation images") -> float:
    """The conformal quantile of calibration ``scores`` at ``level``; too few: DataError."""
    n = len(scores)
    if n < needed(level):
        raise DataError(
            f"conformal sets at level {level:g} need at least {needed(level)} {what}; the "
            f"validation split has {n}. Lower eval.conformal (at most {n / (n + 1):.3f} for "
            f"{n}), or give validation more {what.split()[-1]} (data.val_fraction)."
        )
    k = math.ceil(round((n + 1) * level, 9))
    return float(np.sort(scores)[k - 1])


def prediction_sets(probs: np.ndarray, limit: float, score: ConformalScore) -> np.ndarray:
    """``(N, K)`` booleans: the classes whose score is within ``limit`` (the top class always,
    its score being 0)."""
    probs = np.asarray(probs, dtype=np.float64)
    inside = score.all_classes(probs) <= limit + 1e-12
    inside[np.arange(len(probs)), probs.argmax(1)] = True  # ties of the top score: still in
    return inside


def describe_set(members: Sequence[str], level: float) -> str:
    """``"Glioblastoma T1C+ or Astrocitoma T1C+ (95% set)"``."""
    return f"{' or '.join(members)} ({100 * level:g}% set)"


def fit_conformal(
    level: float,
    score: ConformalScore,
    images: tuple[np.ndarray, np.ndarray],
    cases: tuple[np.ndarray, np.ndarray, str] | None,
) -> dict[str, Any]:
    """The stored calibration of the sets: level, score, image threshold and, with ``cases``
    ``(labels, probabilities, taxonomy)``, the case threshold. Too few: DataError."""
    y, probs = images
    out: dict[str, Any] = {"level": level, "method": score.method, "images": len(y)}
    if score.method == "raps":
        out.update(penalty=score.penalty, k_reg=score.k_reg)
    out["image_threshold"] = threshold(score.of_labels(probs, y), level)
    if cases is not None:
        labels, case_probs, taxonomy = cases
        out["case_threshold"] = threshold(
            score.of_labels(case_probs, labels), level, "validation cases"
        )
        out["cases"], out["case_taxonomy"] = len(labels), taxonomy
    return out


def coverage(
    y_true: np.ndarray, sets: np.ndarray, names: Sequence[str], level: float
) -> dict[str, Any]:
    """Empirical coverage and mean set size, overall and per class (rows of ``names``)."""
    y_true = np.asarray(y_true)
    hit = sets[np.arange(len(y_true)), y_true] if len(y_true) else np.zeros(0, dtype=bool)
    sizes = sets.sum(1)
    per_class = []
    for k, name in enumerate(names):
        rows = y_true == k
        per_class.append({
            "class": name,
            "n": int(rows.sum()),
            "coverage": float(hit[rows].mean()) if rows.any() else None,
            "mean_set_size": float(sizes[rows].mean()) if rows.any() else None,
        })  # fmt: skip
    return {
        "level": level,
        "n": len(y_true),
        "coverage": float(hit.mean()) if len(y_true) else None,
        "mean_set_size": float(sizes.mean()) if len(y_true) else None,
        "singletons": float(np.mean(sizes == 1)) if len(y_true) else None,
        "per_class": per_class,
    }
