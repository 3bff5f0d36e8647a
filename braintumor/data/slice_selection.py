"""Which slices of a volume (a NIfTI file, a DICOM series) to classify.

The model learned from axial slices through the brain. A slice is *empty* when fewer than
``min_foreground`` (5%) of its pixels are brighter than a tenth of the volume's bright level
(its 99.5th percentile): air, the top of the skull. Of the slices between the first and the
last that are not empty (the brain's extent), the central ``central_share`` (80%) are kept:
the outermost ones, at the vertex and the skull base, show little brain and look like no
training scan. Every slice left out is listed with its reason.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

EMPTY = "near-empty (no brain)"
OUTSIDE = "outside the central share of the brain's extent"


@dataclass(frozen=True)
class SliceSelection:
    """The kept slice indices and the skipped ones with their reason."""

    kept: list[int]
    skipped: list[tuple[int, str]] = field(default_factory=list)


def select_slices(
    volume: np.ndarray, min_foreground: float = 0.05, central_share: float = 0.8
) -> SliceSelection:
    """The slices of ``volume`` ``(Z, H, W)`` to classify, by the rule of the module docstring."""
    if not 0 < central_share <= 1 or not 0 <= min_foreground < 1:
        raise ValueError("central_share must be in (0, 1] and min_foreground in [0, 1).")
    volume = np.asarray(volume, dtype=np.float64)
    if volume.ndim != 3 or volume.shape[0] == 0:
        raise ValueError(f"a volume is (slices, height, width); got shape {volume.shape}.")
    bright = np.percentile(volume, 99.5)
    foreground = (volume > 0.1 * bright).mean(axis=(1, 2)) if bright > 0 else np.zeros(len(volume))
    has_brain = foreground >= min_foreground
    if not has_brain.any():
        return SliceSelection([], [(k, EMPTY) for k in range(len(volume))])
    first, last = np.flatnonzero(has_brain)[[0, -1]]
    extent = last - first + 1
    margin = extent * (1 - central_share) / 2
    low, high = first + margin, last - margin
    kept, skipped = [], []
    for k in range(len(volume)):
        if not has_brain[k]:
            skipped.append((k, EMPTY))
        elif not low - 1e-9 <= k <= high + 1e-9:
            skipped.append((k, OUTSIDE))
        else:
            kept.append(k)
    if not kept:  # a very thin brain extent: its middle slice
        middle = (int(first) + int(last)) // 2
        kept = [middle]
        skipped = [s for s in skipped if s[0] != middle]
    return SliceSelection(kept, skipped)
