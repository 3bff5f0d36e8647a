"""The training augmentation, in one place: what it is, its two forms, and where it runs.

- :class:`AugmentSpec` (``conf/augment/*.yaml``): the random augmentations written once, each
  off at its default. It gives both forms: :meth:`AugmentSpec.transforms`, the
  ``torchvision.transforms.v2`` list applied image by image, and
  :meth:`AugmentSpec.batch_augment`, a :class:`BatchAugment` applied to whole batches. Both
  draw each image's own random flip, rotation, shift, zoom, crop, brightness and contrast from
  the same ranges. Shear and blur have no batched form: a spec with them is applied image by
  image in every mode (``batched: false``).
- :class:`BatchAugment`: the batched form, one sampling grid and a few tensor ops per batch.
  Per-image ``transforms.v2`` calls cost ~1-2 ms each on a CPU (Python dispatch and one
  ``grid_sample`` per image and op); here flip, rotation, translation, scale and the random
  resized crop become one affine ``grid_sample`` per batch, brightness and contrast two
  broadcast multiplications. The sampling grid is built as the outer sum of one row and one
  column per image (an affine map is separable), which on a CPU costs a fraction of
  ``F.affine_grid``'s batched matrix product (0.2 ms against 12 ms for 32 images of 128 px).
- :class:`Augmentation`: where training images are augmented (``data.augment_on``):
  ``loader``, the ``transforms.v2`` list image by image in the loader workers
  (:func:`train_transform`); ``batch``, the batched form on whole batches in the workers;
  ``device``, the batched form after the ``uint8`` batch reaches the accelerator. Without a
  batched form, ``batch`` and ``device`` apply the list image by image. The object is small and
  picklable: loader workers started with ``spawn`` or ``forkserver`` receive it with the
  dataset (a bound method of the datamodule would drag the datamodule and its live loaders
  along).

One module over 300 lines because it is one job, in the manner of torchvision's
``references/classification/presets.py``: the spec, its two forms and where they run change
together (a new augmentation is a field of the spec, its ``transforms.v2`` step, its batched
form or ``batched: false``, and its YAML). The deterministic eval transform is the
preprocessing's (:mod:`braintumor.data.preprocessing`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F
from torchvision.transforms import v2

from braintumor.constraints import Interval, Options, check
from braintumor.data.parameters import AUGMENT_ON
from braintumor.data.preprocessing import normalize_steps


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
        [*train_geometry(image_size, augment, input_size), *normalize_steps(mean, std, channels)]
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


def _uniform(n: int, low: float, high: float, device: torch.device) -> torch.Tensor:
    return torch.rand(n, device=device) * (high - low) + low


class BatchAugment(nn.Module):
    """Random flip + affine + resized crop + brightness/contrast, per image, batched.

    Parameters
    ----------
    size : output side in pixels (``data.image_size``).
    hflip : probability of a horizontal flip.
    degrees, translate, scale : like ``v2.RandomAffine`` (rotation range, max shift as a
        fraction of the side, zoom range).
    brightness, contrast : like ``v2.ColorJitter`` (factors drawn from ``[1 - x, 1 + x]``).
    crop_scale, crop_ratio : like ``v2.RandomResizedCrop`` (area fraction, aspect ratio).
    """

    def __init__(
        self,
        size: int,
        hflip: float = 0.0,
        degrees: float = 0.0,
        translate: float = 0.0,
        scale: Sequence[float] = (1.0, 1.0),
        brightness: float = 0.0,
        contrast: float = 0.0,
        crop_scale: Sequence[float] = (1.0, 1.0),
        crop_ratio: Sequence[float] = (1.0, 1.0),
    ) -> None:
        super().__init__()
        self.size = int(size)
        self.hflip, self.degrees, self.translate = hflip, degrees, translate
        self.scale, self.crop_scale, self.crop_ratio = (
            tuple(scale),
            tuple(crop_scale),
            tuple(crop_ratio),
        )
        self.brightness, self.contrast = brightness, contrast

    def theta(self, n: int, device: torch.device) -> torch.Tensor:
        """``(n, 2, 3)`` affine maps from output to input coordinates (``affine_grid``'s)."""
        angle = _uniform(n, -self.degrees, self.degrees, device) * (math.pi / 180)
        zoom = _uniform(n, *self.scale, device)
        shift = _uniform(2 * n, -self.translate, self.translate, device).view(n, 2) * 2
        area = _uniform(n, *self.crop_scale, device)
        log_ratio = _uniform(n, *(math.log(r) for r in self.crop_ratio), device)
        ratio = torch.exp(log_ratio)
        w = torch.sqrt(area * ratio).clamp(max=1.0)
        h = torch.sqrt(area / ratio).clamp(max=1.0)
        cx = _uniform(n, -1, 1, device) * (1 - w)
        cy = _uniform(n, -1, 1, device) * (1 - h)
        flip = torch.where(torch.rand(n, device=device) < self.hflip, -1.0, 1.0)
        cos, sin = torch.cos(angle) / zoom, torch.sin(angle) / zoom
        rotate = torch.stack([torch.stack([cos, sin], -1), torch.stack([-sin, cos], -1)], -2)
        crop = torch.diag_embed(torch.stack([w * flip, h], -1))
        offset = torch.stack([cx, cy], -1) - shift
        linear = rotate @ crop
        return torch.cat([linear, (rotate @ offset.unsqueeze(-1))], -1)

    def grid(self, theta: torch.Tensor) -> torch.Tensor:
        """``F.affine_grid(theta, (n, c, size, size), align_corners=False)``, as a view:
        ``x' = a x + b y + c`` is a row in ``x`` plus a column in ``y``."""
        n, size = theta.shape[0], self.size
        steps = (torch.arange(size, device=theta.device, dtype=theta.dtype) * 2 + 1) / size - 1
        along_x = theta[:, :, 0, None] * steps  # (n, 2, size)
        along_y = theta[:, :, 1, None] * steps + theta[:, :, 2, None]
        grid = along_x.view(n, 2, 1, size) + along_y.view(n, 2, size, 1)
        return grid.permute(0, 2, 3, 1)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """``(N, C, H, W)`` images (``uint8`` or float in [0, 1]) -> float in [0, 1],
        ``(N, C, size, size)``.

        The random parameters are drawn from the CPU generator, whatever the images' device,
        and sent over in one copy: on a GPU, a few dozen tiny kernels for them would cost
        more than the augmentation itself.
        """
        x = images.float() / 255 if images.dtype == torch.uint8 else images.float()
        n, cpu = x.shape[0], torch.device("cpu")
        theta = self.theta(n, cpu)
        factors = torch.stack([
            _uniform(n, 1 - self.brightness, 1 + self.brightness, cpu) if self.brightness
            else torch.ones(n),
            _uniform(n, 1 - self.contrast, 1 + self.contrast, cpu) if self.contrast
            else torch.ones(n),
        ], -1)  # fmt: skip
        if x.device != cpu:
            theta, factors = (
                torch.cat([theta.view(n, 6), factors], -1).to(x.device).split([6, 2], -1)
            )
            theta = theta.reshape(n, 2, 3)
        grid = self.grid(theta)
        x = F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
        if self.brightness:
            x = (x * factors[:, 0].view(n, 1, 1, 1)).clamp(0, 1)
        if self.contrast:
            k = factors[:, 1].view(n, 1, 1, 1)
            mean = x.mean(dim=(1, 2, 3), keepdim=True)
            x = ((x - mean) * k + mean).clamp(0, 1)
        return x


def _pair(values: Sequence[float], name: str) -> tuple[float, float]:
    values = tuple(values)
    if len(values) != 2 or values[0] > values[1]:
        raise ValueError(f"augment.{name} must be a [low, high] range, got {list(values)}.")
    return values


PROBABILITY = Interval(0.0, 1.0)
POLICIES = ("randaugment", "trivialaugment", "augmix")
CONSTRAINTS = {
    "hflip": PROBABILITY,
    "blur": PROBABILITY,
    "policy": Options((None, *POLICIES)),
    "policy_ops": Interval(1, whole=True),
    "policy_magnitude": Interval(0, 30, whole=True),
    "policy_severity": Interval(1, 10, whole=True),
}
"""The ``augment.*`` constraints beyond the ``[low, high]`` ranges."""


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
    policy : an automatic augmentation policy of ``transforms.v2`` after the steps above:
        ``randaugment`` (``policy_ops`` operations of magnitude ``policy_magnitude`` of 31),
        ``trivialaugment`` (TrivialAugmentWide: one operation, random magnitude) or ``augmix``
        (AugMix, severity ``policy_severity``); ``None``: none (image by image only).
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
    policy: str | None = None
    policy_ops: int = 2
    policy_magnitude: int = 9
    policy_severity: int = 3
    batched: bool = True

    def __post_init__(self) -> None:
        for name in ("scale", "blur_sigma", "crop_scale", "crop_ratio"):
            object.__setattr__(self, name, _pair(getattr(self, name), name))
        check("augment", {name: getattr(self, name) for name in CONSTRAINTS}, CONSTRAINTS)
        if self.batched and (self.shear or self.blur or self.policy):
            raise ValueError(
                "augment.shear, augment.blur and augment.policy have no batched form: add "
                "augment.batched=false (the transforms.v2 list, image by image, in every "
                "data.augment_on mode)."
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
        if self.policy == "randaugment":
            steps.append(v2.RandAugment(self.policy_ops, self.policy_magnitude))
        elif self.policy == "trivialaugment":
            steps.append(v2.TrivialAugmentWide())
        elif self.policy == "augmix":
            steps.append(v2.AugMix(severity=self.policy_severity))
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
        check("data", {"augment_on": augment_on}, {"augment_on": Options(AUGMENT_ON)})
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
        return v2.Compose(normalize_steps(self.mean, self.std, self.channels))(images)

    def on_device(self, images: torch.Tensor, training: bool) -> torch.Tensor:
        """A batch that reached the accelerator: augmented there (``device``, training only)."""
        return self(images) if self.augment_on == "device" and training else images
