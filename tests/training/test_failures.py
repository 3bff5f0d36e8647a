"""Failures in the middle of a run: clear messages that say what happened and what to do."""

from __future__ import annotations

import re
import shutil

import pytest

from braintumor.errors import DataError
from braintumor.pipeline.train import train


def test_nan_loss_names_the_step_and_the_last_good_checkpoint(make_cfg):
    cfg = make_cfg("model.optimizer.lr=1e30", "callbacks.step_checkpoint.every_n_train_steps=1",
                   "data.batch_size=4", "trainer.max_epochs=3", "logger=none")  # fmt: skip
    with pytest.raises(FloatingPointError) as error:
        train(cfg)
    message = str(error.value)
    assert "training loss is nan" in message or "training loss is inf" in message
    assert "step " in message and "the last good checkpoint is " in message
    assert "step.ckpt" in message and "model.optimizer.lr" in message


def test_out_of_memory_says_which_batch_size_and_what_to_lower(make_cfg):
    # a real allocation failure: 16 x 200000 x 256 x 256 float32 activations (~800 TB)
    cfg = make_cfg("model.net.widths=[200000]", "data.image_size=256", "logger=none")
    with pytest.raises(MemoryError) as error:
        train(cfg)
    message = str(error.value)
    assert "data.batch_size=16" in message and "data.image_size=256" in message
    assert "Lower data.batch_size (e.g. data.batch_size=8)" in message


def test_resuming_with_other_classes_or_image_setup_fails_comparing_both(
    make_cfg, trained_ckpt, tiny_copy
):
    cfg = make_cfg(f"ckpt_path={trained_ckpt}", "data.image_size=48", "data.channels=3")
    with pytest.raises(DataError) as error:
        train(cfg)
    message = str(error.value)
    assert "image_size: checkpoint 32, this run 48" in message
    assert "channels: checkpoint 1, this run 3" in message

    gone = sorted(p for p in tiny_copy.iterdir() if p.is_dir())[0]
    shutil.rmtree(gone)
    cfg = make_cfg(f"ckpt_path={trained_ckpt}", root=tiny_copy, run="other")
    with pytest.raises(DataError, match=re.escape(f"missing from the data ['{gone.name}']")):
        train(cfg)


def test_ckpt_path_last_without_a_checkpoint_says_how_to_resume(make_cfg):
    hint = re.escape("hydra.run.dir=<its directory> ckpt_path=last")
    with pytest.raises(FileNotFoundError, match=hint):
        train(make_cfg("ckpt_path=last"))


def test_a_diverging_loss_fails_like_nan_before_any_checkpoint_of_it(make_cfg, tmp_path):
    # lr=1e6: the loss jumps to ~1e12 and stays finite; the run must not end "completed"
    cfg = make_cfg("model.optimizer.lr=1e6", "data.batch_size=4", "trainer.max_epochs=2",
                   "logger=none")  # fmt: skip
    with pytest.raises(FloatingPointError) as error:
        train(cfg)
    message = str(error.value)
    assert "training diverged" in message and "at epoch 0, step 1 (batch 1)" in message
    assert "100 x ln(4) = 139" in message and "model.optimizer.lr" in message
    assert "no checkpoint was saved before it" in message
    assert not list((tmp_path / "run" / "checkpoints").glob("*.ckpt"))
