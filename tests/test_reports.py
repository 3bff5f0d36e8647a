import csv
import json

import numpy as np
import pytest
import torch
from torchmetrics.classification import MulticlassCalibrationError

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


def test_ece_matches_torchmetrics():
    y, prob = _predictions()
    ours = expected_calibration_error(y, prob, n_bins=15)
    theirs = MulticlassCalibrationError(5, n_bins=15, norm="l1")(
        torch.tensor(prob), torch.tensor(y)
    )
    assert ours == pytest.approx(float(theirs), abs=1e-6)


def test_summary_metrics_values():
    y = np.array([0, 0, 1, 1, 2, 2])
    prob = np.eye(3)[[0, 0, 1, 0, 2, 2]] * 0.9 + 0.1 / 3
    m = summary_metrics(y, prob, ["a", "b", "c"])
    assert m["n"] == 6 and m["accuracy"] == pytest.approx(5 / 6)
    assert m["recall_macro"] == pytest.approx((1 + 0.5 + 1) / 3)
    assert m["precision_macro"] == pytest.approx((2 / 3 + 1 + 1) / 3)


def test_report_files(tmp_path):
    y, prob = _predictions()
    names = [f"Class {i} T1C+" for i in range(5)]
    metrics = write_split_reports(tmp_path, "test", y, prob, names)
    saved = json.loads((tmp_path / "test_metrics.json").read_text())
    assert saved == metrics
    assert {"accuracy", "precision_macro", "recall_macro", "f1_macro", "ece", "n"} <= set(saved)
    rows = list(csv.DictReader((tmp_path / "classification_report_test.csv").open()))
    assert [r["class"] for r in rows] == [*names, "macro avg", "weighted avg"]
    assert sum(int(r["support"]) for r in rows[:5]) == 300
    assert float(rows[5]["f1"]) == pytest.approx(saved["f1_macro"], abs=1e-4)
    assert (tmp_path / "confusion_matrix_test.png").stat().st_size > 10_000


def test_confusion_matrix_with_44_classes_stays_readable():
    rng = np.random.default_rng(0)
    names = [f"Tumor{i // 3} {['T1', 'T1C+', 'T2'][i % 3]}" for i in range(44)]
    fig = plot_confusion_matrix(rng.integers(0, 44, 500), rng.integers(0, 44, 500), names)
    width, height = fig.get_size_inches()
    assert width >= 25 and height >= 12  # ~0.28 in per class and panel
    labels = [t.get_text() for t in fig.axes[0].get_xticklabels()]
    assert labels == names
