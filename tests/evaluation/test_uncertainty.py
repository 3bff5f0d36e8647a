"""Calibration by temperature scaling and bootstrap intervals, on synthetic predictions."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.metrics import balanced_accuracy_score, precision_recall_fscore_support
from torchmetrics.functional.classification import multiclass_calibration_error

from braintumor.evaluation.bootstrap import (
    bootstrap_intervals,
    confusion_counts,
    format_with_interval,
    metrics_from_counts,
)
from braintumor.evaluation.temperature import fit_temperature, scale


def _softmax(z):
    z = z - z.max(1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(1, keepdims=True)


def _ece(y, p, bins=15):
    return float(multiclass_calibration_error(torch.from_numpy(p).float(), torch.from_numpy(y),
                                              p.shape[1], n_bins=bins))  # fmt: skip


def _overconfident(n=2000, k=5, sharpen=3.0, seed=0):
    """Calibrated logits (labels drawn from their softmax), then sharpened by ``sharpen``."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(0, 1.5, (n, k))
    y = np.array([rng.choice(k, p=row) for row in _softmax(logits)])
    return _softmax(logits * sharpen), y


def test_temperature_scaling_recovers_the_sharpening_and_lowers_ece():
    probs, y = _overconfident()
    fit = fit_temperature(probs, y)
    assert fit.fitted and fit.temperature == pytest.approx(3.0, rel=0.1)
    calibrated = scale(probs, fit.temperature)
    assert (calibrated.argmax(1) == probs.argmax(1)).all()  # accuracy unchanged
    assert _ece(y, calibrated) < 0.03 < _ece(y, probs)
    assert fit.nll_after < fit.nll_before


@pytest.mark.parametrize(
    ("n", "classes", "reason"),
    [(10, 3, "fewer than 20"), (200, 1, "single class")],
)
def test_temperature_falls_back_to_one_and_says_why(n, classes, reason):
    rng = np.random.default_rng(0)
    probs = _softmax(rng.normal(size=(n, 3)))
    fit = fit_temperature(probs, rng.integers(0, classes, n))
    assert not fit.fitted and fit.temperature == 1.0 and reason in fit.reason


def test_metrics_from_counts_match_scikit_learn():
    rng = np.random.default_rng(1)
    y, pred = rng.integers(0, 6, 300), rng.integers(0, 5, 300)  # class 5 never predicted
    got = metrics_from_counts(confusion_counts(y, pred, 7))  # class 6 absent from both
    p, r, f, _ = precision_recall_fscore_support(y, pred, labels=range(7), average="macro",
                                                 zero_division=0)  # fmt: skip
    assert got["precision_macro"] == pytest.approx(p) and got["recall_macro"] == pytest.approx(r)
    assert got["f1_macro"] == pytest.approx(f)
    assert got["balanced_accuracy"] == pytest.approx(balanced_accuracy_score(y, pred))


def test_a_case_bootstrap_is_wider_than_an_image_bootstrap_when_slices_are_correlated():
    rng = np.random.default_rng(2)
    cases, slices = 60, 6
    y = np.repeat(rng.integers(0, 3, cases), slices)
    right = np.repeat(rng.random(cases) < 0.8, slices)  # a case's slices are all right or wrong
    pred = np.where(right, y, (y + 1) % 3)
    groups = np.repeat([f"case{i}" for i in range(cases)], slices)
    by_image, image_method = bootstrap_intervals(y, pred, 3, None, 1000, seed=0)
    by_case, case_method = bootstrap_intervals(y, pred, 3, groups, 1000, seed=0)
    width = {m: v[1] - v[0] for m, v in by_image.items()}
    case_width = {m: v[1] - v[0] for m, v in by_case.items()}
    assert case_width["accuracy"] > 1.8 * width["accuracy"]  # ~sqrt(6) in theory
    assert "cases (60 groups of 360 images)" in case_method and "images (360)" in image_method
    point = metrics_from_counts(confusion_counts(y, pred, 3))["accuracy"]
    assert by_case["accuracy"][0] <= point <= by_case["accuracy"][1]
    again, _ = bootstrap_intervals(y, pred, 3, groups, 1000, seed=0)
    assert again == by_case  # seeded


def test_an_interval_prints_beside_its_value():
    assert format_with_interval(0.9123, [0.8811, 0.9404]) == "0.912 [0.881, 0.940]"
    assert format_with_interval(0.5, None) == "0.500"
