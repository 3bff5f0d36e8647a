"""Case-level results: one prediction per case from the mean calibrated probability."""

from __future__ import annotations

import csv

import numpy as np
import pytest

from braintumor.evaluation.cases import case_metrics, case_results, write_cases_csv

CLASSES = ["Glioma T1", "Glioma T2", "Meningioma T1", "Meningioma T2"]


def _probs(rows):
    return np.array(rows, dtype=float)


def test_a_case_of_one_class_is_scored_in_the_models_classes_by_its_mean_probability():
    y = [0, 0, 2]
    probs = _probs([[0.6, 0.1, 0.3, 0.0], [0.2, 0.1, 0.7, 0.0], [0.1, 0.0, 0.8, 0.1]])
    results, taxonomy, labels = case_results(y, probs, ["a", "a", "b"], CLASSES)
    assert taxonomy == "folder" and labels == CLASSES
    a, b = results
    assert (a.true_label, a.predicted_label, a.images) == ("Glioma T1", "Meningioma T1", 2)
    assert a.probability == pytest.approx(0.5) and a.agreement == pytest.approx(0.5)
    assert b.predicted_label == b.true_label == "Meningioma T1" and not b.excluded


def test_a_case_spanning_t1_and_t2_of_one_tumour_is_scored_by_tumour_type():
    y = [0, 1, 2, 3]  # case "a": Glioma T1 + T2; case "b": Meningioma T1 + Meningioma T2
    probs = _probs([[0.5, 0.1, 0.4, 0.0], [0.1, 0.5, 0.4, 0.0],
                    [0.1, 0.1, 0.4, 0.4], [0.3, 0.3, 0.2, 0.2]])  # fmt: skip
    results, taxonomy, labels = case_results(y, probs, ["a", "a", "b", "b"], CLASSES)
    assert taxonomy == "tumor_type" and labels == ["Glioma", "Meningioma"]
    a, b = results
    assert (a.true_label, a.predicted_label) == ("Glioma", "Glioma")  # 0.6 vs 0.4 by type
    assert (b.true_label, b.predicted_label) == ("Meningioma", "Meningioma")  # 0.6 vs 0.4
    metrics = case_metrics(results, taxonomy, labels, resamples=200)
    assert metrics["n"] == 2 and metrics["accuracy"] == 1.0 and metrics["taxonomy"] == "tumor_type"


def test_a_case_spanning_two_tumour_types_is_listed_but_not_scored(tmp_path):
    y = [0, 2, 2]
    probs = _probs([[0.7, 0.1, 0.2, 0.0], [0.1, 0.1, 0.8, 0.0], [0.1, 0.1, 0.8, 0.0]])
    results, taxonomy, labels = case_results(y, probs, ["mixed", "mixed", "clean"], CLASSES)
    mixed = next(r for r in results if r.group == "mixed")
    assert "several labels" in mixed.excluded
    metrics = case_metrics(results, taxonomy, labels, resamples=200)
    assert metrics["n"] == 1 and metrics["excluded"] == 1
    path = write_cases_csv(tmp_path / "test_cases.csv", results, taxonomy)
    rows = list(csv.DictReader(path.open()))
    assert [r["group"] for r in rows] == ["clean", "mixed"] and rows[1]["excluded"]


def test_case_metrics_carry_an_interval_over_cases():
    rng = np.random.default_rng(0)
    groups = np.repeat(np.arange(40), 3)
    y = np.repeat(rng.integers(0, 4, 40), 3)
    probs = np.eye(4)[np.where(rng.random(120) < 0.8, y, (y + 1) % 4)] * 0.7 + 0.075
    metrics = case_metrics(*case_results(y, probs, groups, CLASSES), resamples=500)
    low, high = metrics["ci95"]["accuracy"]
    assert low <= metrics["accuracy"] <= high and high - low > 0.05
    assert "cases (40)" in metrics["ci_method"]
