"""Decode any image PIL opens (and figshare's ``.mat`` slices) into a ``uint8`` tensor with
1 or 3 channels."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

import numpy as np
from PIL import Image, ImageOps

from braintumor.data.sources import reader_for

if TYPE_CHECKING:
    import torch


def open_scan(path: str | Path | BinaryIO) -> Image.Image:
    """``Image.open``, except for the file endings a layout's reader decodes itself
    (:class:`~braintumor.data.sources.Layout`: figshare's ``.mat`` slices), which are read
    and windowed to an ``L`` image (already loaded)."""
    if isinstance(path, (str, Path)):
        reader = reader_for(path)
        if reader is not None:
            return Image.fromarray(reader.read_image(path))
    return Image.open(path)


def to_channels(image: Image.Image, channels: int) -> Image.Image:
    """Convert any PIL mode to ``L`` (``channels=1``) or ``RGB`` (``channels=3``).

    Transparent images are composited onto black (the background of an MRI); 16-bit and
    float images are rescaled from their own min/max to 0..255 instead of being clipped.
    """
    if channels not in (1, 3):
        raise ValueError(f"channels must be 1 or 3, got {channels}.")
    if image.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        values = np.asarray(image, dtype=np.float64)
        low, high = float(values.min()), float(values.max())
        scaled = (values - low) / (high - low) * 255.0 if high > low else values * 0.0
        image = Image.fromarray(scaled.round().astype(np.uint8))
    elif (image.mode == "P" and "transparency" in image.info) or image.mode in ("RGBA", "LA", "PA"):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (0, 0, 0, 255))
        image = Image.alpha_composite(background, rgba).convert("RGB")
    target = "L" if channels == 1 else "RGB"
    return image if image.mode == target else image.convert(target)


def load_image(
    path: str | Path | BinaryIO, channels: int = 1, max_pixels: int | None = None
) -> torch.Tensor:
    """Read ``path`` as a ``uint8`` tensor of shape ``(channels, H, W)``
    (:func:`read_image` + :func:`to_array`, as a tensor)."""
    import torch  # here: the ONNX prediction path decodes with numpy alone

    return torch.from_numpy(to_array(read_image(path, max_pixels), channels))


def read_image(path: str | Path | BinaryIO, max_pixels: int | None = None) -> Image.Image:
    """Decode ``path`` in its own mode, with its EXIF orientation applied (a rotated phone
    photo of a film is upright). With ``max_pixels``, an image of more pixels is refused
    (``ValueError``) from its header, before anything is decoded (a small PNG can decode to
    gigabytes). No PyTorch: the ONNX prediction path uses it."""
    try:
        opened = open_scan(path)
    except Image.DecompressionBombError as error:  # PIL's own limit, far above ours
        if max_pixels is None:
            raise
        raise ValueError(
            f"more than the {max_pixels:,} pixels read ({error}): downscale the image first."
        ) from None
    with opened as image:
        if max_pixels is not None and image.width * image.height > max_pixels:
            raise ValueError(
                f"{image.width}x{image.height} pixels is more than the {max_pixels:,} pixels "
                "read: downscale the image first."
            )
        return ImageOps.exif_transpose(image)


def to_array(image: Image.Image, channels: int) -> np.ndarray:
    """A PIL image -> ``uint8`` array ``(channels, H, W)`` (:func:`to_channels`)."""
    array = np.array(to_channels(image, channels))
    array = array[None] if array.ndim == 2 else array.transpose(2, 0, 1)
    return np.ascontiguousarray(array)
