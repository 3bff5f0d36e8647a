"""MixUp / CutMix of whole batches: soft targets in the loss, hard labels in the metrics."""

from __future__ import annotations

import pytest
import torch

from braintumor.errors import UsageError
from braintumor.pipeline.train import train
from braintumor.training.mixing import BatchMixing, batch_mixing

QUIET = ["logger=none", "~callbacks.lr_monitor", "~callbacks.augmented_samples", "test=false",
         "seed=5", "trainer.deterministic=true", "trainer.max_epochs=2"]  # fmt: skip


@pytest.mark.parametrize(("mixup", "cutmix"), [(0.4, 0.0), (0.0, 1.0), (0.4, 1.0)])
def test_a_mixed_batch_has_soft_targets_that_sum_to_one(mixup, cutmix):
    torch.manual_seed(0)
    images, labels = torch.randn(16, 1, 32, 32), torch.arange(16) % 4
    mixed, targets = BatchMixing(4, mixup, cutmix, 1.0)(images, labels)
    assert mixed.shape == images.shape and not torch.equal(mixed, images)
    assert targets.shape == (16, 4) and torch.allclose(targets.sum(1), torch.ones(16))
    assert (targets.max(1).values < 1).any()  # some targets are soft


def test_no_alpha_means_no_mixing_and_mix_prob_zero_leaves_batches_alone():
    assert batch_mixing(4) is None
    images, labels = torch.randn(8, 1, 8, 8), torch.arange(8) % 4
    mixed, targets = BatchMixing(4, 0.4, 0.0, 0.0)(images, labels)
    assert mixed is images and targets is labels


def test_bad_mixing_settings_are_refused():
    with pytest.raises(UsageError, match=r"model\.mixup_alpha must be a number >= 0"):
        batch_mixing(4, mixup_alpha=-1)
    with pytest.raises(UsageError, match=r"model\.mix_prob must be a number in \[0, 1\]"):
        batch_mixing(4, cutmix_alpha=1.0, mix_prob=2)
    with pytest.raises(ValueError, match="the data has 1: set both to 0"):
        batch_mixing(1, mixup_alpha=0.2)


def test_mixing_changes_training_repeats_with_its_seed_and_takes_class_weights(make_cfg):
    plain = train(make_cfg(*QUIET, run="plain"))
    mixed = train(make_cfg(*QUIET, "model.mixup_alpha=0.4", "model.cutmix_alpha=1.0", run="mix"))
    again = train(make_cfg(*QUIET, "model.mixup_alpha=0.4", "model.cutmix_alpha=1.0", run="a"))
    assert mixed["train/loss"] != plain["train/loss"]
    assert mixed["train/loss"] == again["train/loss"]
    assert 0 <= mixed["train/accuracy"] <= 1  # on the hard labels
    weighted = train(make_cfg(*QUIET, "model.mixup_alpha=0.4", "model.class_weights=balanced",
                              run="weighted"))  # fmt: skip
    assert weighted["train/loss"] != mixed["train/loss"]
