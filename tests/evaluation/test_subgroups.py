"""Metrics by subgroup (sequence, image mode, size, source)."""

from __future__ import annotations

import csv

import numpy as np

from braintumor.evaluation.subgroups import (
    mode_group,
    sequence_of,
    size_bucket,
    subgroup_rows,
    write_subgroups_csv,
)


def test_attributes_from_folder_names_modes_and_sizes():
    assert sequence_of("Meningioma T1C+") == "T1C+" and sequence_of("_NORMAL T2") == "T2"
    assert sequence_of("glioma") == "unknown"
    assert mode_group("L") == "grayscale" and mode_group("RGB") == mode_group("CMYK") == "color"
    assert size_bucket(200, 300) == "256-511 px" and size_bucket(100, 90) == "< 256 px"


def test_a_subgroup_where_the_model_fails_shows_it_and_tiny_ones_get_no_metrics(tmp_path):
    y = np.array([0, 1] * 10 + [0, 1])
    pred = np.concatenate([y[:10], 1 - y[10:20], y[20:]])  # wrong on every T2 image
    probs = np.eye(2)[pred]
    sequence = ["T1"] * 10 + ["T2"] * 10 + ["T1C+"] * 2
    rows = subgroup_rows(y, probs, 2, {"sequence": sequence})
    by = {r["value"]: r for r in rows}
    assert by["T1"]["accuracy"] == 1.0 and by["T2"]["accuracy"] == 0.0
    assert by["T1"]["f1_macro"] == 1.0  # over the classes the subgroup holds
    assert by["T1C+"]["accuracy"] is None and "fewer than" in by["T1C+"]["note"]
    read = list(csv.DictReader(write_subgroups_csv(tmp_path / "s.csv", rows).open()))
    assert [r["value"] for r in read] == ["T1", "T1C+", "T2"] and read[1]["accuracy"] == ""
