"""External validation on the public sets' layouts: a nickparvar4-trained model scored on
figshare3 (Grad-CAM against the tumour masks), and a source left out of merged training
(``eval.held_out``, what ``experiment=leave_one_source_out`` sweeps)."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from hydra.core.global_hydra import GlobalHydra
from PIL import Image

from braintumor.data.sources.figshare import read_figshare_image
from braintumor.errors import UsageError
from braintumor.pipeline.evaluate import evaluate
from braintumor.pipeline.external_sets import leave_source_out
from braintumor.pipeline.train import train
from braintumor.vocabulary import is_metric_key
from tests.conftest import FAST, ROOT, compose_config
from tests.data.public_sets import write_44c, write_figshare, write_nickparvar

QUICK = [*FAST, "logger=none", "~callbacks.lr_monitor", "~callbacks.augmented_samples",
         "eval.bootstrap=50", "trainer.max_epochs=2", "model.optimizer.lr=3e-3"]  # fmt: skip


def _run(run_dir: Path, overrides: list[str], scoring: bool = False) -> dict[str, float]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        cfg = compose_config(run_dir, [*QUICK, *overrides])
        return evaluate(cfg) if scoring else train(cfg)
    finally:
        torch.set_num_threads(threads)
        GlobalHydra.instance().clear()


@pytest.fixture(scope="module")
def sets(tmp_path_factory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("sets")
    roots = {name: base / name for name in ("nickparvar4", "figshare3", "brain44c")}
    write_nickparvar(roots["nickparvar4"], train=8, test=3)
    write_figshare(roots["figshare3"], patients=6, per_patient=3, size=64)
    write_44c(roots["brain44c"], per_class=5)
    return roots


def test_figshare_scored_by_a_nickparvar_model_checks_grad_cam_against_masks(sets, tmp_path):
    _run(tmp_path / "run", ["data=nickparvar4", f"data.root={sets['nickparvar4']}"])
    ckpt = next((tmp_path / "run" / "checkpoints").glob("epoch_*.ckpt"))
    # no eval.external: figshare3 is not a source the checkpoint's run trained on (auto)
    scoring = ["train=false", f"ckpt_path={ckpt}", "data=figshare3",
               f"data.root={sets['figshare3']}"]  # fmt: skip
    metrics = _run(tmp_path / "eval", scoring, scoring=True)
    out = tmp_path / "run" / "reports" / "external" / "figshare3"
    report = json.loads((out / "external_metrics.json").read_text())
    assert report["level"] == "family" and report["trained_on"] == ["nickparvar4"]
    assert report["shared_labels"] == ["glioma", "meningioma", "pituitary"]
    assert report["model_only_labels"] == ["normal"]  # a possible (wrong) answer here
    assert report["n"] == 18 and report["n_out_of_label_set"] == 0
    assert "bootstrap over cases (6 groups" in report["ci_method"]  # patients
    rows = {r["class"]: r for r in csv.DictReader((out / "pointing_game.csv").open())}
    assert set(rows) == {"glioma", "meningioma", "pituitary", "all"}
    assert int(rows["all"]["n"]) == 18
    assert 0.0 <= float(rows["all"]["pointing_game"]) <= 1.0
    assert 0.0 < float(rows["all"]["mask_share"]) < 0.2  # the fixture's tumours: r = size/8
    assert report["pointing_game"]["n"] == 18 and "energy_in_mask" in report["pointing_game"]
    assert report["pointing_game"]["target"] == "the true label's most probable class"
    assert metrics["external/accuracy"] == pytest.approx(report["accuracy"])
    own = ["train=false", f"ckpt_path={ckpt}", "data=nickparvar4",
           f"data.root={sets['nickparvar4']}", "eval.external=true"]  # fmt: skip
    with pytest.raises(UsageError, match="trained on source 'nickparvar4'"):
        _run(tmp_path / "own", own, scoring=True)  # its own set is no external one


def test_a_source_left_out_of_merged_training_is_scored_without_copies(sets, tmp_path):
    nick = sets["nickparvar4"]
    planted = sorted(p.name for p in sets["figshare3"].glob("*.mat") if p.name != "cvind.mat")[:3]
    for i, name in enumerate(planted):  # figshare slices inside the 4-class set, as JPEGs
        image = read_figshare_image(sets["figshare3"] / name)
        Image.fromarray(image).save(nick / "Training" / "glioma" / f"fig{i}.jpg", quality=90)
    try:
        roots = [f"data.roots.{name}={root}" for name, root in sets.items()]
        merged = ["data=merged", "data.sources=[nickparvar4,figshare3,brain44c]", *roots]
        metrics = _run(tmp_path / "run", [*merged, "eval.held_out=figshare3"])
    finally:
        for i in range(len(planted)):
            (nick / "Training" / "glioma" / f"fig{i}.jpg").unlink()
    environment = json.loads((tmp_path / "run" / "environment.json").read_text())
    assert environment["config"]["data"]["sources"] == ["nickparvar4", "brain44c"]
    out = tmp_path / "run" / "reports" / "external" / "figshare3"
    report = json.loads((out / "external_metrics.json").read_text())
    assert report["trained_on"] == ["nickparvar4", "brain44c"]
    split_of = {r["path"].rsplit("/", 1)[-1]: r["split"]
                for r in csv.DictReader((tmp_path / "run" / "split.csv").open())}  # fmt: skip
    seen = {name for i, name in enumerate(planted) if split_of[f"fig{i}.jpg"] in ("train", "val")}
    copies = list(csv.DictReader((out / "near_copies.csv").open()))
    assert seen and {c["path"] for c in copies} == seen  # those it trained on, not the others
    assert report["near_copies_removed"] == len(seen) and report["n"] == 18 - len(seen)
    assert (out / "pointing_game.csv").is_file()
    assert metrics["external/accuracy"] == pytest.approx(report["accuracy"])
    assert [k for k in metrics if not is_metric_key(k)] == []  # external/<name>: vocabulary


@pytest.mark.slow
def test_leave_one_source_out_sweeps_every_source(sets, tmp_path):
    """``python train.py -m experiment=leave_one_source_out``: one job per source left out,
    each scoring it into its reports/external/<source>/."""
    out = tmp_path / "loso"
    roots = [f"data.roots.{name}={root}" for name, root in sets.items()]
    cmd = [sys.executable, str(ROOT / "train.py"), "-m", "experiment=leave_one_source_out",
           "data.sources=[nickparvar4,figshare3]", "eval.held_out=nickparvar4,figshare3", *roots,
           *QUICK, f"paths.log_dir={out}", f"paths.cache_dir={tmp_path / 'cache'}",
           f"hydra.sweep.dir={out / 'sweep'}"]  # fmt: skip
    result = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    scored = sorted(p.parent.name for p in (out / "sweep").glob("*/reports/external/*/*.json"))
    assert scored == ["figshare3", "nickparvar4"]
    nick = json.loads(
        next((out / "sweep").glob("*/reports/external/nickparvar4/*.json")).read_text()
    )
    assert nick["trained_on"] == ["figshare3"] and nick["out_of_label_set"]  # notumor
    summary = (out / "sweep" / "sweep_summary.csv").read_text()  # the set left out, per job
    assert "eval.held_out" in summary and "external/accuracy" in summary


def test_the_source_held_out_must_be_one_of_the_merged_sources(compose):
    cfg = compose(["data=merged", "data.sources=[nickparvar4,figshare3]", "eval.held_out=br35h"])
    with pytest.raises(UsageError, match=r"eval\.held_out=br35h"):
        leave_source_out(cfg)
    kept = compose(["data=merged", "data.sources=[nickparvar4,figshare3]"])
    assert leave_source_out(kept) is kept  # no eval.held_out: the config as it is
    left = leave_source_out(
        compose(["data=merged", "data.sources=[nickparvar4,figshare3]", "eval.held_out=figshare3"])
    )
    assert list(left.data.sources) == ["nickparvar4"]
    assert list(left.eval.external_data.sources) == ["figshare3"]
