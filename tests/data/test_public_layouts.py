"""Each public set in its real layout -> a catalog (tiny copies in tmp_path)."""

import csv

import numpy as np
import pytest

from braintumor.data.catalog import CatalogSettings, build_catalog
from braintumor.data.sources.figshare import read_figshare_labels
from braintumor.errors import DataError
from tests.data.public_sets import (
    SEVENTEEN,
    figshare_slice,
    write_17c,
    write_44c,
    write_br35h,
    write_figshare,
    write_figshare_mat,
    write_nickparvar,
)


def settings(root, **kw):
    kw.setdefault("group_cropped_copies", False)
    return CatalogSettings(root, **kw)


@pytest.fixture(scope="module")
def figshare(tmp_path_factory):
    root = tmp_path_factory.mktemp("figshare3")
    write_figshare(root, patients=12, per_patient=4)
    return root


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_figshare_split_keeps_every_patient_in_one_split(figshare, seed):
    catalog = build_catalog(
        settings(
            figshare, layout="figshare", source="figshare3", taxonomy="family", split_seed=seed
        )
    )
    split_of_patient: dict[str, set[str]] = {}
    for scan, split in zip(catalog.scans, catalog.splits, strict=True):
        pid = read_figshare_labels(figshare / scan.path)[1]
        split_of_patient.setdefault(pid, set()).add(split)
    assert len(split_of_patient) == 12 and len(catalog.scans) == 48
    assert all(len(splits) == 1 for splits in split_of_patient.values()), split_of_patient
    assert set(catalog.splits) == {"train", "val", "test"}
    assert catalog.class_names == ["glioma", "meningioma", "pituitary"]
    assert set(catalog.sources) == {"figshare3"}


def test_figshare_bad_files_are_listed_and_skipped(tmp_path):
    write_figshare(tmp_path, patients=6, per_patient=3)
    image, mask = figshare_slice(9, 1, 48)
    (tmp_path / "100.mat").write_bytes(b"MATLAB 5.0 MAT-file, Platform: PCWIN" + b"\0" * 300)
    write_figshare_mat(tmp_path / "101.mat", 1, "77", image, mask, fields=("label", "PID"))
    write_figshare_mat(tmp_path / "102.mat", 5, "77", image, mask)
    with pytest.warns(UserWarning, match="skipping 3 unreadable image.* of 21"):
        catalog = build_catalog(settings(tmp_path, layout="figshare", source="figshare3"))
    reasons = {scan.path: why for scan, why in catalog.skipped}
    assert set(reasons) == {"100.mat", "101.mat", "102.mat"}  # not cvind.mat: not a slice
    assert "not a MATLAB v7.3" in reasons["100.mat"]
    assert "lacks the field(s) cjdata.image, cjdata.tumorBorder" in reasons["101.mat"]
    assert "cjdata.label [5.0]" in reasons["102.mat"]
    assert len(catalog.scans) == 18


def test_nickparvar_training_and_testing_folders_are_its_splits(tmp_path):
    write_nickparvar(tmp_path, train=8, test=3)
    catalog = build_catalog(
        settings(tmp_path, layout="presplit", source="nickparvar4", taxonomy="family")
    )
    tested = {s.path for s in catalog.in_split("test")}
    assert tested == {f"Testing/{c}/{i}.jpg" for c in ("glioma", "meningioma", "notumor",
                                                        "pituitary") for i in range(3)}  # fmt: skip
    assert all(s.path.startswith("Training/") for s in catalog.in_split("val"))
    assert catalog.class_names == ["glioma", "meningioma", "normal", "pituitary"]


def test_br35h_unlabelled_pred_folder_is_not_a_class(tmp_path):
    write_br35h(tmp_path, per_class=8)
    catalog = build_catalog(
        settings(tmp_path, source="br35h", exclude_folders=("pred",), taxonomy="tumor_vs_normal")
    )
    assert catalog.folder_names == ("no", "yes")
    assert catalog.class_names == ["normal", "tumor"]
    assert not any(s.path.startswith("pred/") for s in catalog.scans)


def test_br35h_yes_has_no_family(tmp_path):
    write_br35h(tmp_path, per_class=8)
    with pytest.raises(DataError, match=r"\['yes'\] say 'tumour' without its family"):
        build_catalog(settings(tmp_path, source="br35h", exclude_folders=("pred",),
                               taxonomy="family"))  # fmt: skip


@pytest.mark.parametrize(
    ("writer", "source", "expected"),
    [
        (write_44c, "brain44c", ["glioma", "meningioma", "normal", "other_tumor"]),
        (write_17c, "brain17c", ["glioma", "meningioma", "normal", "other_tumor"]),
    ],
)
def test_type_sequence_folders_map_to_families(tmp_path, writer, source, expected):
    writer(tmp_path, per_class=6)
    catalog = build_catalog(settings(tmp_path, source=source, taxonomy="family"))
    assert catalog.class_names == expected
    sequences = build_catalog(settings(tmp_path, source=source, taxonomy="family_sequence"))
    assert "glioma T1C+" in sequences.class_names


def test_17c_folder_names_keep_their_accents(tmp_path):
    write_17c(tmp_path, per_class=6)
    catalog = build_catalog(settings(tmp_path, source="brain17c", taxonomy="family"))
    assert set(catalog.folder_names) == set(SEVENTEEN)


def test_a_label_missing_from_the_map_stops_at_startup(tmp_path):
    write_nickparvar(tmp_path, train=6, test=2)
    for split in ("Training", "Testing"):
        extra = tmp_path / split / "astrocytoma"
        extra.mkdir()
        for src in (tmp_path / split / "glioma").iterdir():
            (extra / src.name).write_bytes(src.read_bytes())
    with pytest.raises(DataError) as error:
        build_catalog(settings(tmp_path, layout="presplit", source="nickparvar4",
                               taxonomy="family"))  # fmt: skip
    assert "['astrocytoma']" in str(error.value) and "nickparvar4.yaml" in str(error.value)


def test_family_taxonomy_needs_a_label_map_for_plain_folders(tiny_root):
    with pytest.raises(DataError, match=r"data\.label_map"):
        build_catalog(settings(tiny_root, taxonomy="family"))


def test_split_csv_records_the_source(tmp_path, figshare):
    catalog = build_catalog(settings(figshare, layout="figshare", source="figshare3"))
    rows = list(csv.DictReader(catalog.save_split(tmp_path / "split.csv").open()))
    assert {r["source"] for r in rows} == {"figshare3"}
    assert np.all([r["path"].endswith(".mat") for r in rows])


def test_figshare_split_file_reproduces_the_split_and_must_cover_the_slices(figshare, tmp_path):
    first = build_catalog(settings(figshare, layout="figshare", source="figshare3", split_seed=5))
    recorded = first.save_split(tmp_path / "split.csv")
    again = build_catalog(settings(figshare, layout="figshare", source="figshare3", split_seed=9,
                                   split_file=recorded))  # fmt: skip
    assert again.splits == first.splits and again.groups == first.groups
    lines = recorded.read_text().splitlines()
    (tmp_path / "short.csv").write_text("\n".join(lines[:-1]) + "\n")
    with pytest.raises(DataError, match="lists 47 of the 48 readable images"):
        build_catalog(settings(figshare, layout="figshare", source="figshare3",
                               split_file=tmp_path / "short.csv"))  # fmt: skip


def test_figshare_cross_validation_folds_keep_patients_whole(figshare):
    seen = []
    for fold in range(3):
        catalog = build_catalog(settings(figshare, layout="figshare", source="figshare3",
                                         n_folds=3, fold=fold))  # fmt: skip
        pids = {}
        for scan, split in zip(catalog.scans, catalog.splits, strict=True):
            pids.setdefault(read_figshare_labels(figshare / scan.path)[1], set()).add(split)
        assert all(len(s) == 1 for s in pids.values())
        seen += [s.path for s in catalog.in_split("test")]
    assert sorted(seen) == sorted(s.path for s in catalog.scans)  # the folds partition the set


def test_type_sequence_folders_know_their_sequence_without_a_map(tmp_path):
    write_44c(tmp_path, per_class=6)
    catalog = build_catalog(settings(tmp_path))  # plain class folders: no source, no map
    assert catalog.sequence_of["Glioblastoma T1C+"] == "T1C+"
    assert catalog.sequence_of["_NORMAL T1"] == "T1"
