"""The standard augmentations on whole batches: one sampling grid and a few tensor ops.

Per-image ``transforms.v2`` calls cost ~1-2 ms each on a CPU (Python dispatch and one
``grid_sample`` per image and op). :class:`BatchAugment` draws independent random parameters
for every image but applies them to the whole batch at once: flip, rotation, translation,
scale and the random resized crop become one affine ``grid_sample`` per batch, brightness and
contrast two broadcast multiplications. The sampling grid is built as the outer sum of one
row and one column per image (an affine map is separable), which on a CPU costs a fraction of
``F.affine_grid``'s batched matrix product (0.2 ms against 12 ms for 32 images of 128 px).
It runs in the loader workers (``data.augment_on=batch``) or on the accelerator after
transfer (``data.augment_on=device``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn
from torch.nn import functional as F


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
