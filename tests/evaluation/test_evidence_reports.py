"""A real run reports calibrated probabilities, intervals, cases, subgroups and selective
prediction, and its checkpoint carries the calibration to evaluate, predict and export."""

from __future__ import annotations

import csv
import json

import pytest
import torch
from hydra.core.global_hydra import GlobalHydra

from braintumor.pipeline.evaluate import evaluate
from braintumor.pipeline.train import train
from braintumor.vocabulary import METRIC_NAMES, REPORT_FIELDS
from tests.conftest import FAST, compose_config

QUIET = ["logger=none", "~callbacks.lr_monitor", "~callbacks.augmented_samples",
         "trainer.max_epochs=4", "model.optimizer.lr=3e-3", "data.batch_size=8",
         "data.val_fraction=0.35", "data.test_fraction=0.3", "seed=2"]  # fmt: skip


@pytest.fixture(scope="module")
def evidence_run(tiny_root, tmp_path_factory):
    base = tmp_path_factory.mktemp("evidence")
    groups = base / "groups.csv"
    with groups.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["path", "group"])
        for folder in sorted(p for p in tiny_root.iterdir() if p.is_dir()):
            for i, file in enumerate(sorted(folder.glob("*.jpeg"))):
                writer.writerow([file.relative_to(tiny_root).as_posix(), f"{folder.name}:{i // 2}"])
    run_dir = base / "run"
    overrides = ["data=folder", f"data.root={tiny_root}", *FAST, *QUIET,
                 f"data.group_file={groups}", "eval.tta=flip"]  # fmt: skip
    try:
        metrics = train(compose_config(run_dir, overrides))
    finally:
        GlobalHydra.instance().clear()
    return run_dir, metrics, groups


def test_a_run_reports_the_evidence_of_its_numbers(evidence_run):
    run_dir, metrics, _ = evidence_run
    reports = run_dir / "reports"
    for name in ("reliability_val.png", "reliability_test.png", "risk_coverage_test.png",
                 "test_cases.csv", "test_subgroups.csv", "model_card.md"):  # fmt: skip
        assert (reports / name).is_file(), name
    test = json.loads((reports / "test_metrics.json").read_text())
    assert set(test) <= set(METRIC_NAMES) | set(REPORT_FIELDS)
    for key in ("temperature", "ece_uncalibrated", "ece", "brier", "aurc"):
        assert isinstance(test[key], float), key
    low, high = test["ci95"]["f1_macro"]
    assert low <= test["f1_macro"] <= high
    assert test["ci_method"].startswith("bootstrap over cases (")  # the group file's cases
    assert test["cases"]["n"] + test["cases"]["excluded"] == len(
        list(csv.DictReader((reports / "test_cases.csv").open()))
    )
    assert {"auroc", "specificity", "balanced_accuracy", "ece"} <= set(test["per_class"][0])
    header = next(csv.reader((reports / "classification_report_test.csv").open()))
    assert {"auroc", "specificity", "balanced_accuracy", "ece"} <= set(header)
    assert {"accuracy", "f1_macro", "ece"} == set(test["without_tta"])
    assert "target_accuracy" in test["selective"] and metrics["test/temperature"] > 0
    case_threshold = test["calibration"]["case_abstention"]  # chosen on the val cases
    assert case_threshold["cases"] >= 2 and case_threshold["taxonomy"] == "folder"
    held = test["cases"]["selective"]
    assert held["target_accuracy"] == test["selective"]["target_accuracy"]
    if case_threshold["threshold"] is None:  # this tiny model: no case threshold reaches 0.99
        assert held["reason"] == case_threshold["reason"] and held["coverage"] == 0.0
        assert "No case threshold for studies" in (run_dir / "reports/model_card.md").read_text()
    else:
        assert held["answered"] + held["referred"] == test["cases"]["n"]
    card = (reports / "model_card.md").read_text()
    assert "Research use only" in card and "Calibration" in card and "Subgroups" in card
    assert "python train.py data=folder" in card and "eval.tta=flip" in card  # the command


def test_the_calibration_travels_in_the_checkpoint_to_evaluate_and_predict(
    evidence_run, tiny_root, tmp_path
):
    from braintumor.inference.predict import PredictConfig, predict
    from braintumor.inference.torch_predictor import TorchPredictor

    run_dir, _, groups = evidence_run
    ckpt = next((run_dir / "checkpoints").glob("epoch_*.ckpt"))
    stored = torch.load(ckpt, map_location="cpu", weights_only=True)["calibration"]
    original = json.loads((run_dir / "reports" / "test_metrics.json").read_text())
    assert stored["temperature"] == pytest.approx(original["temperature"])
    cfg = compose_config(tmp_path / "eval", ["data=folder", f"data.root={tiny_root}", *FAST,
                         *QUIET, "train=false", f"ckpt_path={ckpt}",
                         f"data.group_file={groups}", "eval.tta=flip"])  # fmt: skip
    try:
        evaluate(cfg)
    finally:
        GlobalHydra.instance().clear()
    again = json.loads((tmp_path / "eval" / "reports" / "test_metrics.json").read_text())
    for key in ("accuracy", "f1_macro", "ece", "log_loss", "temperature"):
        assert again[key] == pytest.approx(original[key], abs=1e-6), key
    predictor = TorchPredictor.from_checkpoint(ckpt, device="cpu")
    assert predictor.temperature == pytest.approx(stored["temperature"])
    rows, _ = predict(PredictConfig(ckpt=str(ckpt), input=str(tiny_root), out=str(tmp_path / "p"),
                                    device="cpu"))  # fmt: skip
    assert {"confidence", "model"} <= set(rows[0])
    threshold = stored.get("threshold")
    assert all((r["confidence"] == "uncertain - refer") == (threshold is not None and r["class"]
               and r["probability"] < threshold) for r in rows)  # fmt: skip
