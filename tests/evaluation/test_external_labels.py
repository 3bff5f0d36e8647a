"""The label space a model and an external set share (braintumor.evaluation.label_space)."""

from __future__ import annotations

import numpy as np
import pytest

from braintumor.errors import DataError
from braintumor.evaluation.label_space import OUT_OF_LABEL_SET, model_families, shared_labels

NICKPARVAR = {"glioma": "glioma", "meningioma": "meningioma", "notumor": "normal",
              "pituitary": "pituitary"}  # fmt: skip


def test_labels_the_model_lacks_are_out_of_its_label_set():
    space = shared_labels(["glioma", "meningioma", "pituitary"], NICKPARVAR)
    assert space.level == "family"
    assert space.shared == ("glioma", "meningioma", "pituitary")
    assert space.external_label["notumor"] == OUT_OF_LABEL_SET
    assert space.out_of_set == ["notumor"]


def test_labels_only_the_model_has_stay_possible_answers():
    space = shared_labels(["glioma", "normal", "other_tumor"], NICKPARVAR)
    assert space.shared == ("glioma", "normal")
    assert space.model_only == ("other_tumor",)
    assert space.out_of_set == ["meningioma", "pituitary"]


def test_probabilities_of_classes_of_one_label_are_summed():
    families = ["glioma", "glioma", "normal", "meningioma"]  # e.g. two glioma types
    space = shared_labels(families, NICKPARVAR)
    probs = np.array([[0.3, 0.3, 0.4, 0.0]])
    merged = space.probabilities(probs)
    assert dict(zip(space.labels, merged[0], strict=True)) == pytest.approx(
        {"glioma": 0.6, "meningioma": 0.0, "normal": 0.4}
    )


def test_a_set_without_tumour_families_is_met_at_tumor_vs_normal():
    br35h = {"yes": "tumor", "no": "normal"}
    space = shared_labels(["glioma", "meningioma", "normal"], br35h)
    assert space.level == "tumor_vs_normal"
    assert space.shared == ("normal", "tumor")
    assert space.model_label == ("tumor", "tumor", "normal")


def test_scoring_is_refused_when_nothing_is_shared():
    with pytest.raises(DataError, match="share no label"):
        shared_labels(["glioma", "meningioma"], {"no": "normal"})


def test_scoring_is_refused_when_every_answer_would_be_right():
    with pytest.raises(DataError, match="single label"):  # a tumour-only model on yes/no
        shared_labels(["glioma", "meningioma"], {"yes": "tumor", "no": "normal"})


def test_model_classes_are_placed_through_the_label_maps():
    assert model_families(["glioma", "normal"]) == ["glioma", "normal"]  # taxonomy=family
    assert model_families(["glioma T1C+", "normal T2", "pituitary unknown"]) == [
        "glioma",
        "normal",
        "pituitary",
    ]  # fmt: skip  (family_sequence)
    assert model_families(["notumor", "pituitary"], ["nickparvar4"]) == ["normal", "pituitary"]
    assert model_families(["Astrocitoma T1", "_NORMAL T2", "Schwannoma T1C+"], ["brain44c"]) == [
        "glioma", "normal", "other_tumor",
    ]  # fmt: skip
    assert model_families(["Glioblastoma", "Meningioma"], ["brain44c"]) == [
        "glioma",
        "meningioma",
    ]  # fmt: skip  (the tumor_type taxonomy)
    assert model_families(["tumor", "normal"]) == ["tumor", "normal"]


def test_a_class_in_no_label_map_is_refused_with_its_name():
    with pytest.raises(DataError, match="'Lymphoma T1'"):
        model_families(["Lymphoma T1", "normal"], ["brain44c"])
