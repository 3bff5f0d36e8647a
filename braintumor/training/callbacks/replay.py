"""``ReplayableTraining``: a resumed run trains exactly as the uninterrupted run would have."""

from __future__ import annotations

import math
import random
from typing import Any

import lightning.pytorch as pl
import numpy as np
import torch
from lightning.pytorch import Callback

from braintumor.data.sampling import EpochSampler, derived_seed


class ReplayableTraining(Callback):
    """Seeds every training step from ``(seed, epoch, batch)`` and, after a restart from a
    checkpoint saved mid-epoch, has the training sampler skip the batches already trained on.

    Together with :class:`~braintumor.data.sampling.EpochSampler` (order and augmentations
    from ``(seed, epoch, image)``) this makes a run killed at any point and resumed from its
    last checkpoint end with the same weights as a run never interrupted (with
    ``trainer.deterministic=true`` on the same hardware). ``seed=None`` does nothing.
    """

    def __init__(self, seed: int | None) -> None:
        self.seed = seed

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        # Runs after a checkpoint is restored and before the first batch is drawn (Lightning
        # skips ``on_train_epoch_start`` when it re-enters an epoch it had started).
        loader = trainer.train_dataloader
        sampler = getattr(loader, "sampler", None)
        if self.seed is None or not isinstance(sampler, EpochSampler):
            return
        batches = trainer.num_training_batches
        if not isinstance(batches, int) or batches == 0 or math.isinf(batches):
            return
        steps_per_epoch = math.ceil(batches / trainer.accumulate_grad_batches)
        done = trainer.global_step - trainer.current_epoch * steps_per_epoch
        if 0 < done < steps_per_epoch:  # restored from a checkpoint saved inside this epoch
            sampler.skip_next(done * trainer.accumulate_grad_batches * loader.batch_size)

    def on_train_batch_start(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: Any, batch_idx: int
    ) -> None:
        if self.seed is None:
            return
        # batches started in this epoch, this one included; restored with the checkpoint
        started = trainer.fit_loop.epoch_loop.batch_progress.current.ready
        seed = derived_seed(self.seed, trainer.current_epoch, started)
        random.seed(seed)
        np.random.seed(seed % 2**32)
        # the CPU generator and the training device's (torch.manual_seed would also queue
        # seeds for every uninitialized backend, formatting a stack trace each: ~1 ms a step)
        torch.default_generator.manual_seed(seed)
        if pl_module.device.type == "cuda":
            torch.cuda.manual_seed_all(seed)
        elif pl_module.device.type != "cpu":
            torch.manual_seed(seed)
