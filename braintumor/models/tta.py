"""Test-time augmentation: the mean of the model's logits over a few deterministic views of
each image, all views of a batch in one forward pass.

``none``: the image; ``flip``: plus its mirror image (left-right); ``flip_shift``: plus the
image and its mirror shifted by :data:`SHIFT` of the side in each of the four directions
(the uncovered strip filled with the image's corner value, the background of an MRI slice).
The logits are averaged, so a temperature fitted on them applies unchanged.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch.nn import functional as F

TTA_MODES = ("none", "flip", "flip_shift")
SHIFT = 0.04


def _shift(images: torch.Tensor, dx: int, dy: int) -> torch.Tensor:
    """Translate by ``(dx, dy)`` pixels; the uncovered strip takes each image's top-left value
    (after normalization the background is not 0)."""
    fill = images[..., :1, :1]
    pad = (max(dx, 0), max(-dx, 0), max(dy, 0), max(-dy, 0))
    padded = F.pad(images - fill, pad) + fill
    h, w = images.shape[-2:]
    top, left = max(-dy, 0), max(-dx, 0)
    return padded[..., top : top + h, left : left + w]


def views(images: torch.Tensor, mode: str) -> torch.Tensor:
    """``(V * N, C, S, S)``: the ``V`` views of every image, view by view."""
    if mode not in TTA_MODES:
        raise ValueError(f"eval.tta must be one of {TTA_MODES}, got '{mode}'.")
    out = [images]
    if mode in ("flip", "flip_shift"):
        out.append(images.flip(-1))
    if mode == "flip_shift":
        step = max(1, round(SHIFT * images.shape[-1]))
        for dx, dy in ((step, 0), (-step, 0), (0, step), (0, -step)):
            out += [_shift(images, dx, dy), _shift(images.flip(-1), dx, dy)]
    return torch.cat(out)


def tta_logits(
    forward: Callable[[torch.Tensor], torch.Tensor], images: torch.Tensor, mode: str
) -> torch.Tensor:
    """The mean logits of ``forward`` over the views of ``images`` (one batched call)."""
    if mode == "none":
        return forward(images)
    logits = forward(views(images, mode)).float()
    return logits.view(-1, len(images), logits.shape[-1]).mean(0)
