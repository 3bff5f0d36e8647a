"""``TrainAugmentation``: the augmentation of whole training batches, as a picklable object.

Loader workers started with ``spawn`` or ``forkserver`` receive the dataset by pickling; a
bound method of the datamodule would drag the datamodule (and its live loaders) along, so the
batch hook is this small object instead.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torchvision.transforms import v2

from braintumor.data.transforms import normalize_transform, train_geometry


class TrainAugmentation:
    """``uint8`` training images ``(N, C, S, S)`` -> augmented, normalized ``float32``.

    Each image gets its own random augmentation, on whatever device the batch is on: the
    batched augmentation (``augment.batched``) when given, else the per-image ``augment``
    transforms one image at a time.
    """

    def __init__(
        self,
        mean: Sequence[float],
        std: Sequence[float],
        channels: int,
        image_size: int,
        input_size: int,
        augment: Sequence[Callable] = (),
        batch_augment: Callable | None = None,
    ) -> None:
        self.mean, self.std, self.channels = list(mean), list(std), channels
        self.image_size, self.input_size = image_size, input_size
        self.augment = list(augment)
        self.batch_augment = batch_augment

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        if self.batch_augment is not None:
            return v2.Normalize(self.mean, self.std)(self.batch_augment(images))
        geometry = v2.Compose(train_geometry(self.image_size, self.augment, self.input_size))
        images = torch.stack([geometry(image) for image in images])
        return normalize_transform(self.mean, self.std, self.channels)(images)
