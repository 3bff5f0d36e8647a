"""The out-of-distribution check: fitted on training/validation scans at evaluation time,
stored in the checkpoint and the ONNX sidecar, and applied alike by both backends."""

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from braintumor.data.synthetic import class_names_for, render_scan, write_synthetic_dataset
from braintumor.inference import ood
from braintumor.inference.loading import load_predictor
from braintumor.inference.predict import PredictConfig, predict
from braintumor.inference.preprocess import DecodedScan, decode_scan


def phantoms(n: int, seed: int, size: int = 48) -> list[np.ndarray]:
    """``n`` procedural MRI-like slices ``(1, size, size)`` of the 4 demo classes."""
    names, rng = class_names_for(4), np.random.default_rng(seed)
    return [render_scan(names[i % 4], rng, size)[None] for i in range(n)]


def blank(path: Path) -> Path:
    Image.new("L", (96, 80), 128).save(path)
    return path


def colour_photo(path: Path) -> Path:
    """A photo-like picture: a blue sky fading to the horizon, green grass, a yellow sun and
    some grain."""
    h, w = 120, 160
    rows = np.linspace(0, 1, h)[:, None, None]
    sky = np.array([70, 130, 230]) * (1 - 0.4 * rows) + np.array([200, 220, 255]) * 0.4 * rows
    grass = np.array([60, 160, 60]) * np.ones((h, 1, 1))
    picture = np.where(rows < 0.6, sky, grass) * np.ones((1, w, 1))
    yy, xx = np.mgrid[:h, :w]
    picture[(yy - 30) ** 2 + (xx - 120) ** 2 < 15**2] = [250, 220, 40]
    grain = np.random.default_rng(0).normal(0, 6, picture.shape)
    Image.fromarray((picture + grain).clip(0, 255).astype(np.uint8)).save(path)
    return path


def noise(path: Path) -> Path:
    Image.fromarray(np.random.default_rng(1).integers(0, 256, (64, 64), dtype=np.uint8)).save(path)
    return path


def features(images: list[np.ndarray]) -> np.ndarray:
    return np.array([ood.image_features(i) for i in images])


def test_thresholds_chosen_on_validation_accept_the_stated_share_of_new_scans():
    settings = ood.OodSettings(acceptance=0.9)
    rng = np.random.default_rng(0)
    reference, val, new = phantoms(300, 1), phantoms(400, 2), phantoms(1000, 3)
    val_energy, new_energy = rng.normal(-5, 1, len(val)), rng.normal(-5, 1, len(new))
    stats = ood.fit_ood(features(reference), features(val), [0.0] * len(val), val_energy,
                        settings)  # fmt: skip
    assert stats["note"] == "" and 0.88 <= stats["validation_accepted"] <= 0.95
    accepted = [ood.check(stats, f, 0.0, e).accepted for f, e in zip(features(new), new_energy,
                                                                      strict=True)]  # fmt: skip
    assert 0.86 <= np.mean(accepted) <= 0.95  # at least ~90% (conformal), not all
    json.dumps(stats)  # plain values: it travels in checkpoints and sidecars


def test_too_few_validation_scans_set_the_threshold_beyond_the_largest_and_say_so():
    threshold, note = ood.conformal_threshold(np.array([1.0, 2.0, 3.0]), 0.975)
    assert threshold == 4.0 and "too few" in note
    assert ood.conformal_threshold(np.arange(1.0, 101.0), 0.9) == (91.0, "")


def test_each_kind_of_foreign_image_is_refused_with_its_reason(tmp_path):
    stats = ood.fit_ood(features(phantoms(200, 1)), features(phantoms(100, 2)), [0.0] * 100,
                        None, ood.OodSettings())  # fmt: skip
    reasons = {}
    for name, make in (("blank", blank), ("colour", colour_photo), ("noise", noise)):
        scan = decode_scan(make(tmp_path / f"{name}.png"), channels=1)
        verdict = ood.check(stats, ood.image_features(scan.pixels), scan.colour)
        assert not verdict.accepted, name
        reasons[name] = verdict.reason
    assert "blank" in reasons["blank"] and "colour" in reasons["colour"]
    assert "unlike the training scans" in reasons["noise"]
    scan = DecodedScan(phantoms(1, 9)[0], 0.0)
    assert ood.check(stats, ood.image_features(scan.pixels), scan.colour).accepted
    assert ood.check(None, ood.image_features(scan.pixels), 1.0).accepted  # no stats: no check


@pytest.fixture(scope="module")
def held_out(tmp_path_factory) -> list[Path]:
    """120 new phantom scans like the tiny training data (another seed)."""
    root = write_synthetic_dataset(tmp_path_factory.mktemp("held_out"), num_classes=4,
                                   per_class=30, seed=11, min_size=40, max_size=56)  # fmt: skip
    return sorted(root.rglob("*.jpeg"))


def test_a_trained_model_carries_its_check_into_the_onnx_sidecar(trained_ckpt, exported):
    stored = torch.load(trained_ckpt, map_location="cpu", weights_only=True)["calibration"]["ood"]
    assert stored["acceptance"] == 0.99 and stored["validation_scans"] > 0
    assert {"distance_threshold", "energy_threshold", "min_contrast", "max_colour"} <= set(stored)
    sidecar = json.loads(exported[0].with_suffix(".json").read_text())
    assert sidecar["calibration"]["ood"] == stored
    assert sidecar["outputs"] == ["probabilities", "logits"]


@pytest.mark.parametrize("backend", ["ckpt", "onnx"])
def test_both_backends_refuse_foreign_images_and_accept_new_scans(
    backend, trained_ckpt, exported, held_out, tmp_path
):
    model = trained_ckpt if backend == "ckpt" else exported[0]
    predictor = load_predictor(model, "cpu")
    foreign = [blank(tmp_path / "blank.png"), colour_photo(tmp_path / "photo.jpg"),
               noise(tmp_path / "noise.png")]  # fmt: skip
    answer = predictor.assess([predictor.read(p) for p in foreign])
    assert [v.accepted for v in answer.verdicts] == [False, False, False]
    answer = predictor.assess([predictor.read(p) for p in held_out])
    accepted = np.mean([v.accepted for v in answer.verdicts])
    assert accepted >= 0.9, accepted  # stated: 99% (the tiny model has 10 val scans)


def test_predict_gives_no_class_for_a_foreign_image_unless_told_to(trained_ckpt, exported,
                                                                   held_out, tmp_path):  # fmt: skip
    held_out_dir = held_out[0].parents[1]
    folder = tmp_path / "in"
    folder.mkdir()
    blank(folder / "blank.png")
    rows, _ = predict(PredictConfig(ckpt=str(exported[0]), input=str(folder),
                                    out=str(tmp_path / "a")))  # fmt: skip
    written = list(csv.DictReader((tmp_path / "a" / "predictions.csv").open()))
    assert written[0]["class"] == "" and written[0]["probability"] == ""
    assert written[0]["confidence"].startswith("not an MRI scan: the image is blank")
    shutil.copy(next(held_out_dir.rglob("*.jpeg")), folder / "scan.jpeg")
    rows, _ = predict(PredictConfig(ckpt=str(trained_ckpt), input=str(folder), explain=True,
                                    out=str(tmp_path / "c")))  # fmt: skip
    by_name = {Path(r["file"]).name: r for r in rows}
    assert by_name["blank.png"]["gradcam"] == "" and by_name["scan.jpeg"]["gradcam"]
    written = list(csv.DictReader((tmp_path / "c" / "predictions.csv").open()))
    assert [r["gradcam"] == "" for r in written] == [r["gradcam"] == "" for r in rows]
    rows, _ = predict(PredictConfig(ckpt=str(trained_ckpt), input=str(folder),
                                    out=str(tmp_path / "b"), check_input=False))  # fmt: skip
    assert rows[0]["class"] in load_predictor(exported[0]).class_names
    assert not rows[0]["confidence"].startswith("not an MRI scan")


def test_eval_ood_settings_come_from_the_config_and_null_turns_the_check_off(compose):
    from braintumor.pipeline.settings import evaluation_settings

    settings = evaluation_settings(compose()).ood
    assert ood.OodSettings(**settings) == ood.OodSettings()  # conf/eval = the defaults
    assert evaluation_settings(compose(["eval.ood=null"])).ood is None
    with pytest.raises(ValueError, match=r"eval\.ood\.acceptance must be a number in"):
        ood.OodSettings(**{**settings, "acceptance": 1.0})
