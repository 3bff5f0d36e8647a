"""What input a network expects, in the shape of timm's ``resolve_data_config``.

A model's data config is a plain dict:

- ``input_size``: ``(channels, height, width)`` its weights were trained at, ``None`` for any;
- ``mean``, ``std``: the per-channel normalization its weights expect, ``None`` when they
  expect nothing in particular (random weights: the data's own mean/std);
- ``interpolation``: how its training images were resized;
- ``crop_pct``: the centre crop of its evaluation transform (crop / resize side), ``None`` for
  no crop.

Pretrained ImageNet weights give ImageNet's mean/std; for one-channel input (the first
convolution folded by summing its RGB weights) their mean over the three channels.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

DataConfig = dict[str, Any]


def fold_channels(values: Sequence[float], channels: int) -> tuple[float, ...]:
    """RGB ``values`` for ``channels`` input channels: as they are for 3, their mean for 1."""
    values = tuple(float(v) for v in values)
    if channels == len(values):
        return values
    if channels == 1:
        return (sum(values) / len(values),)
    raise ValueError(f"cannot fit {len(values)} per-channel values to {channels} channels.")


def imagenet_normalization(channels: int) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """ImageNet's ``(mean, std)`` for ``channels`` (1 or 3) input channels."""
    return fold_channels(IMAGENET_MEAN, channels), fold_channels(IMAGENET_STD, channels)


def data_config(
    input_size: tuple[int, int, int] | None = None,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
    interpolation: str = "bilinear",
    crop_pct: float | None = None,
) -> DataConfig:
    """A data config (see the module docstring) with every key present."""
    return {
        "input_size": tuple(input_size) if input_size is not None else None,
        "mean": tuple(mean) if mean is not None else None,
        "std": tuple(std) if std is not None else None,
        "interpolation": interpolation,
        "crop_pct": crop_pct,
    }


def weights_data_config(
    in_channels: int,
    size: Sequence[int],
    mean: Sequence[float],
    std: Sequence[float],
    starts_pretrained: bool,
    interpolation: str = "bilinear",
    crop_pct: float | None = None,
) -> DataConfig:
    """The data config of a network with published weights trained at ``size`` (height,
    width) with ``mean``/``std``: those, folded to ``in_channels``, only when it starts from
    the weights (a random network expects no particular mean/std)."""
    return data_config(
        input_size=(in_channels, int(size[0]), int(size[1])),
        mean=fold_channels(mean, in_channels) if starts_pretrained else None,
        std=fold_channels(std, in_channels) if starts_pretrained else None,
        interpolation=interpolation,
        crop_pct=crop_pct,
    )
