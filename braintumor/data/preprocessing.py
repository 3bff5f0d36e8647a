"""``Preprocessing``: what turns a decoded scan into the network's input, and the labels of its
outputs. Built once (by the datamodule), stored in every checkpoint and ONNX sidecar as a plain
dict (:meth:`Preprocessing.to_dict`), and rebuilt from there for evaluation and prediction."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from torchvision.transforms import v2

from braintumor.data.transforms import eval_transform, per_channel

REQUIRED = ("class_names", "image_size", "channels", "mean", "std")


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
