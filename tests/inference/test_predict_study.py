"""predict on a study: DICOM folders, zips and NIfTI volumes give one case-level answer, per
series answers and the slices that drove it; no identifying tag reaches any file written."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile

import numpy as np
import pytest

pytest.importorskip("pydicom")
nib = pytest.importorskip("nibabel")

from braintumor.data.pseudonyms import pseudonym  # noqa: E402
from braintumor.data.synthetic import render_scan  # noqa: E402
from braintumor.inference.predict import PredictConfig, predict  # noqa: E402
from tests.conftest import ROOT  # noqa: E402
from tests.dicom_studies import CANARY, write_series  # noqa: E402


@pytest.fixture
def salt(tmp_path, monkeypatch):
    path = tmp_path / "salt"
    path.write_text("test-salt")
    monkeypatch.setenv("BRAINTUMOR_STUDY_SALT_FILE", str(path))
    return b"test-salt"


@pytest.fixture
def study(tmp_path):
    root = tmp_path / f"Doe_{CANARY}"  # sites name folders after patients
    write_series(root / "t1c", "Glioblastoma T1C+", "AX T1 POST GAD", slices=6, size=40)
    write_series(root / "t2", "Glioblastoma T2", "AX T2 FSE", slices=5, size=40, seed=2)
    return root


def written_text(folder) -> str:
    return "".join(p.read_bytes().decode("latin-1") for p in folder.rglob("*") if p.is_file())


def test_a_dicom_study_gets_one_answer_its_series_answers_and_no_identity(
    trained_ckpt, study, tmp_path, salt
):
    out = tmp_path / "pred"
    rows, _ = predict(PredictConfig(ckpt=str(trained_ckpt), input=str(study), out=str(out),
                                    explain=True))  # fmt: skip
    answer = json.loads((out / "study.json").read_text())
    assert answer["study"] == pseudonym("1.2.826.0.1.3680043.8.498.1", salt)
    assert {s["sequence"] for s in answer["series"]} == {"T1C+", "T2"}
    assert answer["slices_classified"] == sum(s["slices"] for s in answer["series"])
    assert answer["rule"].startswith("mean calibrated probability")
    if answer["answer"] is not None:  # the tiny model may find the slices unfamiliar
        probs = [r["probability"] for r in answer["top"]]
        assert probs == sorted(probs, reverse=True) and answer["driving_slices"]
        assert len(list((out / "gradcam").glob("*.png"))) == len(answer["driving_slices"])
    lines = (out / "study_slices.csv").read_text().splitlines()
    assert lines[0] == "series,slice,accepted,reason,class,probability"
    assert len(lines) - 1 == answer["slices_classified"]
    assert CANARY not in written_text(out) and "Doe" not in written_text(out)
    assert rows[0]["study"] == answer["study"] and answer["model"] == trained_ckpt.name


def test_a_zip_of_the_study_gives_the_same_answer_and_leaves_no_unpacked_copy(
    trained_ckpt, study, tmp_path, salt
):
    import tempfile

    archive = tmp_path / "study.zip"
    with zipfile.ZipFile(archive, "w") as z:
        for path in study.rglob("*.dcm"):
            z.write(path, path.relative_to(study))
    before = set(p.name for p in __import__("pathlib").Path(tempfile.gettempdir()).iterdir())
    folder, zipped = tmp_path / "a", tmp_path / "b"
    predict(PredictConfig(ckpt=str(trained_ckpt), input=str(study), out=str(folder)))
    predict(PredictConfig(ckpt=str(trained_ckpt), input=str(archive), out=str(zipped)))
    a, b = (json.loads((f / "study.json").read_text()) for f in (folder, zipped))
    assert a["study"] == b["study"] and a.get("answer") == b.get("answer")
    after = set(p.name for p in __import__("pathlib").Path(tempfile.gettempdir()).iterdir())
    assert not [n for n in after - before if n.startswith("braintumor-study-")]


def test_a_nifti_volume_is_one_series_with_its_empty_slices_skipped(trained_ckpt, tmp_path, salt):
    volume = np.zeros((40, 40, 12), dtype=np.float32)  # x, y, z; brain in z = 2..9
    for k in range(2, 10):
        volume[:, :, k] = render_scan("_NORMAL T1", np.random.default_rng([k]), 40).T[::-1, ::-1]
    path = tmp_path / "case7_t1.nii.gz"
    nib.save(nib.Nifti1Image(volume, np.eye(4)), str(path))
    out = tmp_path / "pred"
    predict(PredictConfig(ckpt=str(trained_ckpt), input=str(path), out=str(out)))
    answer = json.loads((out / "study.json").read_text())
    (series,) = answer["series"]
    assert series["sequence"] == "T1" and series["slices"] + len(series["skipped"]) == 12
    reasons = {s["slice"]: s["reason"] for s in series["skipped"]}
    assert {0, 1, 10, 11} <= set(reasons) and "near-empty" in reasons[0]
    assert "case7" not in (out / "study.json").read_text()


def test_a_study_of_another_modality_is_refused_in_one_line(trained_ckpt, tmp_path, salt):
    write_series(tmp_path / "ct", modality="CT", slices=2, size=32)
    done = subprocess.run([sys.executable, "-m", "braintumor", "predict", str(trained_ckpt),
                           str(tmp_path / "ct"), f"out={tmp_path / 'pred'}"], cwd=ROOT,
                          capture_output=True, text=True,
                          env={**__import__("os").environ,
                               "BRAINTUMOR_STUDY_SALT_FILE": str(tmp_path / "salt2")})  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert "no MR series" in done.stderr and "Modality is 'CT'" in done.stderr
    assert "Traceback" not in done.stderr and CANARY not in done.stderr


def test_bad_files_of_a_study_are_named_and_the_rest_is_classified(trained_ckpt, tmp_path, salt):
    from braintumor.errors import DataError
    from braintumor.inference.study import read_study

    root = tmp_path / "study"
    write_series(root / "t1c", "Glioblastoma T1C+", "AX T1 POST GAD", slices=5, size=40)
    write_series(root / "odd", "Glioblastoma T2", "AX T2", slices=1, size=24, seed=3,
                 series_uid=__import__("pydicom").dcmread(next((root / "t1c").iterdir()))
                 .SeriesInstanceUID)  # a slice of another size inside the series  # fmt: skip
    (root / "notes.dcm").write_text("not dicom")
    write_series(root / "ct", modality="CT", slices=1, size=40)
    archive = tmp_path / "study.zip"
    with zipfile.ZipFile(archive, "w") as z:
        for path in root.rglob("*.dcm"):
            z.write(path, path.relative_to(root))
        z.writestr("../escape.dcm", b"x")
    study = read_study([archive], salt)
    (series,) = study.series
    assert len(series.slices) + len(series.skipped) == 5  # the 24 px slice left out
    text = " | ".join(study.skipped_files)
    assert "notes.dcm: is not a readable DICOM file" in text and "Modality is 'CT'" in text
    assert "unlike the 40x40 px of the rest of its series" in text
    assert "path leaving the archive's folder" in text
    assert not (tmp_path / "escape.dcm").exists()
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DataError, match="no MR series"):
        read_study([empty], salt)


def test_a_nifti_with_a_singular_affine_or_not_3d_is_refused(tmp_path):
    from braintumor.data.nifti import read_volume
    from braintumor.errors import DataError

    flat = tmp_path / "flat.nii.gz"
    image = nib.Nifti1Image(np.ones((8, 8, 4), np.float32), np.eye(4))
    image.set_qform(None, code=0)
    image.set_sform(np.diag([1, 1, 0, 1]), code=1)  # the z axis collapsed
    nib.save(image, str(flat))
    with pytest.raises(DataError, match="singular affine"):
        read_volume(flat)
    two_d = tmp_path / "plane.nii"
    nib.save(nib.Nifti1Image(np.ones((8, 8), np.float32), np.eye(4)), str(two_d))
    with pytest.raises(DataError, match="not a 3-D volume"):
        read_volume(two_d)


def test_an_empty_zip_is_an_empty_study(tmp_path, salt):
    from braintumor.errors import DataError
    from braintumor.inference.study import read_study

    archive = tmp_path / "empty.zip"
    zipfile.ZipFile(archive, "w").close()
    with pytest.raises(DataError, match="no MR series"):
        read_study([archive], salt)


def test_a_model_with_case_level_sets_gives_the_study_its_set(make_cfg, tiny_root, tmp_path,
                                                               salt):  # fmt: skip
    import csv

    from braintumor.pipeline.train import train

    groups = tmp_path / "groups.csv"
    with groups.open("w", newline="") as f:  # two scans of one class per case
        writer = csv.writer(f)
        writer.writerow(["path", "group"])
        for k, path in enumerate(sorted(tiny_root.rglob("*.jpeg"))):
            writer.writerow([path.relative_to(tiny_root).as_posix(), f"case{k // 2}"])
    cfg = make_cfg(f"data.group_file={groups}", "eval.conformal=0.75", "eval.bootstrap=0",
                   "trainer.max_epochs=2", "logger=none", "~callbacks.lr_monitor",
                   "~callbacks.augmented_samples")  # fmt: skip
    train(cfg)
    ckpt = next((tmp_path / "run" / "checkpoints").glob("epoch_*.ckpt"))
    study = tmp_path / "study"
    write_series(study / "t1c", "Glioblastoma T1C+", "AX T1 POST GAD", slices=5, size=40)
    predict(PredictConfig(ckpt=str(ckpt), input=str(study), out=str(tmp_path / "pred")))
    answer = json.loads((tmp_path / "pred" / "study.json").read_text())
    assert answer["answer"] is not None  # the seeded tiny model accepts these slices
    found = answer["prediction_set"]
    assert found["taxonomy"] == "folder" and found["level"] == 0.75
    assert found["classes"][0] == answer["answer"] and found["text"].endswith("(75% set)")
    assert found["calibrated_on_cases"] >= 4


def test_a_folder_of_dicom_and_nifti_reads_both_and_skips_neither(tmp_path, salt):
    from braintumor.inference.study import read_study

    root = tmp_path / "study"
    write_series(root / "t1c", "Glioblastoma T1C+", "AX T1 POST GAD", slices=4, size=40)
    volume = np.stack([render_scan("_NORMAL T2", np.random.default_rng([k]), 40).T
                       for k in range(4)], axis=-1).astype(np.float32)  # fmt: skip
    (root / "volumes").mkdir()
    nib.save(nib.Nifti1Image(volume, np.eye(4)), str(root / "volumes" / "t2.nii.gz"))
    study = read_study([root], salt)
    assert sorted(s.sequence for s in study.series) == ["T1C+", "T2"]
    assert study.skipped_files == []


def test_a_study_is_held_in_a_folder_only_its_user_can_read_and_removed_also_on_error():
    from braintumor.inference.study import private_folder

    with pytest.raises(RuntimeError), private_folder() as folder:
        assert folder.stat().st_mode & 0o777 == 0o700
        (folder / "slice.dcm").write_bytes(b"x")
        raise RuntimeError("the answer failed")
    assert not folder.exists()


def test_a_study_is_held_to_the_case_threshold_not_the_image_one(trained_ckpt, study, salt):
    from braintumor.inference.loading import load_predictor
    from braintumor.inference.study import answer_study, read_study

    predictor = load_predictor(str(trained_ckpt), "cpu")
    predictor.calibration.pop("ood", None)  # every slice answered, whatever the tiny model
    read = read_study([study], salt)
    predictor.calibration.update(threshold=0.0, case_abstention={
        "threshold": 1.01, "taxonomy": "folder", "cases": 40})  # fmt: skip
    referred = answer_study(predictor, read)
    assert referred["headline"] == "Uncertain - refer" and "this study" in referred["detail"]
    assert referred["abstention"] == {"threshold": 1.01, "level": "cases", "taxonomy": "folder",
                                      "chosen_on_cases": 40}  # fmt: skip
    predictor.calibration.update(threshold=1.01, case_abstention={
        "threshold": 0.0, "taxonomy": "folder", "cases": 40})  # fmt: skip
    assert answer_study(predictor, read)["headline"] != "Uncertain - refer"
    predictor.calibration["case_abstention"] = {"threshold": None, "reason": "none reaches 0.99"}
    fallback = answer_study(predictor, read)  # no case threshold: the image one, said so
    assert fallback["headline"] == "Uncertain - refer"
    assert fallback["abstention"]["level"] == "images"
    assert fallback["abstention"]["why_not_cases"] == "none reaches 0.99"


def test_a_case_threshold_chosen_by_tumour_type_compares_the_type_s_probability():
    from types import SimpleNamespace

    from braintumor.inference.study import study_abstention

    names = ["Glioblastoma T1", "Glioblastoma T2", "Meningioma T1"]
    model = SimpleNamespace(class_names=names, threshold=None, calibration={
        "case_abstention": {"threshold": 0.7, "taxonomy": "tumor_type", "cases": 30}})  # fmt: skip
    chosen = study_abstention(model, np.array([0.45, 0.35, 0.2]), best=0)
    assert chosen["confidence"] == pytest.approx(0.8) and chosen["taxonomy"] == "tumor_type"
