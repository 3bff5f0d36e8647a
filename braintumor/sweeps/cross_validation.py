"""The summary of a cross-validation sweep (``python train.py -m experiment=cv5``).

Each job tested one fold. The summary gives the mean ± std of the folds' test metrics, and
pools every fold's test predictions (``oof_predictions.csv``: each image once, predicted by
the model that never saw it) into out-of-fold metrics with bootstrap intervals over cases.
The folds must partition the data: an image tested twice, or a fold missing, is said. The
pooled ECE and intervals use the folds' own ``eval.ece_bins`` and ``eval.bootstrap`` (from
their ``.hydra/config.yaml``); folds that do not record them, or disagree, get none.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from omegaconf import OmegaConf

from braintumor.atomic import write_atomically
from braintumor.evaluation.bootstrap import (
    bootstrap_intervals,
    confusion_counts,
    format_with_interval,
    metrics_from_counts,
)
from braintumor.evaluation.calibration import expected_calibration_error
from braintumor.evaluation.selective import risk_coverage
from braintumor.runs.layout import RunDir
from braintumor.vocabulary import names_in

FOLD_KEY = "data.fold"
FOLD_METRICS = names_in("cv")


def _read_predictions(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    with path.open(newline="") as f:
        reader = csv.DictReader(f)
        named = ("path", "group", "label", "predicted", "prediction_set")
        classes = [c for c in reader.fieldnames or [] if c not in named]
        return classes, list(reader)


def _eval_settings(runs: Sequence[RunDir]) -> tuple[dict[str, int] | None, str]:
    """The folds' ``eval.bootstrap`` and ``eval.ece_bins``, or ``None`` and why not."""
    found = set()
    for run in runs:
        if not run.config.is_file():
            return None, f"{run.root.name}: no .hydra/config.yaml"
        values = OmegaConf.select(OmegaConf.load(run.config), "eval") or {}
        found.add((values.get("bootstrap"), values.get("ece_bins")))
    if len(found) != 1 or None in next(iter(found)):
        return None, f"the folds record other eval.bootstrap/eval.ece_bins: {sorted(found)}"
    bootstrap, ece_bins = next(iter(found))
    return {"bootstrap": int(bootstrap), "ece_bins": int(ece_bins)}, ""


def write_cv_summary(out: Path, rows: Sequence[dict[str, Any]]) -> Path | None:
    """``cv_summary.{md,json}`` and ``oof_predictions.csv`` for the jobs of ``rows`` that set
    ``data.fold``; ``None`` when there are none."""
    folds = [r for r in rows if FOLD_KEY in r["overrides"]]
    if not folds:
        return None
    per_fold, pooled, notes, classes, scored = [], [], [], None, []
    for row in sorted(folds, key=lambda r: int(r["overrides"][FOLD_KEY])):
        fold = int(row["overrides"][FOLD_KEY])
        run = RunDir(Path(row["dir"]))
        metrics_file, predictions = run.metrics("test"), run.reports / "test_predictions.csv"
        if row["status"] != "completed" or not metrics_file.is_file() or not predictions.is_file():
            notes.append(f"fold {fold}: no test predictions (status {row['status']})")
            continue
        metrics = json.loads(metrics_file.read_text())
        per_fold.append({"fold": fold, **{m: metrics.get(m) for m in FOLD_METRICS}})
        fold_classes, records = _read_predictions(predictions)
        if classes is not None and fold_classes != classes:
            notes.append(f"fold {fold}: other classes than fold {per_fold[0]['fold']}; not pooled")
            continue
        classes = fold_classes
        pooled += [{**r, "fold": fold} for r in records]
        scored.append(run)
    paths = [r["path"] for r in pooled]
    if len(set(paths)) < len(paths):
        notes.append(f"{len(paths) - len(set(paths))} image(s) were tested in several folds")
    summary: dict[str, Any] = {"folds": per_fold, "notes": notes}
    summary["mean_std"] = {
        m: {"mean": float(np.mean(v)), "std": float(np.std(v, ddof=1)) if len(v) > 1 else 0.0}
        for m in FOLD_METRICS
        if (v := [f[m] for f in per_fold if f.get(m) is not None])
    }
    settings, why = _eval_settings(scored)
    if pooled and classes and settings is None:
        notes.append(f"no pooled ECE or intervals: {why}")
    if pooled and classes and settings is not None:
        index = {c: i for i, c in enumerate(classes)}
        y = np.array([index[r["label"]] for r in pooled])
        probs = np.array([[float(r[c]) for c in classes] for r in pooled])
        groups = [r["group"] for r in pooled]
        has_cases = any(groups) and len(set(groups)) < len(groups)
        point = metrics_from_counts(confusion_counts(y, probs.argmax(1), len(classes)))
        cases = groups if has_cases else None
        intervals, method = bootstrap_intervals(
            y, probs.argmax(1), len(classes), cases, settings["bootstrap"]
        )
        point["aurc"] = risk_coverage(y, probs).aurc
        ece = expected_calibration_error(y, probs, settings["ece_bins"])
        summary["pooled"] = {**point, "ece": ece, "n": len(y), "ci95": intervals,
                             "ci_method": method}  # fmt: skip
        text = io.StringIO()
        writer = csv.writer(text)
        writer.writerow(["path", "group", "fold", "label", "predicted", *classes])
        for r in pooled:
            writer.writerow([r["path"], r["group"], r["fold"], r["label"], r["predicted"],
                             *(r[c] for c in classes)])  # fmt: skip
        write_atomically(Path(out) / "oof_predictions.csv", text.getvalue())
    md = ["# Cross-validation", "", f"{len(per_fold)} fold(s) with test predictions", ""]
    md += [
        "| metric | mean ± std over folds | pooled out-of-fold [95% CI] |",
        "| --- | --- | --- |",
    ]
    pooled_metrics = summary.get("pooled", {})
    for m in FOLD_METRICS:
        stat = summary["mean_std"].get(m)
        across = f"{stat['mean']:.4f} ± {stat['std']:.4f}" if stat else "n/a"
        value = pooled_metrics.get(m)
        ci = (pooled_metrics.get("ci95") or {}).get(m)
        shown = format_with_interval(value, ci) if value is not None else "n/a"
        md.append(f"| {m} | {across} | {shown} |")
    if pooled_metrics:
        md += ["", f"Pooled: {pooled_metrics['n']} images, {pooled_metrics['ci_method']}."]
    md += [""] + [f"- {n}" for n in notes]
    write_atomically(
        Path(out) / "cv_summary.json", json.dumps(summary, indent=2, default=float) + "\n"
    )
    return write_atomically(Path(out) / "cv_summary.md", "\n".join(md) + "\n")
