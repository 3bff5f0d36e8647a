"""The reports of a model scored on an external set (one it never saw), in the shared labels.

:func:`write_external_reports` writes into ``reports/external/<source>/``:

- ``external_metrics.json``: accuracy, balanced accuracy, macro precision/recall/F1 over the
  shared labels (with 95% bootstrap intervals, over cases when images are grouped), ECE and
  NLL of the shared-label probabilities, the images scored, the images out of the model's
  label set (and what it answered for them), the near-copies of its training images removed;
- ``classification_report_external.csv``: per shared label, precision, recall, F1, support,
  one-vs-rest AUROC, specificity, balanced accuracy and ECE (then the macro and weighted
  averages over them);
- ``confusion_matrix_external.png``, ``.html`` and ``.csv``: true shared label x the model's
  answer (the model-only labels' rows are empty);
- ``external_predictions.csv``: every image, scored or not, with its labels and the answer;
- ``out_of_label_set.csv``: per label the model lacks, the images and the model's answers.

Plain functions of predictions (no Lightning, no datamodule).
"""

from __future__ import annotations

import csv
import io
import json
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from braintumor.atomic import write_atomically
from braintumor.evaluation.bootstrap import bootstrap_intervals, class_ratios, confusion_counts
from braintumor.evaluation.calibration import expected_calibration_error
from braintumor.evaluation.classification import write_report_rows
from braintumor.evaluation.confusion_report import write_confusion_reports
from braintumor.evaluation.label_space import OUT_OF_LABEL_SET, SharedLabels
from braintumor.evaluation.per_class import per_class_metrics
from braintumor.evaluation.write import json_safe

SPLIT = "external"  # the file names' split part: external_metrics.json, ...


@dataclass(frozen=True)
class ExternalImages:
    """The images of an external set that were predicted: relative path, source label, case
    (``None`` without groups) and the model's calibrated probabilities over its classes
    ``class_names``."""

    paths: Sequence[str]
    source_labels: Sequence[str]
    probs: np.ndarray
    class_names: Sequence[str]
    groups: Sequence[object] | None = None


def shared_metrics(counts: np.ndarray, n_shared: int) -> dict[str, float]:
    """Headline metrics of a ``(K, K)`` confusion matrix whose first ``n_shared`` classes are
    the shared labels (the only true ones): macro averages over those alone; an answer in a
    model-only class is a miss of the true one."""
    tp = np.diag(counts)[:n_shared]
    total = counts.sum()
    precision, recall, f1, support = (r[:n_shared] for r in class_ratios(counts))
    present = support > 0
    return {
        "accuracy": float(tp.sum() / total) if total else float("nan"),
        "balanced_accuracy": float(recall[present].mean()) if present.any() else float("nan"),
        "precision_macro": float(precision[present].mean()) if present.any() else float("nan"),
        "recall_macro": float(recall[present].mean()) if present.any() else float("nan"),
        "f1_macro": float(f1[present].mean()) if present.any() else float("nan"),
    }


def _class_rows(counts: np.ndarray, shared: Sequence[str]) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = []
    for i, name in enumerate(shared):
        tp, support, predicted = counts[i, i], counts[i].sum(), counts[:, i].sum()
        p = tp / predicted if predicted else 0.0
        r = tp / support if support else 0.0
        f = 2 * tp / (support + predicted) if support + predicted else 0.0
        rows.append({"class": name, "precision": float(p), "recall": float(r), "f1": float(f),
                     "support": int(support)})  # fmt: skip
    weights = np.array([row["support"] for row in rows], dtype=float)
    for average in ("macro", "weighted"):
        w = np.ones_like(weights) if average == "macro" else weights
        w = w * (weights > 0)  # over the labels present in the set
        total = w.sum() or 1.0
        rows.append({
            "class": f"{average} avg",
            **{k: float(sum(r[k] * wi for r, wi in zip(rows, w, strict=False)) / total)
               for k in ("precision", "recall", "f1")},
            "support": int(weights.sum()),
        })  # fmt: skip
    return rows


def _csv_text(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    text = io.StringIO()
    writer = csv.writer(text)
    writer.writerow(header)
    writer.writerows(rows)
    return text.getvalue()


def write_external_reports(
    out_dir: str | Path,
    images: ExternalImages,
    space: SharedLabels,
    extra: Mapping[str, Any] | None = None,
    *,
    bootstrap: int,
    seed: int,
    ece_bins: int,
    min_support: int,
) -> dict[str, Any]:
    """Score ``images`` in the labels of ``space`` and write the files listed above into
    ``out_dir``; return the content of ``external_metrics.json``. ``extra``: more fields of
    it (the checkpoint, the source, the near-copies removed, ...); ``min_support``: confusion
    rows of fewer images are marked (``eval.min_support``)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    label_probs = space.probabilities(images.probs)
    answers = label_probs.argmax(1) if len(label_probs) else np.zeros(0, dtype=int)
    shared_of = [space.external_label[label] for label in images.source_labels]
    index = {name: i for i, name in enumerate(space.labels)}
    scored = np.array([s != OUT_OF_LABEL_SET for s in shared_of], dtype=bool)
    y_true = np.array([index[s] for s in shared_of if s != OUT_OF_LABEL_SET], dtype=int)
    y_pred, probs = answers[scored], label_probs[scored]
    k = len(space.labels)
    counts = confusion_counts(y_true, y_pred, k) if len(y_true) else np.zeros((k, k))
    metrics: dict[str, Any] = {"n": int(scored.sum()), **shared_metrics(counts, space.n_shared)}
    if len(y_true):
        metrics["ece"] = expected_calibration_error(y_true, probs, ece_bins)
        metrics["log_loss"] = float(
            -np.log(np.clip(probs[np.arange(len(y_true)), y_true], 1e-12, 1)).mean()
        )
    groups = None
    if images.groups is not None:
        kept = [g for g, s in zip(images.groups, scored, strict=True) if s]
        groups = kept if len(set(map(str, kept))) < len(kept) else None
    if bootstrap > 0:
        shared = partial(shared_metrics, n_shared=space.n_shared)
        metrics["ci95"], metrics["ci_method"] = bootstrap_intervals(
            y_true, y_pred, k, groups, bootstrap, seed, metrics=shared
        )
    out_of_set = Counter(
        (label, space.labels[a])
        for label, s, a in zip(images.source_labels, shared_of, answers, strict=True)
        if s == OUT_OF_LABEL_SET
    )
    metrics.update({
        "level": space.level,
        "shared_labels": list(space.shared),
        "model_only_labels": list(space.model_only),
        "model_classes": dict(zip(images.class_names, space.model_label, strict=True)),
        "label_of_source_label": dict(space.external_label),
        "n_images": len(images.paths),
        "n_out_of_label_set": int((~scored).sum()),
        "out_of_label_set": {label: {a: n for (lab, a), n in out_of_set.items() if lab == label}
                             for label in sorted({lab for lab, _ in out_of_set})},
        **(extra or {}),
    })  # fmt: skip
    text = json.dumps(json_safe(metrics), indent=2, allow_nan=False) + "\n"
    write_atomically(out / f"{SPLIT}_metrics.json", text)
    rows = _class_rows(counts, space.shared)
    extra_columns = per_class_metrics(y_true, probs, space.labels, ece_bins)[: space.n_shared]
    for row, more in zip(rows, extra_columns, strict=False):  # AUROC, specificity, ...
        row.update({k: v for k, v in more.items() if k != "class"})
    write_report_rows(out / f"classification_report_{SPLIT}.csv", rows)
    shared = space.shared
    write_atomically(out / f"confusion_matrix_{SPLIT}.csv", _csv_text(
        ["true \\ predicted", *space.labels],
        [[name, *map(int, counts[i])] for i, name in enumerate(shared)],
    ))  # fmt: skip
    if len(y_true):  # else nothing to draw: every image out of the label set (or removed)
        scored_paths = [p for p, s in zip(images.paths, scored, strict=True) if s]
        write_confusion_reports(out, SPLIT, y_true, y_pred, list(space.labels), scored_paths,
                                min_support=min_support)  # fmt: skip
    groups_all = images.groups if images.groups is not None else [""] * len(images.paths)
    write_atomically(out / f"{SPLIT}_predictions.csv", _csv_text(
        ["path", "group", "source_label", "label", "predicted", *space.labels],
        [[p, g, lab, s, space.labels[a], *(f"{x:.6g}" for x in row)]
         for p, g, lab, s, a, row in zip(images.paths, groups_all, images.source_labels,
                                         shared_of, answers, label_probs, strict=True)],
    ))  # fmt: skip
    write_atomically(out / "out_of_label_set.csv", _csv_text(
        ["source_label", "predicted", "images"],
        [[lab, a, n] for (lab, a), n in sorted(out_of_set.items())],
    ))  # fmt: skip
    return metrics
