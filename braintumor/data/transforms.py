"""Train and eval preprocessing with ``torchvision.transforms.v2`` on ``uint8`` tensors.

Both pipelines resize to ``image_size`` first (cheap ops after that), run augmentations on
``uint8`` tensors, then convert to float and normalize. The eval pipeline is deterministic
and is rebuilt from a checkpoint's preprocessing settings for prediction.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torchvision.transforms import v2


def per_channel(values: Sequence[float], channels: int, name: str) -> list[float]:
    """Broadcast a 1-value ``mean``/``std`` to ``channels`` values; check the length."""
    values = [float(v) for v in values]
    if len(values) == 1:
        return values * channels
    if len(values) != channels:
        raise ValueError(
            f"{name} has {len(values)} values but the images have {channels} channels."
        )
    return values


def _tail(mean: Sequence[float], std: Sequence[float], channels: int) -> list[Callable]:
    return [
        v2.ToDtype(torch.float32, scale=True),
        v2.Normalize(per_channel(mean, channels, "mean"), per_channel(std, channels, "std")),
    ]


def eval_transform(
    image_size: int, mean: Sequence[float], std: Sequence[float], channels: int = 1
) -> v2.Compose:
    """Deterministic: resize to ``image_size`` x ``image_size``, scale to [0, 1], normalize."""
    return v2.Compose(
        [v2.Resize((image_size, image_size), antialias=True), *_tail(mean, std, channels)]
    )


def train_transform(
    image_size: int,
    mean: Sequence[float],
    std: Sequence[float],
    channels: int = 1,
    augment: Sequence[Callable] = (),
    input_size: int | None = None,
) -> v2.Compose:
    """Resize to ``input_size`` (default ``image_size``), then the ``augment`` transforms (on
    ``uint8``), a resize to ``image_size`` if they did not end there, then scale and normalize."""
    return v2.Compose(
        [*train_geometry(image_size, augment, input_size), *_tail(mean, std, channels)]
    )


def train_geometry(
    image_size: int, augment: Sequence[Callable] = (), input_size: int | None = None
) -> list[Callable]:
    """The ``uint8`` part of :func:`train_transform`."""
    input_size = input_size or image_size
    steps = [v2.Resize((input_size, input_size), antialias=True), *augment]
    if input_size != image_size:  # a no-op when the augmentations already crop to image_size
        steps.append(v2.Resize((image_size, image_size), antialias=True))
    return steps


def normalize_transform(mean: Sequence[float], std: Sequence[float], channels: int) -> v2.Compose:
    """``uint8`` images (one or a batch) -> normalized ``float32``."""
    return v2.Compose(_tail(mean, std, channels))


def denormalize(batch: torch.Tensor, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    """Undo :func:`eval_transform`'s normalization for display; returns values in [0, 1]."""
    c = batch.shape[-3]
    m = torch.tensor(per_channel(mean, c, "mean"), dtype=batch.dtype).view(c, 1, 1)
    s = torch.tensor(per_channel(std, c, "std"), dtype=batch.dtype).view(c, 1, 1)
    return (batch * s + m).clamp(0, 1)
