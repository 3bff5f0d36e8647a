"""Per-class AUROC, specificity, balanced accuracy and calibration error."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import confusion_matrix, roc_auc_score

from braintumor.evaluation.per_class import per_class_metrics


def test_per_class_numbers_match_their_definitions_and_an_absent_class_is_null():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 200)  # class 3 never occurs
    logits = rng.normal(size=(200, 4)) + 2 * np.eye(4)[y]
    probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    rows = per_class_metrics(y, probs, ["a", "b", "c", "d"], ece_bins=15)
    cm = confusion_matrix(y, probs.argmax(1), labels=range(4))
    for c in range(3):
        tn = cm.sum() - cm[c].sum() - cm[:, c].sum() + cm[c, c]
        specificity = tn / (cm.sum() - cm[c].sum())
        assert rows[c]["specificity"] == pytest.approx(specificity)
        assert rows[c]["auroc"] == pytest.approx(roc_auc_score(y == c, probs[:, c]))
        sensitivity = cm[c, c] / cm[c].sum()
        assert rows[c]["balanced_accuracy"] == pytest.approx((sensitivity + specificity) / 2)
        assert 0 <= rows[c]["ece"] <= 1
    assert rows[3]["auroc"] is None and rows[3]["balanced_accuracy"] is None
    assert rows[3]["undefined"] == "no image of this class"


def test_an_empty_split_gives_nulls_with_the_reason():
    rows = per_class_metrics([], np.zeros((0, 2)), ["a", "b"], ece_bins=15)
    assert all(r["auroc"] is None and r["undefined"] == "no image in this split" for r in rows)
