"""``Preprocessing``: what turns a decoded scan into the network's input, and the labels of its
outputs. Built once (by the datamodule), stored in every checkpoint and ONNX sidecar as a plain
dict (:meth:`Preprocessing.to_dict`), and rebuilt from there for evaluation and prediction.

Also the deterministic eval transform (``torchvision.transforms.v2`` on ``uint8`` tensors: resize
to ``image_size`` first, then scale and normalize), rebuilt from a checkpoint's settings for
prediction, and its inverse for display. Torch and torchvision are imported where a transform
is built, not here: the ONNX prediction path reads the value object without them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch
    from torchvision.transforms import v2

REQUIRED = ("class_names", "image_size", "channels", "mean", "std")


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


def normalize_steps(mean: Sequence[float], std: Sequence[float], channels: int) -> list[Callable]:
    """``uint8`` -> ``float32`` in [0, 1] -> normalized: the end of every transform."""
    import torch
    from torchvision.transforms import v2

    return [
        v2.ToDtype(torch.float32, scale=True),
        v2.Normalize(per_channel(mean, channels, "mean"), per_channel(std, channels, "std")),
    ]


def eval_transform(
    image_size: int, mean: Sequence[float], std: Sequence[float], channels: int = 1
) -> v2.Compose:
    """Deterministic: resize to ``image_size`` x ``image_size``, scale to [0, 1], normalize."""
    from torchvision.transforms import v2

    resize = v2.Resize((image_size, image_size), antialias=True)
    return v2.Compose([resize, *normalize_steps(mean, std, channels)])


def denormalize(batch: torch.Tensor, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    """Undo :func:`eval_transform`'s normalization for display; returns values in [0, 1]."""
    import torch

    c = batch.shape[-3]
    m = torch.tensor(per_channel(mean, c, "mean"), dtype=batch.dtype).view(c, 1, 1)
    s = torch.tensor(per_channel(std, c, "std"), dtype=batch.dtype).view(c, 1, 1)
    return (batch * s + m).clamp(0, 1)


@dataclass(frozen=True)
class Preprocessing:
    """Class names, image size, channels and per-channel mean/std (and the taxonomy)."""

    class_names: tuple[str, ...]
    image_size: int
    channels: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    taxonomy: str = "folder"

    @classmethod
    def build(
        cls, class_names: Sequence[str], image_size: int, channels: int,
        mean: Sequence[float], std: Sequence[float], taxonomy: str = "folder",
    ) -> Preprocessing:  # fmt: skip
        """Checked and normalized: one mean/std value applies to every channel."""
        channels = int(channels)
        return cls(
            tuple(class_names), int(image_size), channels,
            tuple(per_channel(mean, channels, "mean")), tuple(per_channel(std, channels, "std")),
            taxonomy or "folder",
        )  # fmt: skip

    @classmethod
    def from_dict(cls, stored: Mapping[str, Any], source: str = "the model") -> Preprocessing:
        """From a checkpoint's hyperparameters or an ONNX sidecar."""
        missing = [k for k in REQUIRED if k not in stored]
        if missing:
            raise ValueError(f"{source}'s preprocessing settings lack {missing}.")
        return cls.build(*(stored[k] for k in REQUIRED), stored.get("taxonomy") or "folder")

    def to_dict(self) -> dict[str, Any]:
        """Plain values, as checkpoints and sidecars store them."""
        return {
            "class_names": list(self.class_names),
            "image_size": self.image_size,
            "channels": self.channels,
            "mean": list(self.mean),
            "std": list(self.std),
            "taxonomy": self.taxonomy,
        }

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def eval_transform(self) -> v2.Compose:
        """``uint8`` image of any size -> the normalized ``(C, S, S)`` input."""
        return eval_transform(self.image_size, self.mean, self.std, self.channels)

    def differences(self, other: Preprocessing) -> list[str]:
        """What differs from ``other`` (``self`` a checkpoint's, ``other`` this run's), one line
        per setting; empty when they are the same."""
        lines = []
        if self.class_names != other.class_names:
            lines.append(f"class names: {class_difference(self.class_names, other.class_names)}")
        for key in ("image_size", "channels"):
            if getattr(self, key) != getattr(other, key):
                lines.append(
                    f"{key}: checkpoint {getattr(self, key)}, this run {getattr(other, key)}"
                )
        for key in ("mean", "std"):
            a, b = getattr(self, key), getattr(other, key)
            if len(a) != len(b) or any(abs(x - y) >= 1e-6 for x, y in zip(a, b, strict=False)):
                lines.append(f"{key}: checkpoint {list(a)}, this run {list(b)}")
        return lines


def class_difference(theirs: Sequence[str], ours: Sequence[str]) -> str:
    """How a checkpoint's class names (``theirs``) differ from the data's (``ours``)."""
    missing, extra = sorted(set(theirs) - set(ours)), sorted(set(ours) - set(theirs))
    if not missing and not extra:
        return "same names, different order"
    return (
        f"{len(theirs)} classes in the checkpoint, {len(ours)} in the data: missing from the "
        f"data {missing}, not in the checkpoint {extra}"
    )
