"""A model trained on one fixture set, scored on another it never saw (issue 14, item 5):
``python train.py train=false ckpt_path=... data=... eval.external=...``."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pytest
import torch
from hydra.core.global_hydra import GlobalHydra

from braintumor.errors import DataError
from braintumor.pipeline.evaluate import evaluate
from braintumor.pipeline.train import train
from tests.conftest import FAST, compose_config
from tests.data.public_sets import NICKPARVAR, write_class_folders

TRAIN_FAST = [*FAST, "logger=none", "~callbacks.lr_monitor", "~callbacks.augmented_samples",
              "eval.bootstrap=50", "trainer.max_epochs=2", "model.optimizer.lr=3e-3"]  # fmt: skip


@pytest.fixture(scope="module")
def nickparvar_run(tmp_path_factory) -> tuple[Path, Path]:
    """A model trained on a 4-class folder set like nickparvar4's (glioma, meningioma,
    notumor, pituitary): its best checkpoint and its data root."""
    base = tmp_path_factory.mktemp("external")
    root = base / "nickparvar_folders"
    write_class_folders(root, NICKPARVAR, per_class=10, size=48)
    run_dir = base / "run"
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        train(compose_config(run_dir, ["data=folder", f"data.root={root}", *TRAIN_FAST]))
    finally:
        torch.set_num_threads(threads)
        GlobalHydra.instance().clear()
    return next((run_dir / "checkpoints").glob("epoch_*.ckpt")), root


def _score(ckpt: Path, root: Path, out: Path, *overrides: str) -> dict[str, float]:
    cfg = compose_config(out, ["data=folder", f"data.root={root}", *FAST, "train=false",
                               f"ckpt_path={ckpt}", "eval.bootstrap=50", *overrides])  # fmt: skip
    try:
        return evaluate(cfg)
    finally:
        GlobalHydra.instance().clear()


def test_a_model_scored_on_another_set_writes_the_external_reports(nickparvar_run, tmp_path):
    ckpt, train_root = nickparvar_run
    external = tmp_path / "br35h"  # Br35H's layout: yes/ and no/ (its label map by name)
    write_class_folders(external, {"yes": "Glioblastoma T2", "no": "_NORMAL T2"}, 6, seed=9,
                        size=48)  # fmt: skip
    seen = [r for r in csv.DictReader((ckpt.parents[1] / "split.csv").open())
            if r["split"] == "train"][:2]  # fmt: skip
    for i, row in enumerate(seen):  # two training images copied into the external set
        shutil.copy(train_root / row["path"], external / "yes" / f"copy{i}.jpg")
    metrics = _score(ckpt, external, tmp_path / "eval", "eval.external=true")
    out = ckpt.parents[1] / "reports" / "external" / "br35h"
    written = ("external_metrics.json", "classification_report_external.csv",
               "confusion_matrix_external.png", "confusion_matrix_external.csv",
               "external_predictions.csv", "out_of_label_set.csv", "near_copies.csv")  # fmt: skip
    for name in written:
        assert (out / name).is_file(), name
    report = json.loads((out / "external_metrics.json").read_text())
    assert report["level"] == "tumor_vs_normal"  # Br35H does not name the tumour's family
    assert report["shared_labels"] == ["normal", "tumor"]
    assert report["near_copies_removed"] == 2 and report["n"] == 12  # 14 images, 2 copies
    assert report["model_classes"]["notumor"] == "normal"
    copies = list(csv.DictReader((out / "near_copies.csv").open()))
    assert sorted(c["path"] for c in copies) == ["yes/copy0.jpg", "yes/copy1.jpg"]
    assert metrics["external/accuracy"] == pytest.approx(report["accuracy"])
    assert 0.0 <= report["accuracy"] <= 1.0 and len(report["ci95"]["accuracy"]) == 2
    card = (ckpt.parents[1] / "reports" / "model_card.md").read_text()  # the run's card says so
    assert "## External validation" in card and "| br35h | tumor_vs_normal | 12 |" in card


def test_labels_the_model_lacks_are_reported_out_of_its_label_set(nickparvar_run, tmp_path):
    ckpt, _ = nickparvar_run
    external = tmp_path / "brain44c"  # 44c folders: an other_tumor type the model lacks
    write_class_folders(external, {"Glioblastoma T1C+": "Glioblastoma T1C+",
                                   "Schwannoma T1C+": "Schwannoma T1C+",
                                   "_NORMAL T1": "_NORMAL T1"}, 5, seed=4, size=48)  # fmt: skip
    _score(ckpt, external, tmp_path / "eval", "eval.external=true",
           "eval.remove_near_copies=false")  # fmt: skip
    report = json.loads(
        (ckpt.parents[1] / "reports/external/brain44c/external_metrics.json").read_text()
    )
    assert report["level"] == "family" and report["shared_labels"] == ["glioma", "normal"]
    assert report["n"] == 10 and report["n_out_of_label_set"] == 5
    assert list(report["out_of_label_set"]) == ["Schwannoma T1C+"]
    assert sum(report["out_of_label_set"]["Schwannoma T1C+"].values()) == 5
    assert report["near_copies_checked"] is False


def test_a_set_sharing_no_label_is_refused(nickparvar_run, tmp_path):
    ckpt, _ = nickparvar_run
    external = tmp_path / "brain44c"
    write_class_folders(external, {"Schwannoma T1C+": "Schwannoma T1C+",
                                   "Germinoma T1C+": "Germinoma T1C+"}, 3, size=48)  # fmt: skip
    with pytest.raises(DataError, match="share no label"):
        _score(ckpt, external, tmp_path / "eval", "eval.external=true")


def test_without_eval_external_a_foreign_label_set_says_how_to_score_it(nickparvar_run, tmp_path):
    ckpt, _ = nickparvar_run
    external = tmp_path / "br35h"
    write_class_folders(external, {"yes": "Glioblastoma T2", "no": "_NORMAL T2"}, 4, size=48)
    with pytest.raises(DataError, match=r"eval\.external=true"):
        _score(ckpt, external, tmp_path / "eval", "eval.external=false", "eval.reuse_split=false")


def test_a_checkpoint_outside_its_run_folder_needs_the_copy_check_off(nickparvar_run, tmp_path):
    ckpt, _ = nickparvar_run
    alone = Path(shutil.copy(ckpt, tmp_path / "model.ckpt"))  # no run folder around it
    external = tmp_path / "br35h"
    write_class_folders(external, {"yes": "Glioblastoma T2", "no": "_NORMAL T2"}, 3, size=48)
    with pytest.raises(DataError, match=r"eval\.remove_near_copies=false"):
        _score(alone, external, tmp_path / "eval", "eval.external=true")
    _score(
        alone, external, tmp_path / "eval2", "eval.external=true", "eval.remove_near_copies=false"
    )
    report = tmp_path / "eval2" / "reports" / "external" / "br35h" / "external_metrics.json"
    assert json.loads(report.read_text())["trained_on"] == "unknown (no run record)"
