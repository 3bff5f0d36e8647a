from collections import Counter

import pytest

from braintumor.data.scan import Scan
from braintumor.data.split import read_split_csv, stratified_split, write_split_csv
from braintumor.errors import DataError

LABELS = ["a"] * 40 + ["b"] * 20 + ["c"] * 10


def test_split_is_stratified_by_class():
    splits = stratified_split(LABELS, 0.2, 0.2, seed=0)
    for split in ("val", "test"):
        counts = Counter(label for label, s in zip(LABELS, splits, strict=True) if s == split)
        assert counts == {"a": 8, "b": 4, "c": 2}
    assert Counter(splits) == {"train": 42, "val": 14, "test": 14}


def test_split_depends_only_on_seed():
    assert stratified_split(LABELS, 0.2, 0.2, seed=5) == stratified_split(LABELS, 0.2, 0.2, seed=5)
    assert stratified_split(LABELS, 0.2, 0.2, seed=5) != stratified_split(LABELS, 0.2, 0.2, seed=6)


def test_zero_fractions_keep_everything_in_train():
    assert set(stratified_split(LABELS, 0.0, 0.0, seed=0)) == {"train"}


def test_class_too_small_to_stratify_is_named():
    with pytest.raises(DataError, match=r"\['lonely'\]"):
        stratified_split([*LABELS, "lonely"], 0.2, 0.2, seed=0)


def test_fraction_too_small_for_the_classes():
    with pytest.raises(DataError, match="fewer than the 3 classes"):
        stratified_split(LABELS, 0.2, 0.02, seed=0)


def test_bad_fractions():
    with pytest.raises(DataError, match="sum below 1"):
        stratified_split(LABELS, 0.6, 0.5, seed=0)


def test_split_csv_round_trip(tmp_path):
    scans = [Scan(f"{label}/x{i}.jpeg", label) for i, label in enumerate(LABELS)]
    splits = stratified_split(LABELS, 0.2, 0.2, seed=0)
    path = write_split_csv(tmp_path / "split.csv", scans, splits)
    assert path.read_text().splitlines()[0] == "path,class,split"
    assert read_split_csv(path) == (scans, splits, None)
    groups = [f"case {i // 2}" if i % 3 else f"near-copy:{s.path}" for i, s in enumerate(scans)]
    write_split_csv(path, scans, splits, groups=groups)
    assert read_split_csv(path)[2] == groups  # the ids as written, not numbers


def test_bad_split_csv(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("file,label\nx.jpeg,a\n")
    with pytest.raises(DataError, match="lacks column"):
        read_split_csv(bad)
    bad.write_text("path,class,split\nx.jpeg,a,holdout\n")
    with pytest.raises(DataError, match="holdout"):
        read_split_csv(bad)
    with pytest.raises(DataError, match="does not exist"):
        read_split_csv(tmp_path / "missing.csv")
