"""A split's conformal prediction sets (:mod:`braintumor.conformal`): fitted on validation
after the temperature, over images and, when images are grouped into cases, over cases; their
coverage and sizes on a split."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from braintumor.conformal import ConformalScore, coverage, fit_conformal, prediction_sets
from braintumor.errors import DataError
from braintumor.evaluation.cases import case_probabilities
from braintumor.evaluation.settings import EvaluationSettings
from braintumor.evaluation.temperature import scale


def fit_sets(
    settings: EvaluationSettings,
    val: tuple[np.ndarray, np.ndarray] | None,
    temperature: float,
    groups: Sequence[object] | None,
    class_names: Sequence[str],
) -> dict[str, Any]:
    """The conformal sets' calibration on ``val`` (raw probabilities, scaled here)."""
    level = float(settings.conformal)
    if val is None or not len(val[0]):
        raise DataError(
            f"eval.conformal={level:g} calibrates its sets on validation data and this run has "
            f"none: give it some (data.val_fraction), or eval.conformal=null."
        )
    y, probs = np.asarray(val[0]), scale(val[1], temperature)
    cases = None
    if groups is not None and len(set(map(str, groups))) < len(groups):
        table = case_probabilities(y, probs, list(groups)[: len(y)], class_names)
        scored = table.truth >= 0
        cases = (table.truth[scored], table.probs[scored], table.taxonomy)
    score = ConformalScore(settings.conformal_method, settings.conformal_penalty,
                           settings.conformal_k_reg)  # fmt: skip
    return fit_conformal(level, score, (y, probs), cases)


def set_evidence(
    y_true: np.ndarray,
    probs: np.ndarray,
    class_names: Sequence[str],
    groups: Sequence[object] | None,
    stored: Mapping[str, Any],
) -> tuple[dict[str, Any], np.ndarray]:
    """Coverage and set sizes of a split's conformal sets (images; cases when calibrated on
    cases and this split's cases are scored in the same taxonomy) and the image sets."""
    score, level = ConformalScore.of(stored), float(stored["level"])
    sets = prediction_sets(probs, float(stored["image_threshold"]), score)
    out = {"method": score.method, "images": coverage(y_true, sets, class_names, level)}
    if groups is not None and "case_threshold" in stored:
        table = case_probabilities(y_true, probs, groups, class_names)
        scored = table.truth >= 0
        if table.taxonomy != stored.get("case_taxonomy"):
            out["cases"] = {
                "reason": f"cases scored by {table.taxonomy} here, calibrated by "
                f"{stored.get('case_taxonomy')} on validation: not comparable"
            }
        else:
            case_sets = prediction_sets(table.probs[scored], float(stored["case_threshold"]),
                                        score)  # fmt: skip
            out["cases"] = {
                **coverage(table.truth[scored], case_sets, table.labels, level),
                "taxonomy": table.taxonomy,
            }
    return out, sets
