"""``Preprocessing``: one value object from the datamodule to checkpoints, sidecars and back."""

from __future__ import annotations

import pytest
import torch

from braintumor.data.preprocessing import Preprocessing


def test_round_trip_through_the_stored_dict_and_one_value_mean_broadcast():
    prep = Preprocessing.build(["a", "b"], 32, 3, [0.5], [0.25])
    assert prep.mean == (0.5, 0.5, 0.5) and prep.std == (0.25, 0.25, 0.25)
    assert Preprocessing.from_dict(prep.to_dict()) == prep
    image = torch.randint(0, 255, (3, 50, 70), dtype=torch.uint8)
    assert prep.eval_transform()(image).shape == (3, 32, 32)


def test_a_stored_dict_without_a_setting_is_refused_naming_it():
    with pytest.raises(
        ValueError, match=r"checkpoint 'x.ckpt''s preprocessing settings lack \['std'\]"
    ):
        Preprocessing.from_dict({"class_names": ["a"], "image_size": 8, "channels": 1,
                                 "mean": [0.5]}, "checkpoint 'x.ckpt'")  # fmt: skip


def test_differences_name_each_setting_that_differs():
    ours = Preprocessing.build(["a", "b"], 32, 1, [0.5], [0.5])
    theirs = Preprocessing.build(["a", "c"], 64, 1, [0.4], [0.5])
    lines = theirs.differences(ours)
    assert lines[0].startswith("class names: 2 classes in the checkpoint, 2 in the data")
    assert "image_size: checkpoint 64, this run 32" in lines
    assert any(line.startswith("mean: checkpoint [0.4]") for line in lines)
    assert ours.differences(ours) == []
