"""Show in TensorBoard what the model sees: a grid of augmented training images."""

from __future__ import annotations

import logging

import torch
from lightning.pytorch import Callback, LightningModule, Trainer
from lightning.pytorch.loggers import TensorBoardLogger
from torchvision.utils import make_grid

from braintumor.data.transforms import denormalize

log = logging.getLogger(__name__)


class AugmentedSampleGrid(Callback):
    """At the start of training, log ``num_images`` augmented training images (fixed picks,
    fresh augmentations) as ``train/augmented_samples`` to every TensorBoard logger."""

    def __init__(self, num_images: int = 32, per_row: int = 8, seed: int = 0) -> None:
        self.num_images = num_images
        self.per_row = per_row
        self.seed = seed

    def on_train_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        boards = [lg for lg in trainer.loggers if isinstance(lg, TensorBoardLogger)]
        datasets = getattr(trainer.datamodule, "datasets", None) if trainer.datamodule else None
        if not boards or not trainer.is_global_zero or not datasets or not datasets.get("train"):
            return
        dataset = datasets["train"]
        generator = torch.Generator().manual_seed(self.seed)
        picks = torch.randperm(len(dataset), generator=generator)[: self.num_images].tolist()
        images = torch.stack([dataset[i][0] for i in picks])
        if images.dtype == torch.uint8:  # augment_on=batch|device: augmented per batch, not here
            images = trainer.datamodule.augment_batch(images)
        prep = pl_module.preprocessing
        images = denormalize(images, prep.mean, prep.std)
        grid = make_grid(images, nrow=self.per_row, padding=2)
        for board in boards:
            board.experiment.add_image("train/augmented_samples", grid, trainer.global_step)
