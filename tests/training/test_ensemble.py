"""python -m braintumor ensemble: members of one split as one model, calibrated and scored on
images none trained on, served and exported like any checkpoint; mismatched members refused."""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch
from hydra.core.global_hydra import GlobalHydra

from braintumor.errors import DataError, UsageError
from braintumor.evaluation.temperature import scale
from braintumor.pipeline.ensemble import build_ensemble
from tests.conftest import FAST, ROOT, compose_config


def train_member(root, run_dir, seed, *extra):
    from braintumor.pipeline.train import train

    overrides = ["data=folder", f"data.root={root}", *FAST, "trainer.max_epochs=3",
                 f"seed={seed}", "model.optimizer.lr=3e-3", "data.batch_size=8", "logger=none",
                 "~callbacks.lr_monitor", "~callbacks.augmented_samples", "eval.bootstrap=50",
                 *extra]  # fmt: skip
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        train(compose_config(run_dir, overrides))
    finally:
        torch.set_num_threads(threads)
        GlobalHydra.instance().clear()
    return run_dir


@pytest.fixture(scope="module")
def members(tmp_path_factory, tiny_root):
    base = tmp_path_factory.mktemp("members")
    return [train_member(tiny_root, base / f"seed{s}", s) for s in (1, 2, 3)]


def test_an_ensemble_is_calibrated_scored_and_served_like_a_model(members, tmp_path, tiny_root):
    from braintumor.inference.loading import load_predictor
    from braintumor.inference.predict import PredictConfig, predict

    out = tmp_path / "ens"
    results = build_ensemble([str(m) for m in members], out,
                             overrides=["eval.bootstrap=50", "eval.conformal=0.8"])  # fmt: skip
    ckpt = out / "checkpoints" / "ensemble.ckpt"
    test = json.loads((out / "reports" / "test_metrics.json").read_text())
    split = list(csv.DictReader((members[0] / "split.csv").open()))
    assert test["n"] == sum(r["split"] == "test" for r in split)
    assert test["calibration"]["conformal"]["images"] == sum(r["split"] == "val" for r in split)
    assert len(results["members"]) == 4 and results["members"][-1]["model"] == "ensemble"
    table = (out / "reports" / "members.md").read_text()
    assert all(str(next((m / "checkpoints").glob("epoch_*.ckpt"))) in table for m in members)
    rows = list(csv.DictReader((out / "reports" / "test_predictions.csv").open()))
    shares = {float(r["member_disagreement"]) for r in rows}
    assert shares <= {0.0, 1 / 3, 2 / 3, 1.0} or all(0 <= s <= 1 for s in shares)

    # served: the mean of the members' calibrated probabilities, with the ensemble's temperature
    ensemble = load_predictor(ckpt, "cpu")
    singles = [load_predictor(next((m / "checkpoints").glob("epoch_*.ckpt")), "cpu")
               for m in members]  # fmt: skip
    images = [ensemble.load(tiny_root / r["path"]) for r in rows[:6]]
    mean = np.mean([p.predict_images(images) for p in singles], axis=0)
    expected = scale(mean, ensemble.temperature)
    np.testing.assert_allclose(ensemble.predict_images(images), expected, atol=1e-5)
    predicted, _ = predict(PredictConfig(ckpt=str(ckpt), input=str(tiny_root),
                                         out=str(tmp_path / "pred"), explain=True))  # fmt: skip
    assert len(predicted) == 64 and "prediction_set" in predicted[0]
    assert any(r["gradcam"] for r in predicted)

    # one ONNX graph with its sidecar, parity-checked by the export command
    done = subprocess.run([sys.executable, "-m", "braintumor", "export", f"ckpt={ckpt}",
                           f"out={tmp_path / 'ens.onnx'}"], cwd=ROOT, capture_output=True,
                          text=True)  # fmt: skip
    assert done.returncode == 0, done.stderr
    onnx = load_predictor(tmp_path / "ens.onnx", "cpu")
    np.testing.assert_allclose(onnx.predict_images(images), ensemble.predict_images(images),
                               atol=1e-4)  # fmt: skip
    assert onnx.conformal == ensemble.conformal


def test_members_of_other_classes_or_preprocessing_are_refused_naming_both(
    members, tmp_path, tiny_root
):
    small = train_member(tiny_root, tmp_path / "small", 1, "data.image_size=24")
    with pytest.raises(
        DataError, match=r"differ in image_size: .*seed1.* has \[32\], .*small.* has \[24\]"
    ):
        build_ensemble([str(members[0]), str(small)], tmp_path / "bad")
    with pytest.raises(UsageError, match="at least 2 members"):
        build_ensemble([str(members[0])], tmp_path / "one")
    assert not (tmp_path / "bad" / "checkpoints").exists()


def test_members_of_different_splits_leave_nothing_to_calibrate_and_are_refused(members, tmp_path):
    other = shutil.copytree(members[1], tmp_path / "fold")
    rows = list(csv.DictReader((other / "split.csv").open()))
    for row in rows:  # a cross-validation fold: what the others validated on, it trained on
        if row["split"] == "val":
            row["split"] = "train"
    with (other / "split.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    ckpt = next((other / "checkpoints").glob("epoch_*.ckpt"))
    with pytest.raises(DataError, match="different splits"):
        build_ensemble([str(members[0]), str(ckpt)], tmp_path / "cv")


def test_the_command_line_fails_in_one_line(tmp_path):
    done = subprocess.run([sys.executable, "-m", "braintumor", "ensemble", str(tmp_path / "x"),
                           str(tmp_path / "y"), "--out", str(tmp_path / "e")], cwd=ROOT,
                          capture_output=True, text=True)  # fmt: skip
    assert done.returncode == 2
    assert "neither a checkpoint nor a run" in done.stderr and "Traceback" not in done.stderr


def test_a_member_given_twice_is_refused(members, tmp_path):
    ckpt = next((members[0] / "checkpoints").glob("epoch_*.ckpt"))
    with pytest.raises(UsageError, match="hold the same weights"):
        build_ensemble([str(members[0]), str(ckpt)], tmp_path / "twice")


def test_an_out_folder_that_holds_a_run_is_refused_and_left_alone(members, tmp_path):
    before = sorted(p.name for p in (members[0] / "reports").iterdir())
    with pytest.raises(UsageError, match="a member's run folder"):
        build_ensemble([str(m) for m in members], members[0])
    assert sorted(p.name for p in (members[0] / "reports").iterdir()) == before
    other = tmp_path / "busy"
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    with pytest.raises(UsageError, match="holds other files"):
        build_ensemble([str(m) for m in members], other)


def test_an_image_damaged_since_training_is_named(members, tmp_path, tiny_root):
    data = shutil.copytree(tiny_root, tmp_path / "data")
    rows = list(csv.DictReader((members[0] / "split.csv").open()))
    victim = next(r["path"] for r in rows if r["split"] == "test")
    (data / victim).write_bytes(b"not a jpeg any more")
    with pytest.raises(DataError, match=r"could not be read now"):
        build_ensemble([str(m) for m in members[:2]], tmp_path / "e", data=data)


@pytest.mark.slow
def test_members_of_other_classes_are_refused_naming_both(members, tmp_path, tiny_root):
    data = shutil.copytree(tiny_root, tmp_path / "three")
    shutil.rmtree(next(p for p in sorted(data.iterdir()) if p.is_dir()))
    other = train_member(data, tmp_path / "three_run", 1)
    with pytest.raises(DataError, match=r"differ in class_names: .*seed1.* has \['"):
        build_ensemble([str(members[0]), str(other)], tmp_path / "e")


@pytest.mark.slow
def test_an_ensemble_can_be_a_member_of_an_ensemble(members, tmp_path):
    inner = tmp_path / "inner"
    build_ensemble([str(m) for m in members[:2]], inner, overrides=["eval.bootstrap=0"])
    outer = build_ensemble([str(inner), str(members[2])], tmp_path / "outer",
                           overrides=["eval.bootstrap=0"])  # fmt: skip
    assert outer["members"][-1]["model"] == "ensemble" and len(outer["members"]) == 3


@pytest.mark.slow
def test_a_kill_mid_write_leaves_no_partial_file(members, tmp_path):
    """SIGKILL the command at several moments: whatever it wrote is whole (checkpoint
    verified, JSON and CSV parse), or absent."""
    import signal
    import time

    from braintumor.runs.checkpoint_file import read_checkpoint

    out = tmp_path / "ens"
    cmd = [sys.executable, "-m", "braintumor", "ensemble", *map(str, members), "--out", str(out),
           "eval.bootstrap=20"]  # fmt: skip
    for delay in (3.0, 4.5, 6.0, 7.5, 9.0):
        process = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL)  # fmt: skip
        time.sleep(delay)
        process.send_signal(signal.SIGKILL)
        process.wait()
        ckpt = out / "checkpoints" / "ensemble.ckpt"
        if ckpt.exists():
            read_checkpoint(ckpt)  # raises on a partial or corrupt file
        for path in out.rglob("*.json"):
            json.loads(path.read_text())
        for path in out.rglob("*.csv"):
            assert path.read_text().endswith("\n"), path
        assert not [p for p in out.rglob("*") if p.name.startswith(".") and "tmp" in p.name]


@pytest.mark.slow
def test_settings_may_follow_the_out_option(members, tmp_path):
    done = subprocess.run([sys.executable, "-m", "braintumor", "ensemble", *map(str, members[:2]),
                           "--out", str(tmp_path / "e"), "eval.bootstrap=0", "eval.conformal=0.8"],
                          cwd=ROOT, capture_output=True, text=True)  # fmt: skip
    assert done.returncode == 0, done.stderr
    found = json.loads((tmp_path / "e" / "reports" / "test_metrics.json").read_text())
    assert found["conformal"]["images"]["level"] == 0.8
