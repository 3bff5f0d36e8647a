"""The one vocabulary (braintumor/vocabulary.py): every sink shows names of the table, in its
order, and older runs' names map to the current ones."""

from __future__ import annotations

import numpy as np
import pytest

from braintumor.evaluation.bootstrap import HEADLINE, metrics_from_counts
from braintumor.vocabulary import (
    METRIC_NAMES,
    METRICS,
    SINKS,
    current_name,
    hparams_keys,
    is_metric_key,
    names_in,
    shown_in,
)


def test_each_metric_has_one_row_and_every_shown_metric_has_words():
    assert len(set(METRIC_NAMES)) == len(METRIC_NAMES)
    for metric in METRICS:
        assert set(metric.sinks) <= set(SINKS), metric.name
        assert metric.meaning, metric.name
        if set(metric.sinks) & {"page", "card"}:
            assert metric.label, f"{metric.name} is shown to people but has no label"


@pytest.mark.parametrize("sink", SINKS)
def test_a_sink_lists_its_metrics_in_the_table_order(sink):
    names = names_in(sink)
    assert list(names) == [n for n in METRIC_NAMES if n in names]


def test_the_sinks_show_what_they_showed_before_the_table():
    assert names_in("console") == ("accuracy", "precision_macro", "recall_macro", "f1_macro",
                                   "ece", "n")  # fmt: skip
    assert names_in("cv") == ("accuracy", "balanced_accuracy", "f1_macro", "ece", "aurc")
    assert names_in("sweep") == ("accuracy", "f1_macro", "ece")
    assert names_in("card") == (*HEADLINE, "ece", "log_loss", "brier", "aurc")
    assert set(names_in("page")) == {"accuracy", "f1_macro", "precision_macro", "recall_macro",
                                     "ece", "n"}  # fmt: skip
    assert hparams_keys()[0] == "val/f1_macro_best"  # the objective, first in TensorBoard
    shown = {"val/f1_macro_best", "test/f1_macro", "test/accuracy", "test/ece", "val/f1_macro",
             "val/accuracy", "val/log_loss"}  # fmt: skip
    assert set(hparams_keys()) == shown


def test_the_bootstrap_shows_only_what_a_confusion_matrix_gives():
    assert set(HEADLINE) <= set(metrics_from_counts(np.eye(3)))


def test_an_unknown_sink_is_refused():
    with pytest.raises(ValueError, match="no sink 'tensorboard'"):
        shown_in("tensorboard")


def test_nll_is_log_loss_under_its_old_name():
    assert "nll" not in METRIC_NAMES
    assert current_name("test/nll") == "test/log_loss"
    assert current_name("val/f1_best") == "val/f1_macro_best"
    assert current_name("val/f1_macro") == "val/f1_macro"
    assert is_metric_key(current_name("external/nll"))
