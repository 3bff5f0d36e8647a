"""``AugmentSpec``: the training augmentations written once (``conf/augment/*.yaml``).

One set of parameters gives both forms the data pipeline uses: :meth:`AugmentSpec.transforms`,
the ``torchvision.transforms.v2`` list applied image by image (``data.augment_on=loader``), and
:meth:`AugmentSpec.batch_augment`, the :class:`~braintumor.data.batch_augment.BatchAugment`
applied to whole batches (``batch``, ``device``). Both draw each image's own random flip,
rotation, shift, zoom, crop, brightness and contrast from the same ranges. Shear and blur have
no batched form: a spec with them is applied image by image in every mode (``batched:
false``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from torchvision.transforms import v2

from braintumor.data.batch_augment import BatchAugment


def _pair(values: Sequence[float], name: str) -> tuple[float, float]:
    values = tuple(values)
    if len(values) != 2 or values[0] > values[1]:
        raise ValueError(f"augment.{name} must be a [low, high] range, got {list(values)}.")
    return values


@dataclass(frozen=True)
class AugmentSpec:
    """Random training augmentations, each off at its default.

    Parameters
    ----------
    hflip : probability of a horizontal flip.
    degrees : rotation drawn from ``[-degrees, degrees]``.
    translate : shift drawn from ``[-translate, translate]`` x the side, on each axis.
    scale : zoom range ``[low, high]``.
    shear : shear angle drawn from ``[-shear, shear]`` degrees (image by image only).
    brightness, contrast : factors drawn from ``[1 - x, 1 + x]``.
    blur : probability of a Gaussian blur of ``blur_kernel`` pixels with a sigma drawn from
        ``blur_sigma`` (image by image only).
    crop_scale, crop_ratio : the random resized crop's area fraction and aspect ratio ranges;
        the crop is resized to ``data.image_size``.
    batched : whether ``data.augment_on=batch|device`` apply the batched form; ``false``: the
        ``transforms.v2`` list image by image in every mode.
    """

    hflip: float = 0.0
    degrees: float = 0.0
    translate: float = 0.0
    scale: Sequence[float] = (1.0, 1.0)
    shear: float = 0.0
    brightness: float = 0.0
    contrast: float = 0.0
    blur: float = 0.0
    blur_kernel: int = 5
    blur_sigma: Sequence[float] = (0.1, 2.0)
    crop_scale: Sequence[float] = (1.0, 1.0)
    crop_ratio: Sequence[float] = (1.0, 1.0)
    batched: bool = True

    def __post_init__(self) -> None:
        for name in ("scale", "blur_sigma", "crop_scale", "crop_ratio"):
            object.__setattr__(self, name, _pair(getattr(self, name), name))
        for name in ("hflip", "blur"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"augment.{name} is a probability, got {getattr(self, name)}.")
        if self.batched and (self.shear or self.blur):
            raise ValueError(
                "augment.shear and augment.blur have no batched form: add augment.batched=false "
                "(the transforms.v2 list, image by image, in every data.augment_on mode)."
            )

    def transforms(self, size: int) -> list[Callable]:
        """The ``transforms.v2`` list, on ``uint8`` images; ``size``: ``data.image_size``,
        where the random resized crop ends. Transforms that would do nothing are left out."""
        steps: list[Callable] = []
        if self.hflip:
            steps.append(v2.RandomHorizontalFlip(p=self.hflip))
        if self.degrees or self.translate or self.scale != (1.0, 1.0) or self.shear:
            steps.append(
                v2.RandomAffine(
                    degrees=self.degrees,
                    translate=(self.translate, self.translate) if self.translate else None,
                    scale=self.scale if self.scale != (1.0, 1.0) else None,
                    shear=self.shear or None,
                )
            )
        if self.brightness or self.contrast:
            steps.append(v2.ColorJitter(brightness=self.brightness, contrast=self.contrast))
        if self.blur:
            blur = v2.GaussianBlur(kernel_size=self.blur_kernel, sigma=self.blur_sigma)
            steps.append(v2.RandomApply([blur], p=self.blur))
        if self.crop_scale != (1.0, 1.0) or self.crop_ratio != (1.0, 1.0):
            steps.append(
                v2.RandomResizedCrop(
                    size=size, scale=self.crop_scale, ratio=self.crop_ratio, antialias=True
                )
            )
        return steps

    def batch_augment(self, size: int) -> BatchAugment | None:
        """The batched form at ``size`` px, or ``None`` when the spec is not ``batched``."""
        if not self.batched:
            return None
        return BatchAugment(
            size, hflip=self.hflip, degrees=self.degrees, translate=self.translate,
            scale=self.scale, brightness=self.brightness, contrast=self.contrast,
            crop_scale=self.crop_scale, crop_ratio=self.crop_ratio,
        )  # fmt: skip
