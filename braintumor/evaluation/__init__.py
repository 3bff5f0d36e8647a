"""Evaluation: report writers, plain functions of ``(y_true, y_prob, class_names)``; no
Lightning here."""

from braintumor.evaluation.calibration import expected_calibration_error
from braintumor.evaluation.classification import (
    classification_report_rows,
    write_classification_report,
)
from braintumor.evaluation.confusion import plot_confusion_matrix
from braintumor.evaluation.metrics import summary_metrics
from braintumor.evaluation.write import SplitReport, write_split_reports

__all__ = [
    "SplitReport",
    "classification_report_rows",
    "expected_calibration_error",
    "plot_confusion_matrix",
    "summary_metrics",
    "write_classification_report",
    "write_split_reports",
]
