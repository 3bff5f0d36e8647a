"""The one vocabulary of metric names, and the one table of where each metric is shown.

Every metric has one name everywhere (DESIGN.md, "Names"): the bare name (``f1_macro``)
inside a split's ``{split}_metrics.json`` and ``<stage>/<name>`` (``val/f1_macro``,
``test/ece``) in TensorBoard, the metrics ``train()`` returns, ``run_info.json``, the hparams,
the sweep tables and the console summary.

:data:`METRICS` is the table: one row per metric, its meaning, the words the page and the card
use, and the *sinks* that show it. A new metric shown everywhere is its function (in
:mod:`braintumor.evaluation`), its row here, and a test. Standard library only: reading a run's
records (:mod:`braintumor.runs.record`) must not import torch or numpy.
"""

from __future__ import annotations

from dataclasses import dataclass

STAGES = ("train", "val", "test", "external")  # external: a set the model never saw

# where metrics are shown: the console table after a run, the model card's table, the web
# page's model panel, the sweep report's columns, the cross-validation summary, the bootstrap's
# intervals (computed from a confusion matrix: braintumor.evaluation.bootstrap) and
# TensorBoard's HPARAMS tab (with the stages shown there)
SINKS = ("console", "card", "page", "sweep", "cv", "bootstrap", "hparams")


@dataclass(frozen=True)
class Metric:
    """One metric: its ``name``, what it means, its words for people (``label``), the
    ``sinks`` that show it and the ``hparams`` stages TensorBoard's HPARAMS tab shows."""

    name: str
    meaning: str
    label: str = ""
    sinks: tuple[str, ...] = ()
    hparams: tuple[str, ...] = ()


# fmt: off
METRICS = (
    Metric("loss", "the training criterion (label smoothing and class weights included)"),
    Metric("accuracy", "share of images whose top class is right", "accuracy",
           ("console", "card", "page", "sweep", "cv", "bootstrap"), ("test", "val")),
    Metric("balanced_accuracy", "mean recall over the classes present", "balanced accuracy",
           ("card", "cv", "bootstrap")),
    Metric("precision_macro", "precision averaged over every class of the model",
           "macro precision", ("console", "card", "page", "bootstrap")),
    Metric("recall_macro", "recall averaged over every class of the model", "macro recall",
           ("console", "card", "page", "bootstrap")),
    Metric("f1_macro", "F1 averaged over every class of the model", "macro F1",
           ("console", "card", "page", "sweep", "cv", "bootstrap"), ("test", "val")),
    Metric("f1_macro_best", "the best val/f1_macro of the epochs so far (checkpoints follow it)",
           hparams=("val",)),
    Metric("precision_weighted", "precision averaged with the classes' support as weights"),
    Metric("recall_weighted", "recall averaged with the classes' support as weights"),
    Metric("f1_weighted", "F1 averaged with the classes' support as weights"),
    Metric("ece", "top-label expected calibration error (l1, eval.ece_bins bins)",
           "calibration error (ECE)", ("console", "card", "page", "sweep", "cv"), ("test",)),
    Metric("ece_uncalibrated", "the ECE before temperature scaling"),
    Metric("log_loss", "negative log-likelihood of the true class (calibrated probabilities)",
           "log loss", ("card",), ("val",)),
    Metric("brier", "Brier score (sum over classes) of the calibrated probabilities",
           "Brier score", ("card",)),
    Metric("temperature", "the temperature the probabilities are scaled by"),
    Metric("aurc", "area under the risk-coverage curve", "AURC", ("card", "cv")),
    Metric("accuracy_tumor_type", "accuracy with the sequences of a tumor type merged"),
    Metric("n", "images scored", "validation scans", ("console", "page")),
)
# fmt: on
METRIC_NAMES = tuple(m.name for m in METRICS)
# structured fields of a split's metrics JSON beside the numbers (not logged as scalars)
REPORT_FIELDS = ("checkpoint", "ci95", "ci_method", "cases", "selective", "calibration",
                 "per_class", "without_tta")  # fmt: skip
# per-class numbers of the classification report, as <stage>/<name>/<class tag>
PER_CLASS_NAMES = ("precision_class", "recall_class", "f1_class")
# run-level numbers without a stage: epochs completed
RUN_NAMES = ("epoch",)
# learning rates, as Lightning's LearningRateMonitor names them: lr-Adam, lr-AdamW/head
LEARNING_RATE_PREFIX = "lr-"
# names of runs recorded before the vocabulary (read by the sweep tables and checkpoints);
# nll: the same number as log_loss, recorded under both names before issue 24
RENAMED = {"acc": "accuracy", "precision": "precision_macro", "recall": "recall_macro",
           "f1": "f1_macro", "f1_best": "f1_macro_best", "acc_tumor_type": "accuracy_tumor_type",
           "nll": "log_loss"}  # fmt: skip
LEGACY_NAMES = {f"{s}/{old}": f"{s}/{new}" for s in STAGES for old, new in RENAMED.items()}


def shown_in(sink: str) -> tuple[Metric, ...]:
    """The metrics ``sink`` shows, in the table's order."""
    if sink not in SINKS:
        raise ValueError(f"no sink '{sink}': the sinks are {SINKS}.")
    return tuple(m for m in METRICS if sink in m.sinks)


def names_in(sink: str) -> tuple[str, ...]:
    """The names of :func:`shown_in` ``sink``."""
    return tuple(m.name for m in shown_in(sink))


def hparams_keys() -> tuple[str, ...]:
    """``<stage>/<name>`` of the HPARAMS tab: ``val/f1_macro_best`` (what checkpoints and
    sweeps follow) first, then test, then val (TensorBoard shows the first five by default)."""
    keys = [metric_key("val", "f1_macro_best")]
    for stage in ("test", "val"):
        keys += [metric_key(stage, m.name) for m in METRICS if stage in m.hparams]
    return tuple(dict.fromkeys(keys))


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
    """The vocabulary's name for ``key``, also for a name of older runs (``val/f1_best``,
    ``test/nll``)."""
    return LEGACY_NAMES.get(key, key)
