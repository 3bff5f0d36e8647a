"""The cross-validation summary of a sweep: folds' mean ± std and pooled out-of-fold results."""

from __future__ import annotations

import csv
import json
import subprocess
import sys

import numpy as np
import pytest

from braintumor.runs.record import write_run_info
from braintumor.sweeps.report import write_sweep_report
from tests.conftest import FAST, ROOT

CLASSES = ["a", "b", "c"]


def _fold_job(sweep, fold, rng, images=30, accuracy=0.8, bootstrap=200):
    job = sweep / str(fold)
    (job / "reports").mkdir(parents=True)
    (job / ".hydra").mkdir()
    (job / ".hydra" / "config.yaml").write_text(
        f"eval:\n  bootstrap: {bootstrap}\n  ece_bins: 10\n"
    )
    write_run_info(job, {"status": "completed", "job": fold, "overrides": [f"data.fold={fold}"],
                         "objective_name": "val/f1_macro_best", "objective": 0.8,
                         "metrics": {"val/f1_macro_best": 0.8}})  # fmt: skip
    y = rng.integers(0, 3, images)
    pred = np.where(rng.random(images) < accuracy, y, (y + 1) % 3)
    with (job / "reports" / "test_predictions.csv").open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["path", "group", "label", "predicted", *CLASSES])
        for i in range(images):
            probs = np.full(3, 0.1)
            probs[pred[i]] = 0.8
            writer.writerow([f"f{fold}/{i}.jpeg", f"case{fold}_{i // 3}", CLASSES[y[i]],
                             CLASSES[pred[i]], *probs])  # fmt: skip
    acc = float(np.mean(pred == y))
    metrics = {"accuracy": acc, "f1_macro": acc, "balanced_accuracy": acc, "ece": 0.05, "aurc": 0.1}
    (job / "reports" / "test_metrics.json").write_text(json.dumps(metrics))
    return len(y)


def test_a_fold_sweep_gets_mean_std_and_pooled_out_of_fold_metrics(tmp_path):
    rng = np.random.default_rng(0)
    sweep = tmp_path / "sweep"
    total = sum(_fold_job(sweep, fold, rng) for fold in range(3))
    result = write_sweep_report(sweep)
    assert result["cv_summary"] == sweep / "cv_summary.md"
    summary = json.loads((sweep / "cv_summary.json").read_text())
    assert [f["fold"] for f in summary["folds"]] == [0, 1, 2] and summary["notes"] == []
    pooled = summary["pooled"]
    assert pooled["n"] == total and pooled["ci95"]["accuracy"][0] <= pooled["accuracy"]
    assert "cases" in pooled["ci_method"]  # the groups of the predictions
    assert "200 resamples" in pooled["ci_method"]  # the folds' eval.bootstrap
    oof = list(csv.DictReader((sweep / "oof_predictions.csv").open()))
    assert len(oof) == total and {r["fold"] for r in oof} == {"0", "1", "2"}
    assert "± " in (sweep / "cv_summary.md").read_text()


def test_an_image_tested_in_two_folds_is_said(tmp_path):
    rng = np.random.default_rng(1)
    sweep = tmp_path / "sweep"
    _fold_job(sweep, 0, rng)
    _fold_job(sweep, 1, rng)
    predictions = sweep / "1" / "reports" / "test_predictions.csv"
    predictions.write_text(predictions.read_text().replace("f1/0.jpeg", "f0/0.jpeg"))
    write_sweep_report(sweep)
    assert "1 image(s) were tested in several folds" in (sweep / "cv_summary.md").read_text()


@pytest.mark.slow
def test_experiment_cv5_runs_and_summarizes_every_fold(tiny_root, tmp_path):
    sweep = tmp_path / "cv"
    cmd = [sys.executable, str(ROOT / "train.py"), "-m", "experiment=cv5", "data=folder",
           f"data.root={tiny_root}", f"hydra.sweep.dir={sweep}", f"paths.cache_dir={tmp_path}/c",
           *FAST, "logger=none", "~callbacks.augmented_samples",
           "~callbacks.lr_monitor"]  # fmt: skip
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    oof = list(csv.DictReader((sweep / "oof_predictions.csv").open()))
    assert len(oof) == len({r["path"] for r in oof}) == 64  # every image tested exactly once
    assert json.loads((sweep / "cv_summary.json").read_text())["notes"] == []


def test_folds_without_recorded_or_with_other_eval_settings_get_no_pooled_intervals(tmp_path):
    rng = np.random.default_rng(2)
    sweep = tmp_path / "sweep"
    _fold_job(sweep, 0, rng)
    _fold_job(sweep, 1, rng, bootstrap=50)
    write_sweep_report(sweep)
    summary = json.loads((sweep / "cv_summary.json").read_text())
    assert "pooled" not in summary
    assert any("other eval.bootstrap" in note for note in summary["notes"])
    (sweep / "1" / ".hydra" / "config.yaml").unlink()
    write_sweep_report(sweep)
    notes = json.loads((sweep / "cv_summary.json").read_text())["notes"]
    assert notes == ["no pooled ECE or intervals: 1: no .hydra/config.yaml"]
