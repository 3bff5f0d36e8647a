"""The DICOM reader: series grouped and ordered, modality LUT, MONOCHROME1, windows, multi-frame,
MR only, undecodable transfer syntaxes named, the sequence inferred by its rule."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pydicom = pytest.importorskip("pydicom")

from braintumor.data.dicom import infer_sequence, read_series  # noqa: E402
from braintumor.data.synthetic import render_scan  # noqa: E402
from tests.dicom_studies import write_series  # noqa: E402


def expected_slice(k: int, size: int = 48, seed: int = 0) -> np.ndarray:
    return render_scan("Glioblastoma T1C+", np.random.default_rng([seed, k]), size)


def correlation(a, b) -> float:
    return float(np.corrcoef(a.astype(float).ravel(), b.astype(float).ravel())[0, 1])


def test_a_study_folder_gives_its_series_in_slice_order(tmp_path):
    write_series(tmp_path / "study" / "s1", description="AX T1 POST GAD", slices=5)
    write_series(tmp_path / "study" / "s2", description="AX T2 FSE", slices=3, seed=1,
                 class_name="Glioblastoma T2")  # fmt: skip
    series, skipped = read_series([tmp_path / "study"])
    assert not skipped
    by_sequence = {s.sequence: s for s in series}
    assert set(by_sequence) == {"T1C+", "T2"}
    t1c = by_sequence["T1C+"]
    assert len(t1c.slices) == 5 and t1c.study_uid == "1.2.826.0.1.3680043.8.498.1"
    for k, pixels in enumerate(t1c.slices):  # written shuffled, read by position
        assert pixels.dtype == np.uint8 and pixels.shape == (48, 48)
        assert correlation(pixels, expected_slice(k)) > 0.99


def test_rescale_monochrome1_and_the_window_tags_are_applied(tmp_path):
    plain = read_series(write_series(tmp_path / "a", slices=1))[0][0].slices[0]
    inverted = read_series(
        write_series(tmp_path / "b", slices=1, PhotometricInterpretation="MONOCHROME1")
    )[0][0].slices[0]
    assert correlation(plain, inverted) > 0.99  # inverted back: the same picture
    rescaled = read_series(write_series(tmp_path / "c", slices=1, RescaleSlope=2,
                                        RescaleIntercept=-100))[0][0].slices[0]  # fmt: skip
    assert correlation(plain, rescaled) > 0.99
    windowed = read_series(write_series(tmp_path / "d", slices=1, WindowCenter=1000,
                                        WindowWidth=400))[0][0].slices[0]  # fmt: skip
    stored = expected_slice(0).astype(float) * 16
    assert windowed[stored <= 800].max() == 0 and windowed[stored >= 1200].min() == 255


def test_a_multi_frame_file_gives_one_slice_per_frame(tmp_path):
    from pydicom.uid import generate_uid

    path = write_series(tmp_path / "mf", slices=1)[0]
    ds = pydicom.dcmread(path)
    frames = np.stack([expected_slice(k) for k in range(3)]).astype(np.uint16) * 16
    ds.NumberOfFrames, ds.PixelData = 3, frames.tobytes()
    ds.SOPInstanceUID = generate_uid()
    ds.save_as(path, enforce_file_format=True)
    series, _ = read_series([path])
    assert len(series[0].slices) == 3
    assert all(correlation(s, expected_slice(k)) > 0.99 for k, s in enumerate(series[0].slices))


def test_other_modalities_and_non_dicom_files_are_skipped_with_the_reason(tmp_path):
    write_series(tmp_path / "ct", modality="CT", slices=2)
    (tmp_path / "notes.txt").write_text("not dicom")
    series, skipped = read_series([tmp_path])
    assert series == []
    reasons = " ".join(reason for _, reason in skipped)
    assert "its Modality is 'CT'" in reasons and "not a readable DICOM file" in reasons


def test_an_undecodable_transfer_syntax_is_named(tmp_path):
    from pydicom.uid import JPEG2000Lossless

    path = write_series(tmp_path / "j2k", slices=1)[0]
    ds = pydicom.dcmread(path)
    ds.file_meta.TransferSyntaxUID = JPEG2000Lossless
    ds.PixelData = pydicom.encaps.encapsulate([b"\xff\x4f\xff\x51 not really jpeg 2000"])
    ds["PixelData"].VR = "OB"
    ds.save_as(path)
    series, skipped = read_series([path])
    assert series == [] and "JPEG 2000" in skipped[0][1] and "pylibjpeg" in skipped[0][1]


@pytest.mark.parametrize("description,sequence", [
    ("AX T1 POST GAD", "T1C+"), ("T1 MPRAGE +C", "T1C+"), ("Ax T2 FSE", "T2"),
    ("AX FLAIR", "FLAIR"), ("t2_tirm_tra_dark-fluid", "FLAIR"), ("SAG T1", "T1"),
    ("localizer", "unknown"), ("DWI b1000", "unknown"),
])  # fmt: skip
def test_the_sequence_rule(description, sequence):
    ds = pydicom.Dataset()
    ds.SeriesDescription = description
    assert infer_sequence(ds) == sequence


def test_a_contrast_agent_tag_makes_a_t1_a_t1c_and_overrides_win():
    ds = pydicom.Dataset()
    ds.SeriesDescription, ds.ContrastBolusAgent = "AX T1 SE", "Gadovist"
    assert infer_sequence(ds) == "T1C+"
    ds.SeriesDescription = "site special 7"
    assert infer_sequence(ds, {r"special 7": "T2"}) == "T2"


def test_a_class_tree_of_dicom_slices_trains_with_patients_as_groups(make_cfg, tmp_path,
                                                                      monkeypatch):  # fmt: skip
    from braintumor.data.pseudonyms import pseudonym
    from braintumor.pipeline.train import train
    from tests.dicom_studies import CANARY

    monkeypatch.setenv("BRAINTUMOR_STUDY_SALT_FILE", str(tmp_path / "salt"))
    root = tmp_path / "dicom"
    for c, name in enumerate(["Glioblastoma T1C+", "_NORMAL T1"]):
        for p in range(6):
            write_series(root / name / f"patient{p}", name, "AX T1", slices=3, size=32,
                         seed=10 * c + p, PatientID=f"{CANARY}-{c}-{p}")  # fmt: skip
    write_series(root / "_NORMAL T1" / "ct", modality="CT", slices=1, size=32)
    cfg = make_cfg("data=dicom", f"data.root={root}", "logger=none", "~callbacks.lr_monitor",
                   "~callbacks.augmented_samples", "eval.bootstrap=0", root=root)  # fmt: skip
    train(cfg)
    run = tmp_path / "run"
    rows = (run / "split.csv").read_text().splitlines()
    assert len(rows) - 1 == 36 and CANARY not in (run / "split.csv").read_text()
    groups: dict[str, set] = {}
    for line in rows[1:]:
        path, _, split, group = line.split(",")
        groups.setdefault(group, set()).add(split)
    assert len(groups) == 12 and all(len(s) == 1 for s in groups.values())
    salt = (tmp_path / "salt").read_bytes().strip()
    assert "patient:" + pseudonym(f"{CANARY}-0-0", salt, "patient")[8:] in groups
    skipped = (run / "skipped_images.csv").read_text()
    assert "Modality is 'CT'" in skipped
    for path in run.rglob("*"):
        if path.is_file() and path.suffix in (".csv", ".json", ".md", ".log", ".html"):
            assert CANARY not in path.read_text(errors="replace"), path


def test_a_copy_of_a_file_counts_once(tmp_path):
    import shutil

    paths = write_series(tmp_path / "s", slices=3)
    shutil.copy(paths[0], tmp_path / "s" / "copy.dcm")
    series, skipped = read_series([tmp_path / "s"])
    assert len(series[0].slices) == 3 and "the same SOPInstanceUID" in skipped[0][1]


SAMPLES = ["MR_small.dcm", "MR_small_RLE.dcm", "MR_small_bigendian.dcm", "MR_small_expb.dcm",
           "MR_small_implicit.dcm", "MR_small_padded.dcm", "MR_small_jp2klossless.dcm",
           "MR_small_jpeg_ls_lossless.dcm"]  # fmt: skip


@pytest.mark.parametrize("name", SAMPLES)
def test_pydicoms_own_mr_sample_in_each_transfer_syntax(name):
    """Decoded alike where pydicom has a decoder; else refused naming the transfer syntax."""
    from pydicom.data import get_testdata_file

    reference = read_series([get_testdata_file("MR_small.dcm")])[0][0].slices[0]
    series, skipped = read_series([get_testdata_file(name)])
    if series:
        assert series[0].slices[0].shape == reference.shape == (64, 64)
        assert correlation(series[0].slices[0], reference) > 0.99
    else:  # JPEG 2000 / JPEG-LS without pylibjpeg
        assert "transfer syntax" in skipped[0][1] and "pylibjpeg" in skipped[0][1]


def test_pydicoms_ct_sample_is_refused_and_a_truncated_copy_named(tmp_path):
    from pydicom.data import get_testdata_file

    series, skipped = read_series([get_testdata_file("CT_small.dcm")])
    assert series == [] and "its Modality is 'CT'" in skipped[0][1]
    raw = Path(get_testdata_file("MR_small.dcm")).read_bytes()
    (tmp_path / "cut.dcm").write_bytes(raw[: len(raw) // 2])
    series, skipped = read_series([tmp_path / "cut.dcm"])
    assert series == [] and "cut.dcm" in skipped[0][1]


def test_a_dicom_without_pixels_is_named(tmp_path):
    path = write_series(tmp_path / "s", slices=1)[0]
    ds = pydicom.dcmread(path)
    del ds.PixelData
    ds.save_as(path)
    series, skipped = read_series([path])
    assert series == [] and "holds no image (no PixelData)" in skipped[0][1]
