"""Grad-CAM (Selvaraju et al., 2017): where in the image the evidence for a class lies.

The map of class ``c`` is ``ReLU(sum_k alpha_k A_k)`` with ``A`` the activations of a target
layer and ``alpha_k`` the spatial mean of ``d logit_c / d A_k``. Implemented here with one
forward hook and ``torch.autograd.grad`` (batched, no backward hooks, so in-place ReLUs are
fine) instead of the ``grad-cam`` package, which would pull in OpenCV (and its libGL system
dependency) for the same twenty lines.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from matplotlib import colormaps
from PIL import Image
from torch import nn

MAX_OVERLAY_SIDE = 1024  # overlays of larger scans are drawn at most this long on each side


def find_layer(model: nn.Module, path: str) -> nn.Module:
    """The submodule at dotted ``path``; integer parts index (negative ones from the end)."""
    module = model
    for part in path.split("."):
        try:
            if part.lstrip("-").isdigit():
                module = list(module.children())[int(part)]
            else:
                module = getattr(module, part)
        except (AttributeError, IndexError):
            raise ValueError(
                f"no layer '{path}' in {type(model).__name__} (failed at '{part}'): set the "
                "model config's gradcam_layer to a dotted path such as net.features.-1"
            ) from None
        if not isinstance(module, nn.Module):
            raise ValueError(f"'{path}' names a {type(module).__name__}, not a layer.")
    return module


def last_conv_layer(model: nn.Module) -> nn.Module:
    """The last ``Conv2d`` of ``model``: the fallback target of checkpoints that name none."""
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    if not convs:
        raise ValueError(f"{type(model).__name__} has no Conv2d layer for Grad-CAM.")
    return convs[-1]


def target_layer(model: nn.Module) -> nn.Module:
    """The layer a model's ``hparams.gradcam_layer`` names, else its last ``Conv2d``."""
    hparams = getattr(model, "hparams", {}) or {}
    path = hparams.get("gradcam_layer")
    return find_layer(model, path) if path else last_conv_layer(model)


def grad_cam(
    model: nn.Module,
    layer: nn.Module,
    batch: torch.Tensor,
    targets: Sequence[int] | torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Grad-CAM maps of ``batch`` for ``targets`` (default: the predicted classes).

    Returns ``(maps, probabilities)``: maps ``(N, h, w)`` at the layer's resolution, each
    scaled to [0, 1] (all zeros where no evidence is positive), and the softmax output.
    The model must be in eval mode (BatchNorm must not mix the images of the batch).
    """
    captured: list[torch.Tensor] = []
    handle = layer.register_forward_hook(lambda _m, _i, output: captured.append(output))
    try:
        with torch.enable_grad():
            logits = model(batch.detach())
            if not captured:
                raise RuntimeError("the Grad-CAM target layer was not called in forward.")
            activations = captured[-1]
            if activations.dim() != 4:
                shape = tuple(activations.shape)
                raise ValueError(f"Grad-CAM needs a layer with (N, C, H, W) outputs, got {shape}.")
            if targets is None:
                targets = logits.argmax(dim=1)
            targets = torch.as_tensor(targets, device=logits.device).long().view(-1)
            score = logits.gather(1, targets[:, None]).sum()
            (gradients,) = torch.autograd.grad(score, activations)
    finally:
        handle.remove()
    weights = gradients.mean(dim=(2, 3), keepdim=True)
    maps = F.relu((weights * activations).sum(dim=1)).detach().float()
    peak = maps.flatten(1).amax(dim=1).clamp(min=1e-12)[:, None, None]
    return maps / peak, logits.detach().float().softmax(dim=1)


def resize_map(cam: torch.Tensor, size: tuple[int, int]) -> np.ndarray:
    """A ``(h, w)`` map -> ``size`` (height, width) by bilinear interpolation, in [0, 1]."""
    resized = F.interpolate(cam[None, None].float(), size=size, mode="bilinear")
    return resized[0, 0].clamp(0, 1).cpu().numpy()


def overlay(image: torch.Tensor, cam: np.ndarray, alpha: float = 0.45) -> Image.Image:
    """An RGB picture of the ``uint8`` ``(C, H, W)`` image with the ``(H, W)`` map on top."""
    gray = image.float().mean(dim=0).numpy() / 255.0
    heat = colormaps["jet"](cam)[..., :3]
    blended = (1 - alpha * cam[..., None]) * gray[..., None] + alpha * cam[..., None] * heat
    return Image.fromarray((blended.clip(0, 1) * 255).round().astype(np.uint8), "RGB")


def overlay_size(height: int, width: int, max_side: int = MAX_OVERLAY_SIDE) -> tuple[int, int]:
    """``(height, width)`` scaled down (aspect kept) to at most ``max_side`` on each side."""
    scale = min(1.0, max_side / max(height, width))
    return max(1, round(height * scale)), max(1, round(width * scale))


def shrink(image: torch.Tensor, max_side: int = MAX_OVERLAY_SIDE) -> torch.Tensor:
    """A ``uint8`` ``(C, H, W)`` image resized (antialiased) to fit ``max_side``; one that fits
    is returned as is. Works plane by plane in PIL: no float copy of a large image."""
    height, width = overlay_size(*image.shape[-2:], max_side)
    if (height, width) == tuple(image.shape[-2:]):
        return image
    planes = [
        np.asarray(Image.fromarray(plane).resize((width, height), Image.Resampling.BILINEAR))
        for plane in image.numpy()
    ]
    return torch.from_numpy(np.stack(planes))


def explain_picture(
    image: torch.Tensor, cam: torch.Tensor, max_side: int = MAX_OVERLAY_SIDE
) -> Image.Image:
    """The overlay of a layer-resolution map ``cam`` (from :func:`grad_cam`) on a ``uint8``
    ``(C, H, W)`` image, at the image's size but at most ``max_side`` pixels on a side."""
    small = shrink(image, max_side)
    return overlay(small, resize_map(cam, tuple(small.shape[-2:])))
