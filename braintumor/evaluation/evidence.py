"""The evidence of one evaluated checkpoint: calibrated probabilities, intervals, case-level
results, per-class numbers, subgroups and selective prediction, for val and test.

:func:`calibrate` fits (or takes from the checkpoint) the temperature and the abstention
threshold on validation; :func:`split_evidence` turns one split's raw predictions into the
calibrated probabilities the reports score, the extra fields of ``{split}_metrics.json``, the
per-class columns of ``classification_report_{split}.csv``, and writes the split's figures
and tables (reliability, risk-coverage, cases, subgroups).
"""

from __future__ import annotations

import csv
import io
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import numpy as np

from braintumor.atomic import write_atomically
from braintumor.data.image import open_scan
from braintumor.evaluation.bootstrap import (
    bootstrap_intervals,
    confusion_counts,
    metrics_from_counts,
)
from braintumor.evaluation.calibration import expected_calibration_error
from braintumor.evaluation.cases import case_metrics, case_results, write_cases_csv
from braintumor.evaluation.evidence_plots import plot_reliability, plot_risk_coverage
from braintumor.evaluation.per_class import per_class_metrics
from braintumor.evaluation.prediction_sets import fit_sets, set_evidence
from braintumor.evaluation.selective import (
    abstention_threshold,
    apply_threshold,
    case_abstention,
    case_selective,
    risk_coverage,
)
from braintumor.evaluation.settings import EvaluationSettings
from braintumor.evaluation.subgroups import (
    mode_group,
    sequence_of,
    size_bucket,
    subgroup_rows,
    write_subgroups_csv,
)
from braintumor.evaluation.temperature import fit_temperature, scale


@dataclass(frozen=True)
class SplitData:
    """What is known of each image of a split besides its prediction: the scan's path, its
    class folder and its case (group) id (``None`` when no groups exist)."""

    root: Path
    paths: Sequence[str]
    folders: Sequence[str]
    groups: Sequence[object] | None = None
    sources: Sequence[str] | None = None
    sequences: Sequence[str] | None = None  # known from the data's label maps; else parsed

    def first(self, n: int) -> SplitData:
        """The first ``n`` images: what a run limited to a few batches scored (the loaders
        visit a split in order)."""
        if n > len(self.paths):
            raise ValueError(f"{n} predictions for a split of {len(self.paths)} images.")
        cut = slice(0, n)
        return SplitData(
            self.root, self.paths[cut], self.folders[cut],
            self.groups[cut] if self.groups is not None else None,
            self.sources[cut] if self.sources is not None else None,
            self.sequences[cut] if self.sequences is not None else None,
        )  # fmt: skip

    def has_cases(self) -> bool:
        """Whether some case holds several images (else every image is its own case)."""
        return self.groups is not None and len(set(map(str, self.groups))) < len(self.groups)


@dataclass
class SplitEvidence:
    """The outputs of :func:`split_evidence` for one split."""

    probs: np.ndarray  # calibrated
    fields: dict[str, Any] = field(default_factory=dict)  # extra fields of the metrics JSON
    per_class: list[dict[str, Any]] = field(default_factory=list)
    subgroups: list[dict[str, Any]] = field(default_factory=list)


def calibrate(
    settings: EvaluationSettings,
    val: tuple[np.ndarray, np.ndarray] | None,
    stored: Mapping[str, Any] | None = None,
    val_groups: Sequence[object] | None = None,
    class_names: Sequence[str] = (),
) -> dict[str, Any]:
    """The calibration of a checkpoint: ``temperature`` (with ``fitted``, ``reason``), the
    abstention ``threshold`` for ``target_accuracy`` and, with ``eval.conformal``, the
    prediction sets' thresholds (over images, and over the cases ``val_groups`` when some case
    holds several images). A calibration ``stored`` in the checkpoint is used as it is (sets it
    lacks are fitted on ``val``); otherwise all is fitted on ``val`` = ``(y_true, raw probs)``.
    """
    if stored and stored.get("fitted"):
        out = {**stored, "source": "stored in the checkpoint"}
        if "case_abstention" not in out and _has_cases(val, val_groups):
            out["case_abstention"] = case_abstention(
                val[0], scale(val[1], out["temperature"]), list(val_groups)[: len(val[0])],
                class_names, out.get("target_accuracy", settings.target_accuracy))  # fmt: skip
        wanted = settings.conformal
        if wanted is not None and (out.get("conformal") or {}).get("level") != wanted:
            out["conformal"] = fit_sets(settings, val, out["temperature"], val_groups,
                                        class_names)  # fmt: skip
            out["source"] = "stored in the checkpoint; prediction sets fitted on validation"
        return out
    out: dict[str, Any] = {"method": settings.calibration, "tta": settings.tta}
    if settings.calibration == "none" or val is None or not len(val[0]):
        reason = "eval.calibration=none" if settings.calibration == "none" else "no validation set"
        out.update(temperature=1.0, fitted=False, reason=f"not fitted: {reason}")
    else:
        fit = fit_temperature(val[1], val[0])
        out.update(temperature=fit.temperature, fitted=fit.fitted, reason=fit.reason)
        if not fit.fitted:
            warnings.warn(f"temperature scaling fell back to T=1: {fit.reason}.", stacklevel=2)
    out["target_accuracy"] = settings.target_accuracy
    if val is not None and len(val[0]):
        chosen = abstention_threshold(val[0], scale(val[1], out["temperature"]),
                                      settings.target_accuracy)  # fmt: skip
        out["threshold"] = chosen["threshold"]
        if chosen["threshold"] is None:
            out["threshold_reason"] = chosen.get("reason", "")
        if _has_cases(val, val_groups):
            out["case_abstention"] = case_abstention(
                val[0], scale(val[1], out["temperature"]), list(val_groups)[: len(val[0])],
                class_names, settings.target_accuracy)  # fmt: skip
    else:
        out.update(threshold=None, threshold_reason="no validation set")
    if settings.conformal is not None:
        out["conformal"] = fit_sets(settings, val, out["temperature"], val_groups, class_names)
    out["source"] = "fitted on validation"
    return out


def _has_cases(val: tuple[np.ndarray, np.ndarray] | None,
               groups: Sequence[object] | None) -> bool:  # fmt: skip
    """Whether ``val`` has cases: some group holds several of its images."""
    if val is None or not len(val[0]) or groups is None:
        return False
    named = list(map(str, groups))[: len(val[0])]
    return len(set(named)) < len(named)


def image_attributes(data: SplitData) -> dict[str, list[str]]:
    """Subgroup attributes of each image: sequence, image mode, size bucket (and source)."""
    modes, sizes = [], []
    for path in data.paths:
        try:
            with open_scan(data.root / path) as image:  # the header only (.mat: read whole)
                modes.append(mode_group(image.mode))
                sizes.append(size_bucket(*image.size))
        except OSError:
            modes.append("unreadable now")
            sizes.append("unknown")
    known = data.sequences  # from the label maps; else parsed from "<Type> <Sequence>"
    sequences = list(known) if known is not None else [sequence_of(f) for f in data.folders]
    attributes = {
        "sequence": sequences,
        "image_mode": modes,
        "image_size": sizes,
    }
    if data.sources is not None:
        attributes["source"] = list(data.sources)
    return attributes


def split_evidence(
    out_dir: Path,
    split: str,
    y_true: np.ndarray,
    raw: np.ndarray,
    class_names: Sequence[str],
    data: SplitData,
    calibration: Mapping[str, Any],
    settings: EvaluationSettings,
) -> SplitEvidence:
    """Calibrate ``raw`` probabilities, compute the split's evidence, write its figures and
    tables into ``out_dir``; the metrics JSON fields are returned (the caller writes it)."""
    temperature = float(calibration.get("temperature", 1.0))
    probs = scale(raw, temperature)
    y_true = np.asarray(y_true)
    partial = len(y_true) < len(data.paths)  # trainer.limit_*_batches, fast_dev_run
    data = data.first(len(y_true))
    k = len(class_names)
    result = SplitEvidence(probs)
    f = result.fields
    f["temperature"] = temperature
    f["ece_uncalibrated"] = expected_calibration_error(y_true, raw, settings.ece_bins)
    onehot = np.eye(k)[y_true] if len(y_true) else np.zeros((0, k))
    f["brier"] = float(np.mean(((probs - onehot) ** 2).sum(1))) if len(y_true) else None
    y_pred = probs.argmax(1) if len(y_true) else np.zeros(0, dtype=np.int64)
    groups = data.groups if data.has_cases() else None
    if settings.bootstrap > 0:
        intervals, method = bootstrap_intervals(
            y_true, y_pred, k, groups, settings.bootstrap, settings.seed
        )
        f["ci95"], f["ci_method"] = intervals, method
    f["balanced_accuracy"] = metrics_from_counts(confusion_counts(y_true, y_pred, k))[
        "balanced_accuracy"
    ]
    curve = risk_coverage(y_true, probs)
    f["aurc"] = curve.aurc
    threshold = calibration.get("threshold")
    f["selective"] = {
        **apply_threshold(y_true, probs, threshold),
        "target_accuracy": calibration.get("target_accuracy", settings.target_accuracy),
        **({"reason": calibration["threshold_reason"]} if threshold is None else {}),
    }
    f["calibration"] = dict(calibration)
    if partial:
        f["ci_method"] = f"{f.get('ci_method', '')} (only the first {len(y_true)} images scored)"
    if groups is not None:
        cases, taxonomy, labels = case_results(y_true, probs, groups, class_names)
        write_cases_csv(out_dir / f"{split}_cases.csv", cases, taxonomy)
        f["cases"] = case_metrics(cases, taxonomy, labels, settings.bootstrap, settings.seed)
        if calibration.get("case_abstention"):
            chosen = case_selective(y_true, probs, groups, class_names,
                                    calibration["case_abstention"])  # fmt: skip
            target = calibration.get("target_accuracy", settings.target_accuracy)
            f["cases"]["selective"] = {**chosen, "target_accuracy": target}
    sets = None
    if calibration.get("conformal"):
        f["conformal"], sets = set_evidence(y_true, probs, class_names, groups,
                                            calibration["conformal"])  # fmt: skip
    write_predictions_csv(out_dir / f"{split}_predictions.csv", y_true, probs, class_names, data,
                          sets)  # fmt: skip
    result.per_class = per_class_metrics(y_true, probs, class_names, settings.ece_bins)
    if sets is not None:  # coverage and set size per class, in the classification report
        for row, own in zip(result.per_class, f["conformal"]["images"]["per_class"], strict=True):
            row["set_coverage"], row["mean_set_size"] = own["coverage"], own["mean_set_size"]
    f["per_class"] = result.per_class
    result.subgroups = subgroup_rows(y_true, probs, k, image_attributes(data))
    write_subgroups_csv(out_dir / f"{split}_subgroups.csv", result.subgroups)
    if len(y_true):
        ece_after = expected_calibration_error(y_true, probs, settings.ece_bins)
        fig = plot_reliability(y_true, raw, probs, temperature, f["ece_uncalibrated"], ece_after,
                               settings.ece_bins, f"{split} (n={len(y_true)})")  # fmt: skip
        fig.savefig(out_dir / f"reliability_{split}.png", dpi=110)
        plt.close(fig)
        fig = plot_risk_coverage(curve, threshold, f["selective"]["target_accuracy"],
                                 f"{split}: risk-coverage (n={len(y_true)})")  # fmt: skip
        fig.savefig(out_dir / f"risk_coverage_{split}.png", dpi=110)
        plt.close(fig)
    return result


def write_predictions_csv(
    path: Path,
    y_true: np.ndarray,
    probs: np.ndarray,
    class_names: Sequence[str],
    data: SplitData,
    sets: np.ndarray | None = None,
) -> Path:
    """``{split}_predictions.csv``: per image its path, case, label, prediction, its conformal
    set (classes joined by ``|``, most probable first; with sets only) and calibrated
    probabilities (for audits, and the pooled out-of-fold results of cross-validation)."""
    text = io.StringIO()
    writer = csv.writer(text)
    named = ["path", "group", "label", "predicted", *(["prediction_set"] if sets is not None
                                                      else [])]  # fmt: skip
    writer.writerow([*named, *class_names])
    groups = data.groups if data.groups is not None else [""] * len(data.paths)
    for i, (path_, group) in enumerate(zip(data.paths, groups, strict=True)):
        row = [path_, group, class_names[int(y_true[i])], class_names[int(probs[i].argmax())]]
        if sets is not None:
            members = [k for k in np.argsort(-probs[i], kind="stable") if sets[i, k]]
            row.append("|".join(class_names[k] for k in members))
        writer.writerow(row + [f"{p:.6g}" for p in probs[i]])
    return write_atomically(path, text.getvalue())
