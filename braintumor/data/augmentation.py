"""``Augmentation``: where and how training images are augmented (``data.augment_on``).

- ``loader``: the ``augment`` transforms (``transforms.v2``), image by image, in the loader
  workers;
- ``batch``: the batched augmentation (``AugmentSpec.batch_augment``) on whole batches in the
  workers;
- ``device``: the batched augmentation after the ``uint8`` batch reaches the accelerator.

Without a batched augmentation, ``batch`` and ``device`` apply the ``augment`` transforms image
by image. The object is small and picklable: loader workers started with ``spawn`` or
``forkserver`` receive it with the dataset (a bound method of the datamodule would drag the
datamodule and its live loaders along).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torchvision.transforms import v2

from braintumor.data.transforms import normalize_transform, train_geometry, train_transform

AUGMENT_ON = ("loader", "batch", "device")


class Augmentation:
    """The training-time augmentation of one run.

    Parameters
    ----------
    augment_on : ``loader``, ``batch`` or ``device`` (see the module docstring).
    mean, std, channels, image_size : the preprocessing; ``input_size`` is the size training
        images are read at (``image_size`` plus the crop margin).
    augment : per-image ``transforms.v2`` transforms on ``uint8`` tensors.
    batch_augment : the batched augmentation, a callable on ``uint8`` ``(N, C, S, S)``.
    """

    def __init__(
        self,
        augment_on: str,
        mean: Sequence[float],
        std: Sequence[float],
        channels: int,
        image_size: int,
        input_size: int,
        augment: Sequence[Callable] = (),
        batch_augment: Callable | None = None,
    ) -> None:
        if augment_on not in AUGMENT_ON:
            raise ValueError(f"data.augment_on must be one of {AUGMENT_ON}, got '{augment_on}'.")
        self.augment_on = augment_on
        self.mean, self.std, self.channels = list(mean), list(std), channels
        self.image_size, self.input_size = image_size, input_size
        self.augment = list(augment)
        self.batch_augment = batch_augment

    def per_image(self, cached: bool) -> Callable | None:
        """What the training set applies to each ``uint8`` image it reads: the whole train
        transform (``loader``), else only a resize to ``input_size`` (none when the decoded
        cache already holds that size)."""
        if self.augment_on == "loader":
            return train_transform(
                self.image_size, self.mean, self.std, self.channels, self.augment, self.input_size
            )
        size = self.input_size
        return None if cached else v2.Resize((size, size), antialias=True)

    @property
    def in_workers(self) -> Augmentation | None:
        """The batch hook of the training set (``batch``), else ``None``."""
        return self if self.augment_on == "batch" else None

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        """``uint8`` training images ``(N, C, S, S)`` -> augmented, normalized ``float32``;
        each image gets its own random augmentation, on whatever device the batch is on."""
        if self.batch_augment is not None:
            return v2.Normalize(self.mean, self.std)(self.batch_augment(images))
        geometry = v2.Compose(train_geometry(self.image_size, self.augment, self.input_size))
        images = torch.stack([geometry(image) for image in images])
        return normalize_transform(self.mean, self.std, self.channels)(images)

    def on_device(self, images: torch.Tensor, training: bool) -> torch.Tensor:
        """A batch that reached the accelerator: augmented there (``device``, training only)."""
        return self(images) if self.augment_on == "device" and training else images
