"""Conformal prediction sets (eval.conformal): the guarantee, the refusals, the run's reports,
the checkpoint, predict and the page."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from braintumor.conformal import (
    ConformalScore,
    coverage,
    describe_set,
    fit_conformal,
    needed,
    prediction_sets,
    threshold,
)
from braintumor.errors import DataError, UsageError
from braintumor.evaluation.settings import EvaluationSettings
from braintumor.runs.checkpoint_file import read_checkpoint


def calibrated_model(n: int, k: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Probabilities of a calibrated model: each label drawn from its row's probabilities."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(0, 2.0, (n, k))
    probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    labels = np.array([rng.choice(k, p=p) for p in probs])
    return probs, labels


@pytest.mark.parametrize("method", ["aps", "raps"])
@pytest.mark.parametrize("level", [0.8, 0.9, 0.95])
def test_sets_cover_at_least_the_level_and_not_much_more(method, level):
    score = ConformalScore(method, penalty=0.02, k_reg=2)
    covered = []
    for seed in range(5):
        cal, cal_y = calibrated_model(1000, 10, seed)
        new, new_y = calibrated_model(4000, 10, seed + 100)
        limit = threshold(score.of_labels(cal, cal_y), level)
        sets = prediction_sets(new, limit, score)
        covered.append(coverage(new_y, sets, [str(i) for i in range(10)], level)["coverage"])
    assert level - 0.01 <= np.mean(covered) <= level + 0.03, covered


def test_scores_are_the_mass_ranked_above_plus_the_raps_penalty():
    probs = np.array([[0.2, 0.5, 0.3]])
    aps = ConformalScore("aps").all_classes(probs)
    raps = ConformalScore("raps", penalty=0.1, k_reg=1).all_classes(probs)
    assert aps[0].tolist() == pytest.approx([0.8, 0.0, 0.5])
    assert raps[0].tolist() == pytest.approx([1.0, 0.0, 0.6])  # ranks 3, 1, 2
    assert ConformalScore("aps").of_labels(probs, np.array([2])).tolist() == pytest.approx([0.5])
    with pytest.raises(ValueError, match="one of"):
        ConformalScore("lac")


def test_a_set_always_holds_the_most_probable_class():
    probs = np.array([[0.97, 0.02, 0.01], [0.5, 0.3, 0.2]])
    sets = prediction_sets(probs, 0.01, ConformalScore("aps"))
    assert sets.tolist() == [[True, False, False], [True, False, False]]
    wide = prediction_sets(probs, 0.5, ConformalScore("aps"))
    assert wide.tolist() == [[True, False, False], [True, True, False]]
    assert describe_set(["Glioblastoma T1C+", "Astrocitoma T1C+"], 0.95) == (
        "Glioblastoma T1C+ or Astrocitoma T1C+ (95% set)"
    )


def test_too_few_calibration_cases_are_refused_with_the_number_needed():
    assert needed(0.95) == 19 and needed(0.9) == 9 and needed(0.8) == 4
    threshold(np.linspace(0, 1, 19), 0.95)  # exactly enough
    with pytest.raises(DataError, match="least 19 validation cases; the validation split has 18"):
        threshold(np.linspace(0, 1, 18), 0.95, "validation cases")
    probs, y = calibrated_model(30, 4, 0)
    groups = (np.arange(30) // 3, np.arange(30) // 3)  # 10 cases of 3 images
    with pytest.raises(DataError, match="19 validation cases"):
        fit_conformal(0.95, ConformalScore(), (y, probs), (y[:10], probs[:10], "folder"))
    assert groups


@pytest.mark.parametrize("bad", [0.0, 1.0, 1.5, "high"])
def test_a_level_outside_zero_one_is_refused(bad):
    values = {f: None for f in ("ood",)}
    values.update(calibration="temperature", bootstrap=0, target_accuracy=0.9, tta="none",
                  ece_bins=10, min_support=1, remove_near_copies=True, pointing_tolerance=0,
                  pointing_target="label", conformal=bad, conformal_method="aps",
                  conformal_penalty=0.0, conformal_k_reg=1)  # fmt: skip
    with pytest.raises(UsageError, match=r"eval\.conformal must be"):
        EvaluationSettings.from_config(values, seed=0)
    values.pop("conformal")  # a run recorded before sets existed: none
    assert EvaluationSettings.from_config(values, seed=0).conformal is None


def test_a_run_with_conformal_sets_reports_stores_and_serves_them(make_cfg, tmp_path, tiny_root):
    from braintumor.inference.export import main as export_main
    from braintumor.inference.loading import load_predictor
    from braintumor.inference.predict import PredictConfig, predict
    from braintumor.inference.web.backend import PageBackend
    from braintumor.pipeline.train import train

    torch.manual_seed(0)
    cfg = make_cfg("eval.conformal=0.8", "trainer.max_epochs=2", "logger=none",
                   "~callbacks.lr_monitor", "~callbacks.augmented_samples")  # fmt: skip
    run = tmp_path / "run"
    train(cfg)
    metrics = json.loads((run / "reports" / "test_metrics.json").read_text())
    found = metrics["conformal"]["images"]
    assert found["level"] == 0.8 and found["n"] == metrics["n"]
    assert 1 <= found["mean_set_size"] <= 4 and 0 <= found["coverage"] <= 1
    with (run / "reports" / "test_predictions.csv").open() as f:
        rows = list(csv.DictReader(f))
    for row in rows:  # the set holds the predicted class first; coverage counts the label
        members = row["prediction_set"].split("|")
        assert members[0] == row["predicted"]
    hits = np.mean([r["label"] in r["prediction_set"].split("|") for r in rows])
    assert hits == pytest.approx(found["coverage"])
    with (run / "reports" / "classification_report_test.csv").open() as f:
        report = list(csv.DictReader(f))
    assert {"set_coverage", "mean_set_size"} <= set(report[0])
    ckpt = next((run / "checkpoints").glob("epoch_*.ckpt"))
    stored = read_checkpoint(ckpt).calibration["conformal"]
    assert (
        stored["level"] == 0.8
        and stored["images"] == json.loads((run / "reports" / "val_metrics.json").read_text())["n"]
    )
    predictor = load_predictor(ckpt, "cpu")
    out = tmp_path / "predicted"
    rows, _ = predict(PredictConfig(ckpt=str(ckpt), input=str(tiny_root), out=str(out)))
    probs = predictor.predict_images([predictor.load(rows[0]["file"])])
    expected = describe_set(predictor.prediction_sets(probs)[0], 0.8)
    assert rows[0]["prediction_set"] in (expected, "")  # "" only for a refused image
    assert any(r["prediction_set"].endswith("(80% set)") for r in rows)
    # the ONNX file's sidecar carries the sets; the page shows them
    onnx = tmp_path / "model.onnx"
    export_main([f"ckpt={ckpt}", f"out={onnx}"])
    batch = [predictor.load(r["file"]) for r in rows[:8]]
    served = load_predictor(onnx, "cpu")
    assert served.prediction_sets(served.predict_images(batch)) == predictor.prediction_sets(
        predictor.predict_images(batch)
    )
    page = PageBackend(onnx, "cpu")
    scan = tiny_root / rows[0]["file"] if not rows[0]["file"].startswith("/") else rows[0]["file"]
    answer = page.classify(Path(scan).read_bytes(), "scan.jpeg")
    if answer["in_distribution"]:
        assert answer["prediction_set"]["text"].endswith("(80% set)")
        assert answer["prediction_set"]["classes"][0] == answer["top"][0]["class"]
    assert "80% prediction sets (APS)" in page.info()["calibration_note"]


def test_too_few_validation_cases_are_refused_before_training(make_cfg, tmp_path):
    from braintumor.pipeline.train import train

    cfg = make_cfg("eval.conformal=0.99", "logger=none")
    with pytest.raises(DataError, match="at least 99 validation images"):
        train(cfg)
    assert not (tmp_path / "run" / "checkpoints").exists()
