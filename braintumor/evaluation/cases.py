"""Case-level results: one prediction per case (patient, or near-duplicate group), from the
mean calibrated probability of its images.

What a case's label is:

- every image of the case has the same class: that class;
- the images span several classes of one tumour type (e.g. T1 and T2 of one tumour): every case
  is then scored in the tumour-type taxonomy (class probabilities summed per type), where the
  case has one label; the report says so (``taxonomy: tumor_type``);
- the images span several tumour types: the case has no single label; it is listed with
  ``excluded`` and left out of the case metrics (counted in ``excluded``).
"""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from braintumor.atomic import write_atomically
from braintumor.data.taxonomy import tumor_types
from braintumor.evaluation.bootstrap import (
    bootstrap_intervals,
    confusion_counts,
    metrics_from_counts,
)


@dataclass(frozen=True)
class CaseResult:
    """One case: its label and prediction (in ``taxonomy``), images and their agreement."""

    group: str
    true_label: str
    predicted_label: str
    probability: float  # of the predicted label, from the mean probability
    images: int
    agreement: float  # share of its images whose own prediction is the case's
    excluded: str = ""  # why the case has no single label (then it is not scored)


@dataclass(frozen=True)
class CaseProbabilities:
    """Each case's mean calibrated probabilities in ``taxonomy`` (``labels``), its label index
    (-1 when its images span several labels) and its images' rows."""

    groups: list[str]
    taxonomy: str
    labels: list[str]
    probs: np.ndarray  # (cases, labels)
    truth: np.ndarray  # (cases,), -1: several labels
    members: list[list[int]]
    image_probs: np.ndarray  # (images, labels): the images' probabilities in the taxonomy
    image_truth: np.ndarray  # (images,)


def case_probabilities(
    y_true: Sequence[int], y_prob: np.ndarray, groups: Sequence[object],
    class_names: Sequence[str],
) -> CaseProbabilities:  # fmt: skip
    """One probability vector per case (the rule of the module docstring)."""
    y_true, y_prob = np.asarray(y_true), np.asarray(y_prob, dtype=np.float64)
    members: dict[str, list[int]] = defaultdict(list)
    for i, group in enumerate(groups):
        members[str(group)].append(i)
    spans = any(len(set(y_true[idx].tolist())) > 1 for idx in members.values())
    types = tumor_types(class_names) if spans else None
    if types is None:  # one class per case (or names without a type): the model's classes
        taxonomy, labels = "folder", list(class_names)
        label_of = np.arange(len(class_names))
    else:
        taxonomy, labels = "tumor_type", sorted(set(types))
        label_of = np.array([labels.index(t) for t in types])
    probs = np.zeros((len(y_prob), len(labels)))
    np.add.at(probs.T, label_of, y_prob.T)  # sum the probabilities of each label's classes
    true = label_of[y_true]
    ordered = sorted(members.items())
    means = np.array([probs[idx].mean(0) for _, idx in ordered]).reshape(-1, len(labels))
    truth = np.array(
        [t[0] if len(t := sorted(set(true[idx].tolist()))) == 1 else -1 for _, idx in ordered],
        dtype=np.int64,
    )
    return CaseProbabilities([g for g, _ in ordered], taxonomy, labels, means, truth,
                             [idx for _, idx in ordered], probs, true)  # fmt: skip


def case_results(
    y_true: Sequence[int],
    y_prob: np.ndarray,
    groups: Sequence[object],
    class_names: Sequence[str],
) -> tuple[list[CaseResult], str, list[str]]:
    """``(cases, taxonomy, labels)``: one :class:`CaseResult` per group, the taxonomy they are
    scored in (``folder`` or ``tumor_type``) and its label names."""
    table = case_probabilities(y_true, y_prob, groups, class_names)
    labels, own, true = table.labels, table.image_probs.argmax(1), table.image_truth
    results = []
    for group, mean, idx in zip(table.groups, table.probs, table.members, strict=True):
        predicted = int(mean.argmax())
        truths = sorted(set(true[idx].tolist()))
        excluded = ""
        if len(truths) > 1:
            excluded = f"images of several labels: {[labels[t] for t in truths]}"
        results.append(
            CaseResult(
                group,
                "/".join(labels[t] for t in truths),
                labels[predicted],
                float(mean[predicted]),
                len(idx),
                float(np.mean(own[idx] == predicted)),
                excluded,
            )
        )
    return results, table.taxonomy, labels


def case_metrics(
    results: Sequence[CaseResult], taxonomy: str, labels: Sequence[str], resamples: int,
    seed: int = 0,
) -> dict[str, object]:  # fmt: skip
    """Accuracy and macro F1 over the scored cases, with bootstrap intervals over cases."""
    scored = [r for r in results if not r.excluded]
    index = {label: i for i, label in enumerate(labels)}
    y = np.array([index[r.true_label] for r in scored], dtype=np.int64)
    pred = np.array([index[r.predicted_label] for r in scored], dtype=np.int64)
    out: dict[str, object] = {
        "taxonomy": taxonomy,
        "n": len(scored),
        "excluded": len(results) - len(scored),
        "rule": "mean calibrated probability of a case's images; cases spanning classes of one "
        "tumour type are scored by tumour type",
    }
    if not scored:
        return {**out, "accuracy": None, "f1_macro": None, "reason": "no case to score"}
    point = metrics_from_counts(confusion_counts(y, pred, len(labels)))
    intervals, method = bootstrap_intervals(y, pred, len(labels), None, resamples, seed)
    out.update({"accuracy": point["accuracy"], "f1_macro": point["f1_macro"]})
    out["ci95"] = {k: intervals[k] for k in ("accuracy", "f1_macro")}
    out["ci_method"] = method.replace("images", "cases", 1)
    return out


def write_cases_csv(path: Path, results: Sequence[CaseResult], taxonomy: str) -> Path:
    """``<split>_cases.csv``: one row per case."""
    text = io.StringIO()
    writer = csv.writer(text)
    writer.writerow(["group", "true_label", "predicted_label", "probability", "images",
                     "agreement", "taxonomy", "excluded"])  # fmt: skip
    for r in results:
        writer.writerow([r.group, r.true_label, r.predicted_label, f"{r.probability:.6f}",
                         r.images, f"{r.agreement:.4f}", taxonomy, r.excluded])  # fmt: skip
    return write_atomically(path, text.getvalue())
