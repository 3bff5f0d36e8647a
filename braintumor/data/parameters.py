"""The constraints of the ``data.*`` parameters, declared once and checked in one place."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from braintumor.data.augmentation import AUGMENT_ON
from braintumor.data.cache import CACHE_MODES
from braintumor.data.sources import LAYOUTS

CHOICES: dict[str, tuple] = {  # every constrained parameter, declared once
    "layout": tuple(LAYOUTS),
    "channels": (1, 3),
    "cache": CACHE_MODES,
    "augment_on": AUGMENT_ON,
    "sampler": (None, "balanced"),
    "multiprocessing_context": (None, "fork", "spawn", "forkserver"),
}
RANGES: dict[str, tuple[float, float]] = {
    "image_size": (8, float("inf")),
    "crop_margin": (0.0, 1.0),
    "group_file_unmatched": (0.0, 1.0),
    "cropped_copy_similarity": (0.0, 1.0),
}


def check_parameters(values: Mapping[str, Any]) -> None:
    """Raise ``ValueError`` naming the ``data.*`` key, what it allows and what it got."""
    for key, allowed in CHOICES.items():
        if values[key] not in allowed:
            raise ValueError(f"data.{key} must be one of {allowed}, got {values[key]!r}.")
    for key, (low, high) in RANGES.items():
        if not low <= values[key] <= high:
            raise ValueError(f"data.{key} must be in [{low}, {high}], got {values[key]}.")


def default_num_workers() -> int:
    """Loader workers when ``num_workers`` is null: CPU count - 1, between 1 and 8."""
    return max(1, min(8, (os.cpu_count() or 2) - 1))
