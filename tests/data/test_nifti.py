"""NIfTI volumes: reoriented to canonical whatever the affine, sliced axially foot to head in
radiological view, windowed once per volume; the slice selection skips what holds no brain."""

from __future__ import annotations

import numpy as np
import pytest

nib = pytest.importorskip("nibabel")

from braintumor.data.nifti import read_volume  # noqa: E402
from braintumor.data.slice_selection import EMPTY, OUTSIDE, select_slices  # noqa: E402
from braintumor.data.synthetic import render_scan  # noqa: E402
from braintumor.errors import DataError  # noqa: E402


def phantom_volume(slices: int = 10, size: int = 40, blank: int = 2) -> np.ndarray:
    """``(Z, H, W)`` display slices: ``blank`` empty ones at each end, phantoms between."""
    out = np.zeros((slices, size, size), dtype=np.float32)
    for k in range(blank, slices - blank):
        out[k] = render_scan("_NORMAL T1", np.random.default_rng([k]), size)
    return out


def save(volume_zhw: np.ndarray, path, affine: np.ndarray) -> None:
    """Store display slices as a RAS array, then re-express it in ``affine``'s orientation."""
    ras = volume_zhw.transpose(2, 1, 0)[::-1, ::-1, :]  # the inverse of read_volume's view
    canonical = nib.Nifti1Image(np.ascontiguousarray(ras), np.eye(4))
    target = nib.orientations.io_orientation(affine)
    start = nib.orientations.io_orientation(np.eye(4))
    transform = nib.orientations.ornt_transform(start, target)
    data = nib.orientations.apply_orientation(ras, transform)
    stored_affine = canonical.affine @ nib.orientations.inv_ornt_aff(transform, ras.shape)
    nib.save(nib.Nifti1Image(np.ascontiguousarray(data), stored_affine), str(path))


@pytest.mark.parametrize("orientation", ["RAS", "LPS", "PIL"])
def test_any_stored_orientation_reads_as_the_same_axial_slices(tmp_path, orientation):
    volume = phantom_volume()
    affine = nib.orientations.inv_ornt_aff(nib.orientations.axcodes2ornt(orientation),
                                           volume.shape)  # fmt: skip
    affine = np.diag([1, 1, 1, 1]) @ np.linalg.inv(affine) if orientation != "RAS" else np.eye(4)
    path = tmp_path / f"head_{orientation}.nii.gz"
    save(volume, path, affine)
    read = read_volume(path)
    assert read.shape == volume.shape and read.dtype == np.uint8
    for k in range(2, 8):
        a, b = read[k].astype(float).ravel(), volume[k].astype(float).ravel()
        assert np.corrcoef(a, b)[0, 1] > 0.99, (orientation, k)


def test_the_selection_skips_empty_slices_and_the_ends_of_the_brain():
    volume = phantom_volume(slices=14, blank=2)  # brain in slices 2..11
    chosen = select_slices(volume)
    reasons = dict(chosen.skipped)
    assert [k for k, r in reasons.items() if r == EMPTY] == [0, 1, 12, 13]
    assert reasons[2] == OUTSIDE and reasons[11] == OUTSIDE  # 10% of a 10-slice extent
    assert chosen.kept == list(range(3, 11))
    assert select_slices(np.zeros((3, 8, 8))).kept == []


def test_a_file_that_is_not_nifti_is_refused_naming_it(tmp_path):
    bad = tmp_path / "scan.nii.gz"
    bad.write_bytes(b"not gzip")
    with pytest.raises(DataError, match="not a readable NIfTI volume"):
        read_volume(bad)


def test_nibabels_anatomical_sample_reads_as_axial_slices():
    from pathlib import Path

    sample = Path(nib.__file__).parent / "tests" / "data" / "anatomical.nii"
    if not sample.is_file():
        pytest.skip("this nibabel wheel ships no test data")
    volume = read_volume(sample)
    image = nib.as_closest_canonical(nib.load(str(sample)))
    assert volume.shape == (image.shape[2], image.shape[1], image.shape[0])
    assert volume.dtype == np.uint8 and volume.max() == 255
    assert select_slices(volume).kept  # some slices hold brain


def test_the_case_of_a_volume_is_its_folder_or_its_name_less_the_sequence():
    from pathlib import Path

    from braintumor.data.sources.nifti_volumes import case_of

    assert case_of(Path("case7_t1ce.nii.gz")) == "case7"
    assert case_of(Path("sub-01_T1w.nii")) == "sub-01"
    assert case_of(Path("BraTS2021_00001_flair.nii.gz")) == "BraTS2021_00001"
    assert case_of(Path("case7.nii.gz")) == "case7"
    assert case_of(Path("patient3/anything.nii.gz")) == "patient3"


def test_a_class_tree_of_nifti_volumes_trains_with_cases_as_groups(make_cfg, tmp_path,
                                                                    monkeypatch):  # fmt: skip
    import json

    from braintumor.pipeline.train import train

    monkeypatch.setenv("BRAINTUMOR_STUDY_SALT_FILE", str(tmp_path / "salt"))
    root = tmp_path / "volumes"
    for c, name in enumerate(["Glioblastoma T1", "_NORMAL T1"]):
        (root / name).mkdir(parents=True)
        for p in range(5):
            volume = phantom_volume(slices=8, size=32) * (1 + 0.1 * c)
            save(volume, root / name / f"Smith{c}{p}_t1.nii.gz", np.eye(4))
    (root / "_NORMAL T1" / "Jones9").mkdir()
    for sequence in ("t1", "t1_repeat"):  # one case, two volumes: one group
        save(phantom_volume(slices=8, size=32), root / "_NORMAL T1" / "Jones9" /
             f"{sequence}.nii.gz", np.eye(4))  # fmt: skip
    flat = np.zeros((32, 32), dtype=np.float32)
    nib.save(nib.Nifti1Image(flat, np.eye(4)), str(root / "_NORMAL T1" / "Smith19_t2.nii.gz"))
    prepared = tmp_path / "prepared"
    cfg = make_cfg("data=nifti", f"data.root={root}", f"data.prepared_dir={prepared}",
                   "logger=none", "~callbacks.lr_monitor", "~callbacks.augmented_samples",
                   "eval.bootstrap=0", root=root)  # fmt: skip
    train(cfg)
    run = tmp_path / "run"
    rows = [line.split(",") for line in (run / "split.csv").read_text().splitlines()[1:]]
    assert len(rows) == 12 * 2  # 12 volumes of 4 brain slices: the central 80% (2) kept
    sides: dict[str, set] = {}
    for _path, _label, split, group in rows:
        sides.setdefault(group, set()).add(split)
    assert len(sides) == 11 and all(len(s) == 1 for s in sides.values())  # Jones9 is one case
    assert len({split for s in sides.values() for split in s}) == 3
    skipped = (run / "skipped_images.csv").read_text()
    assert "Smith19_t2.nii.gz" in skipped and "3-D" in skipped
    for path in run.rglob("*"):
        if path.is_file() and path.suffix in (".csv", ".json", ".md", ".html"):
            text = path.read_text(errors="replace").replace("Smith19_t2.nii.gz", "")
            assert "Jones" not in text and "Smith" not in text, path
    (folder,) = prepared.iterdir()
    manifest = folder / ".nifti_slices.json"
    before = manifest.stat().st_mtime_ns
    from braintumor.data.catalog import CatalogSettings, build_catalog

    again = build_catalog(CatalogSettings(root, "nifti", prepared_dir=prepared,
                                          group_near_duplicates=False, check_images=False,
                                          group_cropped_copies=False))  # fmt: skip
    assert manifest.stat().st_mtime_ns == before and len(again.scans) == 24  # reused
    assert json.loads(manifest.read_text())["format"] == 1
    save(phantom_volume(slices=14, size=32), root / "Glioblastoma T1" / "Smith00_t1.nii.gz",
         np.eye(4))  # a volume replaced: its slices are redone  # fmt: skip
    redone = build_catalog(CatalogSettings(root, "nifti", prepared_dir=prepared,
                                           group_near_duplicates=False, check_images=False,
                                           group_cropped_copies=False))  # fmt: skip
    assert len(redone.scans) == 24 - 2 + 8


def test_nifti_refuses_a_group_file_and_a_folder_without_volumes(tmp_path):
    from braintumor.data.catalog import CatalogSettings, build_catalog

    (tmp_path / "empty" / "Glioma T1").mkdir(parents=True)
    with pytest.raises(DataError, match=r"no \.nii or \.nii\.gz volume"):
        build_catalog(CatalogSettings(tmp_path / "empty", "nifti", prepared_dir=tmp_path / "p"))
    with pytest.raises(DataError, match="group of each slice is its volume's case"):
        build_catalog(CatalogSettings(tmp_path / "empty", "nifti", prepared_dir=tmp_path / "p",
                                      group_file=tmp_path / "groups.csv"))  # fmt: skip
