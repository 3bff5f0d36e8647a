"""Show in TensorBoard what the model sees: a grid of augmented training images, each with its
class name under it."""

from __future__ import annotations

import logging
import math
import textwrap
from collections.abc import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import torch
from lightning.pytorch import Callback, LightningModule, Trainer
from lightning.pytorch.loggers import TensorBoardLogger
from matplotlib.figure import Figure

from braintumor.data.preprocessing import denormalize
from braintumor.training.board import figure_pixels

log = logging.getLogger(__name__)

LABEL_FONT = 8  # points: 11 px at the grid's 100 dpi


def labelled_grid(images: torch.Tensor, labels: Sequence[str], per_row: int = 8) -> Figure:
    """``images`` (N, C, H, W) with values in [0, 1] in rows of ``per_row``, ``labels[i]``
    written under image ``i`` (long names wrapped on two lines)."""
    n = len(images)
    rows, cols = max(1, math.ceil(n / per_row)), max(1, min(per_row, n))
    fig, axes = plt.subplots(rows, cols, figsize=(cols * 1.4, rows * 1.75), dpi=100,
                             squeeze=False)  # fmt: skip
    for ax in axes.flat:
        ax.axis("off")
    for ax, image, label in zip(axes.flat, images, labels, strict=False):
        pixels = image.detach().float().cpu().permute(1, 2, 0).clamp(0, 1).numpy()
        if pixels.shape[2] == 1:
            ax.imshow(pixels[..., 0], cmap="gray", vmin=0, vmax=1, interpolation="nearest")
        else:
            ax.imshow(pixels, interpolation="nearest")
        text = "\n".join(textwrap.wrap(str(label), 18, break_long_words=False)[:2])
        ax.text(0.5, -0.04, text, transform=ax.transAxes, ha="center", va="top",
                fontsize=LABEL_FONT)  # fmt: skip
    fig.subplots_adjust(left=0.01, right=0.99, top=0.99, bottom=0.12 / rows, wspace=0.06,
                        hspace=0.45)  # fmt: skip
    return fig


class AugmentedSampleGrid(Callback):
    """At the start of training, log ``num_images`` augmented training images (fixed picks,
    fresh augmentations), labelled with their class, as ``train/augmented_samples`` to every
    TensorBoard logger."""

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
        samples = [dataset[i] for i in picks]
        images = torch.stack([image for image, _ in samples])
        if images.dtype == torch.uint8:  # augment_on=batch|device: augmented per batch, not here
            images = trainer.datamodule.augment_batch(images)
        prep = pl_module.preprocessing
        images = denormalize(images.float(), prep.mean, prep.std)
        labels = [pl_module.class_names[int(target)] for _, target in samples]
        fig = labelled_grid(images, labels, self.per_row)
        pixels = figure_pixels(fig)
        plt.close(fig)
        for board in boards:
            board.experiment.add_image(
                "train/augmented_samples", pixels, trainer.global_step, dataformats="HWC"
            )
