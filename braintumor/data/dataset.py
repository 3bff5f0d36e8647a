"""A map-style dataset over an explicit list of scans."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import torch
from torch.utils.data import Dataset

from braintumor.data.cache import DecodedImages
from braintumor.data.image import load_image
from braintumor.data.scan import Scan
from braintumor.data.skipped import append_skipped
from braintumor.errors import DataError


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
        self.skipped_log: Path | None = None  # where images unreadable mid-run are recorded

    def __len__(self) -> int:
        return len(self.scans)

    def _image(self, index: int) -> torch.Tensor:
        path = self.scans[index].path
        if self.images is not None:
            return self.images[path]
        return load_image(self.root / path, self.channels)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        image = self._image(index)
        if self.transform is not None:
            image = self.transform(image)
        return image, self.targets[index]

    def _readable(self, indices: list[int]) -> list[tuple[int, torch.Tensor]]:
        """``(index, uint8 image)`` of the scans that can be read now. Without a decoded cache a
        file may vanish or break during the run: it is left out of the batch, warned about and
        appended to ``skipped_log`` (the run's ``skipped_images.csv``), never a crash or silence.
        """
        if self.images is not None:
            return [(i, self.images[self.scans[i].path]) for i in indices]
        loaded = []
        for i in indices:
            try:
                loaded.append((i, load_image(self.root / self.scans[i].path, self.channels)))
            except Exception as error:  # PIL and the OS raise many types
                reason = f"{type(error).__name__}: {error} (during training)"
                warnings.warn(f"skipping {self.root / self.scans[i].path}: {reason}", stacklevel=2)
                if self.skipped_log is not None:
                    append_skipped(self.skipped_log, self.scans[i].path, reason)
        if indices and not loaded:
            raise DataError(
                f"no image of a batch could be read under '{self.root}' (e.g. "
                f"'{self.scans[indices[0]].path}'): was the data moved or deleted during the run?"
            )
        return loaded

    def __getitems__(self, indices: list[int]) -> list[tuple[torch.Tensor, int]]:
        """A batch at once (DataLoader workers call this): ``batch_transform``, when set,
        runs on the stacked images (read from the decoded cache in one copy when there is
        no per-image transform)."""
        if self.batch_transform is not None and self.images is not None and self.transform is None:
            images = self.images.stack([self.scans[i].path for i in indices])
        else:
            loaded = self._readable(indices)
            indices = [i for i, _ in loaded]
            transform = self.transform or (lambda image: image)
            items = [(transform(image), self.targets[i]) for i, image in loaded]
            if self.batch_transform is None or not items:
                return items
            images = torch.stack([image for image, _ in items])
        images = self.batch_transform(images)
        return [(image, self.targets[i]) for image, i in zip(images, indices, strict=True)]
