"""A map-style dataset over an explicit list of scans."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import torch
from torch.utils.data import Dataset

from braintumor.data.cache import DecodedImages
from braintumor.data.image import load_image
from braintumor.data.scan import Scan


class ScanDataset(Dataset):
    """Like torchvision's ``ImageFolder``, but over a given list of scans (one split of it).

    Parameters
    ----------
    root : folder the scan paths are relative to.
    scans : the scans of this split.
    class_names : all class names; a scan's target is the index of its label here.
    channels : 1 (grayscale) or 3 (RGB).
    transform : applied to the ``uint8`` tensor of shape ``(channels, H, W)``.
    label_of : folder name -> class name (a taxonomy); identity when omitted.
    images : the scans already decoded and resized (a decoded cache); read from disk if None.
    """

    def __init__(
        self,
        root: str | Path,
        scans: Sequence[Scan],
        class_names: Sequence[str],
        channels: int = 1,
        transform: Callable[[torch.Tensor], torch.Tensor] | None = None,
        label_of: Mapping[str, str] | None = None,
        images: DecodedImages | None = None,
    ) -> None:
        self.root = Path(root)
        self.scans = list(scans)
        self.class_names = list(class_names)
        self.class_to_idx = {name: i for i, name in enumerate(self.class_names)}
        label_of = label_of or {}
        self.targets = [self.class_to_idx[label_of.get(s.label, s.label)] for s in self.scans]
        self.channels = channels
        self.transform = transform
        self.images = images
        self.batch_transform: Callable[[torch.Tensor], torch.Tensor] | None = None

    def __len__(self) -> int:
        return len(self.scans)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        path = self.scans[index].path
        if self.images is not None:
            image = self.images[path]
        else:
            image = load_image(self.root / path, self.channels)
        if self.transform is not None:
            image = self.transform(image)
        return image, self.targets[index]

    def __getitems__(self, indices: list[int]) -> list[tuple[torch.Tensor, int]]:
        """A batch at once (DataLoader workers call this): ``batch_transform``, when set,
        runs on the stacked images (read from the decoded cache in one copy when there is
        no per-image transform)."""
        if self.batch_transform is None or not indices:
            return [self[i] for i in indices]
        if self.images is not None and self.transform is None:
            images = self.images.stack([self.scans[i].path for i in indices])
        else:
            images = torch.stack([self[i][0] for i in indices])
        images = self.batch_transform(images)
        return [(image, self.targets[i]) for image, i in zip(images, indices, strict=True)]
