import csv
import json

import numpy as np
import pytest
import torch
from torchmetrics.classification import (
    MulticlassAccuracy,
    MulticlassF1Score,
    MulticlassPrecision,
    MulticlassRecall,
)

from braintumor.evaluation import (
    expected_calibration_error,
    plot_confusion_matrix,
    summary_metrics,
    write_split_reports,
)


def _predictions(n=300, k=5, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, k, n)
    logits = rng.normal(size=(n, k))
    logits[np.arange(n), y] += rng.uniform(0, 3, n)
    prob = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    return y, prob


def test_ece_is_the_weighted_confidence_accuracy_gap_over_bins():
    # 2 bins: [0, 0.5) holds nothing; [0.5, 1] holds 0.6 (right), 0.6 (wrong), 0.9 (right)
    y = np.array([0, 1, 0])
    prob = np.array([[0.6, 0.4], [0.6, 0.4], [0.9, 0.1]])
    gap = abs(2 / 3 - (0.6 + 0.6 + 0.9) / 3)
    assert expected_calibration_error(y, prob, n_bins=2) == pytest.approx(gap, abs=1e-6)
    # 4 bins: [0.5, 0.75) holds the two 0.6s (gap 0.1), [0.75, 1] the 0.9 (gap 0.1)
    assert expected_calibration_error(y, prob, n_bins=4) == pytest.approx(0.1, abs=1e-6)
    assert np.isnan(expected_calibration_error(np.zeros(0, int), np.zeros((0, 2)), 15))


def test_summary_metrics_match_the_training_metrics_of_torchmetrics():
    """The reports (scikit-learn) and the epochs' val/* metrics (torchmetrics) agree."""
    y, prob = _predictions(k=5)
    y[y == 4] = 3  # a class absent from y_true counts as 0 in both macro averages
    m = summary_metrics(y, prob, [f"c{i}" for i in range(5)], ece_bins=15)
    preds, target = torch.tensor(prob), torch.tensor(y)
    for name, metric in (("accuracy", MulticlassAccuracy(5, average="micro")),
                         ("precision_macro", MulticlassPrecision(5, average="macro")),
                         ("recall_macro", MulticlassRecall(5, average="macro")),
                         ("f1_macro", MulticlassF1Score(5, average="macro"))):  # fmt: skip
        assert m[name] == pytest.approx(float(metric(preds, target)), abs=1e-6), name


def test_summary_metrics_values():
    y = np.array([0, 0, 1, 1, 2, 2])
    prob = np.eye(3)[[0, 0, 1, 0, 2, 2]] * 0.9 + 0.1 / 3
    m = summary_metrics(y, prob, ["a", "b", "c"], ece_bins=15)
    assert m["n"] == 6 and m["accuracy"] == pytest.approx(5 / 6)
    assert m["recall_macro"] == pytest.approx((1 + 0.5 + 1) / 3)
    assert m["precision_macro"] == pytest.approx((2 / 3 + 1 + 1) / 3)


def test_report_files(tmp_path):
    y, prob = _predictions()
    names = [f"Class {i} T1C+" for i in range(5)]
    report = write_split_reports(tmp_path, "test", y, prob, names, ece_bins=15, min_support=10)
    saved = json.loads((tmp_path / "test_metrics.json").read_text())
    assert saved == report.metrics
    assert {"accuracy", "precision_macro", "recall_macro", "f1_macro", "ece", "n"} <= set(saved)
    rows = list(csv.DictReader((tmp_path / "classification_report_test.csv").open()))
    assert [r["class"] for r in rows] == [*names, "macro avg", "weighted avg"]
    assert sum(int(r["support"]) for r in rows[:5]) == 300
    assert float(rows[5]["f1"]) == pytest.approx(saved["f1_macro"], abs=1e-4)
    assert [r["class"] for r in report.class_rows()] == names
    assert [f"{r['f1']:.4f}" for r in report.per_class] == [r["f1"] for r in rows]
    assert (tmp_path / "confusion_matrix_test.png").stat().st_size > 10_000


def test_confusion_matrix_with_44_classes_stays_readable():
    rng = np.random.default_rng(0)
    names = [f"Tumor{i // 3} {['T1', 'T1C+', 'T2'][i % 3]}" for i in range(44)]
    fig = plot_confusion_matrix(
        rng.integers(0, 44, 500), rng.integers(0, 44, 500), names, min_support=10
    )
    width, height = fig.get_size_inches()
    assert width >= 25 and height >= 12  # ~0.28 in per class and panel
    labels = [t.get_text() for t in fig.axes[0].get_xticklabels()]
    assert labels == names


def test_the_console_summary_prints_intervals_beside_the_values():
    from braintumor.evaluation.summary import format_metrics_table

    split = {"accuracy": 0.9123, "precision_macro": 0.9, "recall_macro": 0.9, "f1_macro": 0.9,
             "ece": 0.03, "n": 120}  # fmt: skip
    split["ci95"] = {"accuracy": [0.8811, 0.9404], "f1_macro": [0.85, 0.95]}
    split["ci_method"] = "bootstrap over cases (40 groups of 120 images), 1000 resamples"
    table = format_metrics_table({"test": split})
    assert "95% intervals, bootstrap over cases:" in table
    assert "accuracy 0.912 [0.881, 0.940]" in table and max(map(len, table.splitlines())) <= 100
