"""The eval preprocessing and test-time augmentation in numpy and PIL, without PyTorch.

The ONNX prediction path runs on onnxruntime + numpy + PIL alone, so that one scan is
classified in well under a second instead of importing torch for ten. These functions
mirror :func:`braintumor.data.preprocessing.eval_transform` (an antialiased bilinear resize of
the ``uint8`` image, then ``/255`` and the per-channel normalization: PIL's bilinear filter is
the one torchvision's antialiased resize reproduces, to within one grey level) and
:func:`braintumor.models.tta.views`; ``tests/inference/test_preprocess.py`` holds them to
the torch versions.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np
from PIL import Image

from braintumor.data.image import read_image, to_array, to_channels

TTA_MODES = ("none", "flip", "flip_shift")  # as braintumor.models.tta (which needs torch)
SHIFT = 0.04
THUMBNAIL = 64  # side of the picture the input checks look at


@dataclass(frozen=True)
class DecodedScan:
    """One decoded upload or file: the pixels the model sees and what the input checks need.

    ``pixels``: ``uint8`` ``(C, H, W)`` in the model's channels; ``colour``: the mean chroma
    (max - min of R, G, B, in 0..1) of the image in colour, before any conversion to grey.
    """

    pixels: np.ndarray
    colour: float


def decode_scan(
    path: str | Path | BinaryIO, channels: int, max_pixels: int | None = None
) -> DecodedScan:
    """Decode an image file (or file object) for a model of ``channels`` channels; images of
    more than ``max_pixels`` pixels are refused (``ValueError``) from their header."""
    image = read_image(path, max_pixels)
    return DecodedScan(to_array(image, channels), colourfulness(image))


def colourfulness(image: Image.Image) -> float:
    """Mean chroma of ``image`` in 0..1: 0 for any grey image (an MRI slice), large for a
    photo. Measured on a small copy (cheap on large images)."""
    small = to_channels(image, 3)
    if max(small.size) > 4 * THUMBNAIL:
        small = small.resize((THUMBNAIL * 2, THUMBNAIL * 2), Image.Resampling.BILINEAR)
    rgb = np.asarray(small, dtype=np.int16)
    return float((rgb.max(axis=2) - rgb.min(axis=2)).mean() / 255.0)


def resize(pixels: np.ndarray, size: int) -> np.ndarray:
    """``uint8`` ``(C, H, W)`` -> ``(C, size, size)`` by PIL's antialiased bilinear filter."""
    if pixels.shape[1:] == (size, size):
        return pixels
    return np.stack([
        np.asarray(Image.fromarray(plane).resize((size, size), Image.Resampling.BILINEAR))
        for plane in pixels
    ])  # fmt: skip


def normalize(pixels: np.ndarray, mean: Sequence[float], std: Sequence[float]) -> np.ndarray:
    """``uint8`` ``(C, S, S)`` -> ``float32``: ``(x / 255 - mean) / std`` per channel."""
    m = np.asarray(mean, dtype=np.float32)[:, None, None]
    s = np.asarray(std, dtype=np.float32)[:, None, None]
    return (pixels.astype(np.float32) / np.float32(255.0) - m) / s


def eval_input(
    pixels: np.ndarray, size: int, mean: Sequence[float], std: Sequence[float]
) -> np.ndarray:
    """The network's input for one ``uint8`` image: resized, scaled and normalized."""
    return normalize(resize(pixels, size), mean, std)


def _shift(images: np.ndarray, dx: int, dy: int) -> np.ndarray:
    """Translate by ``(dx, dy)`` pixels, the uncovered strip filled with each image's top-left
    value (as :func:`braintumor.models.tta._shift`)."""
    fill = images[..., :1, :1]
    h, w = images.shape[-2:]
    out = np.broadcast_to(fill, images.shape).copy()
    src_y, dst_y = slice(max(-dy, 0), h - max(dy, 0)), slice(max(dy, 0), h - max(-dy, 0))
    src_x, dst_x = slice(max(-dx, 0), w - max(dx, 0)), slice(max(dx, 0), w - max(-dx, 0))
    out[..., dst_y, dst_x] = images[..., src_y, src_x]
    return out


def views(images: np.ndarray, mode: str) -> np.ndarray:
    """``(V * N, C, S, S)``: the ``V`` test-time views of every image, view by view."""
    if mode not in TTA_MODES:
        raise ValueError(f"tta must be one of {TTA_MODES}, got '{mode}'.")
    out = [images]
    if mode in ("flip", "flip_shift"):
        out.append(images[..., ::-1])
    if mode == "flip_shift":
        step = max(1, round(SHIFT * images.shape[-1]))
        for dx, dy in ((step, 0), (-step, 0), (0, step), (0, -step)):
            out += [_shift(images, dx, dy), _shift(images[..., ::-1], dx, dy)]
    return np.ascontiguousarray(np.concatenate(out))
