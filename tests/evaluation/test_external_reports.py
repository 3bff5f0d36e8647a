"""The external-set reports as functions of predictions (braintumor.evaluation.external) and the
near-copies of training images (braintumor.evaluation.near_copies)."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from PIL import Image

from braintumor.data.fingerprint import fingerprint_scans
from braintumor.evaluation.external import ExternalImages, shared_metrics, write_external_reports
from braintumor.evaluation.external_card import NO_EXTERNAL, add_external_section
from braintumor.evaluation.label_space import shared_labels
from braintumor.evaluation.near_copies import find_near_copies
from tests.data.public_sets import plant_figshare_copies, write_figshare, write_nickparvar

NICKPARVAR = {"glioma": "glioma", "meningioma": "meningioma", "notumor": "normal",
              "pituitary": "pituitary"}  # fmt: skip

EVIDENCE = {"seed": 0, "ece_bins": 15, "min_support": 10}  # conf/eval/default.yaml


def _onehot(indices, k):
    probs = np.full((len(indices), k), 0.02)
    probs[np.arange(len(indices)), indices] = 1 - 0.02 * (k - 1)
    return probs


def test_external_reports_score_the_shared_labels_and_count_the_others(tmp_path):
    classes = ["glioma", "meningioma", "pituitary"]  # a figshare-like model
    space = shared_labels(classes, NICKPARVAR)
    labels = ["glioma", "glioma", "meningioma", "pituitary", "notumor", "notumor", "notumor"]
    answers = [0, 1, 1, 2, 0, 2, 2]
    images = ExternalImages([f"{i}.jpg" for i in range(7)], labels, _onehot(answers, 3), classes)
    metrics = write_external_reports(tmp_path, images, space, {"source": "nickparvar4"},
                                     **EVIDENCE, bootstrap=50)  # fmt: skip
    assert metrics["n"] == 4 and metrics["n_out_of_label_set"] == 3
    assert metrics["accuracy"] == pytest.approx(0.75)
    assert metrics["out_of_label_set"] == {"notumor": {"glioma": 1, "pituitary": 2}}
    assert metrics["source"] == "nickparvar4" and metrics["level"] == "family"
    saved = json.loads((tmp_path / "external_metrics.json").read_text())
    assert saved["accuracy"] == pytest.approx(0.75) and len(saved["ci95"]["f1_macro"]) == 2
    for name in ("classification_report_external.csv", "confusion_matrix_external.png",
                 "confusion_matrix_external.csv", "confusion_matrix_external.html",
                 "external_predictions.csv",
                 "out_of_label_set.csv"):  # fmt: skip
        assert (tmp_path / name).is_file(), name
    rows = list(csv.DictReader((tmp_path / "external_predictions.csv").open()))
    assert [r["label"] for r in rows[4:]] == ["out of its label set"] * 3
    report = {r["class"]: r for r in csv.DictReader(
        (tmp_path / "classification_report_external.csv").open())}  # fmt: skip
    assert set(report) == {"glioma", "meningioma", "pituitary", "macro avg", "weighted avg"}
    assert report["glioma"]["recall"] == "0.5000" and report["meningioma"]["precision"] == "0.5000"
    assert report["pituitary"]["auroc"] == "1.0000" and report["glioma"]["specificity"]


def test_answers_in_a_model_only_label_are_misses_not_averaged_classes():
    # shared: glioma, normal; the model also has other_tumor (never true here)
    counts = np.array([[3, 0, 1], [0, 4, 0], [0, 0, 0]])
    metrics = shared_metrics(counts, n_shared=2)
    assert metrics["accuracy"] == pytest.approx(7 / 8)
    assert metrics["recall_macro"] == pytest.approx((0.75 + 1.0) / 2)  # two labels, not three
    assert metrics["precision_macro"] == pytest.approx(1.0)


def test_confusion_csv_has_shared_rows_and_every_model_answer(tmp_path):
    classes = ["glioma", "normal", "other_tumor"]
    space = shared_labels(classes, NICKPARVAR)
    images = ExternalImages(["a", "b", "c"], ["glioma", "notumor", "glioma"],
                            _onehot([0, 1, 2], 3), classes)  # fmt: skip
    write_external_reports(tmp_path, images, space, **EVIDENCE, bootstrap=0)
    rows = list(csv.reader((tmp_path / "confusion_matrix_external.csv").open()))
    assert rows[0] == ["true \\ predicted", "glioma", "normal", "other_tumor"]
    assert rows[1] == ["glioma", "1", "0", "1"] and rows[2] == ["normal", "0", "1", "0"]


def test_near_copies_of_training_images_are_found_and_others_kept(tmp_path):
    rng = np.random.default_rng(0)
    train, ext = tmp_path / "train", tmp_path / "ext"
    train.mkdir()
    ext.mkdir()
    pictures = [rng.integers(0, 255, (64, 64), dtype=np.uint8) for _ in range(4)]
    for i, picture in enumerate(pictures[:3]):
        Image.fromarray(picture).resize((128, 128)).save(train / f"t{i}.png")
    Image.fromarray(pictures[0]).resize((128, 128)).save(ext / "same.png")  # identical pixels
    Image.fromarray(pictures[1]).resize((120, 120)).save(ext / "rescaled.jpg", quality=80)
    Image.fromarray(pictures[3]).resize((128, 128)).save(ext / "new.png")
    train_prints = fingerprint_scans(train, ["t0.png", "t1.png", "t2.png"])
    ext_prints = fingerprint_scans(ext, ["same.png", "rescaled.jpg", "new.png"])
    split = {"t0.png": "train", "t1.png": "val", "t2.png": "train"}
    copies = find_near_copies(ext_prints, train_prints, split, max_distance=12)
    found = {c.path: (c.training_path, c.training_split) for c in copies}
    assert found == {"same.png": ("t0.png", "train"), "rescaled.jpg": ("t1.png", "val")}


def test_cropped_and_rescaled_copies_are_found_with_the_files_at_hand(tmp_path):
    figshare, nickparvar = tmp_path / "figshare3", tmp_path / "nickparvar4"
    write_figshare(figshare, patients=3, per_patient=2, size=128)
    write_nickparvar(nickparvar, train=2, test=1)
    planted = plant_figshare_copies(figshare, nickparvar, 4, seed=1)  # one of each kind
    slices = sorted(p.name for p in figshare.glob("*.mat") if p.name != "cvind.mat")
    training = sorted(p.relative_to(nickparvar).as_posix() for p in nickparvar.rglob("*.jpg"))
    ours, theirs = fingerprint_scans(figshare, slices), fingerprint_scans(nickparvar, training)
    split = dict.fromkeys(training, "train")
    wanted = {(f, c) for f, c, _ in planted}
    hashed = {(c.path, c.training_path) for c in find_near_copies(ours, theirs, split, 12)}
    both = find_near_copies(ours, theirs, split, 12, roots=(figshare, nickparvar))
    assert {(c.path, c.training_path) for c in both} == wanted
    assert hashed < wanted  # the cropped ones need the pixel check
    assert {c.distance for c in both if (c.path, c.training_path) not in hashed} == {-1}


def test_a_set_with_nothing_left_to_score_still_reports_its_counts(tmp_path):
    classes = ["glioma", "meningioma", "pituitary"]
    space = shared_labels(classes, NICKPARVAR)
    images = ExternalImages(["a", "b"], ["notumor", "notumor"], _onehot([0, 1], 3), classes)
    metrics = write_external_reports(tmp_path, images, space, **EVIDENCE, bootstrap=10)
    assert metrics["n"] == 0 and metrics["n_out_of_label_set"] == 2
    saved = json.loads((tmp_path / "external_metrics.json").read_text())
    assert saved["accuracy"] is None  # undefined, not 0
    assert not (tmp_path / "confusion_matrix_external.png").exists()


def test_the_model_card_gets_one_external_section_per_scoring_of_every_set(tmp_path):
    card = tmp_path / "model_card.md"
    card.write_text("# Model card\n\n## Subgroups (test)\n\nx\n\n## Limitations\n\n"
                    f"{NO_EXTERNAL}\n- other\n")  # fmt: skip
    for source, accuracy in (("figshare3", 0.5), ("br35h", 0.75)):
        folder = tmp_path / "external" / source
        folder.mkdir(parents=True)
        (folder / "external_metrics.json").write_text(json.dumps(
            {"source": source, "level": "family", "n": 8, "n_out_of_label_set": 2,
             "near_copies_removed": 1, "accuracy": accuracy, "f1_macro": 0.4,
             "ci95": {"accuracy": [0.3, 0.7]}}))  # fmt: skip
        add_external_section(card, tmp_path)
    add_external_section(card, tmp_path)  # again: rewritten, not repeated
    text = card.read_text()
    assert text.count("## External validation") == 1
    assert text.index("## External validation") < text.index("## Limitations")
    assert "| figshare3 | family | 8 | 2 | 1 | 0.500 [0.300, 0.700] | 0.400 |" in text
    assert "| br35h |" in text and NO_EXTERNAL not in text and "- other" in text
