"""Summary metrics of one split, and the one vocabulary of metric names.

Every metric has one name everywhere (DESIGN.md, "Names"): the bare name (``f1_macro``)
inside a split's ``{split}_metrics.json`` and ``<stage>/<name>`` (``val/f1_macro``,
``test/ece``) in TensorBoard, the metrics ``train()`` returns, ``run_info.json``, the hparams,
the sweep tables and the console summary.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sklearn.metrics import accuracy_score, log_loss, precision_recall_fscore_support

from braintumor.evaluation.calibration import expected_calibration_error

STAGES = ("train", "val", "test", "external")  # external: a set the model never saw
METRIC_NAMES = (
    "loss",  # the training criterion (label smoothing and class weights included)
    "accuracy",
    "precision_macro",
    "recall_macro",
    "f1_macro",
    "f1_macro_best",  # the best val/f1_macro of the epochs so far (what checkpoints follow)
    "precision_weighted",
    "recall_weighted",
    "f1_weighted",
    "ece",  # top-label expected calibration error (l1), model.ece_bins bins
    "log_loss",
    "accuracy_tumor_type",  # accuracy with the sequences of a tumor type merged (44 classes)
    "n",  # images scored
    "balanced_accuracy",  # mean recall over the classes present
    "ece_uncalibrated",  # the ECE before temperature scaling
    "nll",  # negative log-likelihood of the calibrated probabilities
    "brier",  # Brier score (sum over classes) of the calibrated probabilities
    "temperature",  # the temperature the probabilities are scaled by
    "aurc",  # area under the risk-coverage curve
)
# structured fields of a split's metrics JSON beside the numbers (not logged as scalars)
REPORT_FIELDS = ("checkpoint", "ci95", "ci_method", "cases", "selective", "calibration",
                 "per_class", "without_tta")  # fmt: skip
# per-class numbers of the classification report, as <stage>/<name>/<class tag>
PER_CLASS_NAMES = ("precision_class", "recall_class", "f1_class")
# run-level numbers without a stage: epochs completed
RUN_NAMES = ("epoch",)
# learning rates, as Lightning's LearningRateMonitor names them: lr-Adam, lr-AdamW/head
LEARNING_RATE_PREFIX = "lr-"
# names of runs recorded before the vocabulary (read by the sweep tables and checkpoints)
_RENAMED = (("acc", "accuracy"), ("precision", "precision_macro"), ("recall", "recall_macro"),
            ("f1", "f1_macro"), ("f1_best", "f1_macro_best"),
            ("acc_tumor_type", "accuracy_tumor_type"))  # fmt: skip
LEGACY_NAMES = {f"{s}/{old}": f"{s}/{new}" for s in STAGES for old, new in _RENAMED}


def metric_key(stage: str, name: str) -> str:
    """``<stage>/<name>`` of a metric of :data:`METRIC_NAMES` (e.g. ``val/f1_macro``)."""
    if stage not in STAGES or name not in METRIC_NAMES:
        raise ValueError(
            f"no metric '{stage}/{name}': stages are {STAGES}, metric names {METRIC_NAMES}."
        )
    return f"{stage}/{name}"


def is_metric_key(key: str) -> bool:
    """Whether ``key`` is a name of the vocabulary: ``<stage>/<name>``,
    ``<stage>/<per-class name>/<class tag>``, a run-level name (``epoch``) or a learning rate
    (``lr-Adam``)."""
    if key in RUN_NAMES or key.startswith(LEARNING_RATE_PREFIX):
        return True
    parts = key.split("/")
    if len(parts) == 2:
        return parts[0] in STAGES and parts[1] in METRIC_NAMES
    return len(parts) == 3 and parts[0] in STAGES and parts[1] in PER_CLASS_NAMES and bool(parts[2])


def current_name(key: str) -> str:
    """The vocabulary's name for ``key``, also for a name of older runs (``val/f1_best``)."""
    return LEGACY_NAMES.get(key, key)


def summary_metrics(
    y_true: np.ndarray, y_prob: np.ndarray, class_names: Sequence[str], ece_bins: int = 15
) -> dict[str, float | int]:
    """``accuracy``, macro and weighted precision/recall/F1, ``ece``, ``log_loss`` and ``n``.

    Macro averages run over every class of the model (a class absent from ``y_true`` and
    never predicted counts as 0), matching torchmetrics' macro averages during training.
    """
    y_true = np.asarray(y_true)
    y_prob = np.asarray(y_prob, dtype=np.float64)
    y_pred = y_prob.argmax(axis=1)
    labels = list(range(len(class_names)))
    out: dict[str, float | int] = {"n": len(y_true)}
    out["accuracy"] = float(accuracy_score(y_true, y_pred))
    for average in ("macro", "weighted"):
        p, r, f, _ = precision_recall_fscore_support(
            y_true, y_pred, labels=labels, average=average, zero_division=0
        )
        out[f"precision_{average}"] = float(p)
        out[f"recall_{average}"] = float(r)
        out[f"f1_{average}"] = float(f)
    out["ece"] = expected_calibration_error(y_true, y_prob, ece_bins)
    clipped = np.clip(y_prob, 1e-12, 1.0)
    out["log_loss"] = float(
        log_loss(y_true, clipped / clipped.sum(1, keepdims=True), labels=labels)
    )
    return out


def collapsed_accuracy(
    y_true: np.ndarray, y_pred: np.ndarray, group_of_class: Sequence[str]
) -> float:
    """Accuracy after mapping every class to its group (e.g. "Meningioma T1" -> "Meningioma"):
    confusing two sequences of one tumor type is then no mistake."""
    groups = np.asarray(group_of_class, dtype=object)
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    if len(y_true) == 0:
        return float("nan")
    return float(np.mean(groups[y_true] == groups[y_pred]))
