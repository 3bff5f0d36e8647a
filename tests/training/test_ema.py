"""model.ema_decay: the weights' moving average is what is validated, checkpointed and served,
and a resumed run continues the same average."""

from __future__ import annotations

import pytest
import torch

from braintumor.errors import UsageError
from braintumor.pipeline.train import train
from braintumor.training.module import MRIClassifier

COMMON = ["logger=none", "~callbacks.lr_monitor", "~callbacks.augmented_samples", "seed=3",
          "trainer.deterministic=true", "~callbacks.early_stopping",
          "model.ema_decay=0.6"]  # fmt: skip


def _checkpoint(path):
    return torch.load(path, map_location="cpu", weights_only=False)


def test_the_average_is_checkpointed_and_served(make_cfg, tmp_path):
    metrics = train(make_cfg(*COMMON, "trainer.max_epochs=2"))
    best = next((tmp_path / "run" / "checkpoints").glob("epoch_*.ckpt"))
    saved = _checkpoint(best)
    averaged, current = saved["state_dict"], saved["current_model_state"]
    assert averaged.keys() == current.keys()
    assert any(not torch.equal(averaged[k], current[k]) for k in averaged)  # two sets of weights
    served = MRIClassifier.from_checkpoint(best).state_dict()
    assert all(torch.equal(served[k], averaged[k]) for k in averaged)
    assert 0 <= metrics["test/f1_macro"] <= 1  # the reports ran on the averaged checkpoint


def test_a_resumed_run_continues_the_same_average(make_cfg, tmp_path):
    train(make_cfg(*COMMON, "trainer.max_epochs=3", "test=false", run="whole"))
    train(make_cfg(*COMMON, "trainer.max_epochs=1", "test=false", run="first"))
    last = tmp_path / "first" / "checkpoints" / "last.ckpt"
    train(make_cfg(*COMMON, "trainer.max_epochs=3", "test=false", f"ckpt_path={last}",
                   run="resumed"))  # fmt: skip
    whole = _checkpoint(tmp_path / "whole" / "checkpoints" / "last.ckpt")
    resumed = _checkpoint(tmp_path / "resumed" / "checkpoints" / "last.ckpt")
    for part in ("state_dict", "current_model_state"):
        assert all(torch.equal(whole[part][k], resumed[part][k]) for k in whole[part]), part


def test_a_decay_outside_0_1_is_refused(make_cfg):
    with pytest.raises(UsageError, match=r"model\.ema_decay must be a number in \[0, 1\)"):
        train(make_cfg("model.ema_decay=1.5"))
