"""``read_checkpoint``: the one reader of a checkpoint, behind the LightningModule and the
Lightning-free prediction path."""

from __future__ import annotations

import pytest
import torch

from braintumor.errors import CheckpointError
from braintumor.inference.trained_model import TrainedModel
from braintumor.runs.checkpoint_file import read_checkpoint
from braintumor.training.module import MRIClassifier


def test_both_loaders_see_what_read_checkpoint_reads(trained_ckpt):
    found = read_checkpoint(trained_ckpt)
    stored = torch.load(trained_ckpt, map_location="cpu", weights_only=True)
    assert found.class_names == tuple(stored["hyper_parameters"]["preprocessing"]["class_names"])
    assert found.calibration == stored.get("calibration", {})
    assert found.state_dict.keys() == stored["state_dict"].keys()
    assert MRIClassifier.from_checkpoint(trained_ckpt).preprocessing == found.preprocessing
    model = TrainedModel.from_checkpoint(trained_ckpt)
    assert model.preprocessing == found.preprocessing and model.calibration == found.calibration


def test_a_checkpoint_without_network_or_preprocessing_is_refused_naming_it(tmp_path):
    foreign = tmp_path / "foreign.ckpt"
    torch.save({"state_dict": {"w": torch.zeros(2)}}, foreign)
    refused = pytest.raises(CheckpointError, match=r"foreign.ckpt' names no network")
    with pytest.warns(UserWarning, match="no checksum"), refused:
        read_checkpoint(foreign)
