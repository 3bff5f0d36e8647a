"""Selective prediction: answer only when confident enough, refer the rest.

The risk-coverage curve orders images by confidence (the top calibrated probability): at
coverage c the model answers the c most confident images, with risk = their error rate. AURC
is the area under it (lower is better). The abstention threshold is chosen on validation as
the lowest confidence at which the answered images reach ``target_accuracy``; test then tells
how many images it answers (coverage) and how accurately. With cases (several images per
patient or study), a second threshold is chosen the same way over the cases' mean
probabilities: a study's answer is a case's, so it is held to the case threshold.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class RiskCoverage:
    """Coverage and risk after each image, most confident first, and the confidences."""

    coverage: np.ndarray
    risk: np.ndarray
    confidence: np.ndarray

    @property
    def aurc(self) -> float:
        """Area under the risk-coverage curve (the mean of the risks at every coverage)."""
        return float(self.risk.mean()) if len(self.risk) else float("nan")


def risk_coverage(y_true: np.ndarray, y_prob: np.ndarray) -> RiskCoverage:
    """The risk-coverage curve of calibrated probabilities ``y_prob``."""
    y_true, y_prob = np.asarray(y_true), np.asarray(y_prob)
    confidence = y_prob.max(1)
    order = np.argsort(-confidence, kind="stable")
    wrong = (y_prob.argmax(1) != y_true)[order]
    answered = np.arange(1, len(order) + 1)
    return RiskCoverage(
        answered / max(len(order), 1), np.cumsum(wrong) / answered, confidence[order]
    )


def abstention_threshold(y_true: np.ndarray, y_prob: np.ndarray, target_accuracy: float) -> dict:
    """The lowest confidence threshold at which the images answered reach ``target_accuracy``
    (chosen on validation): ``{"threshold", "coverage", "accuracy"}``; ``threshold`` is
    ``None`` (with ``reason``) when no threshold reaches it."""
    curve = risk_coverage(y_true, y_prob)
    ok = np.nonzero(1 - curve.risk >= target_accuracy)[0]
    if not len(ok):
        reason = f"no confidence threshold reaches accuracy {target_accuracy}"
        return {"threshold": None, "coverage": 0.0, "accuracy": None, "reason": reason}
    last = int(ok.max())  # the largest answered set that still meets the target
    if last + 1 < len(curve.confidence) and curve.confidence[last + 1] == curve.confidence[last]:
        ties = np.nonzero(curve.confidence > curve.confidence[last])[0]
        if not len(ties):
            return {"threshold": None, "coverage": 0.0, "accuracy": None,
                    "reason": "the most confident images are tied below the target"}  # fmt: skip
        last = int(ties.max())
    return {
        "threshold": float(curve.confidence[last]),
        "coverage": float(curve.coverage[last]),
        "accuracy": float(1 - curve.risk[last]),
    }


def apply_threshold(y_true: np.ndarray, y_prob: np.ndarray, threshold: float | None) -> dict:
    """Coverage and accuracy of the images answered at ``threshold`` (confidence >= it)."""
    if threshold is None:
        return {"threshold": None, "coverage": 0.0, "accuracy": None}
    y_true, y_prob = np.asarray(y_true), np.asarray(y_prob)
    answered = y_prob.max(1) >= threshold
    accuracy = (
        float(np.mean(y_prob[answered].argmax(1) == y_true[answered])) if answered.any() else None
    )
    return {
        "threshold": threshold,
        "coverage": float(answered.mean()) if len(answered) else 0.0,
        "accuracy": accuracy,
        "answered": int(answered.sum()),
        "referred": int((~answered).sum()),
    }


def case_abstention(
    y_true: np.ndarray,
    y_prob: np.ndarray,
    groups: Sequence[object],
    class_names: Sequence[str],
    target_accuracy: float,
) -> dict:
    """The abstention threshold over cases (a study's answer is its case's): chosen like the
    image one, on the cases' mean calibrated probabilities, in the cases' taxonomy (the
    classes, or the tumour types when cases span sequences); ``cases``: how many it saw."""
    from braintumor.evaluation.cases import case_probabilities

    table = case_probabilities(y_true, y_prob, groups, class_names)
    scored = table.truth >= 0
    chosen = abstention_threshold(table.truth[scored], table.probs[scored], target_accuracy)
    return {**chosen, "taxonomy": table.taxonomy, "cases": int(scored.sum())}


def case_selective(
    y_true: np.ndarray,
    y_prob: np.ndarray,
    groups: Sequence[object],
    class_names: Sequence[str],
    stored: dict,
) -> dict:
    """Coverage and accuracy over a split's cases at the stored case threshold (``reason``
    instead when the split's cases are scored in another taxonomy)."""
    from braintumor.evaluation.cases import case_probabilities

    table = case_probabilities(y_true, y_prob, groups, class_names)
    if table.taxonomy != stored.get("taxonomy"):
        return {"reason": f"cases scored by {table.taxonomy} here, the threshold was chosen by "
                f"{stored.get('taxonomy')} on validation: not comparable"}  # fmt: skip
    scored = table.truth >= 0
    out = apply_threshold(table.truth[scored], table.probs[scored], stored.get("threshold"))
    if stored.get("threshold") is None:
        out["reason"] = stored.get("reason", "no case threshold")
    return {**out, "taxonomy": table.taxonomy}
