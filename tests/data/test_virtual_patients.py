"""The hard benchmark's generator: virtual patients whose slices share a head and a lesion,
a group file that names every slice, a patient split that keeps each patient on one side."""

from __future__ import annotations

import csv
import json
from collections import defaultdict

import numpy as np
import pytest
from PIL import Image

from braintumor.data.synthetic import class_names_for
from braintumor.data.virtual_patients import (
    GROUP_FILE,
    ensure_patient_dataset,
    write_patient_dataset,
)


@pytest.fixture(scope="module")
def hard(tmp_path_factory):
    return write_patient_dataset(tmp_path_factory.mktemp("hard") / "set", num_classes=8,
                                 patients=4, slices=3, min_size=40, max_size=56)  # fmt: skip


def groups_of(root):
    with (root / GROUP_FILE).open() as f:
        return {row["path"]: row["group"] for row in csv.DictReader(f)}


def test_every_slice_is_named_in_the_group_file_and_patients_span_their_sequences(hard):
    groups = groups_of(hard)
    files = {p.relative_to(hard).as_posix() for p in hard.rglob("*.jpeg")}
    assert set(groups) == files and len(files) == 8 * 4 * 3
    classes_of = defaultdict(set)
    for path, group in groups.items():
        classes_of[group].add(path.split("/")[0])
    # a Glioblastoma patient is scanned in T1C+ and T2 (its classes among the first 8)
    first = set(class_names_for(8))
    assert classes_of["glioblastoma-000"] == {"Glioblastoma T1C+", "Glioblastoma T2"} & first
    assert len(classes_of) == 4 * len({n.rpartition(" ")[0] for n in class_names_for(8)})


def test_slices_of_one_patient_look_alike_and_patients_differ(hard):
    def pixels(name):
        return np.asarray(Image.open(hard / name).convert("L").resize((48, 48)), dtype=float)

    same = np.corrcoef(pixels("_NORMAL T1/normal-000_s0.jpeg").ravel(),
                       pixels("_NORMAL T1/normal-000_s2.jpeg").ravel())[0, 1]  # fmt: skip
    other = np.corrcoef(pixels("_NORMAL T1/normal-000_s0.jpeg").ravel(),
                        pixels("_NORMAL T1/normal-001_s0.jpeg").ravel())[0, 1]  # fmt: skip
    assert same > other + 0.1


def test_the_set_is_the_same_every_time_and_reused(tmp_path, hard):
    again = write_patient_dataset(tmp_path / "again", num_classes=8, patients=4, slices=3,
                                  min_size=40, max_size=56)  # fmt: skip
    name = "Meningioma T1C+/meningioma-002_s1.jpeg"
    assert (again / name).read_bytes() == (hard / name).read_bytes()
    reused = ensure_patient_dataset(again, num_classes=8, patients=4, slices=3, min_size=40,
                                    max_size=56)  # fmt: skip
    assert reused == again
    (tmp_path / "theirs").mkdir()
    (tmp_path / "theirs" / "scan.jpeg").write_bytes(b"x")
    with pytest.raises(ValueError, match="not a virtual-patient set"):
        ensure_patient_dataset(tmp_path / "theirs", num_classes=8, patients=4)


def test_a_corrupt_manifest_is_regenerated_not_trusted(tmp_path):
    small = dict(num_classes=4, patients=2, slices=2, min_size=40, max_size=48)
    out = ensure_patient_dataset(tmp_path / "set", **small)
    manifest = next(out.glob("*.json"))
    manifest.write_text("{ cut off")
    (out / "stray.txt").write_text("left by an interrupted run")
    again = ensure_patient_dataset(out, **small)
    assert not (again / "stray.txt").exists()
    assert json.loads(manifest.read_text())


def test_a_patient_split_keeps_each_patient_on_one_side_and_a_random_one_leaks(hard, make_cfg):
    from braintumor.pipeline.build import build_datamodule

    def sides(*overrides):
        dm = build_datamodule(make_cfg(*overrides, root=hard))
        groups = groups_of(hard)
        found = defaultdict(set)
        for split, dataset in dm.datasets.items():
            for scan in dataset.scans:
                found[groups[scan.path]].add(split)
        return found

    patient = sides(f"data.group_file={hard / GROUP_FILE}", "data.group_near_duplicates=false")
    assert all(len(s) == 1 for s in patient.values())
    random = sides("data.group_near_duplicates=false", "data.group_cropped_copies=false")
    assert sum(len(s) > 1 for s in random.values()) >= len(random) // 2
