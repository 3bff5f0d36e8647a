"""The pointing game and the energy inside the tumour mask (braintumor.evaluation.pointing_game)."""

from __future__ import annotations

import csv
import math

import numpy as np
import pytest

from braintumor.evaluation.pointing_game import score_map, summarize, write_summary_csv


def _mask(shape=(20, 20), box=(5, 10, 5, 10)) -> np.ndarray:
    mask = np.zeros(shape, dtype=bool)
    mask[box[0] : box[1], box[2] : box[3]] = True
    return mask


def test_peak_inside_the_mask_is_a_hit_and_outside_a_miss():
    mask = _mask()
    inside = np.zeros(mask.shape)
    inside[7, 7] = 1.0
    outside = np.zeros(mask.shape)
    outside[15, 15] = 1.0
    assert score_map(inside, mask).hit
    assert not score_map(outside, mask).hit


def test_energy_is_the_share_of_the_map_inside_the_mask():
    mask = _mask()  # 25 of 400 pixels
    cam = np.zeros(mask.shape)
    cam[7, 7] = 3.0  # inside
    cam[15, 15] = 1.0  # outside
    score = score_map(cam, mask)
    assert score.energy == pytest.approx(0.75)
    assert score.mask_share == pytest.approx(25 / 400)
    uniform = score_map(np.ones(mask.shape), mask)
    assert uniform.energy == pytest.approx(uniform.mask_share)  # a flat map scores chance


def test_tolerance_grows_the_mask_for_the_hit_test_only():
    mask = _mask()  # rows/cols 5..9
    cam = np.zeros(mask.shape)
    cam[12, 7] = 1.0  # 3 pixels below the mask
    assert not score_map(cam, mask).hit
    assert not score_map(cam, mask, tolerance=2).hit
    assert score_map(cam, mask, tolerance=3).hit
    assert score_map(cam, mask, tolerance=3).energy == 0.0


def test_a_map_without_evidence_is_a_miss_and_counted():
    score = score_map(np.zeros((20, 20)), _mask())
    assert (score.hit, score.energy, score.evidence) == (False, 0.0, False)


def test_ties_hit_when_one_maximal_pixel_is_inside():
    mask = _mask()
    cam = np.zeros(mask.shape)
    cam[7, 7] = cam[15, 15] = 1.0
    assert score_map(cam, mask).hit


def test_shape_mismatch_and_empty_masks_are_refused():
    with pytest.raises(ValueError, match="differ in shape"):
        score_map(np.ones((10, 10)), _mask())
    with pytest.raises(ValueError, match="empty"):
        score_map(np.ones((20, 20)), np.zeros((20, 20), dtype=bool))


def test_summary_per_class_and_overall(tmp_path):
    mask = _mask()
    hit, miss = np.zeros(mask.shape), np.zeros(mask.shape)
    hit[6, 6] = 1.0
    miss[0, 0] = 1.0
    scores = [score_map(m, mask) for m in (hit, hit, miss, np.zeros(mask.shape))]
    rows = summarize(scores, ["glioma", "glioma", "meningioma", "meningioma"],
                     [True, False, True, False])  # fmt: skip
    by = {r["class"]: r for r in rows}
    assert [r["class"] for r in rows] == ["glioma", "meningioma", "all"]
    assert by["glioma"]["pointing_game"] == 1.0 and by["meningioma"]["pointing_game"] == 0.0
    assert by["all"]["pointing_game"] == 0.5
    assert by["all"]["pointing_game_correct"] == 0.5  # one hit of the two correct ones
    assert by["meningioma"]["no_evidence"] == 1 and by["all"]["n"] == 4
    assert by["glioma"]["energy_in_mask"] == 1.0
    assert math.isclose(by["all"]["mask_share"], 25 / 400)
    written = list(csv.DictReader(write_summary_csv(tmp_path / "p.csv", rows).open()))
    assert written[-1]["class"] == "all" and written[-1]["pointing_game"] == "0.5000"


def test_grad_cam_explains_the_true_labels_most_probable_class_or_the_answer():
    from braintumor.pipeline.external import _targets

    probs = np.array([[0.1, 0.5, 0.4], [0.6, 0.3, 0.1]])
    # image 0's true label is held by classes 0 and 2 (e.g. two glioma types); image 1's by none
    assert _targets(probs, [[0, 2], None], "label") == [2, 0]
    assert _targets(probs, [[0, 2], None], "prediction") == [1, 0]
